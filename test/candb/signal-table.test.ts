/**
 * The gateway signal table (can-db/signal-table.ts): rows from DBC signals, exact integer scaling, refusals, the
 * table hash; and, over every fixture DBC, that a row extracts (by an independent bit walk over the DBC numbering)
 * and scales to exactly what can-db's decoder reports.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import fc from "fast-check";
import { parseDbc } from "../../can-db/dbc-parser";
import { loadDbcFile } from "../../can-db/load";
import { Decoder } from "../../can-db/decoder";
import { frameKey } from "../../can-db/frame-key";
import type { SignalDef } from "../../can-db/model";
import {
  COL,
  exactScaling,
  physicalValue,
  rawDeadband,
  rowProblem,
  signalRow,
  tableHash,
  type SignalRow,
} from "../../can-db/signal-table";
import { DBC_DIR, dbcFixtures, seededRandom } from "./helpers";

function db(signals: string, extra = "") {
  return parseDbc(`VERSION ""\nBU_: ECU\nBO_ 291 M: 8 ECU\n${signals}\n${extra}\n`);
}
const sig = (line: string, extra = ""): SignalDef => db(line, extra).messages[0].signals[0];
const row = (line: string, rules = {}, extra = ""): SignalRow => {
  const r = signalRow(sig(line, extra), 0x123, rules);
  assert.ok(r.row, r.refusal);
  return r.row;
};
const refusal = (line: string, extra = ""): string => {
  const r = signalRow(sig(line, extra), 0x123);
  assert.ok(r.refusal, `expected a refusal, got ${JSON.stringify(r.row)}`);
  return r.refusal;
};

/** The raw value of a row from a payload, walking bits as docs/dbc.md numbers them (independent of signal-layout.ts). */
function extract(r: readonly number[], data: Uint8Array): number | undefined {
  const [, start, len, flags] = r;
  let value = 0n;
  let pos = start;
  for (let j = 0; j < len; j++) {
    // Intel: raw bit j at payload bit start + j. Motorola: MSB first, down within a byte, then bit 7 of the next byte.
    const bitPos = flags & 1 ? pos : start + j;
    const byte = bitPos >> 3;
    if (byte >= data.length) return undefined;
    const bit = BigInt((data[byte] >> (bitPos & 7)) & 1);
    if (flags & 1) {
      value = (value << 1n) | bit;
      pos = (pos & 7) === 0 ? pos + 15 : pos - 1;
    } else value |= bit << BigInt(j);
  }
  if (flags & 2 && value >> BigInt(len - 1)) value -= 1n << BigInt(len);
  return Number(value);
}

describe("signal table", () => {
  it("an Intel unsigned signal with factor 0.1 and offset -40: the DBC's fields and (raw * 1 - 400) / 10", () => {
    assert.deepEqual(row(` SG_ T : 8|16@1+ (0.1,-40) [0|0] "C" ECU`), [0x123, 8, 16, 0, 1, 10, -400, 0, 0, 0, 0]);
  });

  it("a Motorola signed signal with onChange and rules: flags 1|2|4 and the rules in order", () => {
    const r = row(` SG_ S : 7|12@0- (0.05,0) [0|0] "" ECU`, { onChange: true, minInt: 100, heartbeat: 1000, deadband: 3, relPm: 20 });
    assert.deepEqual(r, [0x123, 7, 12, 7, 1, 20, 0, 100, 1000, 3, 20]);
  });

  it("finds the exact fractions of decimal factors and offsets and puts them over one denominator", () => {
    const cases: Array<[number, number, [number, number, number]]> = [
      [0.0625, 0, [1, 16, 0]],
      [1e-3, 0, [1, 1000, 0]],
      [0.1, 0.05, [2, 20, 1]],
      [-0.5, 12.25, [-2, 4, 49]],
      [100, -3e6, [100, 1, -3000000]],
      [0.01, -327.68, [1, 100, -32768]],
      [1 / 3, 0, [1, 3, 0]], // 0.3333333333333333: not a decimal with a small denominator: the continued fraction finds 1/3
    ];
    // a double with no short decimal but a fraction that reads back as exactly it is accepted: the decoder's value is the same
    const pi = exactScaling(Math.PI, 0);
    assert.ok(typeof pi !== "string" && pi.fNum / pi.fDen === Math.PI && pi.fDen < 2 ** 31, JSON.stringify(pi));
    for (const [factor, offset, [fNum, fDen, oNum]] of cases) assert.deepEqual(exactScaling(factor, offset), { fNum, fDen, oNum }, `${factor}, ${offset}`);
  });

  it("refuses what the gateway cannot extract exactly, naming the signal and the reason", () => {
    assert.match(refusal(` SG_ Wide : 0|33@1+ (1,0) [0|0] "" ECU`), /^signal Wide: .*33 bits long.*at most 32/);
    assert.match(refusal(` SG_ F : 0|32@1- (1,0) [0|0] "" ECU`, `SIG_VALTYPE_ 291 F : 1;`), /^signal F: .*IEEE float32.*SIG_VALTYPE_/);
    const mux = db(` SG_ Sw M : 0|8@1+ (1,0) [0|0] "" ECU\n SG_ A m1 : 8|8@1+ (1,0) [0|0] "" ECU`).messages[0];
    assert.ok(signalRow(mux.signals[0], 0x123).row, "the switch itself is in every frame");
    assert.match(signalRow(mux.signals[1], 0x123).refusal!, /^signal A: it is multiplexed/);
    assert.match(refusal(` SG_ Z : 0|8@1+ (123456.789012345,0) [0|0] "" ECU`), /^signal Z: factor 123456.789012345 and offset 0 need .*beyond the 32-bit integers/);
    assert.match(refusal(` SG_ Tiny : 0|8@1+ (1e-12,0) [0|0] "" ECU`), /^signal Tiny: factor 1e-12 is not an exact fraction with a denominator below 2\^31/);
    assert.match(refusal(` SG_ Big : 0|8@1+ (1,3000000000) [0|0] "" ECU`), /^signal Big: .*beyond the 32-bit integers/);
    assert.match(refusal(` SG_ Mix : 0|8@1+ (1e-9,3) [0|0] "" ECU`), /^signal Mix: .*\(raw \* 1 \+ 3000000000\) \/ 1000000000, beyond/);
    assert.match(signalRow(sig(` SG_ R : 0|8@1+ (1,0) [0|0] "" ECU`), 0x123, { minInt: -1 }).refusal!, /^signal R: minInt must be an integer/);
    assert.match(signalRow(sig(` SG_ R : 0|8@1+ (1,0) [0|0] "" ECU`), 0x123, { deadband: 1.5 }).refusal!, /^signal R: deadband must be an integer/);
  });

  it("rowProblem accepts every row signalRow makes and names what is wrong with a bad one", () => {
    const good = row(` SG_ T : 8|16@1+ (0.1,-40) [0|0] "C" ECU`);
    assert.equal(rowProblem(good), undefined);
    const bad = (col: number, v: number) => rowProblem(good.map((x, i) => (i === col ? v : x)));
    assert.match(bad(COL.len, 33)!, /len 33/);
    assert.match(bad(COL.len, 0)!, /len 0/);
    assert.match(bad(COL.flags, 8)!, /reserved bits/);
    assert.match(bad(COL.fDen, 0)!, /fDen 0/);
    assert.match(bad(COL.start, 500)!, /past 64 bytes/);
    // Motorola: the MSB at bit 7 of byte 63, 16 bits walk on into byte 64
    assert.match(rowProblem([1, 511, 16, 1, 1, 1, 0, 0, 0, 0, 0])!, /past 64 bytes/);
    assert.equal(rowProblem([1, 511, 8, 1, 1, 1, 0, 0, 0, 0, 0]), undefined);
    assert.match(bad(COL.relPm, -1)!, /relPm -1/);
    assert.match(rowProblem(good.slice(1))!, /11 integers, got 10/);
  });

  it("hashes the table with FNV-1a over 4-byte little-endian integers (vectors computed independently), empty = 0", () => {
    assert.equal(tableHash([]), 0);
    assert.equal(tableHash([[0x123, 8, 16, 4, 1, 10, -400, 100, 1000, 5, 20]]), 0x7ff0c25a);
    assert.equal(tableHash([[0x80000123, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0], [1, 2, 3, 1, -1, 3, -7, 0, 0, 0, 0]]), 0x26c81e24);
  });

  it("the hash equals FNV-1a over the bytes Buffer writes, for any table (property)", () => {
    const int = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 0xffffffff }));
    fc.assert(
      fc.property(fc.array(fc.array(int, { minLength: 11, maxLength: 11 }), { minLength: 1, maxLength: 8 }), (rows) => {
        const buf = Buffer.alloc(rows.length * 44);
        rows.flat().forEach((v, i) => (v < 0 ? buf.writeInt32LE(v, i * 4) : buf.writeUInt32LE(v, i * 4)));
        let h = 0x811c9dc5;
        for (const b of buf) h = Number((BigInt((h ^ b) >>> 0) * 0x01000193n) % 2n ** 32n);
        assert.equal(tableHash(rows), h);
      }),
    );
  });

  it("converts a physical deadband to the raw one exactly: |Δraw| > raw deadband iff |Δraw * factor| > physical", () => {
    assert.equal(rawDeadband(0.5, { fNum: 1, fDen: 10, oNum: 0 }), 5);
    assert.equal(rawDeadband(0.55, { fNum: 1, fDen: 10, oNum: 0 }), 5);
    assert.equal(rawDeadband(0.3, { fNum: 1, fDen: 20, oNum: 0 }), 6);
    assert.equal(rawDeadband(2, { fNum: -3, fDen: 1, oNum: 0 }), 0);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 100000 }), fc.integer({ min: 0, max: 1000 }), (num, digits, dPhys, dRaw) => {
        const factor = num / 10 ** digits;
        const s = exactScaling(factor, 0);
        if (typeof s === "string") return;
        const physical = dPhys / 100;
        const raw = rawDeadband(physical, s)!;
        // in exact integers: |Δraw| * fNum / fDen > dPhys / 100  <=>  |Δraw| * fNum * 100 > dPhys * fDen
        assert.equal(dRaw > raw, dRaw * s.fNum * 100 > dPhys * s.fDen, `factor ${factor} physical ${physical} raw ${raw} dRaw ${dRaw}`);
      }),
    );
  });

  it("over every fixture DBC: each accepted row extracts and scales to can-db's decode of random frames", function () {
    this.timeout(120_000);
    const random = seededRandom(14);
    let checked = 0;
    let refused = 0;
    for (const file of dbcFixtures()) {
      const database = loadDbcFile(resolve(DBC_DIR, file));
      const decoder = new Decoder(database);
      for (const m of database.messages) {
        if (m.pseudo) continue;
        const key = frameKey(m.id, m.ext);
        for (const s of m.signals) {
          const r = signalRow(s, key);
          if (!r.row) {
            refused++;
            assert.match(r.refusal, new RegExp(`^signal ${s.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
            continue;
          }
          assert.equal(rowProblem(r.row), undefined, `${file} ${m.name}.${s.name}`);
          for (let n = 0; n < 8; n++) {
            const data = Uint8Array.from({ length: m.length }, () => Math.floor(random() * 256));
            const decoded = decoder.decode({ id: m.id, ext: m.ext, rtr: false, fd: m.fd, brs: false, esi: false, err: false, data });
            const expected = decoded.signals[s.name];
            if (expected === undefined) continue; // the decoder could not place it (e.g. a multiplexer switch's peer); nothing to compare
            const raw = extract(r.row, data);
            assert.notEqual(raw, undefined, `${file} ${m.name}.${s.name}: row runs past the frame`);
            assert.equal(physicalValue(r.row, raw!), Number(expected), `${file} ${m.name}.${s.name} data ${Buffer.from(data).toString("hex")}`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked > 1000, `compared ${checked} values`);
    assert.ok(refused > 0, "the fixtures include signals the gateway refuses");
  });
});
