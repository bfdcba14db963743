/**
 * Many frames as typed column arrays, one array per field, no object per frame: the shape a columnar store wants
 * (DuckDB data chunks, PostgreSQL binary COPY), filled straight from the gateway's batch records
 * (host/gateway/uplink.ts, `decodeRecordsInto`). A `Frame` is made only when someone asks for one (`frame(i)`).
 *
 * Row i:
 *   tMs[i]     gateway uptime in ms (a whole number; the protocol counts ms)
 *   id[i]      identifier without flag bits (an error frame: its error class bits)
 *   flags[i]   the record flag byte (FRAME_FLAG, frame/packed.ts)
 *   length[i]  data bytes; for a remote frame (FRAME_FLAG.rtr) its requested length, and no data
 *   dataAt[i]  where the data starts in `data` (rows may share bytes: a repeated frame points at its predecessor's)
 *
 * The arrays grow by doubling; `data` is append-only, so an offset stays valid until `clear()`.
 */
import type { Frame } from "./frame";
import { FRAME_FLAG, frameOfRecord } from "./packed";

const NO_DATA = new Uint8Array(0);

export class FrameColumns {
  count = 0;
  tMs: Float64Array;
  id: Uint32Array;
  flags: Uint8Array;
  length: Uint8Array;
  dataAt: Uint32Array;
  data: Uint8Array;
  /** Bytes used in `data`. */
  dataBytes = 0;

  constructor(capacity = 1024) {
    this.tMs = new Float64Array(capacity);
    this.id = new Uint32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.length = new Uint8Array(capacity);
    this.dataAt = new Uint32Array(capacity);
    this.data = new Uint8Array(capacity * 8);
  }

  /** Forgets every row (the arrays are kept for the next fill). */
  clear(): void {
    this.count = 0;
    this.dataBytes = 0;
  }

  /** A point to roll back to (`rollback`) when a batch turns out bad half-way. */
  mark(): { count: number; dataBytes: number } {
    return { count: this.count, dataBytes: this.dataBytes };
  }

  rollback(m: { count: number; dataBytes: number }): void {
    this.count = m.count;
    this.dataBytes = m.dataBytes;
  }

  /** Room for `rows` more rows. */
  reserveRows(rows: number): void {
    const need = this.count + rows;
    if (need <= this.id.length) return;
    let cap = this.id.length * 2;
    while (cap < need) cap *= 2;
    this.tMs = grow(this.tMs, new Float64Array(cap));
    this.id = grow(this.id, new Uint32Array(cap));
    this.flags = grow(this.flags, new Uint8Array(cap));
    this.length = grow(this.length, new Uint8Array(cap));
    this.dataAt = grow(this.dataAt, new Uint32Array(cap));
  }

  /** Room for `bytes` more data bytes. */
  reserveData(bytes: number): void {
    const need = this.dataBytes + bytes;
    if (need <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < need) cap *= 2;
    this.data = grow(this.data, new Uint8Array(cap));
  }

  /** Data bytes of row i (a view: do not keep it past `clear()`). */
  bytes(i: number): Uint8Array {
    if (this.flags[i] & FRAME_FLAG.rtr) return NO_DATA;
    const at = this.dataAt[i];
    return this.data.subarray(at, at + this.length[i]);
  }

  /** Row i as a Frame (`t` in seconds of gateway uptime); its data is a view into `data`. */
  frame(i: number): Frame {
    const flags = this.flags[i];
    const rtr = (flags & FRAME_FLAG.rtr) !== 0;
    const f = frameOfRecord(this.id[i], flags, this.bytes(i));
    if (rtr) f.dlc = this.length[i];
    f.t = this.tMs[i] / 1000;
    return f;
  }
}

function grow<T extends Float64Array | Uint32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
