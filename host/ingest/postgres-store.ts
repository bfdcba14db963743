/**
 * The PostgreSQL store, for many ingest workers on many machines. The schema runs unchanged on TimescaleDB: `frames`
 * and `signals` are time-partitioned on their `time` column, by PostgreSQL's own range partitions (one per UTC day,
 * made on first use) on a plain server, or as hypertables where the timescaledb extension is installed. Neither table
 * carries a unique key (a hypertable's unique keys must hold its time column): uniqueness lives in `batches`, whose
 * primary key (device, boot, seq) decides in each transaction which batches' frames are written.
 *
 * Bulk rows go in with COPY (pg-copy-streams), one transaction per unit of deliveries: the frames in COPY's binary
 * format, built from the unit's frame columns into one Buffer (no string per value, no parsing on the server);
 * signals (with --dbc) as COPY text.
 */
import { FRAME_FLAG } from "../../frame/packed";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { Client } from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { frameTimeMs, lastUptimeMs, type BatchRow, type SignalBatchRow } from "./rows";
import { GAPS_VIEW_SELECT, StoreError, type CommitResult, type ExportQuery, type Store, type StoreCounts, type StoredFrame, type StoredSample, type WriteUnit } from "./store";

/** Serialises schema and partition changes across workers (any constant both sides agree on). */
const SCHEMA_LOCK = 0x76677769;

const TABLES = (partitioned: boolean) => `
CREATE TABLE IF NOT EXISTS batches (
  device TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL, frames INTEGER NOT NULL, record_bytes INTEGER NOT NULL,
  PRIMARY KEY (device, boot, seq));
CREATE TABLE IF NOT EXISTS frames (
  time TIMESTAMPTZ NOT NULL, device TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL, idx SMALLINT NOT NULL,
  t_ms BIGINT NOT NULL, bus SMALLINT NOT NULL, id BIGINT NOT NULL, flags SMALLINT NOT NULL, dlc SMALLINT, data BYTEA NOT NULL)
  ${partitioned ? "PARTITION BY RANGE (time)" : ""};
CREATE INDEX IF NOT EXISTS frames_device_boot_seq ON frames (device, boot, seq, idx);
CREATE TABLE IF NOT EXISTS signals (
  time TIMESTAMPTZ NOT NULL, device TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL, idx SMALLINT NOT NULL,
  message TEXT NOT NULL, signal TEXT NOT NULL, value DOUBLE PRECISION, label TEXT)
  ${partitioned ? "PARTITION BY RANGE (time)" : ""};
CREATE INDEX IF NOT EXISTS signals_device_time ON signals (device, message, signal, time);
CREATE TABLE IF NOT EXISTS signal_batches (
  device TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL, samples INTEGER NOT NULL, hash BIGINT NOT NULL,
  PRIMARY KEY (device, boot, seq));
CREATE TABLE IF NOT EXISTS gateway_signals (
  time TIMESTAMPTZ NOT NULL, device TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL,
  t_ms BIGINT NOT NULL, message TEXT NOT NULL, signal TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, raw BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS gateway_signals_device_time ON gateway_signals (device, message, signal, time);
CREATE TABLE IF NOT EXISTS statuses (
  device TEXT NOT NULL, boot BIGINT, up BIGINT NOT NULL, received_at TIMESTAMPTZ NOT NULL, online BOOLEAN NOT NULL, fields JSONB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS statuses_once ON statuses (device, coalesce(boot, -1), up, online);
CREATE TABLE IF NOT EXISTS rejects (
  received_at TIMESTAMPTZ NOT NULL, device TEXT, topic TEXT NOT NULL, reason TEXT NOT NULL, bytes INTEGER NOT NULL);
CREATE OR REPLACE VIEW gaps AS ${GAPS_VIEW_SELECT};
`;

/** COPY text format: backslash, tab, newline and carriage return escaped; NULL is \N. */
function copyText(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}
const iso = (ms: number): string => new Date(ms).toISOString();
const DAY_MS = 86_400_000;

class PostgresStore implements Store {
  /** Days (epoch ms of 00:00 UTC) whose partitions exist; unused on TimescaleDB. */
  private readonly days = new Set<number>();

  constructor(
    private readonly client: Client,
    readonly description: string,
    private readonly partitioned: boolean,
  ) {}

  async commit(unit: WriteUnit): Promise<CommitResult> {
    const result: CommitResult = { stored: [], duplicates: [], storedSignals: [], duplicateSignals: [] };
    const signalBatches = unit.signalBatches ?? [];
    if (unit.batches.length + signalBatches.length + unit.statuses.length + unit.rejects.length === 0) return result;
    if (this.partitioned) await this.ensurePartitions(unit.batches);
    const c = this.client;
    await c.query("BEGIN");
    try {
      // Keys in one order in every worker, so two transactions inserting the same keys wait for each other instead of deadlocking.
      const sorted = [...unit.batches].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.boot - b.boot || a.seq - b.seq));
      const res = await c.query<{ device: string; boot: string; seq: string }>(
        `INSERT INTO batches SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::int[], $6::int[])
         ON CONFLICT DO NOTHING RETURNING device, boot, seq`,
        [
          sorted.map((b) => b.device),
          sorted.map((b) => b.boot),
          sorted.map((b) => b.seq),
          sorted.map((b) => iso(b.receivedAt)),
          sorted.map((b) => b.count),
          sorted.map((b) => b.recordBytes),
        ],
      );
      const fresh = new Set(res.rows.map((r) => `${r.device}\u0000${r.boot}\u0000${r.seq}`));
      for (const b of sorted) {
        const k = `${b.device}\u0000${b.boot}\u0000${b.seq}`;
        if (fresh.delete(k)) result.stored.push(b);
        else result.duplicates.push(b);
      }
      if (result.stored.length) await this.copy("COPY frames FROM STDIN (FORMAT binary)", [frameCopyBuffer(result.stored)]);
      if (result.stored.some((b) => b.signals.length)) await this.copy("COPY signals FROM STDIN", chunked(signalLines(result.stored)));
      await this.storeSignalBatches(signalBatches, result);
      for (const s of unit.statuses) {
        await c.query("INSERT INTO statuses VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", [s.device, s.boot, s.up, iso(s.receivedAt), s.online, s.fields]);
      }
      for (const r of unit.rejects) await c.query("INSERT INTO rejects VALUES ($1, $2, $3, $4, $5)", [iso(r.receivedAt), r.device, r.topic, r.reason, r.bytes]);
      await c.query("COMMIT");
    } catch (e) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw e;
    }
    return result;
  }

  /**
   * Signal batches, keys in one order (as for frame batches, so two workers wait rather than deadlock); the samples of
   * the keys this transaction inserted, one COPY.
   */
  private async storeSignalBatches(batches: SignalBatchRow[], result: CommitResult): Promise<void> {
    if (!batches.length) return;
    const sorted = [...batches].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.boot - b.boot || a.seq - b.seq));
    const res = await this.client.query<{ device: string; boot: string; seq: string }>(
      `INSERT INTO signal_batches SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::int[], $6::bigint[])
       ON CONFLICT DO NOTHING RETURNING device, boot, seq`,
      [sorted.map((b) => b.device), sorted.map((b) => b.boot), sorted.map((b) => b.seq), sorted.map((b) => iso(b.receivedAt)), sorted.map((b) => b.samples.length), sorted.map((b) => b.hash)],
    );
    const fresh = new Set(res.rows.map((r) => `${r.device}\u0000${r.boot}\u0000${r.seq}`));
    for (const b of sorted) (fresh.delete(`${b.device}\u0000${b.boot}\u0000${b.seq}`) ? result.storedSignals : result.duplicateSignals).push(b);
    if (!result.storedSignals.length) return;
    const lines = function* (stored: SignalBatchRow[]): Iterable<string> {
      for (const b of stored) {
        for (const s of b.samples) yield `${iso(s.timeMs)}\t${copyText(b.device)}\t${b.boot}\t${b.seq}\t${s.idx}\t${s.tMs}\t${copyText(s.message)}\t${copyText(s.signal)}\t${s.value}\t${s.raw}\n`;
      }
    };
    await this.copy("COPY gateway_signals FROM STDIN", chunked(lines(result.storedSignals)));
  }

  private async copy(sql: string, chunks: Iterable<string | Buffer>): Promise<void> {
    const sink = this.client.query(copyFrom(sql));
    await pipeline(Readable.from(chunks), sink);
  }

  /** Daily partitions of frames and signals for the times in these batches, made once under an advisory lock. */
  private async ensurePartitions(batches: BatchRow[]): Promise<void> {
    const needed = new Set<number>();
    for (const b of batches) {
      needed.add(Math.floor(frameTimeMs(b, 0) / DAY_MS) * DAY_MS);
      needed.add(Math.floor(b.receivedAt / DAY_MS) * DAY_MS);
    }
    const missing = [...needed].filter((d) => !this.days.has(d));
    if (missing.length === 0) return;
    await this.client.query("SELECT pg_advisory_lock($1)", [SCHEMA_LOCK]);
    try {
      for (const day of missing) {
        const name = new Date(day).toISOString().slice(0, 10).replace(/-/g, "");
        for (const table of ["frames", "signals"]) {
          await this.client.query(`CREATE TABLE IF NOT EXISTS ${table}_${name} PARTITION OF ${table} FOR VALUES FROM ('${iso(day)}') TO ('${iso(day + DAY_MS)}')`);
        }
        this.days.add(day);
      }
    } finally {
      await this.client.query("SELECT pg_advisory_unlock($1)", [SCHEMA_LOCK]);
    }
  }

  async *readFrames(q: ExportQuery): AsyncIterable<StoredFrame[]> {
    const range = "($2::timestamptz IS NULL OR time >= $2) AND ($3::timestamptz IS NULL OR time < $3)";
    const args = [q.device, q.fromMs === undefined ? null : iso(q.fromMs), q.toMs === undefined ? null : iso(q.toMs)];
    const boots = await this.client.query<{ boot: string }>(`SELECT boot FROM frames WHERE device = $1 AND ${range} GROUP BY boot ORDER BY min(time)`, args);
    const PAGE = 50_000;
    for (const { boot } of boots.rows) {
      let after: [string, number] = ["-1", -1];
      for (;;) {
        const res = await this.client.query<{ seq: string; idx: number; t_ms: string; ms: string; id: string; flags: number; dlc: number | null; data: Buffer }>(
          `SELECT seq, idx, t_ms, (extract(epoch from time) * 1000)::bigint AS ms, id, flags, dlc, data FROM frames
           WHERE device = $1 AND ${range} AND boot = $4 AND (seq, idx) > ($5::bigint, $6::int)
           ORDER BY seq, idx LIMIT ${PAGE}`,
          [...args, boot, after[0], after[1]],
        );
        if (res.rows.length === 0) break;
        yield res.rows.map((r) => ({
          boot: Number(boot),
          seq: Number(r.seq),
          idx: r.idx,
          tMs: Number(r.t_ms),
          timeMs: Number(r.ms),
          id: Number(r.id),
          flags: r.flags,
          dlc: r.dlc,
          data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length),
        }));
        const last = res.rows[res.rows.length - 1];
        after = [last.seq, last.idx];
        if (res.rows.length < PAGE) break;
      }
    }
  }

  async readGatewaySignals(device: string): Promise<StoredSample[]> {
    const r = await this.client.query<Record<string, string | number>>(
      `SELECT boot, seq, idx, t_ms, (extract(epoch FROM time) * 1000)::bigint AS time_ms, message, signal, value, raw
       FROM gateway_signals WHERE device = $1 ORDER BY boot, seq, idx`,
      [device],
    );
    return r.rows.map((x) => ({
      boot: Number(x.boot),
      seq: Number(x.seq),
      idx: Number(x.idx),
      tMs: Number(x.t_ms),
      timeMs: Number(x.time_ms),
      message: String(x.message),
      signal: String(x.signal),
      value: Number(x.value),
      raw: Number(x.raw),
    }));
  }

  async counts(): Promise<StoreCounts> {
    const one = async (sql: string): Promise<number> => Number((await this.client.query<{ n: string }>(sql)).rows[0].n ?? 0);
    return {
      batches: await one("SELECT count(*) AS n FROM batches"),
      frames: await one("SELECT count(*) AS n FROM frames"),
      signals: await one("SELECT count(*) AS n FROM signals"),
      gatewaySignals: await one("SELECT count(*) AS n FROM gateway_signals"),
      statuses: await one("SELECT count(*) AS n FROM statuses"),
      rejects: await one("SELECT count(*) AS n FROM rejects"),
      missing: await one("SELECT coalesce(sum(missing), 0) AS n FROM gaps"),
    };
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/** Groups COPY lines into ~64 KB strings: one stream write per line would cost more than the line. */
function* chunked(lines: Iterable<string>): Generator<string> {
  let parts: string[] = [];
  let size = 0;
  for (const line of lines) {
    parts.push(line);
    size += line.length;
    if (size >= 65_536) {
      yield parts.join("");
      parts = [];
      size = 0;
    }
  }
  if (parts.length) yield parts.join("");
}

/** PostgreSQL's epoch (2000-01-01 UTC) in Unix ms: binary timestamps count microseconds from it. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO32 = 4294967296;
/** The binary COPY signature, flags and header extension length (PostgreSQL docs, "COPY", Binary Format). */
const COPY_HEADER = Buffer.from("PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", "latin1");
/** Bytes of a frames row besides device and data: field count, 11 lengths, and the fixed-width fields. */
const ROW_FIXED = 2 + 11 * 4 + 8 + 8 + 8 + 2 + 8 + 2 + 8 + 2;

/**
 * The frames of `batches` as one COPY binary buffer, straight from the frame columns: per row a field count, then
 * each field as a length and its big-endian bytes (time, device, boot, seq, idx, t_ms, bus, id, flags, dlc, data).
 */
export function frameCopyBuffer(batches: BatchRow[]): Buffer {
  const devices = new Map<string, Buffer>();
  let size = COPY_HEADER.length + 2;
  for (const b of batches) {
    let dev = devices.get(b.device);
    if (!dev) devices.set(b.device, (dev = Buffer.from(b.device, "utf8")));
    const c = b.columns;
    size += b.count * (ROW_FIXED + dev.length);
    for (let r = b.first; r < b.first + b.count; r++) size += c.flags[r] & FRAME_FLAG.rtr ? 2 : c.length[r];
  }
  const buf = Buffer.allocUnsafe(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  COPY_HEADER.copy(buf, 0);
  let o = COPY_HEADER.length;
  const int64 = (v: number): void => {
    const hi = Math.floor(v / TWO32);
    view.setInt32(o, 8);
    view.setInt32(o + 4, hi);
    view.setUint32(o + 8, v - hi * TWO32);
    o += 12;
  };
  const int16 = (v: number): void => {
    view.setInt32(o, 2);
    view.setInt16(o + 4, v);
    o += 6;
  };
  for (const b of batches) {
    const dev = devices.get(b.device) as Buffer;
    const c = b.columns;
    const last = lastUptimeMs(b);
    // Microseconds since 2000 of the batch's arrival; each frame is (last - its uptime) ms before it.
    const arrivalUs = (b.receivedAt - PG_EPOCH_MS) * 1000;
    for (let k = 0; k < b.count; k++) {
      const r = b.first + k;
      view.setInt16(o, 11);
      o += 2;
      int64(arrivalUs - (last - c.tMs[r]) * 1000);
      view.setInt32(o, dev.length);
      dev.copy(buf, o + 4);
      o += 4 + dev.length;
      int64(b.boot);
      int64(b.seq);
      int16(k);
      int64(c.tMs[r]);
      int16(0);
      int64(c.id[r]);
      const flags = c.flags[r];
      int16(flags);
      const len = c.length[r];
      if (flags & FRAME_FLAG.rtr) {
        int16(len);
        view.setInt32(o, 0);
        o += 4;
      } else {
        view.setInt32(o, -1); // dlc NULL
        view.setInt32(o + 4, len);
        o += 8;
        const at = c.dataAt[r];
        for (let j = 0; j < len; j++) buf[o + j] = c.data[at + j];
        o += len;
      }
    }
  }
  view.setInt16(o, -1);
  o += 2;
  if (o !== size) throw new Error(`COPY buffer: wrote ${o} bytes of ${size}`);
  return buf;
}

function* signalLines(batches: BatchRow[]): Generator<string> {
  for (const b of batches) {
    for (const s of b.signals) {
      const value = s.value === null || !Number.isFinite(s.value) ? "\\N" : String(s.value);
      const label = s.label === null ? "\\N" : copyText(s.label);
      yield `${iso(frameTimeMs(b, s.idx))}\t${copyText(b.device)}\t${b.boot}\t${b.seq}\t${s.idx}\t${copyText(s.message)}\t${copyText(s.signal)}\t${value}\t${label}\n`;
    }
  }
}

/** postgres://user:secret@host/db -> postgres://user@host/db, for messages. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "postgres://?";
  }
}

export async function openPostgresStore(url: string): Promise<Store> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  const description = `PostgreSQL ${withoutPassword(url)}`;
  try {
    await client.connect();
  } catch (e) {
    throw new StoreError(`cannot connect to ${description}: ${(e as Error).message}`, { cause: e });
  }
  // A broken connection must surface as an error of the next query, not crash the process from an event.
  client.on("error", () => undefined);
  await client.query("SELECT pg_advisory_lock($1)", [SCHEMA_LOCK]);
  let timescale = false;
  try {
    const ext = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'");
    timescale = ext.rowCount === 1;
    if (timescale) await client.query("CREATE EXTENSION IF NOT EXISTS timescaledb");
    await client.query(TABLES(!timescale));
    if (timescale) {
      await client.query("SELECT create_hypertable('frames', 'time', if_not_exists => TRUE)");
      await client.query("SELECT create_hypertable('signals', 'time', if_not_exists => TRUE)");
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [SCHEMA_LOCK]);
  }
  return new PostgresStore(client, description, !timescale);
}
