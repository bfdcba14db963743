/**
 * candump -l `.log` traces (linux-can/can-utils `candump.c` log mode, `lib.c` frame text):
 *
 *   (1436509052.249713) vcan0 123#DEADBEEF          classic; 3 hex digits = 11-bit ID, 8 = 29-bit
 *   (1436509052.249713) vcan0 123##1DEADBEEF        CAN FD, flags nibble after `##` (1 = BRS, 2 = ESI)
 *   (1436509052.249713) vcan0 123#R  / 123#R3       remote frame, optional requested length
 *   (1436509052.249713) vcan0 20000080#0000000000000000   error frame (CAN_ERR_FLAG in an 8-digit ID)
 *   (1436509052.249713) vcan0 123#DEADBEEF R        python-can's writer appends a direction (R/T): accepted, not kept
 *   123#DEADBEEF                                    a bare frame (cansend form, e.g. piped in): no time, no channel
 *
 * The reader parses bytes in place (no string per line) because it is the hot path of `vgw decode` and `convert`;
 * the text grammar itself is the one `frame/frame.ts` defines, and the writer prints through `writeFrameText`
 * (frame.ts's `formatFrame`, written as bytes).
 */
import { CAN_EFF_MASK, CAN_ERR_FLAG, CAN_SFF_MASK, writeFrameText, type Frame } from "../../frame/frame";
import { TextBuffer } from "../../frame/text-buffer";
import { registerFormat, type CopiedLines, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { decimal, scanDecimal, wholeLines } from "./lines";
import { candumpChannel, ChannelText } from "./channel";

const HEXVAL = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEXVAL[65 + i] = 10 + i;
  HEXVAL[97 + i] = 10 + i;
}
const FD_LEN_OK = new Uint8Array(65);
for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]) FD_LEN_OK[n] = 1;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const HASH = 0x23;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR;
}

/**
 * Parses the whole lines in `buf`, pushing frames to `out`. Returns the number of lines seen.
 * Exported for the fuzz test that holds it to `parseFrame`; `firstLine` is the 1-based number of the first line in `buf`.
 */
export function parseCandumpLines(buf: Buffer, firstLine: number, ctx: ReadContext, out: Frame[]): number {
  // One backing store per batch for all data bytes: a view per frame is far cheaper than an allocation per frame.
  const store = new Uint8Array(buf.length >> 1);
  const storeBuffer = store.buffer;
  let storePos = 0;
  let lastBusStart = -1;
  let lastBusLen = 0;
  let lastBus: string | undefined;
  let lineNo = firstLine - 1;
  const n = buf.length;
  let pos = 0;
  while (pos < n) {
    lineNo++;
    let end = pos;
    while (end < n && buf[end] !== LF) end++;
    const lineStart = pos;
    pos = end + 1;
    let i = lineStart;
    while (i < end && isBlank(buf[i])) i++;
    let e = end;
    while (e > i && isBlank(buf[e - 1])) e--;
    if (i === e) continue;

    let t: number | undefined;
    let bus: string | undefined;
    if (buf[i] === 0x28 /* ( */) {
      const open = i;
      // Timestamp: digits [. digits] `)`
      i = scanDecimal(buf, i + 1, e);
      const { mant, digits, frac } = decimal;
      if (i >= e || buf[i] !== 0x29 || digits === 0) {
        ctx.bad(lineNo, `bad timestamp, expected '(seconds.micros)': '${lineText(buf, lineStart, end)}'`);
        continue;
      }
      if (mant > Number.MAX_SAFE_INTEGER) t = parseFloat(buf.toString("latin1", open + 1, i));
      else t = frac > 0 ? mant / POW10[frac] : mant;
      i++;
      // channel
      while (i < e && isBlank(buf[i])) i++;
      const bs = i;
      while (i < e && !isBlank(buf[i])) i++;
      const bl = i - bs;
      if (bl === 0 || i >= e) {
        ctx.bad(lineNo, `expected '(time) channel frame': '${lineText(buf, lineStart, end)}'`);
        continue;
      }
      if (lastBus !== undefined && bl === lastBusLen && sameBytes(buf, lastBusStart, bs, bl)) {
        bus = lastBus;
      } else {
        bus = lastBus = buf.toString("latin1", bs, i);
      }
      lastBusStart = bs;
      lastBusLen = bl;
      while (i < e && isBlank(buf[i])) i++;
      // python-can's writer adds ` R` / ` T` (direction) after the frame
      if (e - i > 2 && isBlank(buf[e - 2])) {
        const d = buf[e - 1] | 0x20;
        if (d === 0x72 || d === 0x74) {
          e -= 2;
          while (e > i && isBlank(buf[e - 1])) e--;
        }
      }
    }

    // ID
    const idStart = i;
    let raw = 0;
    for (; i < e; i++) {
      const d = HEXVAL[buf[i]];
      if (d < 0) break;
      raw = raw * 16 + d;
    }
    const idLen = i - idStart;
    if (i >= e || buf[i] !== HASH || (idLen !== 3 && idLen !== 8)) {
      const text = lineText(buf, lineStart, end);
      ctx.bad(lineNo, `expected <id>#<data> with a 3- or 8-digit hex ID: '${text}'${DISPLAY_FORMAT.test(text) ? DISPLAY_HINT : ""}`);
      continue;
    }
    i++;
    let ext = idLen === 8;
    let err = false;
    let id = raw;
    if (ext) {
      if (raw & CAN_ERR_FLAG) {
        err = true;
        ext = false;
        id = raw & CAN_EFF_MASK;
      } else if (raw > CAN_EFF_MASK) {
        ctx.bad(lineNo, `29-bit ID exceeds 1FFFFFFF: '${lineText(buf, lineStart, end)}'`);
        continue;
      }
    } else if (raw > CAN_SFF_MASK) {
      ctx.bad(lineNo, `11-bit ID exceeds 7FF: '${lineText(buf, lineStart, end)}'`);
      continue;
    }

    let fd = false;
    let brs = false;
    let esi = false;
    const c0 = i < e ? buf[i] : -1;
    if (c0 === HASH) {
      const flags = i + 1 < e ? HEXVAL[buf[i + 1]] : -1;
      if (flags < 0) {
        ctx.bad(lineNo, `CAN FD frame needs a flags digit after '##': '${lineText(buf, lineStart, end)}'`);
        continue;
      }
      fd = true;
      brs = (flags & 1) !== 0;
      esi = (flags & 2) !== 0;
      i += 2;
    } else if (c0 === 0x52 || c0 === 0x72) {
      // remote frame
      let dlc: number | undefined;
      if (e - i === 2) {
        const d = HEXVAL[buf[i + 1]];
        if (d >= 0 && d <= 8) dlc = d;
        else dlc = -1;
      } else if (e - i !== 1) dlc = -1;
      if (dlc === -1) {
        ctx.bad(lineNo, `remote frame length must be one digit 0..8: '${lineText(buf, lineStart, end)}'`);
        continue;
      }
      const f: Frame = { id, ext, rtr: true, fd: false, brs: false, esi: false, err, data: EMPTY, t, bus };
      if (dlc !== undefined) f.dlc = dlc;
      out.push(f);
      continue;
    }

    // data: hex pairs, `.` separators allowed (cansend form)
    const dataStart = storePos;
    let ok = true;
    while (i < e) {
      const c = buf[i];
      if (c === 0x2e) {
        i++;
        continue;
      }
      const hi = HEXVAL[c];
      const lo = i + 1 < e ? HEXVAL[buf[i + 1]] : -1;
      if (hi < 0 || lo < 0) {
        ok = false;
        break;
      }
      store[storePos++] = (hi << 4) | lo;
      i += 2;
    }
    const len = storePos - dataStart;
    if (!ok) {
      storePos = dataStart;
      ctx.bad(lineNo, `data must be pairs of hex digits: '${lineText(buf, lineStart, end)}'`);
      continue;
    }
    if (fd ? len > 64 || FD_LEN_OK[len] === 0 : len > 8) {
      storePos = dataStart;
      ctx.bad(lineNo, `${fd ? "CAN FD" : "classic CAN"} data length ${len} is not valid: '${lineText(buf, lineStart, end)}'`);
      continue;
    }
    out.push({ id, ext, rtr: false, fd, brs, esi, err, data: new Uint8Array(storeBuffer, dataStart, storePos - dataStart), t, bus });
  }
  return lineNo - firstLine + 1;
}

const EMPTY = new Uint8Array(0);

function sameBytes(buf: Buffer, a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (buf[a + k] !== buf[b + k]) return false;
  return true;
}

/** The offending line for an error message, cut so one broken multi-megabyte line cannot flood the terminal. */
/** candump's screen format (`  can0  1F0   [8]  C0 06 ...`, no -l/-L): a common mix-up, worth its own hint. */
const DISPLAY_FORMAT = /^\s*(\(\S+\)\s+)?\S+\s+[0-9A-Fa-f]{3,8}\s+\[\d{1,2}\]/;
const DISPLAY_HINT = " (this is candump's screen format: record with candump -L can0, or candump -l for a log file)";

function lineText(buf: Buffer, start: number, end: number): string {
  const max = 120;
  let e = end;
  if (e > start && buf[e - 1] === CR) e--;
  return e - start > max ? buf.toString("latin1", start, start + max) + "..." : buf.toString("latin1", start, e);
}

async function* readCandump(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  let line = 1;
  for await (const buf of wholeLines(chunks, ctx)) {
    const out: Frame[] = [];
    try {
      line += parseCandumpLines(buf, line, ctx, out);
    } catch (e) {
      // strict mode: hand on the frames before the bad line, then stop
      if (out.length > 0) yield out;
      throw e;
    }
    if (out.length > 0) yield out;
  }
}

/** Upper-case hex digit values; -1 for anything else (lower case is valid input but not what the writer prints). */
const UPPER_HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) UPPER_HEX["0123456789ABCDEF".charCodeAt(i)] = i;
/** Bytes a copied channel name may hold: printable ASCII without blanks (the reader reads latin1, the writer writes UTF-8). */
const CHANNEL_BYTE = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) CHANNEL_BYTE[c] = 1;

/** Whole seconds below this make `fixed6(mant / 1e6)` give back the same six digits (the double is within 5e-7). */
const COPY_MAX_WHOLE = 2 ** 32;

/** The timestamp of the last line canonicalLineEnd accepted, in microseconds. */
let canonicalMicros = 0;

/**
 * If the line at `i` is exactly what the candump writer prints for its frame, `(S.uuuuuu) chan ID#DATA\n` (a classic
 * data frame, upper-case hex, one space between fields, no CR, seconds without leading zeros and below 2^32, a
 * channel name that is not a bare number; CAN FD as `ID##FDATA`), returns the index after its newline; otherwise -1.
 * Such a line is copied as it is by a candump-to-candump conversion. Error and remote frames take the general path.
 */
export function canonicalLineEnd(buf: Buffer, i: number, n: number): number {
  if (buf[i] !== 0x28 /* ( */) return -1;
  i++;
  const ws = i;
  let whole = 0;
  while (i < n) {
    const c = buf[i];
    if (c < 48 || c > 57) break;
    whole = whole * 10 + (c - 48);
    i++;
  }
  const wl = i - ws;
  if (wl === 0 || wl > 10 || (wl > 1 && buf[ws] === 48) || whole >= COPY_MAX_WHOLE || buf[i] !== 0x2e) return -1;
  i++;
  let micros = 0;
  for (let k = 0; k < 6; k++, i++) {
    const c = buf[i];
    if (c < 48 || c > 57) return -1;
    micros = micros * 10 + (c - 48);
  }
  if (buf[i] !== 0x29 || buf[i + 1] !== SPACE) return -1;
  i += 2;
  // channel: not empty, not all digits (the writer maps a bare number N to can<N-1>)
  const cs = i;
  let digitsOnly = true;
  while (i < n && CHANNEL_BYTE[buf[i]] === 1) {
    const c = buf[i];
    if (c < 48 || c > 57) digitsOnly = false;
    i++;
  }
  if (i === cs || digitsOnly || buf[i] !== SPACE) return -1;
  i++;
  // ID: 3 digits <= 7FF, or 8 digits <= 1FFFFFFF (no error flag)
  const is = i;
  let id = 0;
  while (i < n) {
    const d = UPPER_HEX[buf[i]];
    if (d < 0) break;
    id = id * 16 + d;
    i++;
  }
  const il = i - is;
  if (il === 3 ? id > CAN_SFF_MASK : il !== 8 || id > CAN_EFF_MASK) return -1;
  if (buf[i] !== HASH) return -1;
  i++;
  // CAN FD: `##` and a flags digit the writer can print (BRS 1, ESI 2)
  let fd = false;
  if (buf[i] === HASH) {
    const flags = buf[i + 1] - 48;
    if (!(flags >= 0 && flags <= 3)) return -1;
    fd = true;
    i += 2;
  }
  // data: upper-case hex pairs of a valid length, then the newline
  const ds = i;
  while (i < n && UPPER_HEX[buf[i]] >= 0) i++;
  const dl = i - ds;
  if ((dl & 1) !== 0 || i >= n || buf[i] !== LF) return -1;
  if (fd ? dl > 128 || FD_LEN_OK[dl >> 1] === 0 : dl > 16) return -1;
  canonicalMicros = whole * 1e6 + micros;
  return i + 1;
}

/**
 * `read` for a candump-to-candump conversion (TraceFormat.readForCopy): runs of lines in the writer's exact form are
 * handed on as bytes, the lines between them are parsed (and reported when bad) exactly as `read` does.
 */
async function* readCandumpForCopy(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[] | CopiedLines> {
  let line = 1;
  for await (const buf of wholeLines(chunks, ctx)) {
    const n = buf.length;
    let pos = 0;
    while (pos < n) {
      // a run of lines to copy
      const runStart = pos;
      let count = 0;
      let micros = 0;
      for (;;) {
        const next = pos < n ? canonicalLineEnd(buf, pos, n) : -1;
        if (next < 0) break;
        micros = canonicalMicros;
        count++;
        pos = next;
      }
      if (count > 0) {
        line += count;
        yield { copied: buf.subarray(runStart, pos), frames: count, lastT: micros / 1e6 };
      }
      if (pos >= n) break;
      // the lines up to the next one to copy go through the parser
      const otherStart = pos;
      do {
        const lf = buf.indexOf(LF, pos);
        pos = lf < 0 ? n : lf + 1;
      } while (pos < n && canonicalLineEnd(buf, pos, n) < 0);
      const out: Frame[] = [];
      try {
        line += parseCandumpLines(buf.subarray(otherStart, pos), line, ctx, out);
      } catch (e) {
        if (out.length > 0) yield out;
        throw e;
      }
      if (out.length > 0) yield out;
    }
  }
}

function createCandumpWriter(): FormatWriter {
  let lastT = 0;
  const out = new TextBuffer();
  const channels = new ChannelText(candumpChannel);
  return {
    begin: () => "",
    encode(frames) {
      for (let k = 0; k < frames.length; k++) {
        const f = frames[k];
        // A frame without time (a bare cansend line) keeps the previous time, as python-can's writer does.
        const t = f.t ?? lastT;
        lastT = t;
        // `(${t.toFixed(6)}) ${candumpChannel(f.bus)} ${formatFrame(f)}\n`
        out.byte(0x28);
        out.fixed6(t, 0);
        out.byte(0x29);
        out.byte(SPACE);
        out.bytes(channels.get(f.bus));
        out.byte(SPACE);
        writeFrameText(out, f);
        out.byte(LF);
      }
      return out.take();
    },
    finish: () => ({ tail: "" }),
    copy(lines) {
      lastT = lines.lastT;
      return lines.copied;
    },
  };
}

export const candumpFormat: TraceFormat = {
  name: "candump",
  extensions: [".log", ".candump"],
  description: "candump -l log (can-utils); also bare 123#DEADBEEF lines",
  read: readCandump,
  readForCopy: readCandumpForCopy,
  createWriter: createCandumpWriter,
};

registerFormat(candumpFormat);
