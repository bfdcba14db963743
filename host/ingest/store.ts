/**
 * The store behind `vgw ingest` and `vgw export`, chosen by URL:
 *
 *   postgres://user@host:port/db   PostgreSQL (also TimescaleDB: frames become a hypertable there), for many workers
 *   any other text                 a file path: the embedded DuckDB store (one process at a time)
 *
 * Every store writes one unit of deliveries in ONE transaction and keeps a batch at most once: the batch key
 * (device, boot, seq) is the primary key of `batches`, inserted with ON CONFLICT DO NOTHING, and a batch's frames are
 * written only when its key was new in the same transaction. A redelivered batch, a second consumer or a worker that
 * crashed before its commit therefore leave exactly one copy (docs/ingest.md has the whole argument).
 */
import { VgwError } from "../../frame/errors";
import type { BatchRow, RejectRow, SignalBatchRow, StatusRow } from "./rows";

/** A store that cannot be opened or written. */
export class StoreError extends VgwError {}

/** What a commit did with each kind of row. */
export interface CommitResult {
  /** Batches whose key was new: their frames are stored now. */
  stored: BatchRow[];
  /** Batches whose key was already stored (redelivery, replay of an old seq, a second consumer). */
  duplicates: BatchRow[];
  /** Signal batches whose key was new, and those already stored. */
  storedSignals: SignalBatchRow[];
  duplicateSignals: SignalBatchRow[];
}

export interface WriteUnit {
  batches: BatchRow[];
  /** `P/signals` batches, stored once by (device, boot, seq) in `signal_batches`, samples in `gateway_signals`. */
  signalBatches?: SignalBatchRow[];
  statuses: StatusRow[];
  rejects: RejectRow[];
}

/** A frame read back for export, in stored order (boot, seq, index in batch). */
export interface StoredFrame {
  boot: number;
  seq: number;
  idx: number;
  /** Gateway uptime in ms, as the gateway stamped it. */
  tMs: number;
  /** Estimated absolute time, epoch ms. */
  timeMs: number;
  id: number;
  flags: number;
  /** Requested length of a remote frame, else null. */
  dlc: number | null;
  data: Uint8Array;
}

export interface ExportQuery {
  device: string;
  /** Epoch ms, inclusive. */
  fromMs?: number;
  /** Epoch ms, exclusive. */
  toMs?: number;
}

/** A gateway signal sample read back (`gateway_signals`), in stored order (boot, seq, idx). */
export interface StoredSample {
  boot: number;
  seq: number;
  idx: number;
  tMs: number;
  timeMs: number;
  message: string;
  signal: string;
  value: number;
  raw: number;
}

export interface StoreCounts {
  batches: number;
  frames: number;
  signals: number;
  /** Gateway signal samples (`gateway_signals`). */
  gatewaySignals: number;
  statuses: number;
  rejects: number;
  /** Missing batch numbers between stored ones, per the `gaps` view. */
  missing: number;
}

export interface Store {
  /** What the store is, for messages (never contains a password). */
  readonly description: string;
  commit(unit: WriteUnit): Promise<CommitResult>;
  /** Frames of one device in stored order, in pages (constant memory). */
  readFrames(query: ExportQuery): AsyncIterable<StoredFrame[]>;
  /** The gateway signal samples of one device, in stored order (for tests and small queries; SQL for the rest). */
  readGatewaySignals(device: string): Promise<StoredSample[]>;
  counts(): Promise<StoreCounts>;
  close(): Promise<void>;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** Opens (and creates the schema of) the store named by `url`. */
export async function openStore(url: string): Promise<Store> {
  if (isPostgresUrl(url)) {
    const { openPostgresStore } = await import("./postgres-store");
    return openPostgresStore(url);
  }
  const { openDuckDbStore } = await import("./duckdb-store");
  return openDuckDbStore(url);
}

/** The SQL of the `gaps` view, shared by the stores: runs of batch numbers missing before a stored one. */
export const GAPS_VIEW_SELECT = `
  SELECT device, boot, prev + 1 AS from_seq, seq - 1 AS to_seq, seq - prev - 1 AS missing
  FROM (SELECT device, boot, seq, lag(seq, 1, -1) OVER (PARTITION BY device, boot ORDER BY seq) AS prev FROM batches) b
  WHERE seq > prev + 1`;
