/**
 * CanBus `frames` reports (firmware/services/canbus.md v1.2): `first_frame: u32`, then records. Unit level; the
 * firmware's side is tested in the VM (firmware/test/reports.test.ts) and end to end by the HIL's report-loss fault.
 */
import { strict as assert } from "assert";
import fc from "fast-check";
import { makeFrame, parseFrame, sameFrame, type Frame } from "../../frame/frame";
import { MAX_PACKET, REPORT_HEADER, packReports, unpackReport } from "../../host/gateway/canbus-records";

describe("CanBus frames reports", () => {
  it("start with first_frame, little-endian, then the records (the spec's example)", () => {
    const [r] = packReports(["123#DEADBEEF", "12345678#R2"].map(parseFrame), 0x01020304);
    assert.equal(Buffer.from(r.packet).toString("hex"), "04030201" + "230100000004deadbeef785634120302");
    assert.equal(r.first, 0x01020304);
    assert.equal(r.frames, 2);
  });

  it("hold 16 classic 8-byte frames each and number them on", () => {
    const frames = Array.from({ length: 40 }, (_, i) => makeFrame({ id: 0x100 + i, data: new Uint8Array(8).fill(i) }));
    const reports = packReports(frames, 7);
    assert.deepEqual(reports.map((r) => [r.first, r.frames, r.packet.length]), [
      [7, 16, 4 + 16 * 14],
      [23, 16, 4 + 16 * 14],
      [39, 8, 4 + 8 * 14],
    ]);
  });

  it("wrap the numbering at 2^32", () => {
    const frames = Array.from({ length: 40 }, () => parseFrame("001#00")); // 7-byte records: 33 per report
    assert.deepEqual(packReports(frames, 0xfffffff0).map((r) => r.first), [0xfffffff0, (0xfffffff0 + 33) >>> 0]);
  });

  it("a report shorter than first_frame is an error, not a crash", () => {
    const r = unpackReport(new Uint8Array([1, 2]));
    assert.match(r.error ?? "", /no 4-byte first_frame/);
    assert.equal(r.frames.length, 0);
  });

  it("round-trip any frames: numbers consecutive, packets within 236 bytes, frames equal", () => {
    const frameArb = fc.record({
      id: fc.integer({ min: 0, max: 0x7ff }),
      fd: fc.boolean(),
      len: fc.constantFrom(0, 1, 8, 12, 64),
      rtr: fc.boolean(),
    }).map(({ id, fd, len, rtr }): Frame =>
      fd ? makeFrame({ id, fd: true, data: new Uint8Array(len) }) : rtr ? makeFrame({ id, rtr: true, dlc: Math.min(len, 8) }) : makeFrame({ id, data: new Uint8Array(Math.min(len, 8)).fill(id & 0xff) }),
    );
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 60 }), fc.nat(), (frames, start) => {
        const reports = packReports(frames, start);
        let next = start >>> 0;
        const back: Frame[] = [];
        for (const r of reports) {
          assert.ok(r.packet.length <= MAX_PACKET && r.packet.length > REPORT_HEADER);
          const u = unpackReport(r.packet);
          assert.equal(u.error, undefined);
          assert.equal(u.first, next);
          assert.equal(u.frames.length, r.frames);
          next = (next + r.frames) >>> 0;
          back.push(...u.frames);
        }
        assert.equal(back.length, frames.length);
        back.forEach((f, i) => assert.ok(sameFrame(f, frames[i])));
      }),
      { numRuns: 200 },
    );
  });
});
