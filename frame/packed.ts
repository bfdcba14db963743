/**
 * The packed frame record: many frames in one ArrayBuffer, so that a batch crosses a thread boundary as one
 * transferable buffer (no structured clone and no object per frame). One layout, used by:
 *   - the native SocketCAN receive path: host/bus/native/can_raw.c writes it on its receive thread (host/bus/can-raw.ts
 *     compares the C side's constants with these when it loads the module);
 *   - `vgw record`: the receive thread hands batches to the writer thread (host/record/pipeline.ts);
 *   - `vgw replay`: the read-ahead worker hands parsed trace batches to the replay thread (host/replay/read-ahead.ts).
 *
 * Records back to back, little-endian, no padding:
 *
 *   offset  type  field
 *    0      f64   t      time in seconds; NaN = none
 *    8      u32   id     the identifier, without flag bits (an error frame: its error class bits)
 *   12      u8    flags  FRAME_FLAG bits
 *   13      u8    len    data bytes that follow (0 for a remote frame)
 *   14      u8    dlc    a remote frame's requested length; 0 otherwise
 *   15      u8    bus    index into the batch's `buses` table; NO_BUS = none
 *   16      len bytes of data
 *
 * The flag byte is the same one the gateway's CanBus records (firmware/services/canbus.md) and MQTT frame batches
 * (docs/protocol.md) carry: one meaning of each bit everywhere.
 */
import type { Frame } from "./frame";

/** The bits of a frame record's flag byte. */
export const FRAME_FLAG = { ext: 0x01, rtr: 0x02, fd: 0x04, brs: 0x08, esi: 0x10, err: 0x20 } as const;
/** Bits 6 and 7 of the flag byte are reserved (zero). */
export const FRAME_FLAG_RESERVED = 0xc0;

/** The flag byte of a frame. */
export function frameFlags(f: Frame): number {
  return (
    (f.ext ? FRAME_FLAG.ext : 0) |
    (f.rtr ? FRAME_FLAG.rtr : 0) |
    (f.fd ? FRAME_FLAG.fd : 0) |
    (f.brs ? FRAME_FLAG.brs : 0) |
    (f.esi ? FRAME_FLAG.esi : 0) |
    (f.err ? FRAME_FLAG.err : 0)
  );
}

/**
 * The frame a record's id, flag byte and data describe, without makeFrame's validation: a record from outside (the
 * firmware, the broker) is validated by its reader with validateFrame, one from a packed batch needs none.
 */
export function frameOfRecord(id: number, flags: number, data: Uint8Array): Frame {
  return {
    id,
    ext: (flags & FRAME_FLAG.ext) !== 0,
    rtr: (flags & FRAME_FLAG.rtr) !== 0,
    fd: (flags & FRAME_FLAG.fd) !== 0,
    brs: (flags & FRAME_FLAG.brs) !== 0,
    esi: (flags & FRAME_FLAG.esi) !== 0,
    err: (flags & FRAME_FLAG.err) !== 0,
    data,
  };
}

/** Bytes before a record's data. */
export const PACKED_HEADER = 16;
/** The bus index of a frame without a bus name (and of names beyond the 255th). */
export const NO_BUS = 255;

/** One packed batch; `buses` is the whole bus-name table so far (a few names), indexed by each record's bus byte. */
export interface PackedBatch {
  buffer: ArrayBuffer;
  /** Bytes used in `buffer` (the rest is unused capacity). */
  bytes: number;
  count: number;
  buses: string[];
}

/**
 * Room for 340 classic frames, more than a recording batch (BATCH_FRAMES in host/record/pipeline.ts): every batch gets
 * a fresh buffer (the last one was transferred), so a larger one would be zero-filled and collected for nothing;
 * bigger batches grow it.
 */
const INITIAL_BYTES = 1 << 13;

/**
 * Packs frames one at a time into a buffer that grows by doubling; `take()` hands the batch over and starts a fresh
 * buffer. The bus-name table lives as long as the packer, so indexes stay valid from one batch to the next.
 */
export class FramePacker {
  private buffer: ArrayBuffer;
  private view: DataView;
  private bytes: Uint8Array;
  private used = 0;
  /** Frames packed since the last `take()`. */
  count = 0;
  private readonly busIndex = new Map<string, number>();
  private readonly buses: string[] = [];
  /** The last bus seen and its index: frames come in runs from one interface, so the map is rarely needed. */
  private lastBus: string | undefined;
  private lastBusIndex = NO_BUS;

  constructor(private readonly initialBytes = INITIAL_BYTES) {
    this.buffer = new ArrayBuffer(initialBytes);
    this.view = new DataView(this.buffer);
    this.bytes = new Uint8Array(this.buffer);
  }

  add(f: Frame): void {
    const len = f.data.length;
    if (this.used + PACKED_HEADER + len > this.buffer.byteLength) this.grow(PACKED_HEADER + len);
    let bus = NO_BUS;
    if (f.bus !== undefined && f.bus === this.lastBus) bus = this.lastBusIndex;
    else if (f.bus !== undefined) {
      let i = this.busIndex.get(f.bus);
      if (i === undefined) {
        // 255 marks "no bus": more than 255 interfaces lose the names beyond, never a frame.
        i = this.buses.length < NO_BUS ? this.buses.length : NO_BUS;
        this.busIndex.set(f.bus, i);
        if (i !== NO_BUS) this.buses.push(f.bus);
      }
      bus = i;
      this.lastBus = f.bus;
      this.lastBusIndex = i;
    }
    const o = this.used;
    const bytes = this.bytes;
    this.view.setFloat64(o, f.t ?? NaN, true);
    this.view.setUint32(o + 8, f.id, true);
    bytes[o + 12] = frameFlags(f);
    bytes[o + 13] = len;
    bytes[o + 14] = f.dlc ?? 0;
    bytes[o + 15] = bus;
    // A classic frame's few bytes are copied faster one by one than through TypedArray.set's call.
    const data = f.data;
    if (len <= 8) for (let i = 0; i < len; i++) bytes[o + PACKED_HEADER + i] = data[i];
    else bytes.set(data, o + PACKED_HEADER);
    this.used = o + PACKED_HEADER + len;
    this.count++;
  }

  /** The frames packed so far, as one batch whose buffer the caller may transfer; the packer starts a fresh buffer. */
  take(): PackedBatch {
    const batch: PackedBatch = { buffer: this.buffer, bytes: this.used, count: this.count, buses: this.buses.slice() };
    this.reset(this.initialBytes);
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

/** Packs a list of frames into one batch (a packer of its own: bus indexes count from 0). */
export function packFrames(frames: readonly Frame[]): PackedBatch {
  let size = 0;
  for (const f of frames) size += PACKED_HEADER + f.data.length;
  const packer = new FramePacker(Math.max(size, PACKED_HEADER));
  for (const f of frames) packer.add(f);
  return packer.take();
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
    if (bytes[o + 12] & FRAME_FLAG.err) errors++;
    o += PACKED_HEADER + bytes[o + 13];
  }
  return { batch: n === batch.count ? batch : { ...batch, bytes: o, count: n }, errors };
}

/**
 * Unpacks `out.length` records starting at byte `offset`; returns the offset after them. Frames are built as plain
 * objects without makeFrame's validation: packed frames came from a bus or a trace reader, which deliver only valid
 * frames. Each frame's data is a view into the batch's buffer (no copy per frame).
 */
function unpackInto(batch: PackedBatch, offset: number, out: Frame[]): number {
  const view = new DataView(batch.buffer);
  const bytes = new Uint8Array(batch.buffer);
  let o = offset;
  for (let i = 0; i < out.length; i++) {
    const t = view.getFloat64(o, true);
    const flags = bytes[o + 12];
    const len = bytes[o + 13];
    const busIndex = bytes[o + 15];
    const f = frameOfRecord(view.getUint32(o + 8, true), flags, bytes.subarray(o + PACKED_HEADER, o + PACKED_HEADER + len));
    if (f.rtr) f.dlc = bytes[o + 14];
    if (!Number.isNaN(t)) f.t = t;
    if (busIndex !== NO_BUS) f.bus = batch.buses[busIndex];
    out[i] = f;
    o += PACKED_HEADER + len;
  }
  return o;
}

/** The frames of a packed batch. */
export function unpackFrames(batch: PackedBatch): Frame[] {
  const frames: Frame[] = new Array(batch.count);
  unpackInto(batch, 0, frames);
  return frames;
}

/**
 * The frames of a packed batch in slices of at most `size`, each unpacked only when the caller asks for it: a thread
 * with deadlines (replay) spends tens of microseconds per slice instead of a millisecond on the whole batch.
 */
export function* unpackSlices(batch: PackedBatch, size: number): Generator<Frame[]> {
  let offset = 0;
  for (let done = 0; done < batch.count; ) {
    const slice: Frame[] = new Array(Math.min(size, batch.count - done));
    offset = unpackInto(batch, offset, slice);
    done += slice.length;
    yield slice;
  }
}
