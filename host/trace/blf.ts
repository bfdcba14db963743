/**
 * Vector BLF (binary logging format). There is no public specification; the layout below is the one Vector's
 * tools, python-can and Toby Lorenz' vector_blf library agree on (facts, not code, taken from them):
 *
 *   file header   "LOGG", u32 header size (144), app/version bytes, u64 file size, u64 uncompressed size,
 *                 u32 object count, u32 objects read, SYSTEMTIME start, SYSTEMTIME stop (8 x u16, local time)
 *   objects       "LOBJ", u16 header size, u16 header version, u32 object size, u32 object type, then
 *                 v1: u32 time flags (1 = 10 us units, else ns), u16 client, u16 object version, u64 time
 *                 v2: u32 time flags, u8 time status, u8 -, u16 object version, u64 time, u64 original time
 *   LOG_CONTAINER (10): u16 compression (0 none, 2 zlib), 6 -, u32 uncompressed size, 4 -, payload. The payload
 *                 is a stream of objects that may continue in the next container.
 *   CAN_MESSAGE (1) / CAN_MESSAGE2 (86): u16 channel, u8 flags (0x01 Tx, 0x80 remote), u8 dlc, u32 id
 *                 (0x80000000 = 29-bit), 8 data bytes
 *   CAN_ERROR_EXT (73): u16 channel, u16 length, u32 flags, u8 ecc, u8 position, u8 dlc, u8 -, u32 frame length,
 *                 u32 id, u16 ext flags, 2 -, 8 data bytes
 *   CAN_FD_MESSAGE (100): u16 channel, u8 flags, u8 dlc, u32 id, u32 frame length, u8 bit count,
 *                 u8 FD flags (1 EDL, 2 BRS, 4 ESI), u8 valid bytes, 5 -, 64 data bytes
 *   CAN_FD_MESSAGE_64 (101): u8 channel, u8 dlc, u8 valid bytes, u8 tx count, u32 id, u32 frame length,
 *                 u32 flags (0x10 remote, 0x1000 EDL, 0x2000 BRS, 0x4000 ESI), 5 x u32 timing, u16 bit count,
 *                 u8 direction, u8 ext data offset, u32 crc, then the data bytes
 *
 * Frame.t = header start time (local time, as python-can reads it; zero when the header has none) + object time.
 * Frame.bus = the BLF channel number ("1"). vgw's writer keeps an error frame's SocketCAN error class in the
 * CAN_ERROR_EXT object's ID field and its 8 detail bytes in the data field (where python-can reads an error
 * message's arbitration ID and data), and marks such an object in its reserved u16 (VGW_ERROR_MARK): CANoe puts the
 * ID of the damaged frame in that field, not a class. Any other error object becomes CAN_ERR_BUSERROR with 8 zero
 * bytes (the same rule as ASC). Other object types (markers, LIN, statistics...)
 * are not CAN frames and are passed over. Errors name the top-level object index and its byte offset.
 */
import * as zlib from "zlib";
import type { Frame } from "../../frame/frame";
import { busErrorFrame } from "../../frame/error-frame";
import { CAN_EFF_MASK, CAN_SFF_MASK, FD_LENGTHS, lengthToDlc } from "../../frame/frame";
import { registerFormat, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { ChannelNumbers } from "./channel";

const LOGG = 0x47474f4c; // "LOGG" little-endian
const LOBJ = 0x4a424f4c; // "LOBJ"
const FILE_HEADER_SIZE = 144;
const OBJ_BASE = 16;
const CAN_MESSAGE = 1;
const LOG_CONTAINER = 10;
const CAN_ERROR_EXT = 73;
/** In a CAN_ERROR_EXT object's reserved u16 (offset 22): the ID field holds a SocketCAN error class ("vg"). */
const VGW_ERROR_MARK = 0x6776;
const CAN_MESSAGE2 = 86;
const CAN_FD_MESSAGE = 100;
const CAN_FD_MESSAGE_64 = 101;
const CAN_MSG_EXT = 0x80000000;
const REMOTE_FLAG = 0x80;
/** A container larger than this is not a real file's: refuse it rather than allocate it (vector_blf writes 128 KB). */
const MAX_CONTAINER = 64 << 20;
const EMPTY = new Uint8Array(0);

// Little-endian reads without Buffer's range checks: callers check the object bounds first (hot path).
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** SYSTEMTIME (8 x u16 at `off`) as local-time epoch seconds; 0 when unset or invalid (as python-can). */
function systemTimeToEpoch(b: Buffer, off: number): number {
  const y = b.readUInt16LE(off);
  const mo = b.readUInt16LE(off + 2);
  const d = b.readUInt16LE(off + 6);
  const h = b.readUInt16LE(off + 8);
  const mi = b.readUInt16LE(off + 10);
  const s = b.readUInt16LE(off + 12);
  const ms = b.readUInt16LE(off + 14);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 || ms > 999) return 0;
  const date = new Date(y, mo - 1, d, h, mi, s, ms);
  if (date.getDate() !== d) return 0; // 31 Feb and the like
  return date.getTime() / 1000;
}

function writeSystemTime(b: Buffer, off: number, epoch: number | undefined): void {
  // python-can writes zeros for times before 1990: such a file holds relative times.
  if (epoch === undefined || epoch < 631152000) return;
  const d = new Date(Math.round(epoch * 1000));
  const fields = [d.getFullYear(), d.getMonth() + 1, d.getDay(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  fields.forEach((v, i) => b.writeUInt16LE(v, off + 2 * i));
}

/** Pulls bytes from the chunk stream on demand, tracking the file offset of the first unread byte. */
class ByteStream {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  offset = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  /** Makes `n` bytes available; false at end of input (fewer left). */
  async ensure(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), r.value]) : r.value;
      this.pos = 0;
    }
    return this.buf.length - this.pos >= n;
  }
  get available(): number {
    return this.buf.length - this.pos;
  }
  peek(n: number): Buffer {
    return this.buf.subarray(this.pos, this.pos + n);
  }
  skip(n: number): void {
    const k = Math.min(n, this.available);
    this.pos += k;
    this.offset += k;
  }
}

class BlfParser {
  start = 0;
  topIndex = 0;
  topOffset = 0;
  private tail: Buffer | undefined;
  constructor(private readonly ctx: ReadContext) {}

  bad(reason: string): void {
    this.ctx.bad(this.topIndex, `object ${this.topIndex} (byte ${this.topOffset}): ${reason}`);
  }

  /** Drops a partial object left over from earlier containers (after a bad container, it cannot be completed). */
  resetTail(): void {
    this.tail = undefined;
  }

  /** Parses a container's (or a top-level object's) bytes; an object cut at the end waits for the next call. */
  objects(data: Buffer, out: Frame[], final = false): void {
    if (this.tail) {
      data = Buffer.concat([this.tail, data]);
      this.tail = undefined;
    }
    const n = data.length;
    let pos = 0;
    while (pos < n) {
      // Objects are padded to 4 bytes inside containers; tools disagree on the rule, so look for the signature.
      if (n - pos < OBJ_BASE) {
        if (!final) this.tail = data.subarray(pos);
        else if (data.subarray(pos).some((b) => b !== 0)) this.bad(`${n - pos} stray bytes at the end of the log`);
        return;
      }
      if (u32(data, pos) !== LOBJ) {
        const next = data.indexOf("LOBJ", pos, "latin1");
        if (next >= 0 && next - pos < 8 && data.subarray(pos, next).every((b) => b === 0)) {
          pos = next;
          continue;
        }
        if (next < 0 && data.subarray(pos).every((b) => b === 0)) return; // trailing padding
        this.bad(`no object signature where one was expected (inner offset ${pos})${next >= 0 ? "; resynchronised at the next one" : ""}`);
        if (next < 0) return;
        pos = next;
        continue;
      }
      const headerSize = u16(data, pos + 4);
      const version = u16(data, pos + 6);
      const size = u32(data, pos + 8);
      const type = u32(data, pos + 12);
      if (size < OBJ_BASE || headerSize < OBJ_BASE || headerSize > size) {
        this.bad(`object of type ${type} has impossible sizes (header ${headerSize}, object ${size})`);
        pos = this.resync(data, pos);
        continue;
      }
      if (pos + size > n) {
        if (!final) {
          if (size > MAX_CONTAINER) {
            this.bad(`object of ${size} bytes is larger than any real one`);
            pos = this.resync(data, pos);
            continue;
          }
          this.tail = data.subarray(pos);
        } else this.bad(`object of type ${type} is cut off at the end of the log`);
        return;
      }
      if (type === CAN_MESSAGE || type === CAN_MESSAGE2 || type === CAN_ERROR_EXT || type === CAN_FD_MESSAGE || type === CAN_FD_MESSAGE_64) {
        const f = this.frame(data, pos, headerSize, version, size, type);
        if (f) out.push(f);
      } else if (type === LOG_CONTAINER) {
        this.bad("a log container inside a log container");
      }
      pos += size;
    }
  }

  private resync(data: Buffer, pos: number): number {
    const next = data.indexOf("LOBJ", pos + 4, "latin1");
    return next < 0 ? data.length : next;
  }

  private frame(b: Buffer, pos: number, headerSize: number, version: number, size: number, type: number): Frame | undefined {
    if (!((version === 1 && headerSize >= 32) || (version === 2 && headerSize >= 40))) {
      this.bad(`object header version ${version} (size ${headerSize}) is not known`);
      return undefined;
    }
    // v1 and v2 headers keep the time flags and the 64-bit time at the same offsets
    const ticks = u32(b, pos + 28) * 4294967296 + u32(b, pos + 24);
    const t = this.start + ticks * (u32(b, pos + 16) === 1 ? 1e-5 : 1e-9);
    const p = pos + headerSize;
    const end = pos + size;
    if (type === CAN_MESSAGE || type === CAN_MESSAGE2) {
      if (p + 16 > end) return this.short(type, size, 16);
      const raw = u32(b, p + 4);
      const id = this.id(raw);
      if (id < 0) return undefined;
      const ext = (raw & CAN_MSG_EXT) !== 0;
      const bus = channelName(u16(b, p));
      const dlc = b[p + 3];
      if (b[p + 2] & REMOTE_FLAG) {
        const f: Frame = { id, ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, t, bus };
        if (dlc > 0) f.dlc = Math.min(dlc, 8);
        return f;
      }
      // A view into the unpacked container: no copy per frame.
      const data = new Uint8Array(b.buffer, b.byteOffset + p + 8, dlc > 8 ? 8 : dlc);
      return { id, ext, rtr: false, fd: false, brs: false, esi: false, err: false, data, t, bus };
    }
    if (type === CAN_ERROR_EXT) {
      if (p + 2 > end) return this.short(type, size, 2);
      const bus = channelName(u16(b, p));
      if (p + 32 > end || u16(b, p + 22) !== VGW_ERROR_MARK) return busErrorFrame(t, bus);
      const data = new Uint8Array(8);
      data.set(b.subarray(p + 24, p + 32));
      return { id: u32(b, p + 16) & CAN_EFF_MASK, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data, t, bus };
    }
    if (type === CAN_FD_MESSAGE) {
      if (p + 20 > end) return this.short(type, size, 20);
      const raw = u32(b, p + 4);
      const id = this.id(raw);
      if (id < 0) return undefined;
      const flags = b[p + 2];
      const dlc = b[p + 3] & 15;
      const fdFlags = b[p + 13];
      const valid = Math.min(b[p + 14], 64, end - (p + 20));
      const idExt = { id, ext: (raw & CAN_MSG_EXT) !== 0 };
      return this.fdFrame(idExt, (fdFlags & 1) !== 0, (fdFlags & 2) !== 0, (fdFlags & 4) !== 0, (flags & REMOTE_FLAG) !== 0, dlc, b, p + 20, valid, b[p + 14], t, channelName(u16(b, p)));
    }
    // CAN_FD_MESSAGE_64
    if (p + 40 > end) return this.short(type, size, 40);
    const raw = u32(b, p + 4);
    const id = this.id(raw);
    if (id < 0) return undefined;
    const dlc = b[p + 1] & 15;
    const validBytes = b[p + 2];
    const flags = u32(b, p + 12);
    const extOffset = b[p + 37];
    // vector_blf/CANoe: data ends at the ext data offset when one is given; bytes past the object read as zero.
    const limit = extOffset ? pos + extOffset : end;
    const available = Math.max(0, Math.min(validBytes, limit - (p + 40)));
    const idExt = { id, ext: (raw & CAN_MSG_EXT) !== 0 };
    return this.fdFrame(idExt, (flags & 0x1000) !== 0, (flags & 0x2000) !== 0, (flags & 0x4000) !== 0, (flags & 0x10) !== 0, dlc, b, p + 40, available, validBytes, t, channelName(b[p]));
  }

  private short(type: number, size: number, body: number): undefined {
    this.bad(`object of type ${type} is ${size} bytes, too short for its ${body}-byte body`);
    return undefined;
  }

  private fdFrame(
    id: { id: number; ext: boolean },
    edl: boolean,
    brs: boolean,
    esi: boolean,
    remote: boolean,
    dlc: number,
    b: Buffer,
    dataPos: number,
    available: number,
    declared: number,
    t: number,
    bus: string,
  ): Frame | undefined {
    if (remote) {
      if (edl) {
        this.bad("CAN FD frame flagged remote: CAN FD has no remote frames");
        return undefined;
      }
      const f: Frame = { id: id.id, ext: id.ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, t, bus };
      if (dlc > 0) f.dlc = Math.min(dlc, 8);
      return f;
    }
    let len = Math.min(declared, 64);
    if (!edl) len = Math.min(len, 8);
    else if (FD_LENGTHS.indexOf(len) < 0) {
      this.bad(`CAN FD data length ${len} is not one of ${FD_LENGTHS.join(",")}`);
      return undefined;
    }
    let data: Uint8Array;
    if (available >= len) data = new Uint8Array(b.buffer, b.byteOffset + dataPos, len);
    else {
      data = new Uint8Array(len);
      data.set(b.subarray(dataPos, dataPos + Math.max(0, available)));
    }
    return { id: id.id, ext: id.ext, rtr: false, fd: edl, brs: edl && brs, esi: edl && esi, err: false, data, t, bus };
  }

  /** The CAN ID of a BLF ID field (bit 31 = 29-bit), or -1 (reported) when it is not one. */
  private id(raw: number): number {
    const id = raw & CAN_EFF_MASK;
    if ((raw & 0x60000000) !== 0 || ((raw & CAN_MSG_EXT) === 0 && id > CAN_SFF_MASK)) {
      this.bad(`CAN ID 0x${(raw >>> 0).toString(16)} is out of range`);
      return -1;
    }
    return id;
  }
}

const CHANNELS: string[] = Array.from({ length: 256 }, (_, i) => String(i));

function channelName(n: number): string {
  return n < 256 ? CHANNELS[n] : String(n);
}


async function* readBlf(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  const input = new ByteStream(chunks[Symbol.asyncIterator]());
  const parser = new BlfParser(ctx);
  if (!(await input.ensure(FILE_HEADER_SIZE)) || input.peek(4).readUInt32LE(0) !== LOGG) {
    ctx.bad(0, "not a BLF file: no 'LOGG' header");
    return;
  }
  const head = input.peek(FILE_HEADER_SIZE);
  const headerSize = head.readUInt32LE(4);
  parser.start = systemTimeToEpoch(head, 40);
  input.skip(Math.max(headerSize, 72));
  for (;;) {
    if (!(await input.ensure(OBJ_BASE))) {
      // After a stop (Ctrl-C) the input ends mid-object: that is where it stopped, not damage.
      if (!ctx.stopped && input.available > 0 && input.peek(input.available).some((b) => b !== 0)) {
        parser.topOffset = input.offset;
        parser.bad(`${input.available} stray bytes at the end of the file`);
      }
      break;
    }
    parser.topIndex++;
    parser.topOffset = input.offset;
    const h = input.peek(OBJ_BASE);
    if (h.readUInt32LE(0) !== LOBJ) {
      // Top-level objects are padded to 4 bytes (python-can pads by size % 4): skip zero padding, else resync.
      let k = 0;
      while (k < 4 && h[k] === 0) k++;
      if (k > 0 && k < 4 && h.readUInt32LE(k) === LOBJ) {
        input.skip(k);
        parser.topIndex--;
        continue;
      }
      parser.bad("no object signature; looking for the next object");
      input.skip(1);
      while ((await input.ensure(4)) && input.peek(4).readUInt32LE(0) !== LOBJ) input.skip(1);
      parser.resetTail();
      continue;
    }
    const size = h.readUInt32LE(8);
    const type = h.readUInt32LE(12);
    if (size < OBJ_BASE || size > MAX_CONTAINER) {
      parser.bad(`object size ${size} is impossible; looking for the next object`);
      input.skip(4);
      parser.resetTail();
      continue;
    }
    if (!(await input.ensure(size))) {
      if (!ctx.stopped) parser.bad(`object of ${size} bytes is cut off by the end of the file`);
      input.skip(input.available);
      break;
    }
    const obj = input.peek(size);
    const out: Frame[] = [];
    try {
      if (type === LOG_CONTAINER) {
        const payload = container(obj, parser);
        if (payload) parser.objects(payload, out);
        else parser.resetTail();
      } else {
        parser.objects(Buffer.from(obj), out);
      }
    } catch (e) {
      if (out.length > 0) yield out;
      throw e;
    }
    input.skip(size);
    if (out.length > 0) yield out;
  }
  // What is left is the start of an object whose rest never came: damage at the end of a file, or where a stop cut it.
  if (ctx.stopped) return;
  const out: Frame[] = [];
  parser.objects(Buffer.alloc(0), out, true);
  if (out.length > 0) yield out;
}

/** A container's uncompressed payload, or undefined (reported) when it cannot be unpacked. */
function container(obj: Buffer, parser: BlfParser): Buffer | undefined {
  const headerSize = obj.readUInt16LE(4);
  if (obj.length < headerSize + 16) {
    parser.bad("log container too short for its header");
    return undefined;
  }
  const method = obj.readUInt16LE(headerSize);
  const uncompressed = obj.readUInt32LE(headerSize + 8);
  const payload = obj.subarray(headerSize + 16);
  if (method === 0) return Buffer.from(payload);
  if (method !== 2) {
    parser.bad(`unknown compression method ${method}`);
    return undefined;
  }
  if (uncompressed > MAX_CONTAINER) {
    parser.bad(`log container claims ${uncompressed} uncompressed bytes`);
    return undefined;
  }
  try {
    return zlib.inflateSync(payload, { maxOutputLength: Math.max(uncompressed, 1) });
  } catch (e) {
    parser.bad(`zlib data is corrupt (${(e as Error).message})`);
    return undefined;
  }
}

/** Uncompressed bytes per log container, as Vector's tools and python-can write them. */
const CONTAINER_SIZE = 128 * 1024;
/** zlib's defaults (level 6), in one 256 KB output chunk: a container never needs more, so no chunks are joined. */
const DEFLATE_OPTIONS: zlib.ZlibOptions = { chunkSize: 256 << 10 };
/**
 * Pieces a writer may hold before encode() waits for zlib: enough to keep the second core compressing while the
 * first packs frames, few enough that memory stays some hundreds of KB (plus the containers one batch fills).
 */
const MAX_AHEAD = 4;

/** One piece of a BLF file being written: its bytes once known (a container: once zlib is done with it). */
interface Piece {
  bytes?: Buffer;
  failed?: Error;
  done: Promise<void>;
}

/**
 * Writes CAN_MESSAGE, CAN_FD_MESSAGE and CAN_ERROR_EXT objects (what python-can writes and CANoe reads) in
 * zlib log containers; times in nanoseconds from the file's start, which is the first frame's time cut to the
 * millisecond (SYSTEMTIME's resolution), so absolute times survive a round trip.
 */
function createBlfWriter(): FormatWriter {
  let start: number | undefined;
  let stop = 0;
  let count = 0;
  let uncompressedTotal = FILE_HEADER_SIZE;
  let fileSize = 0;
  let lastT = 0;
  let pending = Buffer.alloc(CONTAINER_SIZE + 256);
  let used = 0;
  const channels = new ChannelNumbers();
  // The file's pieces in order: the header, then containers, each compressed on the thread pool while the next frames
  // are packed (zlib is most of a BLF writer's time), and handed out once it and all before it are done.
  const queue: Piece[] = [];

  const header = (): Buffer => {
    const h = Buffer.alloc(FILE_HEADER_SIZE);
    h.writeUInt32LE(LOGG, 0);
    h.writeUInt32LE(FILE_HEADER_SIZE, 4);
    h[8] = 5; // application id (python-can's); binlog version 2.6.8.1
    h[12] = 2;
    h[13] = 6;
    h[14] = 8;
    h[15] = 1;
    h.writeBigUInt64LE(BigInt(fileSize), 16);
    h.writeBigUInt64LE(BigInt(uncompressedTotal), 24);
    h.writeUInt32LE(count, 32);
    writeSystemTime(h, 40, start);
    writeSystemTime(h, 56, start === undefined ? undefined : stop);
    return h;
  };

  /** The full container goes to zlib on the thread pool; packing goes on in a fresh (zeroed) buffer. */
  const seal = (): void => {
    if (used === 0) return;
    const input = pending.subarray(0, used);
    pending = Buffer.alloc(CONTAINER_SIZE + 256);
    used = 0;
    const piece: Piece = { done: Promise.resolve() };
    piece.done = new Promise((resolve) =>
      zlib.deflate(input, DEFLATE_OPTIONS, (e, packed) => {
        if (e) piece.failed = e;
        else piece.bytes = containerObject(packed, input.length);
        resolve();
      }),
    );
    queue.push(piece);
  };

  /** LOG_CONTAINER object around `packed` (zlib of `size` bytes of objects), padded to 4 bytes. */
  const containerObject = (packed: Buffer, size: number): Buffer => {
    const objSize = 32 + packed.length;
    const pad = objSize % 4;
    const out = Buffer.alloc(objSize + pad);
    out.writeUInt32LE(LOBJ, 0);
    out.writeUInt16LE(OBJ_BASE, 4);
    out.writeUInt16LE(1, 6);
    out.writeUInt32LE(objSize, 8);
    out.writeUInt32LE(LOG_CONTAINER, 12);
    out.writeUInt16LE(2, 16);
    out.writeUInt32LE(size, 24);
    packed.copy(out, 32);
    uncompressedTotal += 32 + size;
    fileSize += out.length;
    return out;
  };

  /** The finished pieces at the head of the queue, in file order. */
  const ready = (): Buffer => {
    const out: Buffer[] = [];
    while (queue.length > 0 && (queue[0].bytes || queue[0].failed)) {
      const piece = queue.shift() as Piece;
      if (piece.failed) throw piece.failed;
      out.push(piece.bytes as Buffer);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };

  /** Starts an object of `type` at `used` (the buffer is zero there); returns where its body starts. */
  const object = (type: number, t: number, bodySize: number): number => {
    const size = 32 + bodySize;
    const b = pending;
    const p = used;
    put32(b, p, LOBJ);
    b[p + 4] = 32;
    b[p + 6] = 1;
    put32(b, p + 8, size);
    b[p + 12] = type;
    b[p + 16] = 2; // nanoseconds
    const ns = Math.max(0, Math.round((t - (start as number)) * 1e9));
    if (ns >= 2 ** 64) b.writeUInt32LE(Math.floor(ns / 4294967296), 0); // the RangeError of a u64 field
    put32(b, p + 24, ns % 4294967296);
    put32(b, p + 28, Math.floor(ns / 4294967296));
    used += size + (size % 4 ? 4 - (size % 4) : 0);
    count++;
    return p + 32;
  };

  return {
    begin: () => "",
    encode(frames) {
      for (const f of frames) {
        const b = pending;
        const t = f.t ?? lastT;
        lastT = t;
        if (start === undefined) {
          start = t >= 631152000 ? Math.floor(t * 1000) / 1000 : 0;
          queue.push({ bytes: header(), done: Promise.resolve() });
          fileSize = FILE_HEADER_SIZE;
        }
        stop = t;
        const ch = channels.get(f.bus);
        if (ch > 0xffff) b.writeUInt16LE(ch, 0); // the RangeError a u16 field gives any larger number
        const rawId = (f.ext ? CAN_MSG_EXT : 0) | f.id;
        if (f.err) {
          // channel, length, flags, ecc, position, dlc, -, frame length, ID = the error class, flagsExt, -, data
          const p = object(CAN_ERROR_EXT, t, 32);
          b[p] = ch;
          b[p + 1] = ch >> 8;
          b[p + 10] = 8;
          put32(b, p + 16, f.id >>> 0);
          b[p + 22] = VGW_ERROR_MARK & 0xff;
          b[p + 23] = VGW_ERROR_MARK >> 8;
          const details = f.data;
          for (let k = 0; k < 8 && k < details.length; k++) b[p + 24 + k] = details[k];
        } else if (f.fd) {
          const p = object(CAN_FD_MESSAGE, t, 84);
          const data = f.data;
          const len = data.length;
          b[p] = ch;
          b[p + 1] = ch >> 8;
          b[p + 3] = lengthToDlc(len);
          put32(b, p + 4, rawId >>> 0);
          b[p + 13] = 1 | (f.brs ? 2 : 0) | (f.esi ? 4 : 0);
          b[p + 14] = len;
          for (let k = 0; k < len; k++) b[p + 20 + k] = data[k];
        } else {
          const p = object(CAN_MESSAGE, t, 16);
          const data = f.data;
          const len = data.length;
          b[p] = ch;
          b[p + 1] = ch >> 8;
          b[p + 2] = f.rtr ? REMOTE_FLAG : 0;
          b[p + 3] = f.rtr ? (f.dlc ?? 0) : len;
          put32(b, p + 4, rawId >>> 0);
          for (let k = 0; k < len; k++) b[p + 8 + k] = data[k];
        }
        if (used >= CONTAINER_SIZE) seal();
      }
      const done = ready();
      if (queue.length <= MAX_AHEAD) return done;
      // zlib has fallen behind: wait for the oldest containers, so memory stays bounded.
      return (async () => {
        const parts = [done];
        while (queue.length > MAX_AHEAD) {
          await queue[0].done;
          parts.push(ready());
        }
        return Buffer.concat(parts);
      })();
    },
    async finish() {
      seal();
      await Promise.all(queue.map((piece) => piece.done));
      const tail = ready();
      // An empty trace still gets a valid header.
      if (start === undefined) {
        fileSize = FILE_HEADER_SIZE;
        return { tail: header() };
      }
      return { tail, headerPatch: header() };
    },
  };
}

/** Little-endian u32 without Buffer's range checks (the writer's hot path; values are u32 by construction). */
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

export const blfFormat: TraceFormat = {
  name: "blf",
  extensions: [".blf"],
  description: "Vector BLF (binary logging format), classic and CAN FD, zlib containers",
  binary: true,
  // About 20 bytes per frame on disk: 128 KB holds some 6,000 frames (measured best of 64 KB, 128 KB, 512 KB).
  chunkSize: 128 << 10,
  read: readBlf,
  createWriter: createBlfWriter,
};

registerFormat(blfFormat);
