/**
 * ASAM MDF 4 (MF4) bus logging: the format of CSS Electronics' CANedge loggers and of asammdf. The layout is the one
 * of the ASAM MDF 4.1 specification and its "bus logging" associated standard (facts taken from the published block
 * layouts; no code taken from any implementation):
 *
 *   ID   64 bytes at 0: "MDF     " (or "UnFinMF " for a file its logger did not finalise), "4.11", u16 version
 *        at 28, u16 unfinalised flags at 60
 *   every other block: "##XX", 4 reserved, u64 length, u64 link count, links (u64 file offsets), data; 8-aligned
 *   HD   links: first DG, first FH, ... ; data: u64 start time (ns since 1970, UTC), tz/dst offsets, time flags
 *   DG   links: next DG, first CG, data, comment; data: u8 record id size (0 = sorted: one CG per DG)
 *   CG   links: next CG, first CN, acquisition name (TX), source (SI), -, comment;
 *        data: u64 record id, u64 cycle count, u16 flags (1 VLSD, 2 bus event), 2 -, 4 -, u32 data bytes, u32 inval bytes
 *   CN   links: next CN, composition (first child CN), name (TX), source, conversion (CC), data (SD/VLSD CG), unit,
 *        comment; data: u8 type (0 fixed, 1 VLSD, 2 master), u8 sync type (1 time), u8 data type, u8 bit offset,
 *        u32 byte offset, u32 bit count, u32 flags
 *   CC   data: u8 type (0 identity, 1 linear), ..., values (f64; linear: offset, factor)
 *   DT/SD raw records / variable-length values (u32 length, bytes); DZ: "DT"/"SD", u8 zip type (0 deflate,
 *        1 transposed then deflated, the parameter being the row length), u32 parameter, u64 original and
 *        compressed length, zlib data; DL: next DL, data blocks, u8 flags, u32 count, u64 offsets; HL: first DL
 *
 * A bus-logging channel group carries one of CAN_DataFrame, CAN_RemoteFrame, CAN_ErrorFrame: a byte-array channel
 * composed of the channels <name>.BusChannel, .ID, .IDE, .DLC, .DataLength, .DataBytes, .BRS, .ESI, .EDL, .Dir
 * (and .ErrorType for error frames), beside the master channel (Timestamp, seconds from the HD start time).
 * DataBytes is a fixed-length byte array (asammdf) or a VLSD channel whose values live in an SD block (sorted
 * groups) or in the records of a VLSD channel group (unsorted groups, as CANedge writes them, right after the frame's
 * record). Newer CANedge firmware gives constant members (BusChannel, IDE, Dir) as virtual channels (their raw value
 * is the record index, their conversion a constant) and DataLength as a value-to-value table over the DLC bits.
 * CANedge files are unfinalised ("UnFinMF"): cycle counts and the last DT block's length are not written, so that
 * block runs to the end of the file.
 *
 * Frame.t = HD start time (epoch seconds) + Timestamp. Frame.bus = BusChannel as a number ("1", as CANedge and
 * Vector number channels). Frames of several data groups are merged by time. Groups that are not CAN bus logging
 * (LIN, signals) are passed over with one note. Anything this reader does not handle (other MDF versions, data
 * types, conversions, compressions, damaged blocks) is reported with the block kind and byte offset, and that part
 * of the file is skipped: never a crash, never a silent skip.
 *
 * MF4 is not a stream: blocks link to each other by file offset. The reader opens the file itself for random
 * access (ReadContext.source); stdin or a gzip-compressed file is first spooled to a temporary file.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { promisify } from "util";
import type { Frame } from "../../frame/frame";
import { CAN_EFF_MASK, CAN_SFF_MASK, FD_LENGTHS, lengthToDlc } from "../../frame/frame";
import { busErrorFrame } from "../../frame/error-frame";
import { log } from "../log";
import { registerFormat, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { ChannelNumbers } from "./channel";

const inflate = promisify(zlib.inflate);
const deflate = promisify(zlib.deflate);

const ID_SIZE = 64;
const EMPTY = new Uint8Array(0);
const HEADER = 24;
/** Largest block of metadata or decompressed data this reader accepts: a bigger one is damage, not a real file's. */
const MAX_BLOCK = 256 << 20;
/** Bytes per read of an uncompressed data block. */
const WINDOW = 1 << 20;
/** Frames per yielded batch. */
const BATCH = 4096;

const CG_VLSD = 1;
const CG_BUS_EVENT = 2;
const CG_PLAIN_BUS_EVENT = 4;
const CN_FIXED = 0;
const CN_VLSD = 1;
const CN_MASTER = 2;
const CN_VIRTUAL_MASTER = 3;
/** Virtual data channel: its raw value is the record's index in its group; CANedge gives constants this way. */
const CN_VIRTUAL_DATA = 6;
const SYNC_TIME = 1;
const DT_UINT_LE = 0;
const DT_UINT_BE = 1;
const DT_INT_LE = 2;
const DT_INT_BE = 3;
const DT_FLOAT_LE = 4;
const DT_FLOAT_BE = 5;
const DT_BYTES = 10;
const CN_BUS_EVENT_FLAG = 1 << 10;

/** Unfinalised-file flags (id_unfin_flags) a reader can live with: cycle counts, last DT length, VLSD CG sizes. */
const UNFIN_CYCLE_COUNTS = 1;
const UNFIN_SR_COUNTS = 2;
const UNFIN_LAST_DT = 4;
const UNFIN_LAST_RD = 8;
const UNFIN_VLSD_CG_SIZE = 32;
const UNFIN_HANDLED = UNFIN_CYCLE_COUNTS | UNFIN_SR_COUNTS | UNFIN_LAST_DT | UNFIN_LAST_RD | UNFIN_VLSD_CG_SIZE;

/** The three CAN frame kinds of the bus logging standard, by the name of their composed channel. */
type FrameKind = "CAN_DataFrame" | "CAN_RemoteFrame" | "CAN_ErrorFrame";
const FRAME_KINDS: readonly FrameKind[] = ["CAN_DataFrame", "CAN_RemoteFrame", "CAN_ErrorFrame"];

/**
 * CAN_ErrorFrame.ErrorType (ASAM bus logging: 0 unknown, 1 bit, 2 form, 3 bit stuffing, 4 CRC, 5 acknowledgement)
 * as Linux error frames: class bits in the ID, details in the data bytes (linux/can/error.h).
 */
const CAN_ERR_PROT = 0x08;
const CAN_ERR_ACK = 0x20;
const CAN_ERR_BUSERROR = 0x80;
function errorFrameOf(type: number, t: number, bus: string): Frame {
  const f = busErrorFrame(t, bus);
  if (type >= 1 && type <= 4) {
    f.id = CAN_ERR_PROT | CAN_ERR_BUSERROR;
    if (type === 4) f.data[3] = 0x08; // CAN_ERR_PROT_LOC_CRC_SEQ
    else f.data[2] = [0, 0x01, 0x02, 0x04][type]; // CAN_ERR_PROT_BIT, _FORM, _STUFF
  } else if (type === 5) f.id = CAN_ERR_ACK | CAN_ERR_BUSERROR;
  return f;
}
/** The ErrorType a Linux error frame is written as (the inverse of errorFrameOf; 0 for everything else). */
function errorTypeOf(f: Frame): number {
  if (f.id & CAN_ERR_ACK) return 5;
  if (f.id & CAN_ERR_PROT) {
    if (f.data[3] === 0x08) return 4;
    const p = f.data[2] ?? 0;
    if (p & 0x01) return 1;
    if (p & 0x02) return 2;
    if (p & 0x04) return 3;
  }
  return 0;
}

/** A problem found in the file, at the block it concerns: reported as `<file>:<offset>: <block> block at byte ...`. */
class Mf4Error extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A problem as an Mf4Error: a field read past the end of a block that is shorter than its kind's layout (damage no
 * check above caught) becomes a report at the block being read; anything else (a failing disk, a bug) goes on up.
 */
function asMf4Error(e: unknown, offset = 0): Mf4Error {
  if (e instanceof Mf4Error) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (e instanceof RangeError && (code === "ERR_OUT_OF_RANGE" || code === "ERR_BUFFER_OUT_OF_BOUNDS")) {
    return new Mf4Error(offset, `block at byte ${offset}: damaged (a field lies outside its block: ${e.message})`);
  }
  throw e;
}

function u64(b: Buffer, o: number): number {
  const v = b.readBigUInt64LE(o);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

interface Block {
  offset: number;
  id: string;
  length: number;
  links: number[];
  data: Buffer;
}

/** The file, read by offset. */
class Mf4File {
  constructor(
    private readonly fh: fs.promises.FileHandle,
    readonly size: number,
  ) {}

  async bytes(offset: number, length: number): Promise<Buffer> {
    const b = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(b, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? b : b.subarray(0, got);
  }

  /** One block, checked: its id is one of `expected` and it lies inside the file. */
  async block(offset: number, expected: string[], what: string): Promise<Block> {
    if (offset < ID_SIZE || offset % 8 !== 0 || offset + HEADER > this.size) {
      throw new Mf4Error(offset, `${what}: link to byte ${offset} is outside the file or not 8-aligned`);
    }
    const h = await this.bytes(offset, HEADER);
    const id = h.toString("latin1", 0, 4);
    if (!id.startsWith("##") || !expected.includes(id.slice(2))) {
      throw new Mf4Error(offset, `${what}: expected a ${expected.join("/")} block at byte ${offset}, found ${JSON.stringify(id)}`);
    }
    const length = u64(h, 8);
    const linkCount = u64(h, 16);
    const kind = id.slice(2);
    // Data blocks are read in windows by the data stream, never whole here.
    const isData = kind === "DT" || kind === "SD" || kind === "RD" || kind === "DZ";
    const readLength = isData ? Math.min(length, HEADER + 24 + linkCount * 8) : length;
    if (length < HEADER + linkCount * 8 || (!isData && length > MAX_BLOCK) || offset + readLength > this.size) {
      throw new Mf4Error(offset, `${kind} block at byte ${offset}: length ${length} with ${linkCount} links does not fit the file`);
    }
    const b = await this.bytes(offset, readLength);
    const links: number[] = [];
    for (let i = 0; i < linkCount; i++) links.push(u64(b, HEADER + 8 * i));
    return { offset, id: kind, length, links, data: b.subarray(HEADER + 8 * linkCount) };
  }

  async text(offset: number): Promise<string> {
    if (offset === 0) return "";
    const b = await this.block(offset, ["TX", "MD"], "name");
    const end = b.data.indexOf(0);
    return b.data.toString("utf8", 0, end < 0 ? b.data.length : end).trim();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Data streams: the bytes of a data group (or of an SD block) as one logical stream over DT/SD/DZ/DL/HL blocks.

interface Fragment {
  /** Offset of the fragment's first byte in the logical stream. */
  logical: number;
  length: number;
  /** File offset of the block. */
  block: number;
  /** File offset of the raw bytes (uncompressed blocks). */
  file: number;
  zip?: { type: number; param: number; compressed: number };
}

class DataStream {
  private cacheStart = -1;
  private cache: Buffer = Buffer.alloc(0);
  constructor(
    private readonly file: Mf4File,
    readonly fragments: Fragment[],
    readonly length: number,
  ) {}

  /** Builds the fragment list of a DG's (or a channel's) data link; `kinds` are the raw block kinds allowed. */
  static async open(file: Mf4File, link: number, kinds: string[], unfinLastDt: boolean, report?: (e: Mf4Error) => void): Promise<DataStream> {
    const fragments: Fragment[] = [];
    let logical = 0;
    const add = async (offset: number): Promise<void> => {
      const b = await file.block(offset, [...kinds, "DZ"], "data list entry");
      if (b.id === "DZ") {
        if (b.data.length < 24) throw new Mf4Error(offset, `DZ block at byte ${offset}: too short`);
        const org = b.data.toString("latin1", 0, 2);
        const type = b.data[2];
        const param = b.data.readUInt32LE(4);
        const orgLength = u64(b.data, 8);
        const compressed = u64(b.data, 16);
        if (!kinds.includes(org)) throw new Mf4Error(offset, `DZ block at byte ${offset}: holds a ${org} block where ${kinds.join("/")} was expected`);
        if (type > 1) throw new Mf4Error(offset, `DZ block at byte ${offset}: compression type ${type} is not supported (0 deflate, 1 transposed deflate)`);
        if (type === 1 && param === 0) throw new Mf4Error(offset, `DZ block at byte ${offset}: transposition with 0 columns`);
        if (orgLength > MAX_BLOCK || offset + HEADER + 24 + compressed > file.size) {
          throw new Mf4Error(offset, `DZ block at byte ${offset}: ${compressed} compressed / ${orgLength} original bytes do not fit`);
        }
        fragments.push({ logical, length: orgLength, block: offset, file: offset + HEADER + 24, zip: { type, param, compressed } });
        logical += orgLength;
      } else {
        let length = b.length - HEADER;
        if (unfinLastDt) length = file.size - (offset + HEADER); // the logger never wrote the last block's length
        else if (offset + b.length > file.size) {
          // A file cut short (a copy that stopped): keep what is there.
          const e = new Mf4Error(offset, `${b.id} block at byte ${offset}: ${b.length} bytes run past the end of the file; reading the ${file.size - offset} that are there`);
          if (!report) throw e;
          report(e);
          length = file.size - (offset + HEADER);
        }
        fragments.push({ logical, length, block: offset, file: offset + HEADER });
        logical += length;
      }
    };
    if (link === 0) return new DataStream(file, fragments, 0);
    let first = await file.block(link, [...kinds, "DZ", "DL", "HL"], "data");
    if ((first.id === "HL" || first.id === "DL") && (first.data.length < 8 || first.links.length < 1)) {
      throw new Mf4Error(link, `${first.id} block at byte ${link}: too short for a data list`);
    }
    if (first.id === "HL") {
      if (first.links[0] === 0) return new DataStream(file, fragments, 0);
      first = await file.block(first.links[0], ["DL"], "HL's data list");
    }
    if (first.id !== "DL") {
      await add(link);
    } else {
      const seen = new Set<number>();
      let dl: Block | undefined = first;
      while (dl) {
        if (seen.has(dl.offset)) throw new Mf4Error(dl.offset, `DL block at byte ${dl.offset}: the list of data blocks loops`);
        seen.add(dl.offset);
        if (dl.data.length < 8 || dl.links.length < 1) throw new Mf4Error(dl.offset, `DL block at byte ${dl.offset}: too short for a data list`);
        const count = dl.data.readUInt32LE(4);
        if (count > dl.links.length - 1) throw new Mf4Error(dl.offset, `DL block at byte ${dl.offset}: ${count} entries but ${dl.links.length - 1} links`);
        for (let i = 1; i <= count; i++) if (dl.links[i] !== 0) await add(dl.links[i]);
        dl = dl.links[0] ? await file.block(dl.links[0], ["DL"], "next data list") : undefined;
      }
    }
    return new DataStream(file, fragments, logical);
  }

  /** The fragment's bytes, decompressed (a raw fragment: from `from`, at most WINDOW bytes). */
  private async load(fr: Fragment, from: number): Promise<Buffer> {
    if (!fr.zip) return this.file.bytes(fr.file + from, Math.min(WINDOW, fr.length - from));
    const packed = await this.file.bytes(fr.file, fr.zip.compressed);
    let out: Buffer;
    try {
      out = await inflate(packed, { maxOutputLength: Math.max(fr.length, 1) });
    } catch (e) {
      throw new Mf4Error(fr.block, `DZ block at byte ${fr.block}: zlib data is corrupt (${(e as Error).message})`);
    }
    if (out.length !== fr.length) throw new Mf4Error(fr.block, `DZ block at byte ${fr.block}: inflates to ${out.length} bytes, not the ${fr.length} it declares`);
    return fr.zip.type === 1 ? untranspose(out, fr.zip.param) : out;
  }

  /** The logical stream from its start, in pieces (each a fragment or a window of one). */
  async *pieces(stopped: () => boolean): AsyncGenerator<Buffer> {
    for (const fr of this.fragments) {
      for (let at = 0; at < fr.length; ) {
        if (stopped()) return;
        const b = await this.load(fr, at);
        if (b.length === 0) break; // a raw block cut short by the end of the file
        yield b;
        at += b.length;
      }
    }
  }

  /** `length` bytes at logical `offset` (VLSD values); undefined past the end. Sequential reads hit the cache. */
  async read(offset: number, length: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let need = length;
    let at = offset;
    while (need > 0) {
      if (!(at >= this.cacheStart && at < this.cacheStart + this.cache.length)) {
        const fr = this.fragmentAt(at);
        if (!fr) return undefined;
        const from = fr.zip ? 0 : at - fr.logical;
        this.cache = await this.load(fr, from);
        this.cacheStart = fr.logical + from;
        if (this.cache.length === 0) return undefined;
      }
      const i = at - this.cacheStart;
      const take = Math.min(need, this.cache.length - i);
      parts.push(this.cache.subarray(i, i + take));
      need -= take;
      at += take;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  private fragmentAt(at: number): Fragment | undefined {
    let lo = 0;
    let hi = this.fragments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const fr = this.fragments[mid];
      if (at < fr.logical) hi = mid - 1;
      else if (at >= fr.logical + fr.length) lo = mid + 1;
      else return fr;
    }
    return undefined;
  }
}

/** Rows per tile when (un)transposing: a tile of rows stays in the L1 cache while its columns are gathered. */
const TILE = 64;

/** Undoes DZ transposition: the first rows*cols bytes were stored column by column; the rest as they were. */
function untranspose(b: Buffer, cols: number): Buffer {
  const rows = Math.floor(b.length / cols);
  if (rows <= 1) return b;
  const out = Buffer.allocUnsafe(b.length);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c = 0; c < cols; c++) {
      let src = c * rows + r0;
      for (let r = r0, dst = r0 * cols + c; r < r1; r++, dst += cols) out[dst] = b[src++];
    }
  }
  b.copy(out, rows * cols, rows * cols);
  return out;
}

/** Transposes the first rows*cols bytes (rows of `cols` bytes become columns), for DZ type 1. */
function transpose(b: Buffer, cols: number): Buffer {
  const rows = Math.floor(b.length / cols);
  if (rows <= 1) return b;
  const out = Buffer.allocUnsafe(b.length);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c = 0; c < cols; c++) {
      let dst = c * rows + r0;
      for (let r = r0, src = r0 * cols + c; r < r1; r++, src += cols) out[dst++] = b[src];
    }
  }
  b.copy(out, rows * cols, rows * cols);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata: the channel groups that hold CAN frames, and how to pull each field out of a record.

/** One channel's place in the record and how to read it. */
interface Field {
  name: string;
  block: number;
  type: number;
  dataType: number;
  byteOffset: number;
  bitOffset: number;
  bitCount: number;
  /** VLSD: the SD stream (sorted) or the record id of the VLSD channel group (unsorted). */
  dataLink: number;
  /** The conversion to the physical value (CC block), or undefined for identity. */
  convert?: (raw: number) => number;
}

interface CanGroup {
  kind: FrameKind;
  block: number;
  recordId: number;
  /** Record length after the record id: data bytes + invalidation bytes. */
  size: number;
  time: Field;
  fields: Map<string, Field>;
  cycles: number;
  /** Records of this group decoded so far: the raw value of its virtual channels. */
  index: number;
  /** The numeric member channels by their short name, looked up once (the per-record path reads these). */
  access: Partial<Record<"BusChannel" | "ErrorType" | "ID" | "IDE" | "DLC" | "DataLength" | "EDL" | "BRS" | "ESI", Field>>;
  /** DataBytes when it is a VLSD channel of a sorted group (its values in an SD block). */
  sdBytes?: Field;
}

interface DataGroup {
  block: number;
  recordIdSize: number;
  data: number;
  /** Channel groups by record id: CAN groups, VLSD groups (their record length is in each record), others. */
  groups: Map<number, CanGroup | { vlsd: true; block: number } | { other: string; size: number }>;
  /** CG block offset -> record id, for VLSD channels that point at a VLSD channel group. */
  cgRecordIds: Map<number, number>;
}

async function readField(file: Mf4File, cn: Block, name: string): Promise<Field> {
  const d = cn.data;
  if (d.length < 16 || cn.links.length < 6) throw new Mf4Error(cn.offset, `CN block at byte ${cn.offset} (${name}): too short`);
  const f: Field = {
    name,
    block: cn.offset,
    type: d[0],
    dataType: d[2],
    bitOffset: d[3],
    byteOffset: d.readUInt32LE(4),
    bitCount: d.readUInt32LE(8),
    dataLink: cn.links[5] ?? 0,
  };
  const ccLink = cn.links[4] ?? 0;
  if (ccLink !== 0) {
    const cc = await file.block(ccLink, ["CC"], `conversion of ${name}`);
    if (cc.data.length < 24) throw new Mf4Error(ccLink, `CC block at byte ${ccLink} (${name}): too short for a conversion`);
    const type = cc.data[0];
    const count = cc.data.readUInt16LE(6);
    if (cc.data.length < 24 + 8 * count) throw new Mf4Error(ccLink, `CC block at byte ${ccLink} (${name}): ${count} values do not fit the block`);
    const values = Array.from({ length: count }, (_, i) => cc.data.readDoubleLE(24 + 8 * i));
    if (type === 1) {
      if (count < 2) throw new Mf4Error(ccLink, `CC block at byte ${ccLink} (${name}): a linear conversion without its 2 values`);
      const [offset, factor] = values;
      f.convert = (raw) => offset + factor * raw;
    } else if (type === 4 || type === 5) {
      // Value to value (CANedge maps DLC to DataLength this way): the nearest key's value (type 4 would interpolate
      // between keys; bus logging tables only hit keys exactly).
      const keys = values.filter((_, i) => i % 2 === 0);
      const vals = values.filter((_, i) => i % 2 === 1);
      if (keys.length === 0) throw new Mf4Error(ccLink, `CC block at byte ${ccLink} (${name}): an empty value table`);
      f.convert = (raw) => {
        let best = 0;
        for (let i = 1; i < keys.length; i++) if (Math.abs(keys[i] - raw) < Math.abs(keys[best] - raw)) best = i;
        return vals[best];
      };
    } else if (type !== 0 && !(type >= 7 && type <= 11)) {
      // Text conversions (value to text and the like) only name raw values: the raw value is what a frame needs.
      throw new Mf4Error(ccLink, `CC block at byte ${ccLink} (${name}): conversion type ${type} is not supported (identity, linear and text tables are)`);
    }
  }
  return f;
}

/** Reads the metadata of every data group; reports (and leaves out) groups it cannot use. */
async function readGroups(file: Mf4File, firstDg: number, report: (e: Mf4Error) => void): Promise<DataGroup[]> {
  const out: DataGroup[] = [];
  const seen = new Set<number>();
  for (let dgLink = firstDg; dgLink !== 0; ) {
    if (seen.has(dgLink)) throw new Mf4Error(dgLink, `DG block at byte ${dgLink}: the list of data groups loops`);
    seen.add(dgLink);
    const dg = await file.block(dgLink, ["DG"], "data group");
    if (dg.data.length < 1 || dg.links.length < 3) throw new Mf4Error(dg.offset, `DG block at byte ${dg.offset}: too short for a data group`);
    const recordIdSize = dg.data[0];
    if (![0, 1, 2, 4, 8].includes(recordIdSize)) throw new Mf4Error(dg.offset, `DG block at byte ${dg.offset}: record id size ${recordIdSize} is not 0, 1, 2, 4 or 8`);
    const group: DataGroup = { block: dg.offset, recordIdSize, data: dg.links[2], groups: new Map(), cgRecordIds: new Map() };
    const seenCg = new Set<number>();
    for (let cgLink = dg.links[1]; cgLink !== 0; ) {
      if (seenCg.has(cgLink)) throw new Mf4Error(cgLink, `CG block at byte ${cgLink}: the list of channel groups loops`);
      seenCg.add(cgLink);
      const cg = await file.block(cgLink, ["CG"], "channel group");
      if (cg.data.length < 32 || cg.links.length < 3) throw new Mf4Error(cg.offset, `CG block at byte ${cg.offset}: too short for a channel group`);
      const recordId = u64(cg.data, 0);
      const cycles = u64(cg.data, 8);
      const flags = cg.data.readUInt16LE(16);
      const size = cg.data.readUInt32LE(24) + cg.data.readUInt32LE(28);
      group.cgRecordIds.set(cg.offset, recordId);
      if (flags & CG_VLSD) group.groups.set(recordId, { vlsd: true, block: cg.offset });
      else {
        try {
          const can = await canGroup(file, cg, recordId, size, cycles);
          if (can) group.groups.set(recordId, can);
          else {
            const name = (await file.text(cg.links[2])) || `record id ${recordId}`;
            group.groups.set(recordId, { other: name, size });
          }
        } catch (e) {
          report(asMf4Error(e, cg.offset));
          group.groups.set(recordId, { other: "", size }); // reported above: no note
        }
      }
      cgLink = cg.links[0];
    }
    out.push(group);
    dgLink = dg.links[0];
  }
  return out;
}

/** The CAN frame group a CG holds, or undefined when it holds something else. */
async function canGroup(file: Mf4File, cg: Block, recordId: number, size: number, cycles: number): Promise<CanGroup | undefined> {
  const channels = new Map<string, Block>();
  let time: Field | undefined;
  let kind: FrameKind | undefined;
  const walk = async (first: number, depth: number): Promise<void> => {
    const seen = new Set<number>();
    for (let cnLink = first; cnLink !== 0; ) {
      if (seen.has(cnLink) || seen.size > 4096) throw new Mf4Error(cnLink, `CN block at byte ${cnLink}: the list of channels loops`);
      seen.add(cnLink);
      const cn = await file.block(cnLink, ["CN"], "channel");
      if (cn.data.length < 16 || cn.links.length < 6) throw new Mf4Error(cn.offset, `CN block at byte ${cn.offset}: too short for a channel`);
      const name = await file.text(cn.links[2]);
      const short = name.slice(name.lastIndexOf(".") + 1);
      if ((cn.data[0] === CN_MASTER || cn.data[0] === CN_VIRTUAL_MASTER) && cn.data[1] === SYNC_TIME) time = await readField(file, cn, name);
      else if ((FRAME_KINDS as readonly string[]).includes(short) && !kind) kind = short as FrameKind;
      const kindOf = FRAME_KINDS.find((k) => name.startsWith(`${k}.`) || name.includes(`.${k}.`));
      if (kindOf) {
        kind = kind ?? kindOf;
        channels.set(short, cn);
      }
      // Composed channels (the frame structure) list their members under cn_composition (a CN, or a CA we skip).
      if (cn.links[1] && depth < 2) {
        const comp = await file.bytes(cn.links[1], 4);
        if (comp.toString("latin1") === "##CN") await walk(cn.links[1], depth + 1);
      }
      cnLink = cn.links[0];
    }
  };
  await walk(cg.links[1], 0);
  if (!kind) return undefined;
  if (!time) throw new Mf4Error(cg.offset, `CG block at byte ${cg.offset} (${kind}): no time master channel`);
  if (time.type === CN_VIRTUAL_MASTER) throw new Mf4Error(time.block, `CN block at byte ${time.block} (${time.name}): a virtual time channel (record index as time) is not supported`);
  const fields = new Map<string, Field>();
  for (const [short, cn] of channels) fields.set(short, await readField(file, cn, `${kind}.${short}`));
  const need = kind === "CAN_ErrorFrame" ? [] : ["ID"];
  for (const n of need) if (!fields.has(n)) throw new Mf4Error(cg.offset, `CG block at byte ${cg.offset} (${kind}): no ${kind}.${n} channel`);
  for (const f of [time, ...fields.values()]) checkField(f, size, kind);
  const access: CanGroup["access"] = {};
  for (const name of ["BusChannel", "ErrorType", "ID", "IDE", "DLC", "DataLength", "EDL", "BRS", "ESI"] as const) {
    const f = fields.get(name);
    if (f && f.dataType !== DT_BYTES) access[name] = f;
  }
  return { kind, block: cg.offset, recordId, size, time, fields, cycles, index: 0, access };
}

function checkField(f: Field, size: number, kind: string): void {
  const where = `CN block at byte ${f.block} (${f.name})`;
  if (f.type === CN_VIRTUAL_DATA) return;
  if (f.type !== CN_FIXED && f.type !== CN_VLSD && f.type !== CN_MASTER) throw new Mf4Error(f.block, `${where}: channel type ${f.type} is not supported in ${kind}`);
  const bytes = Math.ceil((f.bitOffset + f.bitCount) / 8);
  if (f.byteOffset + bytes > size) throw new Mf4Error(f.block, `${where}: bits ${f.byteOffset * 8 + f.bitOffset}+${f.bitCount} lie outside the ${size}-byte record`);
  if (f.type === CN_VLSD) {
    if (f.dataType !== DT_BYTES) throw new Mf4Error(f.block, `${where}: a VLSD channel of data type ${f.dataType} (only byte arrays are supported)`);
    if (f.bitCount > 64 || f.bitCount === 0) throw new Mf4Error(f.block, `${where}: a ${f.bitCount}-bit VLSD offset`);
    return;
  }
  if (f.dataType === DT_BYTES) return;
  const isInt = f.dataType <= DT_INT_BE;
  const isFloat = f.dataType === DT_FLOAT_LE || f.dataType === DT_FLOAT_BE;
  if (!isInt && !isFloat) throw new Mf4Error(f.block, `${where}: data type ${f.dataType} is not supported (integers, floats and byte arrays are)`);
  if (isInt && f.bitCount > 64) throw new Mf4Error(f.block, `${where}: a ${f.bitCount}-bit integer`);
  if (isFloat && f.bitCount !== 32 && f.bitCount !== 64) throw new Mf4Error(f.block, `${where}: a ${f.bitCount}-bit float`);
}

/** A numeric channel's physical value in the record starting at `r` (the `index`th of its group). */
function numeric(b: Buffer, r: number, f: Field, index: number): number {
  const raw = f.type === CN_VIRTUAL_DATA ? index : rawValue(b, r, f);
  return f.convert ? f.convert(raw) : raw;
}

function rawValue(b: Buffer, r: number, f: Field): number {
  const o = r + f.byteOffset;
  if (f.dataType === DT_FLOAT_LE) return f.bitCount === 64 ? b.readDoubleLE(o) : b.readFloatLE(o);
  if (f.dataType === DT_FLOAT_BE) return f.bitCount === 64 ? b.readDoubleBE(o) : b.readFloatBE(o);
  const bits = f.bitOffset + f.bitCount;
  if (f.dataType === DT_UINT_LE && bits <= 32) {
    // The hot path (every bus logging field but the time): up to 4 bytes, 32-bit integer arithmetic.
    let v = b[o];
    if (bits > 8) v |= b[o + 1] << 8;
    if (bits > 16) v |= b[o + 2] << 16;
    if (bits > 24) v |= b[o + 3] << 24;
    v = (v >>> f.bitOffset) >>> 0;
    return f.bitCount >= 32 ? v : v & ((1 << f.bitCount) - 1) >>> 0;
  }
  const n = Math.ceil(bits / 8);
  const be = f.dataType === DT_UINT_BE || f.dataType === DT_INT_BE;
  let v = 0;
  if (n <= 4 && bits <= 32) {
    // The hot path: small fields, plain number arithmetic.
    for (let i = 0; i < n; i++) v += b[o + (be ? i : n - 1 - i)] * 2 ** (8 * (n - 1 - i));
    v = Math.floor(v / 2 ** f.bitOffset) % 2 ** f.bitCount;
  } else {
    let big = 0n;
    for (let i = 0; i < n; i++) big = (big << 8n) | BigInt(b[o + (be ? i : n - 1 - i)]);
    big = (big >> BigInt(f.bitOffset)) & ((1n << BigInt(f.bitCount)) - 1n);
    v = Number(big);
  }
  if ((f.dataType === DT_INT_LE || f.dataType === DT_INT_BE) && v >= 2 ** (f.bitCount - 1)) v -= 2 ** f.bitCount;
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Records to frames.

/** Turns the records of one data group into frames, in record order. */
class GroupDecoder {
  private readonly vlsdValues = new Map<number, Map<number, Uint8Array>>();
  private readonly vlsdOffsets = new Map<number, number>();
  private readonly sd = new Map<number, DataStream>();
  /** Frames whose data bytes are in a VLSD record not read yet, by "<record id>:<VLSD offset>". */
  private readonly waiting = new Map<string, { frame: Frame; len: number; block: number; at: number }>();
  private readonly unresolved = new Set<Frame>();
  private readonly dropped = new Set<Frame>();
  private vlsdKey = "";
  /** VLSD values kept at most, per channel group, waiting for the record that refers to them. */
  private static readonly MAX_PENDING = 65536;
  passedOver = new Map<string, number>();

  constructor(
    private readonly file: Mf4File,
    private readonly dg: DataGroup,
    private readonly start: number,
    private readonly bad: (offset: number, reason: string) => void,
    private readonly unfinLastDt: boolean,
  ) {}

  async *frames(stopped: () => boolean): AsyncGenerator<Frame[]> {
    const stream = await DataStream.open(this.file, this.dg.data, ["DT"], this.unfinLastDt, (e) => this.bad(e.offset, e.message));
    // SD streams of sorted VLSD channels, opened once.
    for (const g of this.dg.groups.values()) {
      if (!("kind" in g)) continue;
      for (const f of g.fields.values()) {
        if (f.type === CN_VLSD && this.dg.recordIdSize === 0) {
          if (f.name.endsWith(".DataBytes")) g.sdBytes = f;
          if (!this.sd.has(f.dataLink)) this.sd.set(f.dataLink, await DataStream.open(this.file, f.dataLink, ["SD"], false));
        }
      }
    }
    const idSize = this.dg.recordIdSize;
    const only = idSize === 0 ? [...this.dg.groups.values()][0] : undefined;
    let carry: Buffer | undefined;
    let logical = 0; // logical offset of the first byte of `carry`/the piece
    const out: Frame[] = [];
    for await (let piece of stream.pieces(stopped)) {
      if (carry && carry.length > 0) piece = Buffer.concat([carry, piece]);
      let pos = 0;
      const n = piece.length;
      for (;;) {
        let g = only;
        const head = idSize;
        if (n - pos < idSize) break;
        let recordId = 0;
        if (idSize > 0) {
          recordId = idSize === 1 ? piece[pos] : idSize === 2 ? piece.readUInt16LE(pos) : idSize === 4 ? piece.readUInt32LE(pos) : u64(piece, pos);
          g = this.dg.groups.get(recordId);
          if (!g) {
            this.bad(this.dg.block, `DG block at byte ${this.dg.block}: record id ${recordId} at data offset ${logical + pos} names no channel group; the rest of this group's data cannot be read`);
            return;
          }
        }
        if (!g) return;
        let size: number;
        if ("vlsd" in g) {
          if (n - pos < idSize + 4) break;
          size = 4 + piece.readUInt32LE(pos + idSize);
          if (size > MAX_BLOCK) {
            this.bad(g.block, `CG block at byte ${g.block}: a VLSD record of ${size} bytes at data offset ${logical + pos}; the rest of this group's data cannot be read`);
            return;
          }
        } else size = g.size;
        if (n - pos < idSize + size) break;
        const r = pos + head;
        if ("vlsd" in g) this.keepVlsd(recordId, piece.subarray(r + 4, r + size));
        else if ("kind" in g) {
          // Only a sorted group's VLSD data bytes need a read (from its SD data); everything else is in the record.
          const sdValue = g.sdBytes ? await this.sdBytes(piece, r, g.sdBytes, logical + pos) : undefined;
          const f = g.sdBytes && !sdValue ? undefined : this.frame(piece, r, g, logical + pos, sdValue);
          if (f) out.push(f);
        } else this.passedOver.set(g.other, (this.passedOver.get(g.other) ?? 0) + 1);
        pos += head + size;
        if (out.length >= BATCH) {
          const ready = this.complete(out);
          if (ready.length > 0) yield ready;
        }
      }
      carry = pos < n ? Buffer.from(piece.subarray(pos)) : undefined;
      logical += pos;
      const ready = this.complete(out);
      if (ready.length > 0) yield ready;
    }
    // Frames still waiting for their data bytes never got them.
    for (const w of this.waiting.values()) {
      this.bad(w.block, `CG block at byte ${w.block}: no VLSD record for the data bytes of the record at data offset ${w.at}`);
      this.unresolved.delete(w.frame);
      this.dropped.add(w.frame);
    }
    this.waiting.clear();
    const rest = this.complete(out);
    if (rest.length > 0) yield rest;
    // Bytes after the last whole record: a record cut off (by an unfinished logger, or damage); zero padding is neither.
    if (carry && carry.some((x) => x !== 0) && !stopped()) {
      this.bad(this.dg.block, `DG block at byte ${this.dg.block}: the last ${carry.length} bytes of its data are a record cut off at the end`);
    }
  }

  /**
   * A VLSD record of an unsorted group: its value goes to the frame that waits for it (CANedge writes the VLSD record
   * right after the frame's record), or is kept for a frame that comes later.
   */
  private keepVlsd(recordId: number, value: Buffer): void {
    const at = this.vlsdOffsets.get(recordId) ?? 0;
    this.vlsdOffsets.set(recordId, at + 4 + value.length);
    const key = `${recordId}:${at}`;
    const waiting = this.waiting.get(key);
    if (waiting) {
      this.waiting.delete(key);
      this.unresolved.delete(waiting.frame);
      if (waiting.len > value.length) {
        this.bad(waiting.block, `CG block at byte ${waiting.block}: the record at data offset ${waiting.at} declares ${waiting.len} data bytes but its VLSD value holds ${value.length}`);
        this.dropped.add(waiting.frame);
      } else waiting.frame.data = Uint8Array.from(value.subarray(0, waiting.len));
      return;
    }
    let values = this.vlsdValues.get(recordId);
    if (!values) this.vlsdValues.set(recordId, (values = new Map()));
    if (values.size >= GroupDecoder.MAX_PENDING) values.delete(values.keys().next().value as number);
    values.set(at, Uint8Array.from(value));
  }

  /** The frame's data bytes; "wait" when a VLSD record that comes later holds them. */
  /** Takes from `held` the frames before the first one still waiting for its data bytes (without the dropped ones). */
  private complete(held: Frame[]): Frame[] {
    let k = held.length;
    if (this.unresolved.size > 0) {
      k = 0;
      while (k < held.length && !this.unresolved.has(held[k])) k++;
    }
    const ready = held.splice(0, k);
    if (this.dropped.size === 0) return ready;
    const kept = ready.filter((f) => !this.dropped.has(f));
    for (const f of ready) this.dropped.delete(f);
    return kept;
  }

  /** A sorted group's VLSD data bytes, from its SD data; undefined (reported) when the offset is past its end. */
  private async sdBytes(b: Buffer, r: number, f: Field, at: number): Promise<Uint8Array | undefined> {
    const offset = rawValue(b, r, f);
    const sd = this.sd.get(f.dataLink) as DataStream;
    const len = await sd.read(offset, 4);
    const value = len && (await sd.read(offset + 4, len.readUInt32LE(0)));
    if (!value) this.bad(f.block, `CN block at byte ${f.block} (${f.name}): the record at data offset ${at} points past the end of its SD data (offset ${offset})`);
    return value ? Uint8Array.from(value) : undefined;
  }

  /** The frame's data bytes in the record, or "wait" when a VLSD record (unsorted group) that comes later holds them. */
  private dataBytes(b: Buffer, r: number, f: Field): Uint8Array | "wait" | undefined {
    if (f.type !== CN_VLSD) return new Uint8Array(b.buffer, b.byteOffset + r + f.byteOffset, f.bitCount >> 3);
    // The offset into the VLSD values is an unsigned integer of the channel's bit count (CANedge: 32 or 64 bits).
    const offset = rawValue(b, r, f);
    const recordId = this.dg.cgRecordIds.get(f.dataLink);
    if (recordId === undefined || !this.dg.groups.has(recordId)) {
      this.bad(f.block, `CN block at byte ${f.block} (${f.name}): its data link (byte ${f.dataLink}) is no VLSD channel group of this data group`);
      return undefined;
    }
    const values = this.vlsdValues.get(recordId);
    const value = values?.get(offset);
    if (value) {
      values?.delete(offset);
      return value;
    }
    this.vlsdKey = `${recordId}:${offset}`;
    return "wait";
  }

  /** The frame of one record, or undefined (reported) when it cannot be one. */
  private frame(b: Buffer, r: number, g: CanGroup, at: number, sdValue: Uint8Array | undefined): Frame | undefined {
    const fields = g.fields;
    const a = g.access;
    const get = (f: Field | undefined): number | undefined => (f ? numeric(b, r, f, index) : undefined);
    const index = g.index++;
    const t = this.start + numeric(b, r, g.time, index);
    const bus = String(get(a.BusChannel) ?? 1);
    if (g.kind === "CAN_ErrorFrame") return errorFrameOf(get(a.ErrorType) ?? 0, t, bus);
    let id = get(a.ID) as number;
    let ext = (get(a.IDE) ?? 0) !== 0;
    if (id >= 0x80000000) {
      // Some writers put the IDE flag in bit 31 of the ID.
      ext = true;
      id -= 0x80000000;
    }
    if (id > CAN_EFF_MASK || (!ext && id > CAN_SFF_MASK)) {
      this.bad(g.block, `CG block at byte ${g.block} (${g.kind}): the record at data offset ${at} has ID 0x${id.toString(16)}, out of range for a ${ext ? 29 : 11}-bit frame`);
      return undefined;
    }
    const dlc = get(a.DLC);
    if (g.kind === "CAN_RemoteFrame") {
      const f: Frame = { id, ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: new Uint8Array(0), t, bus };
      const requested = get(a.DataLength) ?? dlc;
      if (requested !== undefined && requested > 0) f.dlc = Math.min(requested, 8);
      return f;
    }
    const fd = (get(a.EDL) ?? 0) !== 0;
    const bytesField = fields.get("DataBytes");
    const data = sdValue ?? (bytesField ? this.dataBytes(b, r, bytesField) : EMPTY);
    if (!data) return undefined;
    let len = get(a.DataLength) ?? (dlc !== undefined ? (fd ? FD_LENGTHS[dlc & 15] : Math.min(dlc, 8)) : data === "wait" ? 0 : data.length);
    if (!fd && len > 8) {
      // A classic frame with more than 8 bytes is a CAN FD frame whose writer left EDL out (no EDL channel).
      if (fields.has("EDL")) len = 8;
    }
    const isFd = fd || len > 8;
    if (isFd && FD_LENGTHS.indexOf(len) < 0) {
      this.bad(g.block, `CG block at byte ${g.block} (${g.kind}): the record at data offset ${at} has data length ${len}, not a CAN FD length`);
      return undefined;
    }
    if (data === "wait") {
      const frame: Frame = { id, ext, rtr: false, fd: isFd, brs: isFd && (get(a.BRS) ?? 0) !== 0, esi: isFd && (get(a.ESI) ?? 0) !== 0, err: false, data: EMPTY, t, bus };
      if (this.waiting.size >= GroupDecoder.MAX_PENDING) {
        const [key, oldest] = this.waiting.entries().next().value as [string, { frame: Frame; block: number; at: number }];
        this.waiting.delete(key);
        this.unresolved.delete(oldest.frame);
        this.dropped.add(oldest.frame);
        this.bad(oldest.block, `CG block at byte ${oldest.block}: no VLSD record for the data bytes of the record at data offset ${oldest.at}`);
      }
      this.waiting.set(this.vlsdKey, { frame, len, block: g.block, at });
      this.unresolved.add(frame);
      return frame;
    }
    if (len > data.length) {
      this.bad(g.block, `CG block at byte ${g.block} (${g.kind}): the record at data offset ${at} declares ${len} data bytes but holds ${data.length}`);
      return undefined;
    }
    return {
      id,
      ext,
      rtr: false,
      fd: isFd,
      brs: isFd && (get(a.BRS) ?? 0) !== 0,
      esi: isFd && (get(a.ESI) ?? 0) !== 0,
      err: false,
      data: len === data.length ? data : data.subarray(0, len),
      t,
      bus,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a file.

async function* readMf4(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  const opened = await openRandomAccess(chunks, ctx);
  if (!opened) return;
  const { fh, cleanup } = opened;
  try {
    const size = (await fh.stat()).size;
    const file = new Mf4File(fh, size);
    const report = (e: Mf4Error) => ctx.bad(e.offset, e.message);
    try {
      yield* readFile(file, ctx, report);
    } catch (e) {
      report(asMf4Error(e));
    }
  } finally {
    await fh.close();
    await cleanup();
  }
}

async function* readFile(file: Mf4File, ctx: ReadContext, report: (e: Mf4Error) => void): AsyncGenerator<Frame[]> {
  const id = await file.bytes(0, ID_SIZE);
  const magic = id.toString("latin1", 0, 8);
  if (id.length < ID_SIZE || (magic !== "MDF     " && magic !== "UnFinMF ")) {
    ctx.bad(0, "not an MDF file: no 'MDF' identification block");
    return;
  }
  const version = id.readUInt16LE(28);
  if (version < 400 || version >= 500) {
    ctx.bad(0, `ID block at byte 0: MDF version ${version / 100} is not supported (only MDF 4.x)`);
    return;
  }
  const unfin = magic === "UnFinMF " ? id.readUInt16LE(60) : 0;
  if (unfin & ~UNFIN_HANDLED) {
    ctx.bad(0, `ID block at byte 0: unfinalised file with flags 0x${unfin.toString(16)} (only cycle counts, the last DT length and VLSD sizes can be left unset); finalise it with the logger's tools first`);
    return;
  }
  const hd = await file.block(ID_SIZE, ["HD"], "header");
  if (hd.data.length < 8 || hd.links.length < 1) throw new Mf4Error(ID_SIZE, `HD block at byte ${ID_SIZE}: too short for a header`);
  const startNs = hd.data.readBigUInt64LE(0);
  const start = Number(startNs / 1000000000n) + Number(startNs % 1000000000n) / 1e9;
  const groups = await readGroups(file, hd.links[0], report);
  const passedOver = new Map<string, number>();
  const sources: AsyncGenerator<Frame[]>[] = [];
  for (const dg of groups) {
    if (![...dg.groups.values()].some((g) => "kind" in g)) {
      for (const g of dg.groups.values()) if ("other" in g) passedOver.set(g.other, -1);
      continue;
    }
    const decoder = new GroupDecoder(file, dg, start, (offset, reason) => ctx.bad(offset, reason), (unfin & UNFIN_LAST_DT) !== 0);
    // An unsorted group interleaves its channel groups in the order the logger flushed them (CANedge: per bus), so
    // frames of different buses can be a second out of order: put them in time order within a bounded window.
    const canGroups = [...dg.groups.values()].filter((g) => "kind" in g).length;
    const frames = canGroups > 1 ? windowSort(decoder.frames(() => ctx.stopped)) : decoder.frames(() => ctx.stopped);
    sources.push(
      (async function* () {
        try {
          yield* frames;
        } catch (e) {
          report(asMf4Error(e, dg.block));
        }
        for (const [name, n] of decoder.passedOver) passedOver.set(name, n);
      })(),
    );
  }
  yield* mergeByTime(sources);
  for (const [name, n] of passedOver) if (name) log.info(`${ctx.file}: channel group ${name} is not CAN bus logging: ${n >= 0 ? `${n} records ` : ""}passed over`);
}

/** Frames reordered by time within a window of REORDER_WINDOW frames (stable: equal times keep file order). */
const REORDER_WINDOW = 1 << 16;
async function* windowSort(source: AsyncGenerator<Frame[]>): AsyncGenerator<Frame[]> {
  let held: Frame[] = [];
  const byTime = (a: Frame, b: Frame) => (a.t as number) - (b.t as number);
  for await (const batch of source) {
    for (const f of batch) held.push(f);
    if (held.length >= 2 * REORDER_WINDOW) {
      held.sort(byTime);
      yield held.slice(0, held.length - REORDER_WINDOW);
      held = held.slice(held.length - REORDER_WINDOW);
    }
  }
  held.sort(byTime);
  if (held.length > 0) yield held;
}

/** Frames of several data groups, merged by time (each group's own frames are in time order). */
async function* mergeByTime(sources: AsyncGenerator<Frame[]>[]): AsyncGenerator<Frame[]> {
  if (sources.length === 1) {
    yield* sources[0];
    return;
  }
  const heads: { it: AsyncGenerator<Frame[]>; batch: Frame[]; i: number }[] = [];
  for (const it of sources) {
    const r = await it.next();
    if (!r.done) heads.push({ it, batch: r.value, i: 0 });
  }
  let out: Frame[] = [];
  while (heads.length > 0) {
    let best = 0;
    for (let k = 1; k < heads.length; k++) {
      if ((heads[k].batch[heads[k].i].t as number) < (heads[best].batch[heads[best].i].t as number)) best = k;
    }
    const h = heads[best];
    out.push(h.batch[h.i++]);
    if (h.i >= h.batch.length) {
      const r = await h.it.next();
      if (r.done) heads.splice(best, 1);
      else {
        h.batch = r.value;
        h.i = 0;
      }
    }
    if (out.length >= BATCH) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}

/**
 * A file handle to read by offset: the file itself when it is a plain MF4 file, else (stdin, gzip) a temporary copy
 * of the decompressed input, deleted afterwards.
 */
async function openRandomAccess(chunks: AsyncIterable<Buffer>, ctx: ReadContext): Promise<{ fh: fs.promises.FileHandle; cleanup: () => Promise<void> } | undefined> {
  if (ctx.source) {
    const fh = await fs.promises.open(ctx.source, "r");
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const magic = head.toString("latin1");
    if (magic === "MDF     " || magic === "UnFinMF ") return { fh, cleanup: async () => undefined };
    await fh.close();
  }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "vgw-mf4-"));
  const spool = path.join(dir, "input.mf4");
  const cleanup = () => fs.promises.rm(dir, { recursive: true, force: true });
  try {
    const out = await fs.promises.open(spool, "w");
    try {
      for await (const chunk of chunks) await out.write(chunk);
    } finally {
      await out.close();
    }
    return { fh: await fs.promises.open(spool, "r"), cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing: MDF 4.11, sorted, one data group per frame kind (CAN_DataFrame, CAN_RemoteFrame, CAN_ErrorFrame), each
// record fixed-length (data frames carry 64 data bytes, DataLength says how many count), data in transposed DZ
// blocks of about 4 MB listed by an HL/DL pair written at the end. The metadata comes first with placeholder links;
// `finish` rewrites it (headerPatch) with the data lists, cycle counts and the start time.

/** A block to be laid out: links may name other blocks (resolved when the layout is rendered). */
interface LayoutBlock {
  id: string;
  links: (LayoutBlock | number | undefined)[];
  data: Buffer;
  offset: number;
}

function block(id: string, links: LayoutBlock["links"], data: Buffer): LayoutBlock {
  return { id, links, data, offset: 0 };
}

function textBlock(text: string, id = "TX"): LayoutBlock {
  return block(id, [], Buffer.from(`${text}\0`, "utf8"));
}

function blockSize(b: LayoutBlock): number {
  return HEADER + 8 * b.links.length + b.data.length;
}

/** Assigns offsets from `base` (8-aligned) and renders the blocks; the layout's size never depends on link values. */
function render(blocks: LayoutBlock[], base: number): Buffer {
  let at = base;
  for (const b of blocks) {
    b.offset = at;
    at += align8(blockSize(b));
  }
  const out = Buffer.alloc(at - base);
  for (const b of blocks) {
    const o = b.offset - base;
    out.write(`##${b.id}`, o, "latin1");
    out.writeBigUInt64LE(BigInt(blockSize(b)), o + 8);
    out.writeBigUInt64LE(BigInt(b.links.length), o + 16);
    b.links.forEach((l, i) => out.writeBigUInt64LE(BigInt(typeof l === "number" ? l : l ? l.offset : 0), o + HEADER + 8 * i));
    b.data.copy(out, o + HEADER + 8 * b.links.length);
  }
  return out;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

interface ChannelSpec {
  name: string;
  byteOffset: number;
  bitOffset?: number;
  bitCount: number;
  dataType: number;
  type?: number;
  sync?: number;
  unit?: string;
  flags?: number;
}

function channel(spec: ChannelSpec, next: LayoutBlock | undefined, composition: LayoutBlock | undefined, extra: LayoutBlock[]): LayoutBlock {
  const name = textBlock(spec.name);
  const unit = spec.unit ? textBlock(spec.unit) : undefined;
  extra.push(name);
  if (unit) extra.push(unit);
  const d = Buffer.alloc(72);
  d[0] = spec.type ?? CN_FIXED;
  d[1] = spec.sync ?? 0;
  d[2] = spec.dataType;
  d[3] = spec.bitOffset ?? 0;
  d.writeUInt32LE(spec.byteOffset, 4);
  d.writeUInt32LE(spec.bitCount, 8);
  d.writeUInt32LE(spec.flags ?? CN_BUS_EVENT_FLAG, 12);
  const cn = block("CN", [next, composition, name, 0, 0, 0, unit, 0], d);
  extra.push(cn);
  return cn;
}

/** Record layouts of the three groups the writer makes (byte offsets in the record). */
const TIME = 0;
const BUS = 8;
const ID_AT = 9;
const IDE_AT = 13;
const DLC_AT = 14;
const LEN_AT = 15;
const FLAGS_AT = 16; // data frames: bit 0 EDL, 1 BRS, 2 ESI, 3 Dir; remote and error frames: bit 0 Dir
const ERRTYPE_AT = 17;
const DATA_AT = 17;
const DATA_RECORD = DATA_AT + 64;
const REMOTE_RECORD = 17;
const ERROR_RECORD = 18;

interface WriterGroup {
  kind: FrameKind;
  recordSize: number;
  members: ChannelSpec[];
  cycles: number;
  /** File offsets of this group's DZ blocks and their original lengths. */
  blocks: { offset: number; length: number }[];
  pending: Buffer;
  used: number;
  hl?: LayoutBlock;
}

function groupSpecs(): WriterGroup[] {
  const common = (kind: FrameKind): ChannelSpec[] => [
    { name: `${kind}.BusChannel`, byteOffset: BUS, bitCount: 8, dataType: DT_UINT_LE },
    { name: `${kind}.ID`, byteOffset: ID_AT, bitCount: 29, dataType: DT_UINT_LE },
    { name: `${kind}.IDE`, byteOffset: IDE_AT, bitCount: 1, dataType: DT_UINT_LE },
    { name: `${kind}.DLC`, byteOffset: DLC_AT, bitCount: 4, dataType: DT_UINT_LE },
    { name: `${kind}.DataLength`, byteOffset: LEN_AT, bitCount: 7, dataType: DT_UINT_LE },
  ];
  const g = (kind: FrameKind, recordSize: number, members: ChannelSpec[]): WriterGroup => ({
    kind,
    recordSize,
    members,
    cycles: 0,
    blocks: [],
    pending: Buffer.alloc(0),
    used: 0,
  });
  return [
    g("CAN_DataFrame", DATA_RECORD, [
      ...common("CAN_DataFrame"),
      { name: "CAN_DataFrame.EDL", byteOffset: FLAGS_AT, bitOffset: 0, bitCount: 1, dataType: DT_UINT_LE },
      { name: "CAN_DataFrame.BRS", byteOffset: FLAGS_AT, bitOffset: 1, bitCount: 1, dataType: DT_UINT_LE },
      { name: "CAN_DataFrame.ESI", byteOffset: FLAGS_AT, bitOffset: 2, bitCount: 1, dataType: DT_UINT_LE },
      { name: "CAN_DataFrame.Dir", byteOffset: FLAGS_AT, bitOffset: 3, bitCount: 1, dataType: DT_UINT_LE },
      { name: "CAN_DataFrame.DataBytes", byteOffset: DATA_AT, bitCount: 64 * 8, dataType: DT_BYTES },
    ]),
    g("CAN_RemoteFrame", REMOTE_RECORD, [...common("CAN_RemoteFrame"), { name: "CAN_RemoteFrame.Dir", byteOffset: FLAGS_AT, bitCount: 1, dataType: DT_UINT_LE }]),
    g("CAN_ErrorFrame", ERROR_RECORD, [
      ...common("CAN_ErrorFrame"),
      { name: "CAN_ErrorFrame.Dir", byteOffset: FLAGS_AT, bitCount: 1, dataType: DT_UINT_LE },
      { name: "CAN_ErrorFrame.ErrorType", byteOffset: ERRTYPE_AT, bitCount: 8, dataType: DT_UINT_LE },
    ]),
  ];
}

/** The metadata region: ID block, HD, FH, and a DG/CG/CN tree per group. Same size whatever the values. */
function metadata(groups: WriterGroup[], startNs: bigint): Buffer {
  const extra: LayoutBlock[] = [];
  const dgs: LayoutBlock[] = [];
  const source = block("SI", [textBlock("CAN"), textBlock("CAN"), 0], Buffer.from([2, 2, 0, 0, 0, 0, 0, 0])); // bus, CAN
  extra.push(source, ...(source.links as LayoutBlock[]).slice(0, 2));
  for (const g of groups) {
    let members: LayoutBlock | undefined;
    for (const m of [...g.members].reverse()) members = channel(m, members, undefined, extra);
    const frame = channel(
      { name: g.kind, byteOffset: BUS, bitCount: (g.recordSize - BUS) * 8, dataType: DT_BYTES },
      undefined,
      members,
      extra,
    );
    const time = channel({ name: "Timestamp", byteOffset: TIME, bitCount: 64, dataType: DT_FLOAT_LE, type: CN_MASTER, sync: SYNC_TIME, unit: "s", flags: 0 }, frame, undefined, extra);
    const cgData = Buffer.alloc(32);
    cgData.writeBigUInt64LE(BigInt(g.cycles), 8);
    cgData.writeUInt16LE(CG_BUS_EVENT | CG_PLAIN_BUS_EVENT, 16);
    cgData.writeUInt16LE(0x2e, 18); // path separator "."
    cgData.writeUInt32LE(g.recordSize, 24);
    const acq = textBlock("CAN");
    const cg = block("CG", [0, time, acq, source, 0, 0], cgData);
    extra.push(acq);
    const dg = block("DG", [undefined, cg, g.hl?.offset ?? 0, 0], Buffer.alloc(8));
    extra.push(cg);
    dgs.push(dg);
  }
  for (let i = 0; i < dgs.length - 1; i++) dgs[i].links[0] = dgs[i + 1];
  const fhComment = textBlock(
    "<FHcomment><TX>written by vgw</TX><tool_id>vgw</tool_id><tool_vendor>vgw</tool_vendor><tool_version>1</tool_version></FHcomment>",
    "MD",
  );
  const fhData = Buffer.alloc(16);
  fhData.writeBigUInt64LE(startNs, 0);
  fhData[12] = 2; // time flags: offsets valid (zero: UTC)
  const fh = block("FH", [0, fhComment], fhData);
  const hdData = Buffer.alloc(32);
  hdData.writeBigUInt64LE(startNs, 0);
  hdData[12] = 2;
  const hd = block("HD", [dgs[0], fh, 0, 0, 0, 0], hdData);
  const body = render([hd, fh, fhComment, ...dgs, ...extra], ID_SIZE);
  const id = Buffer.alloc(ID_SIZE, 0);
  id.write("MDF     4.11    vgw     ", 0, "latin1");
  id.writeUInt16LE(411, 28);
  return Buffer.concat([id, body]);
}

/** Uncompressed bytes per DZ block (asammdf writes blocks of a few MB). */
const DZ_BLOCK = 4 << 20;
/** DZ blocks a writer may have in zlib at once before encode() waits (memory stays some tens of MB at most). */
const MAX_AHEAD = 4;

interface Piece {
  bytes?: Buffer;
  failed?: Error;
  done: Promise<void>;
  /** Called with the piece's file offset once it is placed. */
  placed?: (offset: number) => void;
}

function createMf4Writer(): FormatWriter {
  const groups = groupSpecs();
  const [dataGroup, remoteGroup, errorGroup] = groups;
  let startNs: bigint | undefined;
  let start = 0;
  let lastT = 0;
  let dropped = 0;
  const channels = new ChannelNumbers();
  const head = metadata(groups, 0n);
  let fileOffset = head.length;
  const queue: Piece[] = [];

  const seal = (g: WriterGroup): void => {
    if (g.used === 0) return;
    const input = g.pending.subarray(0, g.used);
    g.pending = Buffer.alloc(0);
    g.used = 0;
    const piece: Piece = { done: Promise.resolve() };
    piece.done = deflate(transpose(input, g.recordSize)).then(
      (packed) => {
        const dz = Buffer.alloc(align8(HEADER + 24 + packed.length));
        dz.write("##DZ", 0, "latin1");
        dz.writeBigUInt64LE(BigInt(HEADER + 24 + packed.length), 8);
        dz.write("DT", HEADER, "latin1");
        dz[HEADER + 2] = 1; // transposed, then deflated
        dz.writeUInt32LE(g.recordSize, HEADER + 4);
        dz.writeBigUInt64LE(BigInt(input.length), HEADER + 8);
        dz.writeBigUInt64LE(BigInt(packed.length), HEADER + 16);
        packed.copy(dz, HEADER + 24);
        piece.bytes = dz;
      },
      (e: Error) => {
        piece.failed = e;
      },
    );
    piece.placed = (offset) => g.blocks.push({ offset, length: input.length });
    queue.push(piece);
  };

  const ready = (): Buffer => {
    const out: Buffer[] = [];
    while (queue.length > 0 && (queue[0].bytes || queue[0].failed)) {
      const piece = queue.shift() as Piece;
      if (piece.failed) throw piece.failed;
      const bytes = piece.bytes as Buffer;
      piece.placed?.(fileOffset);
      fileOffset += bytes.length;
      out.push(bytes);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };

  /** Room for one record in the group's block; returns its offset in `g.pending`. */
  const record = (g: WriterGroup, t: number): number => {
    if (g.used + g.recordSize > g.pending.length) {
      seal(g);
      g.pending = Buffer.alloc(Math.floor(DZ_BLOCK / g.recordSize) * g.recordSize);
    }
    const p = g.used;
    g.used += g.recordSize;
    g.cycles++;
    g.pending.writeDoubleLE(t - start, p + TIME);
    return p;
  };

  return {
    begin: () => head,
    get dropped() {
      return dropped;
    },
    encode(frames) {
      for (const f of frames) {
        const t = f.t ?? lastT;
        lastT = t;
        if (startNs === undefined) {
          // Whole seconds, so that start + (t - start) gives t back exactly.
          start = t >= 0 ? Math.floor(t) : 0;
          startNs = BigInt(start) * 1000000000n;
        }
        const ch = channels.get(f.bus);
        if (ch > 255) {
          dropped++; // BusChannel is one byte, as in CANedge's and asammdf's files
          continue;
        }
        const g = f.err ? errorGroup : f.rtr ? remoteGroup : dataGroup;
        const p = record(g, t);
        const b = g.pending;
        b[p + BUS] = ch;
        if (f.err) {
          b[p + ERRTYPE_AT] = errorTypeOf(f);
          b[p + DLC_AT] = 0;
          continue;
        }
        b.writeUInt32LE(f.id, p + ID_AT);
        b[p + IDE_AT] = f.ext ? 1 : 0;
        if (f.rtr) {
          b[p + DLC_AT] = f.dlc ?? 0;
          b[p + LEN_AT] = f.dlc ?? 0;
          continue;
        }
        const len = f.data.length;
        b[p + DLC_AT] = lengthToDlc(len);
        b[p + LEN_AT] = len;
        b[p + FLAGS_AT] = (f.fd ? 1 : 0) | (f.brs ? 2 : 0) | (f.esi ? 4 : 0);
        b.set(f.data, p + DATA_AT);
      }
      const done = ready();
      if (queue.length <= MAX_AHEAD) return done;
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
      for (const g of groups) seal(g);
      await Promise.all(queue.map((piece) => piece.done));
      const body = ready();
      // One DL per group listing its DZ blocks (with their offsets in the group's data), under an HL block.
      const lists: LayoutBlock[] = [];
      for (const g of groups) {
        if (g.blocks.length === 0) continue;
        const d = Buffer.alloc(8 + 8 * g.blocks.length);
        d.writeUInt32LE(g.blocks.length, 4);
        let logical = 0;
        g.blocks.forEach((blk, i) => {
          d.writeBigUInt64LE(BigInt(logical), 8 + 8 * i);
          logical += blk.length;
        });
        const dl = block("DL", [0, ...g.blocks.map((blk) => blk.offset)], d);
        const hlData = Buffer.alloc(8);
        hlData.writeUInt16LE(0, 0);
        hlData[2] = 1; // zip type of the listed blocks: transposed deflate
        g.hl = block("HL", [dl], hlData);
        lists.push(g.hl, dl);
      }
      const tail = render(lists, fileOffset);
      return { tail: Buffer.concat([body, tail]), headerPatch: metadata(groups, startNs ?? 0n) };
    },
  };
}

export const mf4Format: TraceFormat = {
  name: "mf4",
  extensions: [".mf4"],
  description: "ASAM MDF 4 bus logging (CANedge, asammdf): CAN data, remote and error frames, classic and CAN FD",
  binary: true,
  seekable: true,
  chunkSize: 1 << 20,
  read: readMf4,
  createWriter: createMf4Writer,
};

registerFormat(mf4Format);
