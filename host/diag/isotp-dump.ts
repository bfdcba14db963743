/**
 * Watching an ISO-TP conversation between two IDs (live or from a trace): every frame described by its PCI, in
 * can-utils' isotpdump wording (`[FF] ln: 21   data: 11 22 ..`, `[FC] FC: 0 = CTS # BS: 0 = off # STmin: 0x00 = 0 ms`),
 * and, beside them, the messages the frames carried, put back together by one reassembler per direction, and the
 * named errors of messages that failed. Pure: frames in, items out; timeouts are judged from the frames' times.
 */
import { bytesToHex, type Frame } from "../../frame/frame";
import { IsoTpError, readPdu, type Pdu } from "./isotp-pci";
import { IsoTpReassembler } from "./isotp-reassembler";

export interface IsoTpSide {
  id: number;
  ext: boolean;
  /** The address byte frames of this ID carry before the PCI (extended/mixed addressing); "any" accepts every value. */
  address?: number | "any";
}

export interface IsoTpWatchOptions {
  /** The two ends: frames on `source.id` and on `dest.id` (isotpdump's -s and -d). */
  source: IsoTpSide;
  dest: IsoTpSide;
  /** N_Cr in seconds for judging timeouts from frame times. Default 1. */
  nCr?: number;
  /** Longest message reassembled. Default 16 MiB. */
  maxLength?: number;
}

export type IsoTpWatchItem =
  | { kind: "frame"; frame: Frame; pdu: Pdu | IsoTpError; offset: number }
  | { kind: "message"; id: number; ext: boolean; bus?: string; payload: Uint8Array; start: number; t: number; frames: number }
  | { kind: "error"; id: number; ext: boolean; bus?: string; error: IsoTpError; t: number };

export class IsoTpWatcher {
  private readonly sides: Array<{ side: IsoTpSide; reassembler: IsoTpReassembler; bus?: string }>;
  /** Messages and errors per reason, for the summary. */
  messages = 0;
  readonly errors: Record<string, number> = {};

  constructor(private readonly options: IsoTpWatchOptions) {
    this.sides = [options.source, options.dest].map((side) => ({
      side,
      reassembler: new IsoTpReassembler({ offset: side.address !== undefined ? 1 : 0, nCr: options.nCr ?? 1, maxLength: options.maxLength ?? 1 << 24 }),
    }));
  }

  /** Items for one frame of the bus: nothing when it is on neither ID. */
  push(frame: Frame): IsoTpWatchItem[] {
    if (frame.err || frame.rtr) return [];
    const i = this.sides.findIndex(({ side }) => side.id === frame.id && side.ext === frame.ext);
    if (i < 0) return [];
    const { side, reassembler } = this.sides[i];
    this.sides[i].bus = frame.bus;
    const offset = side.address !== undefined ? 1 : 0;
    if (typeof side.address === "number" && frame.data[0] !== side.address) return [];
    const t = frame.t ?? 0;
    const pdu = readPdu(frame.data, offset);
    const items: IsoTpWatchItem[] = [{ kind: "frame", frame, pdu, offset }];
    if (!(pdu instanceof IsoTpError) && pdu.type === "FC") {
      // Flow control answers the other direction's sender: its N_Cr restarts here.
      const other = this.sides[1 - i].reassembler;
      this.collect(this.sides[1 - i].side, this.sides[1 - i].bus, other.expire(t), items);
      other.touch(t);
      return items;
    }
    this.collect(side, frame.bus, reassembler.push(frame.data, t), items);
    return items;
  }

  /** The messages still in progress at time `t` (the end of a trace): those past N_Cr fail with timeout-cr. */
  finish(t: number): IsoTpWatchItem[] {
    const items: IsoTpWatchItem[] = [];
    for (const { side, reassembler, bus } of this.sides) this.collect(side, bus, reassembler.expire(t), items);
    return items;
  }

  private collect(side: IsoTpSide, bus: string | undefined, events: ReturnType<IsoTpReassembler["push"]>, items: IsoTpWatchItem[]): void {
    for (const e of events) {
      if (e.kind === "message") {
        this.messages++;
        items.push({ kind: "message", id: side.id, ext: side.ext, bus, payload: e.payload, start: e.start, t: e.t, frames: e.frames });
      } else if (e.kind === "error") {
        this.errors[e.error.code] = (this.errors[e.error.code] ?? 0) + 1;
        items.push({ kind: "error", id: side.id, ext: side.ext, bus, error: e.error, t: e.t });
      }
    }
  }
}

const FLOW_STATUS = ["CTS", "WT", "OVFLW"];

function spacedHex(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i++) s += bytesToHex(data.subarray(i, i + 1)) + " ";
  return s;
}

function idText(id: number, ext: boolean): string {
  return id.toString(16).toUpperCase().padStart(ext ? 8 : 3, "0");
}

function stMinText(raw: number): string {
  const hex = `0x${raw.toString(16).toUpperCase().padStart(2, "0")}`;
  if (raw <= 0x7f) return `${hex} = ${raw} ms`;
  if (raw >= 0xf1 && raw <= 0xf9) return `${hex} = ${(raw - 0xf0) * 100} us`;
  return `${hex} = reserved`;
}

/** One frame as isotpdump prints it (without its timestamp): ` vcan0  7E0{10}  [8]  [CF] sn: 1    data: 66 77 ..`. */
export function formatIsoTpFrame(item: Extract<IsoTpWatchItem, { kind: "frame" }>): string {
  const { frame, pdu, offset } = item;
  // isotpdump's columns: the length as [8] for classic frames, as [08]..[64] closer to the ID for CAN FD ones.
  const len = frame.fd ? ` [${String(frame.data.length).padStart(2, "0")}]` : `  [${frame.data.length}]`;
  const head = ` ${frame.bus ?? "-"}  ${idText(frame.id, frame.ext)}${offset ? `{${bytesToHex(frame.data.subarray(0, 1))}}` : ""}${len}  `;
  if (pdu instanceof IsoTpError) return `${head}[??] ${spacedHex(frame.data.subarray(offset))}`;
  const rest = spacedHex(frame.data.subarray(pdu.dataStart));
  switch (pdu.type) {
    case "SF":
      return `${head}[SF] ln: ${String(pdu.length).padEnd(4)} data: ${rest}`;
    case "FF":
      return `${head}[FF] ln: ${String(pdu.length).padEnd(4)} data: ${rest}`;
    case "CF":
      return `${head}[CF] sn: ${pdu.sn.toString(16).toUpperCase().padEnd(4)} data: ${rest}`;
    case "FC": {
      const fs = pdu.status < FLOW_STATUS.length ? `${pdu.status} = ${FLOW_STATUS[pdu.status]}` : `${pdu.status} = reserved`;
      const bs = pdu.blockSize === 0 ? "0 = off" : String(pdu.blockSize);
      return `${head}[FC] FC: ${fs} # BS: ${bs} # STmin: ${stMinText(pdu.stMin)}`;
    }
  }
}

/** A reassembled message or a failed one, on a line of its own after the frame that completed it. */
export function formatIsoTpResult(item: Exclude<IsoTpWatchItem, { kind: "frame" }>): string {
  const head = ` ${item.bus ?? "-"}  ${idText(item.id, item.ext)}  `;
  if (item.kind === "error") return `${head}!! ${item.error.code}: ${item.error.message.replace(/^isotp [a-z-]+: /, "")}`;
  return `${head}=> ln: ${item.payload.length} in ${item.frames} frame${item.frames === 1 ? "" : "s"}: ${spacedHex(item.payload).trimEnd()}`;
}

/** The same items as JSON objects (`vgw isotp dump --format jsonl`). */
export function isoTpItemJson(item: IsoTpWatchItem): Record<string, unknown> {
  if (item.kind === "frame") {
    const { frame, pdu } = item;
    const o: Record<string, unknown> = { t: frame.t, bus: frame.bus, id: frame.id, ext: frame.ext };
    if (frame.fd) o.fd = true;
    o.data = bytesToHex(frame.data);
    if (pdu instanceof IsoTpError) o.pdu = { type: "??", error: pdu.code };
    else {
      const { dataStart: _skip, ...fields } = pdu;
      o.pdu = fields;
    }
    return o;
  }
  if (item.kind === "message") return { t: item.t, bus: item.bus, id: item.id, ext: item.ext, message: bytesToHex(item.payload), length: item.payload.length, frames: item.frames };
  return { t: item.t, bus: item.bus, id: item.id, ext: item.ext, error: item.error.code, reason: item.error.message };
}
