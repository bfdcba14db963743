/**
 * Property tests (fast-check): for random signal layouts (Intel and Motorola, 1..64 bits, signed, float32/64,
 * scaled), encoding values and decoding the bytes gives the values back; and decoding random payloads then encoding
 * the decoded values gives the same bits back. The encoder is plain BigInt code and the decoder generated JavaScript,
 * sharing only the bit layout, so these catch disagreements between the two.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseDbc } from "../../can-db/dbc-parser";
import { Decoder } from "../../can-db/decoder";
import { encodeMessage } from "../../can-db/encoder";
import { signalLayout } from "../../can-db/signal-layout";
import type { Frame } from "../../frame/frame";

interface SigSpec {
  /** First bit in the signal's own linear order (Intel: LSB-first bit index; Motorola: MSB-first bit index). */
  at: number;
  length: number;
  motorola: boolean;
  signed: boolean;
  float: boolean;
  factor: number;
  offset: number;
}

/** Motorola start bit (sawtooth MSB position) of the bit at MSB-first linear index b. */
function sawtooth(b: number): number {
  return (b >> 3) * 8 + 7 - (b & 7);
}

function dbcText(specs: SigSpec[], bytes: number): string {
  const lines = [`BU_: A`, `BO_ 1 M: ${bytes} A`];
  specs.forEach((s, i) => {
    const start = s.motorola ? sawtooth(s.at) : s.at;
    lines.push(` SG_ S${i} : ${start}|${s.length}@${s.motorola ? 0 : 1}${s.signed ? "-" : "+"} (${s.factor},${s.offset}) [0|0] "" A`);
  });
  specs.forEach((s, i) => {
    if (s.float) lines.push(`SIG_VALTYPE_ 1 S${i} : ${s.length === 32 ? 1 : 2};`);
  });
  return lines.join("\n") + "\n";
}

const frameOf = (data: Uint8Array): Frame => ({ id: 1, ext: false, rtr: false, fd: data.length > 8, brs: false, esi: false, err: false, data });

/** Disjoint signals: cut points over 8*bytes bits in one linear order (all Intel or all Motorola). */
const layoutArb = fc
  .record({
    bytes: fc.constantFrom(1, 2, 4, 8, 8, 8, 12, 64),
    motorola: fc.boolean(),
    cuts: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
    signed: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    float: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    scale: fc.array(fc.constantFrom<[number, number]>([1, 0], [1, 0], [0.5, 0], [0.1, -40], [-2, 100], [0.001, 0], [3, -7]), { minLength: 8, maxLength: 8 }),
    gap: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 8, maxLength: 8 }),
  })
  .map(({ bytes, motorola, cuts, signed, float, scale, gap }) => {
    const specs: SigSpec[] = [];
    let at = 0;
    cuts.forEach((len, i) => {
      at += gap[i];
      const length = Math.min(len, 64);
      if (at + length > bytes * 8) return;
      const isFloat = float[i] && (length === 32 || length === 64);
      specs.push({
        at,
        length,
        motorola,
        signed: signed[i],
        float: isFloat,
        factor: isFloat || length > 52 ? 1 : scale[i][0],
        offset: isFloat || length > 52 ? 0 : scale[i][1],
      });
      at += length;
    });
    return { bytes, specs };
  })
  .filter(({ specs }) => specs.length > 0);

describe("can-db properties (fast-check)", function () {
  this.timeout(60_000);

  it("encode then decode gives the values back", () => {
    fc.assert(
      fc.property(layoutArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }), ({ bytes, specs }, picks) => {
        const db = parseDbc(dbcText(specs, bytes));
        const m = db.messages[0];
        const values: Record<string, number | bigint> = {};
        specs.forEach((s, i) => {
          if (s.float) {
            // Values a float32 holds exactly, so the comparison can be exact.
            values[`S${i}`] = Math.fround((picks[i] - 0.5) * 1e6);
            return;
          }
          const L = BigInt(s.length);
          const lo = s.signed ? -(1n << (L - 1n)) : 0n;
          const span = (1n << L) - 1n;
          const raw = lo + (BigInt(Math.floor(picks[i] * 2 ** 32)) * span) / 2n ** 32n;
          values[`S${i}`] = s.factor === 1 && s.offset === 0 ? raw : Number(raw) * s.factor + s.offset;
        });
        const data = encodeMessage(db, m, values);
        assert.equal(data.length, bytes);
        const out = new Decoder(db).decode(frameOf(data));
        assert.equal(out.error, undefined);
        specs.forEach((s, i) => {
          const want = values[`S${i}`];
          const got = out.signals[`S${i}`];
          if (typeof want === "bigint") assert.equal(BigInt(got as number | bigint), want, `S${i}`);
          else assert.ok(Math.abs((got as number) - want) <= Math.abs(s.factor) * 1e-6 + 1e-9 * Math.abs(want), `S${i}: ${got} vs ${want}`);
        });
      }),
      { numRuns: 400, seed: 7 },
    );
  });

  it("decode then encode gives the same bits back (every payload, both byte orders)", () => {
    fc.assert(
      fc.property(layoutArb, fc.uint8Array({ minLength: 64, maxLength: 64 }), ({ bytes, specs }, payload) => {
        const intOnly = specs.map((s) => ({ ...s, float: false, factor: 1, offset: 0 }));
        const db = parseDbc(dbcText(intOnly, bytes));
        const data = payload.slice(0, bytes);
        const decoded = new Decoder(db).decode(frameOf(data));
        const again = encodeMessage(db, db.messages[0], decoded.signals as Record<string, number | bigint>);
        // Only the bits some signal covers are defined by the values.
        const mask = new Uint8Array(bytes);
        for (const s of db.messages[0].signals) {
          for (const r of signalLayout(s)!.runs) mask[r.byte] |= ((1 << r.width) - 1) << r.shift;
        }
        for (let i = 0; i < bytes; i++) assert.equal(again[i] & mask[i], data[i] & mask[i], `byte ${i}`);
      }),
      { numRuns: 400, seed: 11 },
    );
  });
});
