/**
 * The CanBus service's frame record (firmware/services/canbus.md): `u32 id, u8 flags, u8 len, data`, little-endian,
 * records back to back, at most 236 bytes per Jacdac packet. Both directions use it: `frames` reports (host -> firmware
 * in the simulator; after a `u32 first_frame`, the running number of the report's first frame) and `transmit`
 * commands (firmware -> host). Its flag byte is the one every vgw frame record uses (FRAME_FLAG, frame/packed.ts).
 */
import { isValidFdLength, validateFrame, type Frame } from "../../frame/frame";
import { FRAME_FLAG, FRAME_FLAG_RESERVED, frameFlags, frameOfRecord } from "../../frame/packed";

export const MAX_PACKET = 236;
export const RECORD_HEADER = 6;
/** A `frames` report starts with `first_frame: u32`; its records follow. */
export const REPORT_HEADER = 4;

export function recordSize(f: Frame): number {
  return RECORD_HEADER + (f.rtr ? 0 : f.data.length);
}

/** Writes one record at `off`; returns the offset after it. The caller checks the room. */
export function writeRecord(buf: Uint8Array, off: number, f: Frame): number {
  const id = f.id >>> 0;
  buf[off] = id & 0xff;
  buf[off + 1] = (id >>> 8) & 0xff;
  buf[off + 2] = (id >>> 16) & 0xff;
  buf[off + 3] = (id >>> 24) & 0xff;
  buf[off + 4] = frameFlags(f);
  if (f.rtr) {
    buf[off + 5] = f.dlc ?? 0;
    return off + RECORD_HEADER;
  }
  buf[off + 5] = f.data.length;
  buf.set(f.data, off + RECORD_HEADER);
  return off + RECORD_HEADER + f.data.length;
}

/**
 * Packs frames into as few packets (<= 236 B each) as the record layout allows, in order, each starting with
 * `header` bytes of room for the caller (0 for `transmit`).
 */
export function packRecords(frames: readonly Frame[], header = 0): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let buf = new Uint8Array(MAX_PACKET);
  let off = header;
  for (const f of frames) {
    const size = recordSize(f);
    if (off + size > MAX_PACKET) {
      packets.push(buf.slice(0, off));
      buf = new Uint8Array(MAX_PACKET);
      off = header;
    }
    off = writeRecord(buf, off, f);
  }
  if (off > header) packets.push(buf.slice(0, off));
  return packets;
}

export interface FrameReport {
  /** The report's `first_frame`: the running number of its first record. */
  first: number;
  /** Its records. */
  packet: Uint8Array;
  /** How many records it holds. */
  frames: number;
}

/**
 * Packs frames into `frames` reports numbered from `first` (canbus.md, v1.2): `u32 first_frame` then the records.
 * The next report after these starts at `first` + frames.length (mod 2^32).
 */
export function packReports(frames: readonly Frame[], first: number): FrameReport[] {
  const reports: FrameReport[] = [];
  let next = first >>> 0;
  let i = 0;
  for (const packet of packRecords(frames, REPORT_HEADER)) {
    // Count the records back from the packed bytes, so the numbering cannot disagree with the packing.
    let n = 0;
    for (let off = REPORT_HEADER; off < packet.length; n++) off += RECORD_HEADER + (frames[i + n].rtr ? 0 : frames[i + n].data.length);
    new DataView(packet.buffer, packet.byteOffset, packet.byteLength).setUint32(0, next, true);
    reports.push({ first: next, packet, frames: n });
    next = (next + n) >>> 0;
    i += n;
  }
  return reports;
}

export interface ReportResult extends UnpackResult {
  first: number;
}

/** Reads a `frames` report: its `first_frame` and its records (unpackRecords' rules). */
export function unpackReport(input: Uint8Array): ReportResult {
  if (input.length < REPORT_HEADER) {
    return { first: 0, frames: [], error: `report of ${input.length} bytes has no ${REPORT_HEADER}-byte first_frame`, droppedBytes: input.length };
  }
  const first = new DataView(input.buffer, input.byteOffset, input.byteLength).getUint32(0, true);
  return { first, ...unpackRecords(input.subarray(REPORT_HEADER)) };
}

export interface UnpackResult {
  frames: Frame[];
  /** Why the packet's tail was dropped (the first invalid record), or undefined when every record was valid. */
  error?: string;
  /** Bytes after the first invalid record, dropped with it. */
  droppedBytes: number;
}

/** Reads records until the end or the first invalid one (the spec: stop there, drop the rest of the packet). */
export function unpackRecords(input: Uint8Array): UnpackResult {
  // A Buffer's slice() is a view; frames must own their bytes.
  const buf = Buffer.isBuffer(input) ? new Uint8Array(input.buffer, input.byteOffset, input.length) : input;
  const frames: Frame[] = [];
  let off = 0;
  const fail = (reason: string): UnpackResult => ({ frames, error: `record at byte ${off}: ${reason}`, droppedBytes: buf.length - off });
  while (off < buf.length) {
    if (off + RECORD_HEADER > buf.length) return fail(`${buf.length - off} bytes left, a record needs ${RECORD_HEADER}`);
    const id = (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
    const flags = buf[off + 4];
    const len = buf[off + 5];
    if (flags & FRAME_FLAG_RESERVED) return fail(`reserved flag bits set (0x${flags.toString(16)})`);
    if (id > 0x1fffffff) return fail(`ID 0x${id.toString(16)} has bits 29..31 set`);
    const rtr = (flags & FRAME_FLAG.rtr) !== 0;
    const dataLen = rtr ? 0 : len;
    if (flags & FRAME_FLAG.fd && !isValidFdLength(len)) return fail(`CAN FD length ${len} is not a valid FD length`);
    if (off + RECORD_HEADER + dataLen > buf.length) return fail(`length ${len} runs past the end of the packet`);
    const frame = frameOfRecord(id, flags, buf.slice(off + RECORD_HEADER, off + RECORD_HEADER + dataLen));
    if (rtr) frame.dlc = len;
    try {
      validateFrame(frame);
      frames.push(frame);
    } catch (e) {
      return fail((e as Error).message);
    }
    off += RECORD_HEADER + dataLen;
  }
  return { frames, droppedBytes: 0 };
}
