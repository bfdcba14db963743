/**
 * Received frames packed into one transferable ArrayBuffer per batch, for the hand-over from the receive thread to the
 * writer thread: no structured clone per frame, no object per frame crossing threads. The record layout is the one the
 * replay read-ahead already uses (host/replay/read-ahead-format.ts): f64 t (NaN = none), u32 id, u8 flags, u8 data
 * length, u8 remote dlc, u8 bus index (255 = none), then the data bytes.
 */
import type { Frame } from "../../frame/frame";
import { FLAG, HEADER, NO_BUS } from "../replay/read-ahead-format";

/** One packed batch as it crosses to the writer thread; `buses` is the whole index table so far (a few names). */
export interface PackedBatch {
  buffer: ArrayBuffer;
  /** Bytes used in `buffer` (the rest is unused capacity). */
  bytes: number;
  count: number;
  buses: string[];
}

/**
 * Room for 340 classic frames, more than a batch (BATCH_FRAMES in pipeline.ts): every batch gets a fresh buffer (the
 * last one was transferred), so a larger one would be zero-filled and collected for nothing; CAN FD batches grow it.
 */
const INITIAL_BYTES = 1 << 13;

/** Packs frames on the receive thread, one at a time, into a buffer that grows by doubling. */
export class FramePacker {
  private buffer = new ArrayBuffer(INITIAL_BYTES);
  private view = new DataView(this.buffer);
  private bytes = new Uint8Array(this.buffer);
  private used = 0;
  /** Frames packed since the last `take()`. */
  count = 0;
  private readonly busIndex = new Map<string, number>();
  private readonly buses: string[] = [];
  /** The last bus seen and its index: frames come in runs from one interface, so the map is rarely needed. */
  private lastBus: string | undefined;
  private lastBusIndex = NO_BUS;

  add(f: Frame): void {
    const len = f.data.length;
    if (this.used + HEADER + len > this.buffer.byteLength) this.grow(HEADER + len);
    let bus = NO_BUS;
    if (f.bus !== undefined && f.bus === this.lastBus) bus = this.lastBusIndex;
    else if (f.bus !== undefined) {
      let i = this.busIndex.get(f.bus);
      if (i === undefined) {
        // 255 marks "no bus": a recording of more than 255 interfaces loses the names beyond, never a frame.
        i = this.buses.length < NO_BUS ? this.buses.length : NO_BUS;
        this.busIndex.set(f.bus, i);
        if (i !== NO_BUS) this.buses.push(f.bus);
      }
      bus = i;
      this.lastBus = f.bus;
      this.lastBusIndex = i;
    }
    const o = this.used;
    const view = this.view;
    const bytes = this.bytes;
    view.setFloat64(o, f.t ?? NaN, true);
    view.setUint32(o + 8, f.id, true);
    bytes[o + 12] = (f.ext ? FLAG.ext : 0) | (f.rtr ? FLAG.rtr : 0) | (f.fd ? FLAG.fd : 0) | (f.brs ? FLAG.brs : 0) | (f.esi ? FLAG.esi : 0) | (f.err ? FLAG.err : 0);
    bytes[o + 13] = len;
    bytes[o + 14] = f.dlc ?? 0;
    bytes[o + 15] = bus;
    // A classic frame's few bytes are copied faster one by one than through TypedArray.set's call.
    const data = f.data;
    if (len <= 8) for (let i = 0; i < len; i++) bytes[o + HEADER + i] = data[i];
    else bytes.set(data, o + HEADER);
    this.used = o + HEADER + len;
    this.count++;
  }

  /** The frames packed so far, as one batch whose buffer the caller transfers; the packer starts a fresh buffer. */
  take(): PackedBatch {
    const batch: PackedBatch = { buffer: this.buffer, bytes: this.used, count: this.count, buses: this.buses.slice() };
    this.reset(INITIAL_BYTES);
    return batch;
  }

  private grow(need: number): void {
    let size = this.buffer.byteLength * 2;
    while (size < this.used + need) size *= 2;
    const old = this.bytes.subarray(0, this.used);
    const used = this.used;
    const count = this.count;
    this.reset(size);
    this.bytes.set(old);
    this.used = used;
    this.count = count;
  }

  private reset(size: number): void {
    this.buffer = new ArrayBuffer(size);
    this.view = new DataView(this.buffer);
    this.bytes = new Uint8Array(this.buffer);
    this.used = 0;
    this.count = 0;
  }
}

/**
 * The first `count` records of a batch (same buffer, no copy), and how many of them are error frames: `vgw record -n`
 * cuts a received chunk where the count ends.
 */
export function headOfBatch(batch: PackedBatch, count: number): { batch: PackedBatch; errors: number } {
  const bytes = new Uint8Array(batch.buffer);
  const n = Math.min(count, batch.count);
  let o = 0;
  let errors = 0;
  for (let i = 0; i < n; i++) {
    if (bytes[o + 12] & FLAG.err) errors++;
    o += HEADER + bytes[o + 13];
  }
  return { batch: n === batch.count ? batch : { ...batch, bytes: o, count: n }, errors };
}

/**
 * The frames of a packed batch. Built as plain objects without makeFrame's validation: they came from a bus, which
 * only delivers valid frames. Each frame's data is a view into the batch's buffer (no copy per frame).
 */
export function unpackFrames(batch: PackedBatch): Frame[] {
  const view = new DataView(batch.buffer);
  const bytes = new Uint8Array(batch.buffer);
  const frames: Frame[] = new Array(batch.count);
  let o = 0;
  for (let i = 0; i < batch.count; i++) {
    const t = view.getFloat64(o, true);
    const flags = bytes[o + 12];
    const len = bytes[o + 13];
    const busIndex = bytes[o + 15];
    const f: Frame = {
      id: view.getUint32(o + 8, true),
      ext: (flags & FLAG.ext) !== 0,
      rtr: (flags & FLAG.rtr) !== 0,
      fd: (flags & FLAG.fd) !== 0,
      brs: (flags & FLAG.brs) !== 0,
      esi: (flags & FLAG.esi) !== 0,
      err: (flags & FLAG.err) !== 0,
      data: bytes.subarray(o + HEADER, o + HEADER + len),
    };
    if (f.rtr) f.dlc = bytes[o + 14];
    if (!Number.isNaN(t)) f.t = t;
    if (busIndex !== NO_BUS) f.bus = batch.buses[busIndex];
    frames[i] = f;
    o += HEADER + len;
  }
  return frames;
}
