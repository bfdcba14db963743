/**
 * `P/signals` batches on the host (host/gateway/signals.ts): a hand-encoded vector, encoder <-> decoder over random
 * tables and samples (fast-check), every kind of malformed batch refused by (boot, seq) with its reason and never a
 * crash (mutated and truncated payloads included), and the table loader with its hash check.
 */
import { strict as assert } from "node:assert";
import { resolve } from "node:path";
import { encode } from "cbor-x";
import fc from "fast-check";
import { decodeSignalBatch, encodeSignalBatch, encodeSignalRecords, parseSignalTable, SignalBatchError, SignalTable, type SignalSample } from "../../host/gateway/signals";
import { tableHash } from "../../can-db/signal-table";
import { loadDbcFile } from "../../can-db/load";
import { loadPolicyFile } from "../../can-db/policy-file";
import { compilePolicy } from "../../can-db/policy";
import { settingsEnv } from "../../cli/commands/policy";

const ROOT = resolve(__dirname, "../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/policy");

// [key, start, len, flags, fNum, fDen, oNum, minInt, heartbeat, deadband, relPm]
const U16 = [0x343, 0, 16, 0, 1, 64, 0, 0, 0, 0, 0];
const S12 = [0x80000123, 7, 12, 3, 1, 10, -400, 0, 0, 0, 0];
const TABLE = [U16, S12];

function batch(fields: Record<string, unknown>): Uint8Array {
  return encode({ v: 1, b: 0xabc, s: 7, t: 1000, h: tableHash(TABLE), n: 0, g: Buffer.alloc(0), ...fields });
}

function refused(payload: Uint8Array, pattern: RegExp, table: number[][] = TABLE): SignalBatchError {
  let err: unknown;
  try {
    decodeSignalBatch(payload, table);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SignalBatchError, `expected a SignalBatchError, got ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

/** A random valid table and samples for it, in time order. */
const tableAndSamples = fc
  .array(fc.record({ len: fc.integer({ min: 1, max: 32 }), signed: fc.boolean(), key: fc.integer({ min: 0, max: 0x7ff }) }), { minLength: 1, maxLength: 64 })
  .chain((defs) => {
    const rows = defs.map((d) => [d.key, 0, d.len, d.signed ? 2 : 0, 1, 1, 0, 0, 0, 0, 0]);
    const sample = fc.integer({ min: 0, max: rows.length - 1 }).chain((i) => {
      const { len, signed } = defs[i];
      const raw = signed ? fc.integer({ min: -(2 ** (len - 1)), max: 2 ** (len - 1) - 1 }) : fc.integer({ min: 0, max: 2 ** len - 1 });
      return fc.tuple(fc.constant(i), raw, fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 2 ** 31 })));
    });
    return fc.tuple(
      fc.constant(rows),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.array(sample, { maxLength: 200 }).map((list) => {
        let t = 0;
        return list.map(([i, raw, dt]): SignalSample => ({ i, raw, t: (t += dt) }));
      }),
    );
  });

describe("gateway: P/signals batches", () => {
  it("decodes a hand-encoded batch: heads, one time delta, an unsigned and a zigzag value; the encoder writes the same bytes", () => {
    // head 0 (i 0, no time), 300 = AC 02 | head 2 (i 1), zigzag(-5) = 9 | head 1 (i 0, time), dt 10, 301 = AD 02
    const g = Buffer.from("00ac02020901" + "0aad02", "hex");
    const decoded = decodeSignalBatch(batch({ t: 1000, n: 3, g }), TABLE);
    const samples = [
      { i: 0, t: 1000, raw: 300 },
      { i: 1, t: 1000, raw: -5 },
      { i: 0, t: 1010, raw: 301 },
    ];
    assert.deepEqual(decoded, { boot: 0xabc, seq: 7, baseTime: 1000, hash: tableHash(TABLE), samples, recordBytes: 9 });
    assert.deepEqual(Buffer.from(encodeSignalRecords(samples, TABLE)), g);
    assert.deepEqual(Buffer.from(encodeSignalBatch(0xabc, 7, samples, TABLE)), Buffer.from(batch({ t: 1000, n: 3, g })));
    const t = new SignalTable(TABLE);
    assert.equal(t.physical(0, 300), 300 / 64);
    assert.equal(t.physical(1, -5), -40.5);
    assert.equal(t.name(1), "#1 0x00000123 7|12");
  });

  it("encoder -> decoder gives the samples back, for any table and samples (property)", () => {
    fc.assert(
      fc.property(tableAndSamples, ([rows, boot, samples]) => {
        const payload = encodeSignalBatch(boot, 3, samples, rows);
        const d = decodeSignalBatch(payload, rows);
        assert.equal(d.boot, boot);
        assert.equal(d.seq, 3);
        assert.deepEqual(d.samples, samples);
      }),
      { numRuns: 300 },
    );
  });

  it("a mutated or truncated batch is decoded or refused with a SignalBatchError, never anything else (property)", () => {
    fc.assert(
      fc.property(tableAndSamples, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), ([rows, boot, samples], flips, cut) => {
        const payload = Uint8Array.from(encodeSignalBatch(boot, 1, samples, rows));
        for (const [pos, b] of flips) payload[pos % payload.length] = b;
        const bad = flips.length ? payload : payload.subarray(0, cut % payload.length);
        try {
          const d = decodeSignalBatch(bad, rows);
          for (const s of d.samples) assert.ok(s.i < rows.length);
        } catch (e) {
          assert.ok(e instanceof SignalBatchError, `${String(e)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("refuses malformed batches by boot and seq, saying why", () => {
    refused(Buffer.from([0xff, 0x00]), /^signal batch: not CBOR/);
    refused(encode([1, 2]), /^signal batch: not a CBOR map/);
    refused(batch({ v: 2 }), /version 2, this host reads version 1/);
    const noSeq = refused(encode({ v: 1, b: 1 }), /^signal batch: 's' is not an unsigned integer/);
    assert.equal(noSeq.boot, 1);
    refused(encode({ v: 1, b: 0xabc, s: 7, h: 0, t: 0, n: 0, g: Buffer.alloc(0) }), /^signal batch \(boot abc, seq 7\): keys are v,b,s,h,t,n,g, expected exactly v,b,s,t,h,n,g/);
    refused(batch({ x: 1 }), /expected exactly v,b,s,t,h,n,g/);
    refused(batch({ g: "00" }), /'g' is not a byte string/);
    const hash = refused(batch({ h: 1234 }), /the batch has signal table hash 0x000004d2, the table here hashes to 0x[0-9a-f]{8}: the gateway runs a different sigTable/);
    assert.deepEqual([hash.boot, hash.seq, hash.reason], [0xabc, 7, "hash"]);
    refused(batch({ n: 1, g: Buffer.from([4, 0]) }), /sample 0: signal index 2, the table has 2 rows/);
    refused(batch({ n: 1, g: Buffer.from([1, 0x80]) }), /sample records end inside a time delta/);
    refused(batch({ n: 1, g: Buffer.from([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0]) }), /a value is longer than 5 bytes/);
    refused(batch({ n: 1, g: Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0x7f]) }), /a value exceeds 32 bits/);
    refused(batch({ n: 1, g: Buffer.from([0, 0x80, 0x80, 0x04]) }), /sample 0: value 65536 does not fit signal 0's 16 bits/);
    refused(batch({ n: 1, g: Buffer.from([2, 0x80, 0x20]) }), /sample 0: value 2048 does not fit signal 1's 12 signed bits/);
    refused(batch({ n: 1, g: Buffer.from([0, 1, 0, 1]) }), /'n' says 1 samples, but 2 record bytes follow them/);
    refused(batch({ n: 3, g: Buffer.from([0, 1, 0, 1]) }), /'n' says 3 samples, more than 4 record bytes can hold/);
    refused(batch({ n: 2, g: Buffer.from([0, 1, 2, 0x80]) }), /sample records end inside a value/);
  });

  it("loads the table from vgw policy output (env and JSON) with names from the policy, and checks the gateway's sh", () => {
    const compiled = compilePolicy(loadPolicyFile(resolve(FIXTURES, "abs.signals.policy.yaml")), loadDbcFile(resolve(FIXTURES, "abs.dbc")));
    const fromPolicy = SignalTable.fromPolicy(compiled);
    const fromEnv = parseSignalTable(settingsEnv(compiled.settings, "test"), "abs.env");
    const fromJson = parseSignalTable(JSON.stringify(compiled.settings), "abs.json");
    for (const t of [fromEnv, fromJson]) {
      assert.deepEqual(t.rows, fromPolicy.rows);
      assert.deepEqual(t.sigOnly, [0x343]);
      assert.equal(t.hash, compiled.signalHash);
    }
    assert.equal(fromPolicy.name(0), "BREMSE_33.whlspeed_FL");
    assert.equal(fromPolicy.info[0]?.unit, "m/s");
    fromEnv.checkHash(compiled.signalHash, "gateway gw1");
    assert.throws(() => fromEnv.checkHash(compiled.signalHash ^ 1, "gateway gw1"), /^VgwError: gateway gw1 has signal table hash 0x[0-9a-f]{8}, the table here hashes to/);
    assert.throws(() => parseSignalTable("canFilters=[]\n", "x.env"), /x\.env: no sigTable/);
    assert.throws(() => parseSignalTable("sigTable=[[1,2]\n", "x.env"), /x\.env:1: sigTable: not JSON/);
    assert.throws(() => parseSignalTable('{"sigTable":[[1,0,33,0,1,1,0,0,0,0,0]]}', "x.json"), /x\.json: sigTable row 0: len 33 is not 1\.\.32/);
  });
});
