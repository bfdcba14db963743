/**
 * What one delivery from the broker becomes in the store: a frame batch (its key (device, boot, seq), its frames with
 * an absolute time, and with a DBC its signals in long form), a status change, or a reject (a payload that could not
 * be read, kept as a row with the reason so a user can ask what was lost, never as frames).
 *
 * The gateway stamps frames with its uptime in ms; the absolute `time` of a frame is estimated from the moment the
 * batch arrived: arrival - (last frame's uptime - this frame's uptime). The uptime is kept exactly (`tMs`), so an
 * export gives back the gateway's own timestamps, bit for bit.
 */
import type { FrameDecoder } from "../../can-db/annotate";
import type { Frame } from "../../frame/frame";
import { decodeBatch, decodeStatus, parseTopic, PayloadError, type FrameBatch } from "../gateway/uplink";

export interface BatchRow {
  device: string;
  boot: number;
  seq: number;
  /** Epoch ms when the broker handed the batch to this worker. */
  receivedAt: number;
  batch: FrameBatch;
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

export type Row = { kind: "batch"; row: BatchRow } | { kind: "status"; row: StatusRow } | { kind: "reject"; row: RejectRow } | { kind: "ignored" };


/** Absolute time in epoch ms of frame `i` of a batch that arrived at `receivedAt`. */
export function frameTimeMs(row: BatchRow, i: number): number {
  const frames = row.batch.frames;
  const last = Math.round((frames[frames.length - 1].t ?? 0) * 1000);
  return row.receivedAt - (last - Math.round((frames[i].t ?? 0) * 1000));
}

/** The gateway's uptime stamp of a frame in ms (exact: the protocol counts whole ms). */
export function frameUptimeMs(f: Frame): number {
  return Math.round((f.t ?? 0) * 1000);
}

function signalRows(batch: FrameBatch, decoder: FrameDecoder): SignalRow[] {
  const rows: SignalRow[] = [];
  batch.frames.forEach((f, idx) => {
    const d = decoder.decode(f);
    if (d.message === null) return;
    for (const [signal, v] of Object.entries(d.signals)) {
      if (typeof v === "number") rows.push({ idx, message: d.message, signal, value: v, label: null });
      else if (typeof v === "bigint") rows.push({ idx, message: d.message, signal, value: Number(v), label: v.toString() });
      else rows.push({ idx, message: d.message, signal, value: null, label: v });
    }
  });
  return rows;
}

/**
 * Turns one delivery into a row. Never throws on bad input: a payload that does not decode becomes a reject with
 * the reason; a topic that is not ours (another prefix, a kind the store does not keep) is ignored.
 */
export function toRow(topic: string, payload: Uint8Array, receivedAt: number, prefix: string, decoder?: FrameDecoder): Row {
  const parts = parseTopic(topic);
  if (!parts || parts.prefix !== prefix) return { kind: "ignored" };
  try {
    if (parts.kind === "frames") {
      const batch = decodeBatch(payload);
      if (batch.frames.length === 0) throw new PayloadError(`batch (boot ${batch.boot.toString(16)}, seq ${batch.seq}): no frames`);
      const row: BatchRow = { device: parts.device, boot: batch.boot, seq: batch.seq, receivedAt, batch, signals: [] };
      if (decoder) row.signals = signalRows(batch, decoder);
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
