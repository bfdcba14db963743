/**
 * PEAK TRC traces (PCAN-View, PCAN-Explorer, PEAK-Converter), after PEAK's "TRC File Format" document.
 * Read: versions 1.0, 1.1, 1.2, 1.3, 2.0, 2.1. Written: 2.1.
 *
 *   1.0   `   1)     17535  00000100  8  00 ...`               number) offset-ms ID DLC data | RTR | ERROR ...
 *   1.1   `   1)     17535.4  Tx     00000100  8  00 ...`      + type (Rx, Tx, Warng, Error)
 *   1.2   `   1)     17535.4 1  Tx     00000100  8  00 ...`    + bus
 *   1.3   `   1)     17535.400 1  Tx    00000100 -  8  00 ...`  + reserved column
 *   2.x   columns named by `;$COLUMNS=` (2.0 default N,O,T,I,d,l,D; 2.1: N,O,T,B,I,d,R,L,D); types DT (data),
 *         FD/FB/FE/BI (CAN FD; B = bit-rate switch, E = error state), RR (remote request), ER (error frame),
 *         ST/EC/EV (status, error counters, events: not frames)
 *
 * IDs: 4 hex digits = 11-bit, 8 = 29-bit. Frame.t = start time (`;$STARTTIME=` days since 1899-12-30, local time;
 * or the `Start time: dd.mm.yyyy hh:mm:ss.mmm` comment of older files) + offset; Frame.bus = the TRC bus number
 * ("1" when the version has no bus column). Error frames carry no CAN error class here: they become
 * CAN_ERR_BUSERROR with 8 zero bytes, as in ASC and BLF. Status/warning lines are not frames and are passed over.
 */
import type { Frame } from "../../frame/frame";
import { busErrorFrame } from "../../frame/error-frame";
import { CAN_EFF_MASK, CAN_SFF_MASK, FD_LENGTHS } from "../../frame/frame";
import { registerFormat, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { framesFromLines, spacedHex } from "./lines";
import { channelNumber } from "./channel";

const EMPTY = new Uint8Array(0);
const WS = /\s+/;
/** OLE automation dates (`$STARTTIME`) count days from 1899-12-30, local time. */
function oleToEpoch(days: number): number {
  // Calendar arithmetic in local time: whole days via Date, the fraction as milliseconds.
  const whole = Math.floor(days);
  const d = new Date(1899, 11, 30 + whole);
  return (d.getTime() + (days - whole) * 86400000) / 1000;
}

function epochToOle(epoch: number): number {
  const d = new Date(epoch * 1000);
  const midnight = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const wholeDays = Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(1899, 11, 30)) / 86400000);
  return wholeDays + (epoch * 1000 - midnight.getTime()) / 86400000;
}

/** `18.12.2021 14:28:07.062` (optionally `.062.1` sub-ms digits) as local epoch seconds. */
function parseStartComment(text: string): number | undefined {
  const m = /(\d{1,2})\.(\d{1,2})\.(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?/.exec(text);
  if (!m) return undefined;
  const d = new Date(Number(m[3]), Number(m[2]) - 1, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), Number((m[7] ?? "0").padEnd(3, "0")));
  return Number.isNaN(d.getTime()) ? undefined : d.getTime() / 1000;
}

type Col = "N" | "O" | "T" | "B" | "I" | "d" | "R" | "L" | "l" | "D";

class TrcParser {
  version = "1.0";
  start = 0;
  private startFromHeader = false;
  columns: Col[] = [];
  constructor(private readonly ctx: ReadContext) {}

  line(raw: string, lineNo: number): Frame | undefined {
    const line = raw.trim();
    if (line.length === 0) return undefined;
    if (line[0] === ";") {
      this.header(line, lineNo);
      return undefined;
    }
    const tok = line.split(WS);
    return this.version.startsWith("2.") ? this.v2(tok, lineNo, line) : this.v1(tok, lineNo, line);
  }

  private header(line: string, lineNo: number): void {
    const m = /^;\$(\w+)=(.*)$/.exec(line);
    if (m) {
      const value = m[2].trim();
      if (m[1] === "FILEVERSION") {
        if (!/^(1\.[0-3]|2\.[01])$/.test(value)) this.ctx.bad(lineNo, `TRC file version '${value}' is not one of 1.0-1.3, 2.0, 2.1; reading it as ${this.version}`);
        else {
          this.version = value;
          if (value === "2.0" && this.columns.length === 0) this.columns = ["N", "O", "T", "I", "d", "l", "D"];
          if (value === "2.1" && this.columns.length === 0) this.columns = ["N", "O", "T", "B", "I", "d", "R", "L", "D"];
        }
      } else if (m[1] === "STARTTIME") {
        const epoch = /^\d+(\.\d+)?$/.test(value) ? oleToEpoch(Number(value)) : NaN;
        if (!Number.isFinite(epoch)) this.ctx.bad(lineNo, `bad $STARTTIME '${value}': expected days since 30.12.1899`);
        else {
          this.start = epoch;
          this.startFromHeader = true;
        }
      } else if (m[1] === "COLUMNS") {
        const cols = value.split(",").map((c) => c.trim());
        if (!cols.every((c) => "NOTBIdRLlD".includes(c) && c.length === 1) || !cols.includes("O") || !cols.includes("T")) {
          this.ctx.bad(lineNo, `bad $COLUMNS '${value}'`);
        } else this.columns = cols as Col[];
      }
      return;
    }
    if (!this.startFromHeader) {
      const s = /Start time:\s*(.*)$/.exec(line);
      if (s) {
        const when = parseStartComment(s[1]);
        if (when !== undefined && Number.isFinite(when)) this.start = when;
      }
    }
  }

  private v1(tok: string[], lineNo: number, line: string): Frame | undefined {
    if (!/^\d+\)$/.test(tok[0])) return this.bad(lineNo, "expected a message number like '12)'", line);
    let k = 1;
    const offset = Number(tok[k++]);
    if (!Number.isFinite(offset)) return this.bad(lineNo, `bad time offset '${tok[1]}'`, line);
    const t = this.start + offset / 1000;
    let bus = "1";
    if (this.version === "1.2" || this.version === "1.3") bus = tok[k++];
    let type = "Rx";
    if (this.version !== "1.0") type = tok[k++];
    if (type === "Warng") return undefined; // bus status warning, not a frame
    const idTok = tok[k++];
    if (this.version === "1.3" && tok[k] === "-") k++;
    if (idTok === "FFFFFFFF") return undefined; // 1.0 status line
    if (type === "Error") return busErrorFrame(t, bus);
    if (type !== "Rx" && type !== "Tx") return this.bad(lineNo, `unknown message type '${type}'`, line);
    if (!/^\d+$/.test(bus ?? "")) return this.bad(lineNo, `bad bus '${bus}'`, line);
    const id = parseId(idTok);
    if (!id) return this.bad(lineNo, `bad CAN ID '${idTok}'`, line);
    const dlc = Number(tok[k++]);
    if (!Number.isInteger(dlc) || dlc < 0 || dlc > 8) return this.bad(lineNo, `bad data length '${tok[k - 1]}'`, line);
    if (tok[k] === "RTR") return remote(id, dlc, t, bus);
    if (tok[k] === "ERROR") return busErrorFrame(t, bus);
    const data = bytes(tok, k, dlc);
    if (typeof data === "string") return this.bad(lineNo, data, line);
    return { id: id.id, ext: id.ext, rtr: false, fd: false, brs: false, esi: false, err: false, data, t, bus };
  }

  private v2(tok: string[], lineNo: number, line: string): Frame | undefined {
    const cols = this.columns;
    const at = (c: Col): string | undefined => {
      const i = cols.indexOf(c);
      return i < 0 ? undefined : tok[i];
    };
    const type = at("T");
    if (type === "ST" || type === "EC" || type === "EV") return undefined;
    const offset = Number(at("O"));
    if (!Number.isFinite(offset)) return this.bad(lineNo, `bad time offset '${at("O")}'`, line);
    const t = this.start + offset / 1000;
    const bus = at("B") ?? "1";
    if (!/^\d+$/.test(bus)) return this.bad(lineNo, `bad bus '${bus}'`, line);
    if (type === "ER") return busErrorFrame(t, bus);
    const fdTypes: Record<string, [boolean, boolean]> = { FD: [false, false], FB: [true, false], FE: [false, true], BI: [true, true] };
    if (type !== "DT" && type !== "RR" && !(type !== undefined && type in fdTypes)) {
      return this.bad(lineNo, `unknown message type '${type}'`, line);
    }
    const idTok = at("I") ?? "";
    const id = parseId(idTok);
    if (!id) return this.bad(lineNo, `bad CAN ID '${idTok}'`, line);
    const fd = type in fdTypes;
    let len: number;
    const dlcTok = at("L");
    const lenTok = at("l");
    if (dlcTok !== undefined) {
      const dlc = Number(dlcTok);
      if (!Number.isInteger(dlc) || dlc < 0 || dlc > 15 || (!fd && dlc > 8 && type === "RR")) return this.bad(lineNo, `bad DLC '${dlcTok}'`, line);
      len = fd ? FD_LENGTHS[dlc] : Math.min(dlc, 8);
    } else if (lenTok !== undefined) {
      len = Number(lenTok);
      if (!Number.isInteger(len) || len < 0 || len > 64 || (fd ? FD_LENGTHS.indexOf(len) < 0 : len > 8)) return this.bad(lineNo, `bad data length '${lenTok}'`, line);
    } else return this.bad(lineNo, "the columns give no data length (L or l)", line);
    if (type === "RR") return remote(id, len, t, bus);
    const dataAt = cols.indexOf("D");
    if (dataAt < 0 && len > 0) return this.bad(lineNo, "the columns give no data (D)", line);
    const data = bytes(tok, dataAt, len);
    if (typeof data === "string") return this.bad(lineNo, data, line);
    const [brs, esi] = fd ? fdTypes[type] : [false, false];
    return { id: id.id, ext: id.ext, rtr: false, fd, brs, esi, err: false, data, t, bus };
  }

  private bad(lineNo: number, reason: string, line: string): undefined {
    this.ctx.bad(lineNo, `${reason}: '${line.length > 120 ? line.slice(0, 120) + "..." : line}'`);
    return undefined;
  }
}

function parseId(text: string | undefined): { id: number; ext: boolean } | undefined {
  if (!text || !/^[0-9a-fA-F]{1,8}$/.test(text)) return undefined;
  const ext = text.length > 4;
  const id = parseInt(text, 16);
  if (id > (ext ? CAN_EFF_MASK : CAN_SFF_MASK)) return undefined;
  return { id, ext };
}

function bytes(tok: string[], from: number, len: number): Uint8Array | string {
  if (len === 0) return EMPTY;
  if (tok.length < from + len) return `expected ${len} data bytes, found ${Math.max(0, tok.length - from)}`;
  const data = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    const s = tok[from + i];
    if (s.length !== 2 || !/^[0-9a-fA-F]{2}$/.test(s)) return `bad data byte '${s}'`;
    data[i] = parseInt(s, 16);
  }
  return data;
}

function remote(id: { id: number; ext: boolean }, dlc: number, t: number, bus: string): Frame {
  const f: Frame = { id: id.id, ext: id.ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, t, bus };
  if (dlc > 0) f.dlc = Math.min(dlc, 8);
  return f;
}


function readTrc(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  const parser = new TrcParser(ctx);
  return framesFromLines(chunks, ctx, (l, lineNo) => parser.line(l, lineNo));
}

/**
 * TRC 2.1 as PCAN-View writes it. The start time is the first frame's time cut to the whole second (so
 * `$STARTTIME` holds it to well under a microsecond); offsets are milliseconds with three decimals (1 us).
 * Error frames are dropped and counted: TRC's ER line carries error details a Frame does not have, and writing
 * invented ones would be worse than saying so.
 */
function createTrcWriter(): FormatWriter {
  let start: number | undefined;
  let n = 0;
  let lastT = 0;
  let dropped = 0;
  const writer: FormatWriter & { dropped: number } = {
    get dropped() {
      return dropped;
    },
    begin: () => "",
    encode(frames) {
      const parts: string[] = [];
      for (const f of frames) {
        const t = f.t ?? lastT;
        lastT = t;
        if (start === undefined) {
          start = Math.floor(t);
          parts.push(trcHeader(start));
        }
        if (f.err) {
          dropped++;
          continue;
        }
        n++;
        const type = f.rtr ? "RR" : f.fd ? (f.brs ? (f.esi ? "BI" : "FB") : f.esi ? "FE" : "FD") : "DT";
        const id = f.ext ? f.id.toString(16).toUpperCase().padStart(8, "0") : f.id.toString(16).toUpperCase().padStart(4, "0");
        const dlc = f.rtr ? (f.dlc ?? 0) : f.fd ? FD_LENGTHS.indexOf(f.data.length) : f.data.length;
        const data = f.data.length ? " " + spacedHex(f.data) : "";
        const offset = ((t - start) * 1000).toFixed(3);
        parts.push(`${String(n).padStart(7)} ${offset.padStart(13)} ${type} ${String(channelNumber(f.bus)).padStart(2)} ${id.padStart(8)} Rx -  ${String(dlc).padEnd(4)}${data}\n`);
      }
      return parts.join("");
    },
    finish: () => ({ tail: "" }),
  };
  return writer;
}

function trcHeader(start: number): string {
  const d = new Date(start * 1000);
  const p2 = (x: number) => String(x).padStart(2, "0");
  const human = `${p2(d.getDate())}.${p2(d.getMonth() + 1)}.${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.000.000`;
  return [
    ";$FILEVERSION=2.1",
    `;$STARTTIME=${epochToOle(start).toFixed(12)}`,
    ";$COLUMNS=N,O,T,B,I,d,R,L,D",
    ";",
    `;   Start time: ${human}`,
    ";   Generated by vgw",
    ";-------------------------------------------------------------------------------",
    ";   Message   Time    Type    ID     Rx/Tx",
    ";   Number    Offset  |  Bus  [hex]  |  Reserved",
    ";   |         [ms]    |  |    |      |  |  Data Length Code",
    ";   |         |       |  |    |      |  |  |    Data [hex] ...",
    ";   |         |       |  |    |      |  |  |    |",
    ";---+-- ------+------ +- +- --+----- +- +- +--- +- -- -- -- -- -- -- --",
    "",
  ].join("\n");
}

export const trcFormat: TraceFormat = {
  name: "trc",
  extensions: [".trc"],
  description: "PEAK TRC (PCAN-View); reads 1.0-1.3, 2.0, 2.1; writes 2.1",
  read: readTrc,
  createWriter: createTrcWriter,
};

registerFormat(trcFormat);
