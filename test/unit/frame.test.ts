import { strict as assert } from "assert";
import { formatFrame, makeFrame, parseFrame, sameFrame } from "../../frame/frame";
import { FrameError } from "../../frame/errors";

describe("Frame text (can-utils form)", () => {
  const roundTrips = ["123#DEADBEEF", "12345678#00", "123#", "123#R", "123#R3", "1FFFFFFF#R", "123##1DEADBEEF", "123##3", "20000080#0000000000000000",
    "7FF##0" + "AA".repeat(64)];
  for (const text of roundTrips) {
    it(`round-trips ${text.length > 30 ? text.slice(0, 30) + "..." : text}`, () => {
      assert.equal(formatFrame(parseFrame(text)), text);
    });
  }

  it("reads cansend's forms: lowercase, dots", () => {
    const f = parseFrame("1ab#de.ad.be.ef");
    assert.equal(f.id, 0x1ab);
    assert.deepEqual([...f.data], [0xde, 0xad, 0xbe, 0xef]);
  });

  it("tells an error frame from an extended one by CAN_ERR_FLAG", () => {
    const e = parseFrame("20000004#0004000000000000");
    assert.equal(e.err, true);
    assert.equal(e.ext, false);
    assert.equal(e.id, 4);
    assert.equal(parseFrame("00000004#00").ext, true);
  });

  const bad: Array<[string, RegExp]> = [
    ["800#00", /exceeds 0x7FF/],
    ["12#00", /3 \(11-bit\) or 8/],
    ["123#0", /pairs of hex/],
    ["123#001122334455667788", /exceeds 8 bytes/],
    ["123##1" + "00".repeat(9), /not one of/],
    ["123#R9", /0\.\.8/],
    ["no frame", /expected <id>#<data>/],
    ["4FFFFFFF#00", /exceeds 0x1FFFFFFF/],
  ];
  for (const [text, reason] of bad) {
    it(`rejects ${text.slice(0, 24)} with a reason`, () => {
      assert.throws(() => parseFrame(text), (e: unknown) => e instanceof FrameError && reason.test(e.message));
    });
  }

  it("validates frames built in code", () => {
    assert.throws(() => makeFrame({ id: 0x123, brs: true }), FrameError);
    assert.ok(sameFrame(makeFrame({ id: 1, data: Uint8Array.of(1) }), parseFrame("001#01")));
  });
});
