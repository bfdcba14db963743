/**
 * Vector ASC traces (CANoe/CANalyzer ASCII logging). What is read:
 *
 *   date Sat Sep 30 15:06:13.191 2017            start of the measurement (local time; US locale with am/pm too)
 *   base hex  timestamps absolute                 ids/data in hex or dec; times since the start, or (relative)
 *                                                 since the previous event
 *   Begin Triggerblock Sat Sep 30 15:06:13.191 2017   restarts the clock at that date
 *      2.501000 1  123x            Rx   d 8 01 02 03 04 05 06 07 08   classic frame (`x` = 29-bit)
 *      2.510001 2  100             Tx   r 8        remote frame with its requested length (`r` alone: length 0)
 *      2.501000 1  ErrorFrame ...                  error frame
 *     30.005071 CANFD   2 Rx  300  Name  1 0 8  8 01 02 ... <duration> <length> <flags> ...   CAN FD line
 *     30.806898 CANFD   5 Tx ErrorFrame ...        CAN FD error frame
 *
 * Frame.t is the header date (epoch seconds, local time zone, as python-can's `relative_timestamp=False`) plus the
 * event time; without a date, the event time alone. Frame.bus is the ASC channel number as written ("1").
 * An error frame in Vector's ASC has no SocketCAN class bits: a plain `ErrorFrame` line becomes CAN_ERR_BUSERROR
 * with 8 zero data bytes, as can-utils asc2log writes it. vgw's writer keeps the class bits and the 8 detail bytes
 * after the keyword (`ErrorFrame  SocketCAN 0x80 00 00 00 00 00 00 00 00`, hex whatever the base), tokens that
 * CANoe, python-can and asc2log pass over, so its own reader gets the error frame back whole. Other events (statistics, chip status, J1939TP, comments, LIN...) are not CAN frames and are
 * passed over; a line that starts like a CAN frame but does not parse is a bad line.
 *
 * CANFD lines: the Flags field (bit 12 EDL = FD, bit 4 = remote; Vector's CAN_FD_MESSAGE flags) decides FD vs
 * classic and remote when present; a line without it (or with more than 8 bytes) is an FD frame, and a line
 * without flags but with data length 0 and a DLC is a remote frame (python-can's reading).
 */
import type { Frame } from "../../frame/frame";
import { busErrorFrame } from "../../frame/error-frame";
import { CAN_EFF_MASK, CAN_SFF_MASK, FD_LENGTHS, isValidFdLength, lengthToDlc } from "../../frame/frame";
import { registerFormat, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { decimal, scanDecimal, wholeLines } from "./lines";
import { NEWLINE, SPACE, TextBuffer } from "../../frame/text-buffer";
import { channelNumber, ChannelText } from "./channel";

const FLAG_RTR = 0x10;
const FLAG_EDL = 0x1000;
const FLAG_BRS = 0x2000;
const FLAG_ESI = 0x4000;

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
  // German CANoe installations write these (as python-can knows them)
  "mär": 2, mrz: 2, mai: 4, okt: 9, dez: 11,
};

/**
 * Parses an ASC date (`Sat Sep 30 15:06:13.191 2017`, `Tue May 27 04:09:35.000 pm 2014`, `Fri Jul 10 06:17:32 2015`)
 * as local time. The weekday is ignored (it may be localised). Returns epoch seconds, or undefined.
 */
export function parseAscDate(text: string): number | undefined {
  const m = /^\S+\s+(\S+)\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:\s+([ap]m))?\s+(\d{4})\s*$/i.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS[m[1].toLowerCase().slice(0, 3)] ?? MONTHS[m[1].toLowerCase()];
  if (month === undefined) return undefined;
  let hour = Number(m[3]);
  const ampm = m[7]?.toLowerCase();
  if (ampm) {
    if (hour < 1 || hour > 12) return undefined;
    hour = (hour % 12) + (ampm === "pm" ? 12 : 0);
  }
  const ms = m[6] ? Number(m[6].slice(0, 3).padEnd(3, "0")) : 0;
  const d = new Date(Number(m[8]), month, Number(m[2]), hour, Number(m[4]), Number(m[5]), ms);
  return Number.isNaN(d.getTime()) ? undefined : d.getTime() / 1000;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Local-time ASC date with milliseconds, 24-hour form (`Sat Sep 30 15:06:13.191 2017`), English names. */
export function formatAscDate(epochSeconds: number): string {
  const d = new Date(Math.round(epochSeconds * 1000));
  const p2 = (n: number) => String(n).padStart(2, "0");
  return (
    `${DAYS[d.getDay()]} ${MONTH_NAMES[d.getMonth()]} ${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}` +
    `.${String(d.getMilliseconds()).padStart(3, "0")} ${d.getFullYear()}`
  );
}

const WS = /\s+/;
/** The token after `ErrorFrame` that introduces vgw's SocketCAN error class and details. */
const SOCKETCAN = "SocketCAN";

export class AscParser {
  base = 16;
  relativeTimes = false;
  start = 0;
  lastEvent = 0;
  constructor(private readonly ctx: ReadContext) {}

  /** Returns a frame, undefined for a line that is not a frame; reports bad lines itself. */
  line(raw: string, lineNo: number): Frame | undefined {
    const line = raw.trim();
    if (line.length === 0) return undefined;
    const c = line.charCodeAt(0);
    if ((c < 48 || c > 57) && c !== 45 /* - */) return this.header(line, lineNo);
    const tok = line.split(WS);
    const time = Number(tok[0]);
    if (!Number.isFinite(time)) {
      this.ctx.bad(lineNo, `bad timestamp '${tok[0]}'`);
      return undefined;
    }
    const eventTime = this.relativeTimes ? this.lastEvent + time : time;
    this.lastEvent = eventTime;
    const t = this.start + eventTime;
    const kind = tok[1];
    if (kind === "CANFD") return this.fdLine(tok, t, lineNo, line);
    if (kind === undefined || !/^\d+$/.test(kind)) return undefined; // CAN 1 Status:, SV:, LIN, ... not frames
    const bus = String(Number(kind)); // "01" is channel 1
    if (tok[2] === "ErrorFrame") return tok[3] === SOCKETCAN ? this.socketCanError(tok, 4, t, bus, lineNo, line) : busErrorFrame(t, bus);
    if (tok.length < 5 || (tok[3] !== "Rx" && tok[3] !== "Tx")) return undefined; // Statistic:, J1939TP, ...
    const id = this.id(tok[2]);
    if (id === undefined) return this.bad(lineNo, `bad CAN ID '${tok[2]}'`, line);
    const kindTok = tok[4];
    if (kindTok === "r" || kindTok === "R") {
      const f: Frame = { id: id.id, ext: id.ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, t, bus };
      const dlcTok = tok[5];
      if (dlcTok !== undefined && /^[0-9a-fA-F]$/.test(dlcTok)) {
        const dlc = parseInt(dlcTok, 16);
        if (dlc > 8) return this.bad(lineNo, `remote frame length ${dlc} is not 0..8`, line);
        if (dlc > 0) f.dlc = dlc;
      }
      return f;
    }
    if (kindTok !== "d" && kindTok !== "D") return this.bad(lineNo, `expected 'd' (data) or 'r' (remote) after the direction, got '${kindTok}'`, line);
    const dlc = parseInt(tok[5], 16);
    if (!(dlc >= 0 && dlc <= 15) || !/^[0-9a-fA-F]$/.test(tok[5] ?? "")) return this.bad(lineNo, `bad DLC '${tok[5]}'`, line);
    const len = Math.min(dlc, 8); // classic DLC 9..15 still means 8 bytes
    const data = this.bytes(tok, 6, len);
    if (typeof data === "string") return this.bad(lineNo, data, line);
    return { id: id.id, ext: id.ext, rtr: false, fd: false, brs: false, esi: false, err: false, data, t, bus };
  }

  private fdLine(tok: string[], t: number, lineNo: number, line: string): Frame | undefined {
    if (!/^\d+$/.test(tok[2] ?? "")) return this.bad(lineNo, `bad CANFD channel '${tok[2]}'`, line);
    const channel = String(Number(tok[2]));
    if (tok[4] === "ErrorFrame") return busErrorFrame(t, channel);
    const id = this.id(tok[4] ?? "");
    if (id === undefined) return this.bad(lineNo, `bad CAN ID '${tok[4]}'`, line);
    // An optional symbolic name sits between the ID and the BRS/ESI digits.
    let k = 5;
    if (!(isBit(tok[5]) && isBit(tok[6]))) k = 6;
    if (!isBit(tok[k]) || !isBit(tok[k + 1])) return this.bad(lineNo, "expected BRS and ESI (0/1) after the CANFD ID", line);
    const brs = tok[k] === "1";
    const esi = tok[k + 1] === "1";
    const dlc = parseInt(tok[k + 2], 16);
    const len = Number(tok[k + 3]);
    if (!/^[0-9a-fA-F]$/.test(tok[k + 2] ?? "")) return this.bad(lineNo, `bad DLC '${tok[k + 2]}'`, line);
    if (!Number.isInteger(len) || len < 0 || len > 64 || !isValidFdLength(len)) {
      return this.bad(lineNo, `bad CAN FD data length '${tok[k + 3]}'`, line);
    }
    const data = this.bytes(tok, k + 4, len);
    if (typeof data === "string") return this.bad(lineNo, data, line);
    const flagsTok = tok[k + 4 + len + 2];
    const flags = flagsTok !== undefined && /^[0-9a-fA-F]{1,8}$/.test(flagsTok) ? parseInt(flagsTok, 16) : undefined;
    const rtr = flags !== undefined ? (flags & FLAG_RTR) !== 0 && len === 0 : len === 0 && dlc > 0;
    if (rtr) {
      if (dlc > 8) return this.bad(lineNo, `remote frame length ${dlc} is not 0..8`, line);
      const f: Frame = { id: id.id, ext: id.ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, t, bus: channel };
      if (dlc > 0) f.dlc = dlc;
      return f;
    }
    const fd = flags === undefined || (flags & FLAG_EDL) !== 0 || len > 8;
    // When DLC and data length disagree, the bytes written are what counts (python-can does the same).
    return { id: id.id, ext: id.ext, rtr: false, fd, brs: fd && brs, esi: fd && esi, err: false, data, t, bus: channel };
  }

  private id(text: string): { id: number; ext: boolean } | undefined {
    const ext = text.endsWith("x") || text.endsWith("X");
    const digits = ext ? text.slice(0, -1) : text;
    if (digits.length === 0 || digits.length > 10 || !(this.base === 16 ? /^[0-9a-fA-F]+$/ : /^\d+$/).test(digits)) return undefined;
    const id = parseInt(digits, this.base);
    if (id > (ext ? CAN_EFF_MASK : CAN_SFF_MASK)) return undefined;
    return { id, ext };
  }

  /** vgw's error frame tail: `SocketCAN 0x<class bits> <8 data bytes in hex>` from token `from`. */
  private socketCanError(tok: string[], from: number, t: number, bus: string, lineNo: number, line: string): Frame | undefined {
    const id = /^0x[0-9a-fA-F]{1,8}$/.test(tok[from] ?? "") ? parseInt(tok[from].slice(2), 16) : NaN;
    if (!(id >= 0 && id <= CAN_EFF_MASK)) return this.bad(lineNo, `bad error class '${tok[from]}' after SocketCAN`, line);
    const data = new Uint8Array(8);
    for (let i = 0; i < 8; i++) {
      const b = tok[from + 1 + i] ?? "";
      if (!/^[0-9a-fA-F]{2}$/.test(b)) return this.bad(lineNo, `expected 8 error detail bytes after SocketCAN, got '${b}'`, line);
      data[i] = parseInt(b, 16);
    }
    return { id, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data, t, bus };
  }

  private bytes(tok: string[], from: number, len: number): Uint8Array | string {
    if (tok.length < from + len) return `expected ${len} data bytes, found ${Math.max(0, tok.length - from)}`;
    const data = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const s = tok[from + i];
      const v = this.base === 16 ? (s.length <= 2 && /^[0-9a-fA-F]+$/.test(s) ? parseInt(s, 16) : NaN) : /^\d{1,3}$/.test(s) ? Number(s) : NaN;
      if (!(v >= 0 && v <= 255)) return `bad data byte '${s}'`;
      data[i] = v;
    }
    return data;
  }

  private header(line: string, lineNo: number): undefined {
    const lower = line.toLowerCase();
    if (lower.startsWith("//")) return undefined;
    if (lower.startsWith("date ")) {
      const when = parseAscDate(line.slice(5));
      if (when === undefined) this.ctx.bad(lineNo, `cannot read the date '${line.slice(5).trim()}': times stay relative to the measurement start`);
      else this.start = when;
      return undefined;
    }
    if (lower.startsWith("base ")) {
      const m = /^base\s+(hex|dec)(?:\s+timestamps\s+(absolute|relative))?/i.exec(line);
      if (!m) {
        this.ctx.bad(lineNo, `cannot read '${line}': expected 'base hex|dec timestamps absolute|relative'`);
        return undefined;
      }
      this.base = m[1].toLowerCase() === "dec" ? 10 : 16;
      this.relativeTimes = (m[2] ?? "").toLowerCase() === "relative";
      return undefined;
    }
    if (lower.startsWith("begin triggerblock")) {
      const rest = line.slice("begin triggerblock".length).trim();
      if (rest.length > 0) {
        const when = parseAscDate(rest);
        if (when === undefined) this.ctx.bad(lineNo, `cannot read the trigger block date '${rest}'`);
        else this.start = when;
      }
      this.lastEvent = 0;
      return undefined;
    }
    if (lower.startsWith("end triggerblock") || /^(no\s+)?internal events logged/.test(lower)) return undefined;
    this.ctx.bad(lineNo, `not an ASC line: '${cut(line)}'`);
    return undefined;
  }

  private bad(lineNo: number, reason: string, line: string): undefined {
    this.ctx.bad(lineNo, `${reason}: '${cut(line)}'`);
    return undefined;
  }
}

const EMPTY = new Uint8Array(0);

function isBit(s: string | undefined): boolean {
  return s === "0" || s === "1";
}

function cut(line: string): string {
  return line.length > 120 ? line.slice(0, 120) + "..." : line;
}


const HEXVAL = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) HEXVAL[65 + i] = HEXVAL[97 + i] = 10 + i;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const CHANNELS: string[] = Array.from({ length: 64 }, (_, i) => String(i));
const FD_LEN_OK = new Uint8Array(65);
for (const n of FD_LENGTHS) FD_LEN_OK[n] = 1;

/**
 * The common lines, classic data frames (`   2.501000 1  123x   Rx   d 8 01 02 ...`) and CAN FD data frames
 * (`  30.005071 CANFD   2 Rx  300  Name  1 0 8  8 01 02 ... <duration> <length> <flags> ...`) in a hex-base file,
 * parsed from bytes without making strings. Returns false for anything else (or anything unusual), which then goes
 * through `AscParser.line`, the one place that knows the whole grammar and reports errors. Exported for the test
 * that holds both paths to the same result (test/traces/fuzz.test.ts).
 */
/**
 * Printable ASCII other than space. Anything else (tabs, CR, bytes the general parser's `\s` may split on, such as
 * latin1 NBSP) makes the fast path give up, so both paths always cut a line into the same tokens.
 */
function isTokenByte(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

// Results of the field scanners below: module slots, so the hot path allocates nothing per field.
let fieldValue = 0;
let fieldExt = false;

/** Skips spaces from i. */
function skipSpaces(b: Buffer, i: number, e: number): number {
  while (i < e && b[i] === 0x20) i++;
  return i;
}

/** A 1-2 digit channel ended by a space (value in fieldValue); the index after it, or -1. */
function scanChannel(b: Buffer, i: number, e: number): number {
  let ch = 0;
  const start = i;
  for (; i < e && b[i] >= 48 && b[i] <= 57; i++) ch = ch * 10 + (b[i] - 48);
  if (i === start || i - start > 2 || b[i] !== 0x20) return -1;
  fieldValue = ch;
  return i;
}

/** `Rx ` or `Tx `; the index after it, or -1. */
function scanDirection(b: Buffer, i: number, e: number): number {
  if (i + 2 >= e || (b[i] !== 0x52 && b[i] !== 0x54) || b[i + 1] !== 0x78 || b[i + 2] !== 0x20) return -1;
  return i + 3;
}

/** A hex CAN ID, `x` for 29-bit, in range, ended by a space (fieldValue, fieldExt); the index after it, or -1. */
function scanId(b: Buffer, i: number, e: number): number {
  let id = 0;
  const start = i;
  for (; i < e; i++) {
    const d = HEXVAL[b[i]];
    if (d < 0) break;
    id = id * 16 + d;
  }
  if (i === start || i - start > 8) return -1;
  let ext = false;
  if (b[i] === 0x78) {
    ext = true;
    i++;
  }
  if (b[i] !== 0x20 || id > (ext ? CAN_EFF_MASK : CAN_SFF_MASK)) return -1;
  fieldValue = id;
  fieldExt = ext;
  return i;
}

/** `data.length` space-separated hex bytes into `data`; the index after them, or -1. */
function scanData(b: Buffer, i: number, e: number, data: Uint8Array): number {
  for (let k = 0; k < data.length; k++) {
    if (b[i] !== 0x20) return -1;
    i = skipSpaces(b, i, e);
    const hi = HEXVAL[b[i]];
    const lo = HEXVAL[b[i + 1]];
    if (hi < 0 || lo < 0 || i + 1 >= e || (i + 2 < e && b[i + 2] !== 0x20)) return -1;
    data[k] = (hi << 4) | lo;
    i += 2;
  }
  return i;
}

export function fastLine(p: AscParser, b: Buffer, i: number, e: number, out: Frame[]): boolean {
  i = skipSpaces(b, i, e);
  if (!(b[i] >= 48 && b[i] <= 57)) return false;
  // time: digits . digits (exact as Number() for up to 15 digits)
  i = scanDecimal(b, i, e);
  if (decimal.digits === 0 || decimal.digits > 15 || decimal.frac < 1 || decimal.frac > 9 || b[i] !== 0x20) return false;
  const time = decimal.mant / POW10[decimal.frac];
  i = skipSpaces(b, i, e);
  if (b[i] === 0x43 /* C */) return fastFdLine(p, b, i, e, time, out);
  if ((i = scanChannel(b, i, e)) < 0) return false;
  const ch = fieldValue;
  if ((i = scanId(b, skipSpaces(b, i, e), e)) < 0) return false;
  const id = fieldValue;
  const ext = fieldExt;
  // direction Rx / Tx, then `d`, then the DLC digit
  if ((i = scanDirection(b, skipSpaces(b, i, e), e)) < 0) return false;
  i = skipSpaces(b, i, e);
  if (b[i] !== 0x64 || b[i + 1] !== 0x20) return false;
  i += 2;
  const dlc = i < e ? HEXVAL[b[i]] : -1;
  if (dlc < 0 || (i + 1 < e && b[i + 1] !== 0x20)) return false;
  i++;
  const data = new Uint8Array(dlc > 8 ? 8 : dlc);
  if (scanData(b, i, e, data) < 0) return false;
  const eventTime = p.relativeTimes ? p.lastEvent + time : time;
  p.lastEvent = eventTime;
  out.push({ id, ext, rtr: false, fd: false, brs: false, esi: false, err: false, data, t: p.start + eventTime, bus: ch < 64 ? CHANNELS[ch] : String(ch) });
  return true;
}

function fastFdLine(p: AscParser, b: Buffer, i: number, e: number, time: number, out: Frame[]): boolean {
  if (e - i < 6 || b[i + 1] !== 0x41 || b[i + 2] !== 0x4e || b[i + 3] !== 0x46 || b[i + 4] !== 0x44 || b[i + 5] !== 0x20) return false;
  if ((i = scanChannel(b, skipSpaces(b, i + 5, e), e)) < 0) return false;
  const ch = fieldValue;
  if ((i = scanDirection(b, skipSpaces(b, i, e), e)) < 0) return false;
  if ((i = scanId(b, skipSpaces(b, i, e), e)) < 0) return false;
  const id = fieldValue;
  const ext = fieldExt;
  i = skipSpaces(b, i, e);
  // BRS and ESI digits (two whitespace-separated 0/1 tokens), unless a symbolic name comes first
  const isBitAt = (k: number) => (b[k] === 0x30 || b[k] === 0x31) && b[k + 1] === 0x20;
  const nextToken = (k: number) => {
    while (k < e && isTokenByte(b[k])) k++;
    return skipSpaces(b, k, e);
  };
  let esiAt = nextToken(i);
  if (!(isBitAt(i) && isBitAt(esiAt))) {
    i = esiAt;
    esiAt = nextToken(i);
    if (!(isBitAt(i) && isBitAt(esiAt))) return false;
  }
  const brs = b[i] === 0x31;
  const esi = b[esiAt] === 0x31;
  i = nextToken(esiAt);
  const dlc = i < e ? HEXVAL[b[i]] : -1;
  if (dlc < 0 || b[i + 1] !== 0x20) return false;
  i = skipSpaces(b, i + 2, e);
  let len = 0;
  const lenStart = i;
  for (; i < e && b[i] >= 48 && b[i] <= 57; i++) len = len * 10 + (b[i] - 48);
  if (i === lenStart || i - lenStart > 2 || len > 64 || FD_LEN_OK[len] === 0 || (i < e && b[i] !== 0x20)) return false;
  const data = new Uint8Array(len);
  if ((i = scanData(b, i, e, data)) < 0) return false;
  // Flags: the third column after the data (duration, length, flags), hex; absent in short lines.
  let flags = -1;
  for (let col = 0; col < 3 && i < e; col++) {
    i = skipSpaces(b, i, e);
    if (col < 2) {
      while (i < e && isTokenByte(b[i])) i++;
      continue;
    }
    let f = 0;
    const fStart = i;
    for (; i < e; i++) {
      const d = HEXVAL[b[i]];
      if (d < 0) break;
      f = f * 16 + d;
    }
    if (i === fStart || i - fStart > 8 || (i < e && b[i] !== 0x20)) return false;
    flags = f;
  }
  if (flags >= 0 ? (flags & FLAG_RTR) !== 0 && len === 0 : len === 0 && dlc > 0) return false; // remote: the general parser
  const fd = flags < 0 || (flags & FLAG_EDL) !== 0 || len > 8;
  const eventTime = p.relativeTimes ? p.lastEvent + time : time;
  p.lastEvent = eventTime;
  out.push({ id, ext, rtr: false, fd, brs: fd && brs, esi: fd && esi, err: false, data, t: p.start + eventTime, bus: ch < 64 ? CHANNELS[ch] : String(ch) });
  return true;
}

async function* readAsc(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  const parser = new AscParser(ctx);
  let lineNo = 0;
  for await (const buf of wholeLines(chunks, ctx)) {
    const out: Frame[] = [];
    const n = buf.length;
    let pos = 0;
    try {
      while (pos < n) {
        lineNo++;
        let end = buf.indexOf(0x0a, pos);
        if (end < 0) end = n;
        let e = end;
        if (e > pos && buf[e - 1] === 0x0d) e--;
        if (parser.base !== 16 || !fastLine(parser, buf, pos, e, out)) {
          const f = parser.line(buf.toString("latin1", pos, e), lineNo);
          if (f) out.push(f);
        }
        pos = end + 1;
      }
    } catch (e) {
      if (out.length > 0) yield out;
      throw e;
    }
    if (out.length > 0) yield out;
  }
}

/** `id.toString(16).toUpperCase()` plus `x` for a 29-bit ID: the ID column. */
function writeId(out: TextBuffer, f: Frame): number {
  out.hex(f.id, 1);
  if (f.ext) out.byte(0x78 /* x */);
  return hexLength(f.id) + (f.ext ? 1 : 0);
}

function hexLength(n: number): number {
  return n >= 0 && n <= 0xffffffff ? (n < 16 ? 1 : Math.floor(Math.log2(n) / 4) + 1) : n.toString(16).length;
}

const CANFD_GAP = Buffer.from(" ".repeat(34));
const CANFD_TAIL = Buffer.from("        0        0        0        0        0\n");

/**
 * Writes what CANoe and both references read: python-can's and log2asc's layout, `base hex  timestamps absolute`,
 * the date of the first frame in local time with milliseconds, and times relative to that millisecond, so the
 * absolute time survives a round trip to the microsecond. Lines go straight into bytes (see TextBuffer); the
 * template each branch follows is in its comment.
 */
function createAscWriter(): FormatWriter {
  let start: number | undefined;
  let lastT = 0;
  const out = new TextBuffer();
  const channels = new ChannelText(channelNumber);
  return {
    begin: () => "",
    encode(frames) {
      for (const f of frames) {
        const t = f.t ?? lastT;
        lastT = t;
        if (start === undefined) {
          start = Math.floor(t * 1000) / 1000;
          const date = formatAscDate(start);
          out.text(`date ${date}\nbase hex  timestamps absolute\ninternal events logged\n// version 9.0.0\nBegin Triggerblock ${date}\n   0.000000 Start of measurement\n`);
        }
        // ts = (t - start).toFixed(6).padStart(11); ch = channelNumber(f.bus)
        out.fixed6(t - start, 11);
        const ch = channels.get(f.bus);
        if (f.err) {
          // `${ts} ${ch}  ErrorFrame  SocketCAN 0x${class bits hex} ${8 bytes spaced hex}\n` (see the header)
          out.byte(SPACE);
          out.bytes(ch);
          out.text("  ErrorFrame  SocketCAN 0x");
          out.hex(f.id, 1, true);
          out.byte(SPACE);
          const details = new Uint8Array(8);
          details.set(f.data.subarray(0, 8));
          out.spacedHexBytes(details);
          out.byte(NEWLINE);
        } else if (f.fd) {
          // `${ts} CANFD ${String(ch).padStart(3)} Rx ${idText.padStart(11)} ${"".padStart(32)} ${brs} ${esi} ${dlc hex} ${String(len).padStart(2)}`
          // + (len ? " " + spacedHex(data) : "") + `        0    0 ${flags hex upper.padStart(8)}        0        0        0        0        0\n`
          const len = f.data.length;
          out.text(" CANFD ");
          out.spaces(3 - ch.length);
          out.bytes(ch);
          out.text(" Rx ");
          out.spaces(11 - hexLength(f.id) - (f.ext ? 1 : 0));
          writeId(out, f);
          out.bytes(CANFD_GAP);
          out.byte(f.brs ? 0x31 : 0x30);
          out.byte(SPACE);
          out.byte(f.esi ? 0x31 : 0x30);
          out.byte(SPACE);
          out.hex(lengthToDlc(len), 1, true);
          out.byte(SPACE);
          out.decimal(len, 2);
          if (len) {
            out.byte(SPACE);
            out.spacedHexBytes(f.data);
          }
          out.text("        0    0 ");
          const flags = FLAG_EDL | (f.brs ? FLAG_BRS : 0) | (f.esi ? FLAG_ESI : 0);
          out.spaces(8 - hexLength(flags));
          out.hex(flags, 1);
          out.bytes(CANFD_TAIL);
        } else {
          // remote: `${ts} ${ch}  ${idText.padEnd(15)} Rx   r ${(f.dlc ?? 0).toString(16)}\n`
          // data:   `${ts} ${ch}  ${idText.padEnd(15)} Rx   d ${len.toString(16)}` + (len ? " " + spacedHex(data) : "") + "\n"
          out.byte(SPACE);
          out.bytes(ch);
          out.byte(SPACE);
          out.byte(SPACE);
          out.spaces(15 - writeId(out, f));
          if (f.rtr) {
            out.text(" Rx   r ");
            out.hex(f.dlc ?? 0, 1, true);
          } else {
            const len = f.data.length;
            out.text(" Rx   d ");
            out.hex(len, 1, true);
            if (len) {
              out.byte(SPACE);
              out.spacedHexBytes(f.data);
            }
          }
          out.byte(NEWLINE);
        }
      }
      return out.take();
    },
    finish: () => ({ tail: start === undefined ? "" : "End TriggerBlock\n" }),
  };
}

export const ascFormat: TraceFormat = {
  name: "asc",
  extensions: [".asc"],
  description: "Vector ASC (CANoe/CANalyzer), classic and CAN FD lines",
  read: readAsc,
  createWriter: createAscWriter,
};

registerFormat(ascFormat);
