/**
 * Decode/encode golden tests, one per codec feature and per rule in docs/dbc.md, on the fixture named after it
 * (or a few lines of DBC written here when no fixture pins the case).
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { loadDbcFile } from "../../can-db/load";
import { parseDbc } from "../../can-db/dbc-parser";
import { Decoder } from "../../can-db/decoder";
import { encodeMessage } from "../../can-db/encoder";
import { CodecError } from "../../frame/errors";
import { makeFrame, type Frame } from "../../frame/frame";
import type { Database } from "../../can-db/model";
import { j1939Pgn, makeJ1939Id, parseJ1939Id } from "../../can-db/j1939";
import { DBC_DIR } from "./helpers";

const load = (f: string) => loadDbcFile(resolve(DBC_DIR, f));
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ""), "hex"));
const frame = (id: number, data: string, init: Partial<Frame> = {}): Frame => ({
  id,
  ext: false,
  rtr: false,
  fd: false,
  brs: false,
  esi: false,
  err: false,
  data: hex(data),
  ...init,
});
const message = (db: Database, name: string) => db.messages.find((m) => m.name === name)!;

describe("can-db codec: decode and encode", () => {
  const motohawk = load("motohawk.dbc");
  const dec = new Decoder(motohawk);

  it("motohawk.dbc: Motorola signed 12-bit with factor/offset (cantools' README frame)", () => {
    assert.deepEqual(dec.decode(frame(0x1f0, "c006e00000000000")), {
      message: "ExampleMessage",
      signals: { Temperature: 250.55, AverageRadius: 3.2, Enable: 1 },
    });
  });

  it("--choices gives value-table labels", () => {
    assert.equal(dec.decode(frame(0x1f0, "c006e00000000000"), { choices: true }).signals.Enable, "Enabled");
  });

  it("encode: physical values and labels -> bytes, and back", () => {
    const data = encodeMessage(motohawk, message(motohawk, "ExampleMessage"), { Temperature: 250.1, AverageRadius: 3.2, Enable: "Enabled" });
    assert.equal(Buffer.from(data).toString("hex"), "c001400000000000");
    assert.deepEqual(dec.decode(frame(0x1f0, "c001400000000000")).signals, { Temperature: 250.1, AverageRadius: 3.2, Enable: 1 });
  });

  it("encode: an out-of-range value is a CodecError naming signal and range", () => {
    assert.throws(() => encodeMessage(motohawk, message(motohawk, "ExampleMessage"), { Temperature: 500 }), (e: unknown) => {
      assert.ok(e instanceof CodecError);
      assert.match(e.message, /Temperature: 500 is outside its range \[229\.52, 270\.47\]/);
      return true;
    });
    assert.throws(() => encodeMessage(motohawk, message(motohawk, "ExampleMessage"), { Enable: "Maybe" }), /neither a number nor one of its labels \("Disabled", "Enabled"\)/);
    assert.throws(() => encodeMessage(motohawk, message(motohawk, "ExampleMessage"), { Nope: 1 }), /has no signal Nope/);
  });

  it("encode: a missing signal takes GenSigStartValue (raw), else raw 0", () => {
    const db = parseDbc(
      'BU_: A\nBO_ 1 M: 2 A\n SG_ S : 0|8@1+ (2,0) [0|0] "" A\n SG_ T : 8|8@1+ (1,0) [0|0] "" A\n' +
        'BA_DEF_ SG_ "GenSigStartValue" INT 0 255;\nBA_ "GenSigStartValue" SG_ 1 S 7;\n',
    );
    assert.equal(Buffer.from(encodeMessage(db, db.messages[0], {})).toString("hex"), "0700");
  });

  it("floating_point.dbc: IEEE float64 and float32 (SIG_VALTYPE_)", () => {
    const db = load("floating_point.dbc");
    const d = new Decoder(db);
    assert.deepEqual(d.decode(frame(1024, "000000000000f83f")).signals, { Signal1: 1.5 });
    // float32 -2.5 = 0xC0200000, 100.25 = 0x42C88000, little-endian
    assert.deepEqual(d.decode(frame(1025, "000020c00080c842")).signals, { Signal1: -2.5, Signal2: 100.25 });
    assert.deepEqual(encodeMessage(db, message(db, "Message2"), { Signal1: -2.5, Signal2: 100.25 }), hex("000020c00080c842"));
  });

  it("signed.dbc: 64-bit values are exact (BigInt beyond 2^53, number below)", () => {
    const d = new Decoder(load("signed.dbc"));
    assert.deepEqual(d.decode(frame(3, "8000000000000000")).signals, { s64big: -(2n ** 63n) });
    assert.deepEqual(d.decode(frame(3, "ffffffffffffffff")).signals, { s64big: -1 });
    assert.deepEqual(d.decode(frame(2, "0100000000000080")).signals, { s64: -(2n ** 63n) + 1n });
    assert.deepEqual(d.decode(frame(6, "ffffffffffffff7f")).signals, { s63: -1 });
    assert.deepEqual(d.decode(frame(4, "8000000080000000")).signals, { s33big: -4294967295 });
  });

  it("unsigned 64-bit: 2^64-1 decodes exactly and encodes back", () => {
    const db = parseDbc('BU_: A\nBO_ 1 M: 8 A\n SG_ U : 0|64@1+ (1,0) [0|0] "" A\n');
    assert.deepEqual(new Decoder(db).decode(frame(1, "ffffffffffffffff")).signals, { U: 2n ** 64n - 1n });
    assert.deepEqual(encodeMessage(db, db.messages[0], { U: 2n ** 64n - 2n }), hex("feffffffffffffff"));
    assert.deepEqual(encodeMessage(db, db.messages[0], { U: "18446744073709551614" }), hex("feffffffffffffff"));
  });

  it("value tables are looked up by RAW value (factor 2: raw 1 is 'One', not physical 2 'Two')", () => {
    const db = parseDbc('BU_: A\nBO_ 1 M: 1 A\n SG_ S : 0|8@1+ (2,0) [0|0] "" A\nVAL_ 1 S 1 "One" 2 "Two" ;\n');
    const d = new Decoder(db);
    assert.deepEqual(d.decode(frame(1, "01"), { choices: true }).signals, { S: "One" });
    assert.deepEqual(d.decode(frame(1, "05"), { choices: true }).signals, { S: 10 });
    assert.deepEqual(encodeMessage(db, db.messages[0], { S: "Two" }), hex("02"));
  });

  it("choices.dbc: negative raw values in VAL_", () => {
    const db = load("choices.dbc");
    const d = new Decoder(db);
    const m = db.messages[0];
    const s = m.signals.find((x) => x.choices && [...x.choices.keys()].some((k) => k < 0))!;
    const [raw, label] = [...s.choices!].find(([k]) => k < 0)!;
    const data = encodeMessage(db, m, { [s.name]: label });
    assert.equal(d.decode(frame(m.id, Buffer.from(data).toString("hex"), { ext: m.ext }), { choices: true }).signals[s.name], label);
    assert.equal(d.decode(frame(m.id, Buffer.from(data).toString("hex"), { ext: m.ext })).signals[s.name], raw * s.factor + s.offset);
  });

  it("a long name \"__proto__\" is an ordinary signal name", () => {
    const db = parseDbc(
      'BU_: A\nBO_ 1 M: 2 A\n SG_ P : 0|8@1+ (1,0) [0|0] "" A\n SG_ Q m1 : 8|8@1+ (1,0) [0|0] "" A\n SG_ X M : 8|1@1+ (1,0) [0|0] "" A\n' +
        'BA_DEF_ SG_ "SystemSignalLongSymbol" STRING;\nBA_ "SystemSignalLongSymbol" SG_ 1 P "__proto__";\n',
    );
    const r = new Decoder(db).decode(frame(1, "0501"));
    assert.equal(Object.getPrototypeOf(r.signals), Object.prototype);
    assert.deepEqual(Object.keys(r.signals), ["__proto__", "Q", "X"]);
    assert.equal(Object.getOwnPropertyDescriptor(r.signals, "__proto__")?.value, 5);
  });

  describe("multiplexing: only present signals", () => {
    const db = load("issue_184_extended_mux_cascaded.dbc");
    const d = new Decoder(db);
    const id = message(db, "ext_MUX_cascaded").id;
    it("cascaded (mNM): MUX_A=2 selects the second switch, which selects muxed_B_1", () => {
      assert.deepEqual(d.decode(frame(id, "02010005", { ext: true, data: hex("0201050000000000") })).signals, {
        muxed_B_1: 0,
        muxed_A_2_MUX_B: 1,
        MUX_A: 2,
      });
    });
    it("MUX_A=1 selects muxed_A_1 only", () => {
      assert.deepEqual(d.decode(frame(id, "0107000000000000", { ext: true })).signals, { muxed_A_1: 7, MUX_A: 1 });
    });
    it("a switch value no signal uses: the switch alone, no error", () => {
      assert.deepEqual(d.decode(frame(id, "0907000000000000", { ext: true })), { message: "ext_MUX_cascaded", signals: { MUX_A: 9 } });
    });
    it("SG_MUL_VAL_ ranges (issue_184_extended_mux_multiple_values.dbc): 0 and 3-5 select muxed_0_3_4_5", () => {
      const mv = load("issue_184_extended_mux_multiple_values.dbc");
      const dm = new Decoder(mv);
      const mid = mv.messages[0].id;
      for (const v of [0, 3, 4, 5]) assert.ok("muxed_0_3_4_5" in dm.decode(frame(mid, `0${v}11000000000000`, { ext: true })).signals, `MUX=${v}`);
      assert.ok(!("muxed_0_3_4_5" in dm.decode(frame(mid, "0611000000000000", { ext: true })).signals));
    });
    it("encode refuses a signal its switch does not select", () => {
      assert.throws(() => encodeMessage(db, message(db, "ext_MUX_cascaded"), { MUX_A: 1, muxed_B_0: 3 }), /not present .* when muxed_A_2_MUX_B=absent|not present/);
    });
  });

  describe("frame rules (docs/dbc.md)", () => {
    it("a frame shorter than its message: error, with the signals that fit", () => {
      const r = dec.decode(frame(0x1f0, "c006"));
      assert.deepEqual(r.signals, { AverageRadius: 3.2, Enable: 1 });
      assert.match(r.error ?? "", /frame has 2 bytes, ExampleMessage has 8: 1 signal\(s\) not decoded/);
    });
    it("a frame longer than its message: extra bytes ignored, no error", () => {
      assert.deepEqual(dec.decode(frame(0x1f0, "c006e00000000000ffffffff", { fd: true })).error, undefined);
    });
    it("unknown ID: message null, no signals, no error", () => {
      assert.deepEqual(dec.decode(frame(0x123, "00")), { message: null, signals: {} });
    });
    it("the same ID as a 29-bit frame is another message", () => {
      assert.equal(dec.decode(frame(0x1f0, "c006e00000000000", { ext: true })).message, null);
    });
    it("remote and error frames: an error, never an exception", () => {
      assert.match(dec.decode(frame(0x1f0, "", { rtr: true })).error ?? "", /remote frame/);
      assert.match(dec.decode(frame(0x80, "0000000000000000", { err: true })).error ?? "", /error frame/);
    });
    it("issue_199.dbc: an ID above 0x7FF without the extended flag matches 29-bit frames", () => {
      const d = new Decoder(load("issue_199.dbc"));
      assert.equal(d.decode(makeFrame({ id: 274923520, ext: true, data: hex("01") })).message, "DriverDoorStatus");
    });
    it("foobar.dbc: a 64-byte CAN FD message decodes", () => {
      const db = load("foobar.dbc");
      const m = db.messages.find((x) => x.length === 64)!;
      const r = new Decoder(db).decode(makeFrame({ id: m.id, ext: m.ext, fd: true, data: new Uint8Array(64).fill(0x11) }));
      assert.equal(r.message, m.name);
      assert.equal(r.error, undefined);
      assert.ok(Object.keys(r.signals).length > 0);
    });
  });

  describe("J1939", () => {
    it("PGN, priority, source and destination from an identifier", () => {
      assert.deepEqual(parseJ1939Id(0x0cf00400), { priority: 3, pgn: 61444, source: 0 });
      assert.deepEqual(parseJ1939Id(0x18eaff21), { priority: 6, pgn: 59904, source: 0x21, destination: 0xff });
      assert.equal(j1939Pgn(0x18fef100), 0xfef1);
      assert.equal(makeJ1939Id(6, 0xfef1, 0), 0x18fef100);
      assert.equal(makeJ1939Id(6, 59904, 0x21, 0xff), 0x18eaff21);
    });
    it("j1939.dbc: a frame from another source address matches its message by PGN", () => {
      const db = load("j1939.dbc");
      const m1 = message(db, "Message1");
      const other = (m1.id & ~0xffff) | 0x5522; // same PGN (PDU1), destination 0x55, source 0x22
      const d = new Decoder(db);
      assert.equal(d.decode(makeFrame({ id: other, ext: true, data: new Uint8Array(8) })).message, "Message1");
      assert.equal(d.decode(makeFrame({ id: other ^ 0x10000, ext: true, data: new Uint8Array(8) })).message, null);
    });
  });
});
