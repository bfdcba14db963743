/**
 * What one delivery from the broker becomes in the store: a frame batch (its key (device, boot, seq), its frames with
 * an absolute time, and with a DBC its signals in long form), a status change, or a reject (a payload that could not
 * be read, kept as a row with the reason so a user can ask what was lost, never as frames).
 *
 * The gateway stamps frames with its uptime in ms; the absolute `time` of a frame is estimated from the moment the
 * batch arrived: arrival - (last frame's uptime - this frame's uptime). The uptime is kept exactly (`tMs`), so an
 * export gives back the gateway's own timestamps, bit for bit.
 *
 * A batch's frames are decoded straight into typed column arrays (frame/columns.ts) shared by all the batches of one
 * commit, not into Frame objects: the stores hand whole columns to the database (one data chunk, one COPY buffer),
 * and a Frame is made only where a frame is decoded into signals (--dbc).
 */
import type { FrameDecoder } from "../../can-db/annotate";
import { FrameColumns } from "../../frame/columns";
import type { Frame } from "../../frame/frame";
import { decodeBatchInto, decodeStatus, parseTopic, PayloadError } from "../gateway/uplink";
import { decodeSignalBatch, type SignalTable } from "../gateway/signals";

export interface BatchRow {
  device: string;
  boot: number;
  seq: number;
  /** Epoch ms when the broker handed the batch to this worker. */
  receivedAt: number;
  /** The frames: rows first .. first + count - 1 of `columns` (shared with the other batches of a unit). */
  columns: FrameColumns;
  first: number;
  count: number;
  /** Size of the batch's records field in bytes. */
  recordBytes: number;
  /** Signals in long form, with --dbc. */
  signals: SignalRow[];
}

export interface SignalRow {
  /** Index of the frame in its batch. */
  idx: number;
  message: string;
  signal: string;
  /** Numeric value (64-bit integers beyond 2^53 lose precision here; `label` keeps the exact text). */
  value: number | null;
  /** Value-table label or exact text of a big integer; null for plain numbers. */
  label: string | null;
}

export interface StatusRow {
  device: string;
  receivedAt: number;
  online: boolean;
  boot: number | null;
  /** Gateway uptime in ms; -1 for a last will (which carries none). */
  up: number;
  /** Every field as JSON. */
  fields: string;
}

export interface RejectRow {
  receivedAt: number;
  device: string | null;
  topic: string;
  reason: string;
  bytes: number;
}

/**
 * A `P/signals` batch (docs/policy.md "Signals"): its key (device, boot, seq) in the signal batches' own numbering,
 * and its samples in long form. A sample's absolute time is estimated as for frames: arrival - (last sample's uptime
 * - its uptime).
 */
export interface SignalBatchRow {
  device: string;
  boot: number;
  seq: number;
  receivedAt: number;
  /** The table hash the batch was decoded with. */
  hash: number;
  samples: GatewaySample[];
}

export interface GatewaySample {
  /** Place in its batch. */
  idx: number;
  /** Gateway uptime, ms. */
  tMs: number;
  /** Estimated absolute time, epoch ms. */
  timeMs: number;
  message: string;
  signal: string;
  value: number;
  raw: number;
}

export type Row = { kind: "signals"; row: SignalBatchRow } | { kind: "batch"; row: BatchRow } | { kind: "status"; row: StatusRow } | { kind: "reject"; row: RejectRow } | { kind: "ignored" };


/** The gateway's uptime stamp (ms) of the last frame of a batch. */
export function lastUptimeMs(row: BatchRow): number {
  return row.columns.tMs[row.first + row.count - 1];
}

/** Absolute time in epoch ms of frame `i` of a batch that arrived at `receivedAt`. */
export function frameTimeMs(row: BatchRow, i: number): number {
  return row.receivedAt - (lastUptimeMs(row) - row.columns.tMs[row.first + i]);
}

/** The gateway's uptime stamp of a Frame in ms (exact: the protocol counts whole ms). */
export function frameUptimeMs(f: Frame): number {
  return Math.round((f.t ?? 0) * 1000);
}

/** A batch's frames as Frame objects (`t` = gateway uptime in seconds). */
export function batchFrames(row: BatchRow): Frame[] {
  const out: Frame[] = new Array<Frame>(row.count);
  for (let i = 0; i < row.count; i++) out[i] = row.columns.frame(row.first + i);
  return out;
}

function signalRows(row: BatchRow, decoder: FrameDecoder): SignalRow[] {
  const rows: SignalRow[] = [];
  for (let idx = 0; idx < row.count; idx++) {
    const d = decoder.decode(row.columns.frame(row.first + idx));
    if (d.message === null) continue;
    for (const [signal, v] of Object.entries(d.signals)) {
      if (typeof v === "number") rows.push({ idx, message: d.message, signal, value: v, label: null });
      else if (typeof v === "bigint") rows.push({ idx, message: d.message, signal, value: Number(v), label: v.toString() });
      else rows.push({ idx, message: d.message, signal, value: null, label: v });
    }
  }
  return rows;
}

/**
 * Turns one delivery into a row. Never throws on bad input: a payload that does not decode becomes a reject with
 * the reason; a topic that is not ours (another prefix, a kind the store does not keep) is ignored.
 */
export function toRow(topic: string, payload: Uint8Array, receivedAt: number, prefix: string, decoder?: FrameDecoder, columns = new FrameColumns(256), table?: SignalTable): Row {
  const parts = parseTopic(topic);
  if (!parts || parts.prefix !== prefix) return { kind: "ignored" };
  try {
    if (parts.kind === "signals" && table) {
      // a batch of another table is rejected (the reason names both hashes), never stored with the wrong names
      const b = decodeSignalBatch(payload, table);
      if (b.samples.length === 0) throw new PayloadError(`signal batch (boot ${b.boot.toString(16)}, seq ${b.seq}): no samples`);
      const last = b.samples[b.samples.length - 1].t;
      const samples = b.samples.map((x, idx): GatewaySample => {
        const info = table.info[x.i];
        return { idx, tMs: x.t, timeMs: receivedAt - (last - x.t), message: info?.message ?? "", signal: info?.signal ?? table.name(x.i), value: table.physical(x.i, x.raw), raw: x.raw };
      });
      return { kind: "signals", row: { device: parts.device, boot: b.boot, seq: b.seq, receivedAt, hash: b.hash, samples } };
    }
    if (parts.kind === "frames") {
      const h = decodeBatchInto(payload, columns);
      if (h.count === 0) throw new PayloadError(`batch (boot ${h.boot.toString(16)}, seq ${h.seq}): no frames`);
      // The stores keep a frame's time as its distance to the batch's last frame in 32 bits (duckdb-store.ts).
      const span = columns.tMs[h.first + h.count - 1] - columns.tMs[h.first];
      if (span > 0xffffffff) throw new PayloadError(`batch (boot ${h.boot.toString(16)}, seq ${h.seq}): spans ${span} ms, more than 2^32`);
      const row: BatchRow = { device: parts.device, boot: h.boot, seq: h.seq, receivedAt, columns, first: h.first, count: h.count, recordBytes: h.recordBytes, signals: [] };
      if (decoder) row.signals = signalRows(row, decoder);
      return { kind: "batch", row };
    }
    if (parts.kind === "status") {
      if (payload.length === 0) return { kind: "ignored" }; // a retained status being cleared
      const s = decodeStatus(payload);
      const fields = JSON.stringify(s.raw, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
      return { kind: "status", row: { device: parts.device, receivedAt, online: s.online, boot: s.boot ?? null, up: s.up ?? -1, fields } };
    }
    return { kind: "ignored" };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { kind: "reject", row: { receivedAt, device: parts.device, topic, reason, bytes: payload.length } };
  }
}
