/**
 * Unit tests of the host's side of the wire protocol (docs/protocol.md): the byte-level examples of the protocol and
 * the CanBus service spec decode exactly; encode/decode round-trips for random frames; malformed batches are rejected
 * with a reason; the (boot, seq) tracker tells gaps, late arrivals and duplicates apart.
 */
import { strict as assert } from "assert";
import fc from "fast-check";
import { decode } from "cbor-x";
import { formatFrame, makeFrame, parseFrame, sameFrame, FD_LENGTHS, type Frame } from "../../frame/frame";
import { packRecords, unpackRecords, MAX_PACKET } from "../../host/gateway/canbus-records";
import { decodeBatch, decodeRecords, encodeBatch, encodeCommand, decodeResult, PayloadError } from "../../host/gateway/uplink";
import { SequenceTracker } from "../../host/gateway/sequence";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

describe("gateway wire protocol (host side)", () => {
  // The protocol's example, with one byte corrected: the varint of 0x12345678 is F8 AC D1 91 01 (LEB128: every byte
  // but the last has its high bit set); the first version of docs/protocol.md printed 78 there.
  const exampleRecords = "00A3020004DEADBEEF020B0104BF04F8ACD191010302";

  it("decodes the protocol's example batch exactly", () => {
    const payload = hex(`A6 6176 01 6162 1A5EED1234 6173 07 6174 1903E8 616E 04 6166 56 ${exampleRecords}`);
    const batch = decodeBatch(payload);
    assert.equal(batch.boot, 0x5eed1234);
    assert.equal(batch.seq, 7);
    assert.deepEqual(batch.frames.map(formatFrame), ["123#DEADBEEF", "123#DEADBEEF", "123#DEADBFEF", "12345678#R2"]);
    assert.deepEqual(batch.frames.map((f) => f.t), [1, 1, 1.002, 1.002]);
  });

  it("encodes the protocol's example records byte for byte", () => {
    const frames = ["123#DEADBEEF", "123#DEADBEEF", "123#DEADBFEF", "12345678#R2"].map(parseFrame);
    [1, 1, 1.002, 1.002].forEach((t, i) => (frames[i].t = t));
    const ours = decode(encodeBatch(0x5eed1234, 7, frames)) as Record<string, unknown>;
    assert.deepEqual({ ...ours, f: Buffer.from(ours.f as Uint8Array).toString("hex") }, { v: 1, b: 0x5eed1234, s: 7, t: 1000, n: 4, f: exampleRecords.toLowerCase() });
  });

  it("packs and unpacks CanBus records (the service spec's example)", () => {
    const frames = ["123#DEADBEEF", "12345678#R2"].map(parseFrame);
    const [packet] = packRecords(frames);
    assert.equal(Buffer.from(packet).toString("hex"), "230100000004deadbeef785634120302");
    const back = unpackRecords(packet);
    assert.equal(back.error, undefined);
    assert.deepEqual(back.frames.map(formatFrame), ["123#DEADBEEF", "12345678#R2"]);
  });

  it("stops at the first invalid record and says why", () => {
    const good = packRecords([parseFrame("123#11")])[0];
    const bad = new Uint8Array([...good, 0x23, 0x01, 0, 0, 0x40, 0]); // reserved flag bit 6
    const r = unpackRecords(bad);
    assert.equal(r.frames.length, 1);
    assert.match(r.error ?? "", /reserved flag bits/);
    assert.equal(r.droppedBytes, 6);
    assert.match(unpackRecords(new Uint8Array([0x23, 0x01, 0, 0, 0, 8, 1])).error ?? "", /runs past the end/);
    assert.match(unpackRecords(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0])).error ?? "", /bits 29..31/);
    assert.match(unpackRecords(new Uint8Array([0x23, 0x01, 0, 0, 4, 9, ...new Array(9).fill(0)])).error ?? "", /FD length 9/);
  });

  const arbFrame: fc.Arbitrary<Frame> = fc
    .record({
      ext: fc.boolean(),
      kind: fc.constantFrom("classic", "rtr", "fd"),
      id: fc.integer({ min: 0, max: 0x1fffffff }),
      len: fc.integer({ min: 0, max: 15 }),
      byte: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 64, maxLength: 64 }),
      brs: fc.boolean(),
      dt: fc.integer({ min: 0, max: 3 }),
    })
    .map(({ ext, kind, id, len, byte, brs }) => {
      const fid = ext ? id : id & 0x7ff;
      if (kind === "rtr") return makeFrame({ id: fid, ext, rtr: true, dlc: len % 9 });
      if (kind === "fd") return makeFrame({ id: fid, ext, fd: true, brs, data: Uint8Array.from(byte.slice(0, FD_LENGTHS[len])) });
      return makeFrame({ id: fid, ext, data: Uint8Array.from(byte.slice(0, len % 9)) });
    });

  it("round-trips random frame sequences through batch encoding (repeats and small changes included)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbFrame, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })), { maxLength: 60 }), (items) => {
        const frames: Frame[] = [];
        let t = 5000;
        for (const [f, dt, mutate] of items) {
          t += dt;
          const prev = frames.length ? frames[frames.length - 1] : undefined;
          // Re-send the previous frame (REPEAT) or change one byte of it (DELTA) now and then.
          const base = mutate === 1 && prev ? { ...prev, data: prev.data } : mutate === 2 && prev && prev.data.length ? { ...prev, data: Uint8Array.from(prev.data, (b, i) => (i === 0 ? b ^ 1 : b)) } : f;
          frames.push({ ...base, t: t / 1000 });
        }
        const batch = decodeBatch(encodeBatch(1, 2, frames));
        assert.equal(batch.frames.length, frames.length);
        batch.frames.forEach((g, i) => {
          assert.ok(sameFrame(g, frames[i]), `${formatFrame(g)} != ${formatFrame(frames[i])}`);
          assert.equal(Math.round((g.t ?? 0) * 1000), Math.round((frames[i].t ?? 0) * 1000));
        });
      }),
      { numRuns: 300 },
    );
  });

  it("packs any frames into packets of at most 236 bytes, in order", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 80 }), (frames) => {
        const packets = packRecords(frames);
        assert.ok(packets.every((p) => p.length <= MAX_PACKET));
        const back = packets.flatMap((p) => unpackRecords(p).frames);
        assert.equal(back.length, frames.length);
        back.forEach((g, i) => assert.ok(sameFrame(g, frames[i])));
      }),
      { numRuns: 200 },
    );
  });

  it("rejects malformed batches with the batch and the reason", () => {
    const ok = "00a3020004deadbeef";
    const batch = (f: string, n = 1): Uint8Array =>
      Uint8Array.from(Buffer.concat([Buffer.from("a6617601616201617305617400616e", "hex"), Buffer.from([n]), Buffer.from("6166", "hex"), Buffer.from([0x40 + f.length / 2]), Buffer.from(f, "hex")]));
    assert.equal(decodeBatch(batch(ok)).frames.length, 1);
    const cases: Array<[string, RegExp, number?]> = [
      [ok, /'n' says 2 frames/, 2],
      ["04", /slot 1 but only 0 slots/],
      ["01", /DELTA on slot 0/],
      ["02", /REPEAT on slot 0/],
      ["00a30240", /bits 6..7/],
      ["00a3020009", /length 9 above 8/],
      ["00a3020004dead", /run past the end/],
      ["00a3020004deadbeef0101", /changed bytes run past the end/],
      ["ffffffffff", /varint longer than 5 bytes/],
    ];
    for (const [f, re, n] of cases) {
      assert.throws(() => decodeBatch(batch(f, n ?? 1)), (e: unknown) => e instanceof PayloadError && re.test(e.message) && /seq 5/.test(e.message), f);
    }
    assert.throws(() => decodeBatch(hex("ff")), /not CBOR/);
    assert.throws(() => decodeBatch(hex("83010203")), /not a CBOR map/);
    assert.throws(() => decodeRecords(hex("00a3020004"), 0), PayloadError);
  });

  it("encodes a tx command exactly as the protocol's example", () => {
    const cmd = encodeCommand({ op: "tx", id: 7, boot: 0x5eed1234, exp: 61000, frame: parseFrame("123#DEADBEEF") });
    assert.equal(Buffer.from(cmd).toString("hex"), "b90005626f706274786269640764626f6f741a5eed12346365787019ee4861664a230100000004deadbeef");
    const result = decodeResult(hex("A5 626964 07 626F70 627478 626F6B F4 6172 6B6C697374656E2D6F6E6C79 636D7367 60"));
    assert.deepEqual(result, { id: 7, op: "tx", ok: false, reason: "listen-only", msg: "" });
  });

  it("tracks (boot, seq): in order, gaps, late arrivals, duplicates, new boots", () => {
    const t = new SequenceTracker(true);
    assert.equal(t.observe(1, 0).kind, "new");
    assert.equal(t.observe(1, 1).kind, "new");
    assert.deepEqual(t.observe(1, 4), { kind: "gap", missing: 2, from: 2, to: 3 });
    assert.equal(t.observe(1, 3).kind, "late");
    assert.equal(t.observe(1, 3).kind, "duplicate");
    assert.equal(t.observe(1, 1).kind, "duplicate");
    assert.deepEqual(t.observe(2, 2), { kind: "gap", missing: 2, from: 0, to: 1 });
    assert.deepEqual(t.counts, { batches: 5, duplicates: 2, missing: 3, late: 1, boots: 2 });
    // The gateway's status says batches up to 7 were closed: 5..7 never came (a trailing loss).
    assert.deepEqual(t.settle(2, 8), { kind: "gap", missing: 5, from: 3, to: 7 });
    assert.equal(t.settle(2, 8), undefined, "settling twice adds nothing");
    assert.equal(t.observe(2, 6).kind, "late");
    const joining = new SequenceTracker(false);
    assert.deepEqual(joining.observe(9, 40), { kind: "new", firstOfBoot: true, joinedAt: 40 });
    assert.equal(joining.counts.missing, 0);
  });
});
