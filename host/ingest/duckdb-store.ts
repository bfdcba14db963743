/**
 * The embedded store: one DuckDB file (open it with the `duckdb` CLI, Python's duckdb, or any tool that reads DuckDB).
 * Chosen over SQLite for its size: columnar storage with per-column compression keeps a frame in about 6 bytes on the
 * bundled candump trace repeated, where a SQLite row takes about 42 (README, Dependencies; docs/ingest.md, Storage).
 *
 * One process owns the file at a time (DuckDB locks it), so exactly-once needs no cross-process care here: each
 * commit is one transaction that inserts the batch keys (the primary key refuses one already stored; then
 * ON CONFLICT DO NOTHING sorts new from old) and appends the frames of the new keys only. Many workers need the
 * PostgreSQL store.
 */
import { DuckDBInstance, timestampTZValue, type DuckDBAppender, type DuckDBConnection } from "@duckdb/node-api";
import { FrameChunkWriter } from "./duckdb-chunks";
import { frameTimeMs, lastUptimeMs, type BatchRow, type SignalBatchRow } from "./rows";
import { GAPS_VIEW_SELECT, StoreError, type CommitResult, type ExportQuery, type Store, type StoreCounts, type StoredFrame, type StoredSample, type WriteUnit } from "./store";

const SCHEMA = `
-- A batch's key (device, boot, seq) once, with the number its frames carry (batch) and the store's number of its
-- first frame (first_n; a frame's place in its batch is its own number minus this one, modulo 2^32).
CREATE TABLE IF NOT EXISTS batches (
  device VARCHAR NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL, frames UINTEGER NOT NULL, record_bytes UINTEGER NOT NULL, last_t_ms BIGINT NOT NULL,
  batch UINTEGER NOT NULL, first_n UINTEGER NOT NULL,
  PRIMARY KEY (device, boot, seq));
-- The frames in seven narrow columns, in the order they were stored: the batch number (runs of one value), the
-- frame's number in the store (counts up by one), its distance in ms to its batch's last frame. DuckDB compresses
-- the first three to almost nothing (device, boot, seq, idx and t_ms in every row cost more bytes and append work,
-- idx alone 1 B per frame: docs/ingest.md, "Storage"). Query the frames view.
CREATE TABLE IF NOT EXISTS frame_rows (
  batch UINTEGER NOT NULL, n UINTEGER NOT NULL, dt UINTEGER NOT NULL,
  id UINTEGER NOT NULL, flags UTINYINT NOT NULL, dlc UTINYINT, data BLOB NOT NULL);
-- A frame's absolute time is its batch's arrival minus its distance from the batch's last frame (rows.ts), computed
-- here rather than stored: a timestamp per frame would be the largest column of the file.
CREATE OR REPLACE VIEW frames AS
  SELECT b.received_at - to_milliseconds(f.dt) AS time, b.device, b.boot, b.seq,
    ((f.n::BIGINT - b.first_n::BIGINT + 4294967296) % 4294967296)::USMALLINT AS idx,
    b.last_t_ms - f.dt AS t_ms, 0::UTINYINT AS bus, f.id, f.flags, f.dlc, f.data, f.batch
  FROM frame_rows f JOIN batches b USING (batch);
CREATE TABLE IF NOT EXISTS signals (
  time TIMESTAMPTZ NOT NULL, device VARCHAR NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL, idx USMALLINT NOT NULL,
  message VARCHAR NOT NULL, signal VARCHAR NOT NULL, value DOUBLE, label VARCHAR);
-- The gateway's own signal samples (P/signals), once per signal batch key (its numbering is not the frame batches').
CREATE TABLE IF NOT EXISTS signal_batches (
  device VARCHAR NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL, samples UINTEGER NOT NULL, hash UINTEGER NOT NULL,
  PRIMARY KEY (device, boot, seq));
CREATE TABLE IF NOT EXISTS gateway_signals (
  time TIMESTAMPTZ NOT NULL, device VARCHAR NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL, idx UINTEGER NOT NULL,
  t_ms BIGINT NOT NULL, message VARCHAR NOT NULL, signal VARCHAR NOT NULL, value DOUBLE NOT NULL, raw BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS statuses (
  device VARCHAR NOT NULL, boot BIGINT, up BIGINT NOT NULL, received_at TIMESTAMPTZ NOT NULL, online BOOLEAN NOT NULL, fields VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS rejects (
  received_at TIMESTAMPTZ NOT NULL, device VARCHAR, topic VARCHAR NOT NULL, reason VARCHAR NOT NULL, bytes UINTEGER NOT NULL);
CREATE OR REPLACE VIEW gaps AS ${GAPS_VIEW_SELECT};
-- The keys of one commit on their way into batches (per connection, never in the file).
CREATE TEMP TABLE IF NOT EXISTS incoming_batches (
  device VARCHAR NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL, frames UINTEGER NOT NULL, record_bytes UINTEGER NOT NULL, last_t_ms BIGINT NOT NULL,
  batch UINTEGER NOT NULL, first_n UINTEGER NOT NULL);
`;

const msToTs = (ms: number) => timestampTZValue(BigInt(Math.round(ms)) * 1000n);

class DuckDbStore implements Store {
  readonly description: string;

  constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    path: string,
    /** The next batch number and frame number (modulo 2^32) to hand out; one process owns the file. */
    private nextBatch: number,
    private nextN: number,
  ) {
    this.description = `DuckDB file ${path}`;
  }

  async commit(unit: WriteUnit): Promise<CommitResult> {
    const result: CommitResult = { stored: [], duplicates: [], storedSignals: [], duplicateSignals: [] };
    const signalBatches = unit.signalBatches ?? [];
    if (unit.batches.length + signalBatches.length + unit.statuses.length + unit.rejects.length === 0) return result;
    const numbers = { batch: this.nextBatch, n: this.nextN };
    await this.conn.run("BEGIN TRANSACTION");
    // First the common case, every key new: the keys go straight into `batches` through an appender (no SQL to
    // plan; the ON CONFLICT statement and its temporary table cost 4-8 ms of CPU per commit, as much as 10k frames).
    // A key already stored makes the primary key refuse the append, which aborts the transaction; then the unit is
    // done again the careful way, which keeps the new keys and names the old ones.
    let fresh = await this.appendBatchKeys(unit.batches).catch(async () => {
      await this.conn.run("ROLLBACK");
      this.nextBatch = numbers.batch;
      this.nextN = numbers.n;
      await this.conn.run("BEGIN TRANSACTION");
      return undefined;
    });
    try {
      fresh ??= await this.insertBatchKeys(unit.batches);
      for (const b of unit.batches) (fresh.has(batchKey(b.device, b.boot, b.seq)) ? result.stored : result.duplicates).push(b);
      // A batch delivered twice within one unit is new once.
      const seen = new Set<string>();
      result.stored = result.stored.filter((b) => {
        const k = batchKey(b.device, b.boot, b.seq);
        if (seen.has(k)) {
          result.duplicates.push(b);
          return false;
        }
        seen.add(k);
        return true;
      });
      await this.appendFrames(result.stored, fresh);
      await this.appendSignals(result.stored);
      await this.storeSignalBatches(signalBatches, result);
      for (const s of unit.statuses) {
        // A status is kept once per (device, boot, uptime): a retained copy seen again adds nothing.
        await this.conn.run(
          `INSERT INTO statuses SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS
             (SELECT 1 FROM statuses WHERE device = $1 AND boot IS NOT DISTINCT FROM $2 AND up = $3 AND online = $5)`,
          [s.device, s.boot === null ? null : BigInt(s.boot), BigInt(s.up), msToTs(s.receivedAt), s.online, s.fields],
        );
      }
      for (const r of unit.rejects) {
        await this.conn.run("INSERT INTO rejects VALUES ($1, $2, $3, $4, $5)", [msToTs(r.receivedAt), r.device, r.topic, r.reason, r.bytes]);
      }
      await this.conn.run("COMMIT");
    } catch (e) {
      await this.conn.run("ROLLBACK").catch(() => undefined);
      // Nothing of the unit is stored: its numbers are free again.
      this.nextBatch = numbers.batch;
      this.nextN = numbers.n;
      throw e;
    }
    return result;
  }

  /** Appends the keys (each once) with their numbers; throws, leaving the transaction aborted, if one is stored. */
  private async appendBatchKeys(batches: BatchRow[]): Promise<Map<string, { batch: number; firstN: number }>> {
    const fresh = new Map<string, { batch: number; firstN: number }>();
    if (batches.length === 0) return fresh;
    const a = await this.conn.createAppender("batches");
    try {
      for (const b of batches) {
        const k = batchKey(b.device, b.boot, b.seq);
        if (fresh.has(k)) continue; // delivered twice within the unit: stored at most once (see commit)
        fresh.set(k, this.appendKey(a, b));
      }
      a.flushSync();
    } catch (e) {
      // Release the appender; its rows went with the aborted transaction (closing tries to flush them again).
      try {
        a.closeSync();
      } catch {
        // expected: the transaction is aborted
      }
      throw e;
    }
    a.closeSync();
    return fresh;
  }

  /** One row of `batches` (its columns in order), numbered; moves the numbers on. */
  private appendKey(a: DuckDBAppender, b: BatchRow): { batch: number; firstN: number } {
    if (this.nextBatch > 0xffffffff) throw new StoreError("the store holds 2^32 batches, as many as its batch numbers count: start a new file");
    const numbers = { batch: this.nextBatch++, firstN: this.nextN };
    a.appendVarchar(b.device);
    a.appendBigInt(BigInt(b.boot));
    a.appendBigInt(BigInt(b.seq));
    a.appendTimestampTZ(msToTs(b.receivedAt));
    a.appendUInteger(b.count);
    a.appendUInteger(b.recordBytes);
    a.appendBigInt(BigInt(lastUptimeMs(b)));
    a.appendUInteger(numbers.batch);
    a.appendUInteger(numbers.firstN);
    a.endRow();
    this.nextN = (this.nextN + b.count) % TWO32;
    return numbers;
  }

  /**
   * Inserts the keys, each with its batch number and the number of its first frame; returns those that were new,
   * with their numbers. The keys go into a temporary table through an appender, then into `batches` with one
   * INSERT ... ON CONFLICT DO NOTHING RETURNING, which names only the inserted rows (a statement with thousands of
   * bound parameters cost more than the frames' own append). A key already stored leaves its numbers unused: the
   * frame numbers then skip, which costs a little compression and nothing else.
   */
  private async insertBatchKeys(batches: BatchRow[]): Promise<Map<string, { batch: number; firstN: number }>> {
    const fresh = new Map<string, { batch: number; firstN: number }>();
    if (batches.length === 0) return fresh;
    const unique = new Set<string>();
    const a = await this.conn.createAppender("incoming_batches", "main", "temp");
    for (const b of batches) {
      const k = batchKey(b.device, b.boot, b.seq);
      if (unique.has(k)) continue; // delivered twice within the unit: stored at most once (see commit)
      unique.add(k);
      this.appendKey(a, b);
    }
    a.flushSync();
    a.closeSync();
    const reader = await this.conn.runAndReadAll("INSERT INTO batches SELECT * FROM temp.incoming_batches ON CONFLICT DO NOTHING RETURNING device, boot, seq, batch, first_n");
    await this.conn.run("DELETE FROM temp.incoming_batches");
    for (const [device, boot, seq, batch, firstN] of reader.getRows()) fresh.set(batchKey(String(device), Number(boot), Number(seq)), { batch: Number(batch), firstN: Number(firstN) });
    return fresh;
  }

  /** The frames of the new batches, a data chunk at a time (duckdb-chunks.ts), in the order of their numbers. */
  private async appendFrames(batches: BatchRow[], numbers: Map<string, { batch: number; firstN: number }>): Promise<void> {
    if (batches.length === 0) return;
    const a = await this.conn.createAppender("frame_rows");
    const writer = new FrameChunkWriter(a);
    for (const b of batches) {
      const k = numbers.get(batchKey(b.device, b.boot, b.seq))!;
      writer.add(b, k.batch, k.firstN);
    }
    writer.flush();
    a.flushSync();
    a.closeSync();
  }

  private async appendSignals(batches: BatchRow[]): Promise<void> {
    if (!batches.some((b) => b.signals.length > 0)) return;
    const a = await this.conn.createAppender("signals");
    for (const b of batches) {
      for (const s of b.signals) {
        a.appendTimestampTZ(msToTs(frameTimeMs(b, s.idx)));
        a.appendVarchar(b.device);
        a.appendBigInt(BigInt(b.boot));
        a.appendBigInt(BigInt(b.seq));
        a.appendUSmallInt(s.idx);
        a.appendVarchar(s.message);
        a.appendVarchar(s.signal);
        if (s.value === null) a.appendNull();
        else a.appendDouble(s.value);
        if (s.label === null) a.appendNull();
        else a.appendVarchar(s.label);
        a.endRow();
      }
    }
    a.flushSync();
    a.closeSync();
  }

  /** Signal batches: the key first (ON CONFLICT DO NOTHING RETURNING), the samples only for a key this inserted. */
  private async storeSignalBatches(batches: SignalBatchRow[], result: CommitResult): Promise<void> {
    if (!batches.length) return;
    let a: Awaited<ReturnType<DuckDBConnection["createAppender"]>> | undefined;
    for (const b of batches) {
      const r = await this.conn.runAndReadAll("INSERT INTO signal_batches VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING seq", [
        b.device,
        BigInt(b.boot),
        BigInt(b.seq),
        msToTs(b.receivedAt),
        b.samples.length,
        b.hash,
      ]);
      if (r.getRows().length === 0) {
        result.duplicateSignals.push(b);
        continue;
      }
      result.storedSignals.push(b);
      a ??= await this.conn.createAppender("gateway_signals");
      for (const s of b.samples) {
        a.appendTimestampTZ(msToTs(s.timeMs));
        a.appendVarchar(b.device);
        a.appendBigInt(BigInt(b.boot));
        a.appendBigInt(BigInt(b.seq));
        a.appendUInteger(s.idx);
        a.appendBigInt(BigInt(s.tMs));
        a.appendVarchar(s.message);
        a.appendVarchar(s.signal);
        a.appendDouble(s.value);
        a.appendBigInt(BigInt(s.raw));
        a.endRow();
      }
    }
    if (a) {
      a.flushSync();
      a.closeSync();
    }
  }

  async *readFrames(q: ExportQuery): AsyncIterable<StoredFrame[]> {
    const range = "($2::BIGINT IS NULL OR epoch_ms(time) >= $2) AND ($3::BIGINT IS NULL OR epoch_ms(time) < $3)";
    const args = [q.device, q.fromMs === undefined ? null : BigInt(q.fromMs), q.toMs === undefined ? null : BigInt(q.toMs)];
    // Boots in the order they were first seen (boot ids are random), then each boot in (seq, idx) order, page by page.
    const boots = await this.conn.runAndReadAll(`SELECT boot FROM frames WHERE device = $1 AND ${range} GROUP BY boot ORDER BY min(time)`, args);
    const PAGE = 50_000;
    for (const [boot] of boots.getRows()) {
      // The boot's batches in seq order, cut into pages of about PAGE frames; a page's frames are found by its
      // batch numbers (frame_rows holds them in runs, so DuckDB skips the row groups outside their range).
      const list = await this.conn.runAndReadAll("SELECT seq, batch, frames FROM batches WHERE device = $1 AND boot = $2 ORDER BY seq", [q.device, boot]);
      const rows = list.getRows();
      for (let i = 0; i < rows.length; ) {
        let frames = 0;
        let lo = Infinity;
        let hi = -Infinity;
        const from = rows[i][0] as bigint;
        let to = from;
        for (; i < rows.length && (frames === 0 || frames + Number(rows[i][2]) <= PAGE); i++) {
          frames += Number(rows[i][2]);
          lo = Math.min(lo, Number(rows[i][1]));
          hi = Math.max(hi, Number(rows[i][1]));
          to = rows[i][0] as bigint;
        }
        const reader = await this.conn.runAndReadAll(
          `SELECT seq, idx, t_ms, epoch_ms(time), id, flags, dlc, data FROM frames
           WHERE device = $1 AND ${range} AND boot = $4 AND seq BETWEEN $5 AND $6 AND batch BETWEEN $7 AND $8
           ORDER BY seq, idx`,
          [...args, boot, from, to, lo, hi],
        );
        const page = reader.getRows();
        if (page.length === 0) continue;
        yield page.map(([seq, idx, tMs, timeMs, id, flags, dlc, data]) => ({
          boot: Number(boot),
          seq: Number(seq),
          idx: Number(idx),
          tMs: Number(tMs),
          timeMs: Number(timeMs),
          id: Number(id),
          flags: Number(flags),
          dlc: dlc === null ? null : Number(dlc),
          data: (data as { bytes: Uint8Array }).bytes,
        }));
      }
    }
  }

  async readGatewaySignals(device: string): Promise<StoredSample[]> {
    const r = await this.conn.runAndReadAll(
      "SELECT boot, seq, idx, t_ms, epoch_ms(time), message, signal, value, raw FROM gateway_signals WHERE device = $1 ORDER BY boot, seq, idx",
      [device],
    );
    return r.getRows().map(([boot, seq, idx, tMs, timeMs, message, signal, value, raw]) => ({
      boot: Number(boot),
      seq: Number(seq),
      idx: Number(idx),
      tMs: Number(tMs),
      timeMs: Number(timeMs),
      message: String(message),
      signal: String(signal),
      value: Number(value),
      raw: Number(raw),
    }));
  }

  async counts(): Promise<StoreCounts> {
    const one = async (sql: string): Promise<number> => Number((await this.conn.runAndReadAll(sql)).getRows()[0][0] ?? 0);
    return {
      batches: await one("SELECT count(*) FROM batches"),
      frames: await one("SELECT count(*) FROM frame_rows"),
      signals: await one("SELECT count(*) FROM signals"),
      gatewaySignals: await one("SELECT count(*) FROM gateway_signals"),
      statuses: await one("SELECT count(*) FROM statuses"),
      rejects: await one("SELECT count(*) FROM rejects"),
      missing: await one("SELECT coalesce(sum(missing), 0) FROM gaps"),
    };
  }

  async close(): Promise<void> {
    await this.conn.run("CHECKPOINT").catch(() => undefined);
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

function batchKey(device: string, boot: number, seq: number): string {
  return `${device}\u0000${boot}\u0000${seq}`;
}

/**
 * How a new file is laid out (docs/ingest.md, "Storage"). DuckDB's default 256 KB blocks made a store of 13k frames
 * 1 MB (82 B/frame: a block or more per table and index); 32 KB blocks are the smallest in which DuckDB still
 * bit-packs 32-bit columns (at 16 KB it stores them uncompressed: measured, 4 B/frame for the id alone). The
 * storage version lets DuckDB use its newer compression (dictionary + FSST for the data column, about half the
 * bytes of v0.10's); files need DuckDB 1.3 or newer to open.
 */
const NEW_FILE_CONFIG = { default_block_size: "32768", storage_compatibility_version: "v1.3.0" };
const TWO32 = 4294967296;

export async function openDuckDbStore(path: string): Promise<Store> {
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(path, NEW_FILE_CONFIG);
  } catch (e) {
    throw new StoreError(`cannot open the store ${path}: ${(e as Error).message} (a DuckDB file is open in one process at a time; for several workers use postgres://)`, { cause: e });
  }
  const conn = await instance.connect();
  // One thread: a store is written by one worker in commits of a few thousand frames, where DuckDB's parallel
  // operators cost more CPU than they save (measured: about 30% more frames per CPU-second with one thread).
  await conn.run("SET threads = 1");
  const old = await conn.runAndReadAll("SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() AND table_name = 'frame_rows' AND column_name = 'device'");
  if (Number(old.getRows()[0][0]) > 0) {
    conn.closeSync();
    instance.closeSync();
    throw new StoreError(`the store ${path} has the frame table of an earlier vgw (device, boot and seq in every row): export it with that version, or start a new file`);
  }
  await conn.run(SCHEMA);
  const last = await conn.runAndReadAll("SELECT batch, first_n, frames FROM batches ORDER BY batch DESC LIMIT 1");
  const row = last.getRows()[0];
  const nextBatch = row ? Number(row[0]) + 1 : 0;
  const nextN = row ? (Number(row[1]) + Number(row[2])) % TWO32 : 0;
  return new DuckDbStore(instance, conn, path, nextBatch, nextN);
}
