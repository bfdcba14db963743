/**
 * The embedded store's own layout (host/ingest/duckdb-store.ts): frames stored as (batch number, frame number, ms to
 * the batch's end, id, flags, dlc, data) must read back through plain SQL on the `frames` view and through export
 * exactly as sent, across a close and reopen (the numbers go on where the file left them), across the wrap of the
 * 32-bit frame number, and for every kind of frame. A file in the older layout is refused with a clear error, and
 * a batch too long for the 32-bit time distance is rejected, never stored wrong.
 */
import { strict as assert } from "assert";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { makeFrame, type Frame } from "../../frame/frame";
import { encodeBatch } from "../../host/gateway/uplink";
import { batchFrames, toRow, type BatchRow } from "../../host/ingest/rows";
import { openStore, StoreError } from "../../host/ingest/store";
import { assertStoredOnce, batchesOf, candumpFrames, mixedFrames } from "./support";

const BOOT = 0x5eed0009;

function rowsOf(device: string, boot: number, frames: Frame[], size: number, receivedAt = Date.now()): BatchRow[] {
  return batchesOf(device, boot, frames, size).map((b) => {
    const r = toRow(b.topic, b.payload, receivedAt, "vgw");
    assert.equal(r.kind, "batch", JSON.stringify(r));
    return (r as { row: BatchRow }).row;
  });
}

/** Runs SQL on a closed store file, as a user would with DuckDB. */
async function query(file: string, sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRows();
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe("the embedded store's layout", function () {
  this.timeout(120_000);
  let tmp = "";
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "vgw-store-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("reads back every frame through export and the frames view after a reopen, duplicates kept once", async () => {
    const file = join(tmp, "reopen.duckdb");
    const mixed = rowsOf("gw1", BOOT, mixedFrames(600), 50, 1_700_000_000_000);
    const candump = rowsOf("gw2", BOOT + 1, await candumpFrames(), 200);
    let store = await openStore(file);
    await store.commit({ batches: [...mixed.slice(0, 7), ...candump.slice(0, 30)], statuses: [], rejects: [] });
    await store.close();
    store = await openStore(file);
    try {
      // batch 3 again (a redelivery after the restart): stored once, its numbers unused
      const r = await store.commit({ batches: [mixed[3], ...mixed.slice(7), ...candump.slice(30)], statuses: [], rejects: [] });
      assert.equal(r.duplicates.length, 1);
      assert.equal(r.stored.length, mixed.length - 7 + candump.length - 30);
      await assertStoredOnce(store, "gw1", mixed.flatMap((b) => batchFrames(b)));
      await assertStoredOnce(store, "gw2", candump.flatMap((b) => batchFrames(b)));
      assert.equal((await store.counts()).frames, 600 + candump.reduce((n, b) => n + b.count, 0));
    } finally {
      await store.close();
    }
    // Plain SQL: the view names device, boot, seq, idx and both times of every frame.
    const rows = await query(file, "SELECT seq, idx, t_ms, epoch_ms(time), id, flags, dlc, hex(data) FROM frames WHERE device = 'gw1' ORDER BY seq, idx");
    assert.equal(rows.length, 600);
    const sent = mixed.flatMap((b) => batchFrames(b).map((f, idx) => ({ b, f, idx })));
    rows.forEach(([seq, idx, tMs, timeMs, id, , dlc, hex], i) => {
      const { b, f, idx: k } = sent[i];
      assert.deepEqual([Number(seq), Number(idx), Number(tMs), Number(id)], [b.seq, k, Math.round((f.t ?? 0) * 1000), f.id], `row ${i}`);
      assert.equal(Number(timeMs), b.receivedAt - (Math.round((batchFrames(b)[b.count - 1].t ?? 0) * 1000) - Number(tMs)), `row ${i}: time`);
      assert.equal(dlc === null ? null : Number(dlc), f.rtr ? (f.dlc ?? f.data.length) : null, `row ${i}: dlc`);
      assert.equal(String(hex), Buffer.from(f.data).toString("hex").toUpperCase(), `row ${i}: data`);
    });
  });

  it("keeps each frame's place in its batch across the wrap of the 32-bit frame number", async () => {
    const file = join(tmp, "wrap.duckdb");
    let store = await openStore(file);
    await store.close();
    // A batch row that leaves the next frame number 100 short of 2^32 (as a store of 4 billion frames would).
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    await conn.run("INSERT INTO batches VALUES ('old', 1, 0, now(), 50, 0, 0, 41, 4294967146)");
    conn.closeSync();
    db.closeSync();
    const rows = rowsOf("gw1", BOOT, mixedFrames(400), 200);
    store = await openStore(file);
    try {
      await store.commit({ batches: rows, statuses: [], rejects: [] });
      await assertStoredOnce(store, "gw1", rows.flatMap((b) => batchFrames(b)));
    } finally {
      await store.close();
    }
    const n = await query(file, "SELECT min(n), max(n), count(*) FILTER (WHERE n < 100), max(batch) FROM frame_rows");
    assert.deepEqual(n[0].map(Number), [0, 4294967295, 100, 43], "frame numbers wrapped to 0; batch numbers went on from 41");
  });

  it("stores candump.log in a small file (32 KB blocks)", async () => {
    const file = join(tmp, "small.duckdb");
    const rows = rowsOf("gw1", BOOT, await candumpFrames(), 200);
    const store = await openStore(file);
    await store.commit({ batches: rows, statuses: [], rejects: [] });
    await store.close();
    // 256 KB blocks made this file 1,060,864 B (81.8 B/frame); docs/ingest.md has the figures of 32 KB blocks.
    assert.ok(statSync(file).size <= 256 * 1024, `${statSync(file).size} B`);
    assert.equal(Number((await query(file, "SELECT block_size FROM pragma_database_size()"))[0][0]), 32768);
  });

  it("refuses a file in the earlier layout with a clear error", async () => {
    const file = join(tmp, "old.duckdb");
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    await conn.run("CREATE TABLE frame_rows (device VARCHAR, boot BIGINT, seq BIGINT, idx USMALLINT, t_ms BIGINT, bus UTINYINT, id UINTEGER, flags UTINYINT, dlc UTINYINT, data BLOB)");
    conn.closeSync();
    db.closeSync();
    await assert.rejects(openStore(file), (e: unknown) => e instanceof StoreError && /earlier vgw/.test(e.message));
  });

  it("rejects a batch whose frames lie more than 2^32 ms apart", () => {
    const frames = [makeFrame({ id: 1, data: Uint8Array.of(1), t: 0 }), makeFrame({ id: 1, data: Uint8Array.of(2), t: 2 ** 32 / 1000 + 1 })];
    const r = toRow("vgw/gw1/frames", encodeBatch(1, 0, frames), Date.now(), "vgw");
    assert.equal(r.kind, "reject");
    assert.match((r as { row: { reason: string } }).row.reason, /more than 2\^32/);
  });
});
