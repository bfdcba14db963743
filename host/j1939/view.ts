/**
 * J1939 messages as the frame-printing commands show them (decode, dump, record): every frame goes through
 * `frame()`, which returns the lines to print after it, one per reassembled message, transport fault or DM1:
 *
 *   text:  j1939 bam pgn=FECA 00->FF [20] 41FF6400...  DM1 MIL=on ...; SPN 100 FMI 1 (...) OC 3  Dm1Msg Sig=1 ...
 *          j1939 ! timeout-T1 pgn=FECA 00->FF bam: no TP.DT 3 within 750 ms (after packet 2 of 3)
 *   JSON:  {"j1939":{"transport":"bam","pgn":65226,"source":0,"destination":255,"priority":7,"size":20,"packets":3},
 *           "data":"41FF...","message":...,"signals":{...},"dm1":{...}}   (message/signals with a DBC)
 *          {"j1939":{"fault":"timeout-T1","pgn":65226,"source":0,"destination":255,"transport":"bam"},"error":"..."}
 *
 * The command puts its own time and bus prefix before the text and adds "t" and "bus" to the JSON. A DBC decodes a
 * reassembled message by its PGN as it decodes a frame (can-db's Decoder: the exact ID, then a J1939 message with
 * the same PGN). A single-frame DM1 gets a line too (transport "single"), so every DM1 is shown the same way.
 */
import type { Frame } from "../../frame/frame";
import { bytesToHex } from "../../frame/frame";
import { j1939Pgn, j1939Priority, j1939Source, makeJ1939Id } from "../../can-db/j1939";
import { J1939Reassembler, J1939_GLOBAL, hex2, type J1939Event, type J1939Fault, type J1939Message, type J1939Transport } from "./transport";
import { PGN_DM1, decodeDm1, dm1Text } from "./dm1";

/** A DBC's view of a message: the form `vgw decode`/`dump` print beside frames (`Name Sig=1`, `{message, signals}`). */
export interface MessageAnnotator {
  text(frame: Frame): string;
  json(frame: Frame): Record<string, unknown>;
}

export interface J1939Line {
  t?: number;
  bus?: string;
  /** The line after the command's time/bus prefix. */
  text: string;
  /** The JSON object without "t" and "bus". */
  json: Record<string, unknown>;
}

const NONE: J1939Line[] = [];

/** A message as shown: reassembled, or a single frame (transport "single"). */
type ShownMessage = Omit<J1939Message, "transport">;

export class J1939View {
  readonly reassembler = new J1939Reassembler();
  /** Single-frame DM1 messages shown. */
  singleDm1 = 0;
  /** Time of the last frame: an incomplete transfer is reported at the end of the input, at this time. */
  private lastT: number | undefined;

  constructor(private readonly annotator?: MessageAnnotator) {}

  /** The lines a frame adds (usually none). */
  frame(f: Frame): J1939Line[] {
    if (f.t !== undefined) this.lastT = f.t;
    const events = this.reassembler.push(f);
    let lines = events.length === 0 ? NONE : events.map((e) => this.line(e));
    if (f.ext && !f.err && !f.rtr && j1939Pgn(f.id) === PGN_DM1) {
      this.singleDm1++;
      const m: ShownMessage = { pgn: PGN_DM1, priority: j1939Priority(f.id), source: j1939Source(f.id), destination: J1939_GLOBAL, data: f.data, packets: 1 };
      if (f.t !== undefined) m.t = f.t;
      if (f.bus !== undefined) m.bus = f.bus;
      lines = [...lines, this.messageLine(m, "single")];
    }
    return lines;
  }

  /** End of input: lines for the transfers still open. */
  finish(): J1939Line[] {
    return this.reassembler.finish(this.lastT).map((e) => this.line(e));
  }

  /** `j1939: 3 messages reassembled (2 bam, 1 rts-cts), 1 transport fault (timeout-T1 1), 2 single-frame DM1` */
  summary(): string {
    const c = this.reassembler.counts;
    const by = (o: Partial<Record<string, number>>) =>
      Object.entries(o)
        .filter(([, n]) => n)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
    const parts = [`${c.messages} message${c.messages === 1 ? "" : "s"} reassembled${c.messages ? ` (${by(c.byTransport)})` : ""}`];
    parts.push(`${c.faults} transport fault${c.faults === 1 ? "" : "s"}${c.faults ? ` (${by(c.byFault)})` : ""}`);
    if (c.orphanPackets) parts.push(`${c.orphanPackets} data packets outside any transfer dropped`);
    if (this.singleDm1) parts.push(`${this.singleDm1} single-frame DM1`);
    return `j1939: ${parts.join(", ")}`;
  }

  private line(e: J1939Event): J1939Line {
    return e.kind === "message" ? this.messageLine(e.message, e.message.transport) : faultLine(e.fault);
  }

  private messageLine(m: ShownMessage, transport: J1939Transport | "single"): J1939Line {
    const addr = `${hex2(m.source)}->${hex2(m.destination)}`;
    const hex = bytesToHex(m.data);
    let text = `j1939 ${transport} pgn=${pgnHex(m.pgn)} ${addr} [${m.data.length}] ${hex}`;
    const json: Record<string, unknown> = {
      j1939: { transport, pgn: m.pgn, source: m.source, destination: m.destination, priority: m.priority, size: m.data.length, packets: m.packets },
      data: hex,
    };
    if (this.annotator) {
      // The message as a frame of its PGN, for the DBC's decoder only: it may be longer than any CAN frame (up to
      // 1785 bytes; the decoder reads signals up to byte 63, as in an FD frame); it is never sent or printed.
      const asFrame: Frame = {
        id: makeJ1939Id(m.priority, m.pgn, m.source, m.destination),
        ext: true,
        rtr: false,
        fd: false,
        brs: false,
        esi: false,
        err: false,
        data: m.data,
      };
      const decoded = this.annotator.text(asFrame);
      if (decoded) text += `  ${decoded}`;
      Object.assign(json, this.annotator.json(asFrame));
    }
    if (m.pgn === PGN_DM1) {
      const dm1 = decodeDm1(m.data);
      text += `  ${dm1Text(dm1)}`;
      json.dm1 = dm1;
    }
    return withPlace({ text, json }, m);
  }
}

function faultLine(f: J1939Fault): J1939Line {
  const pgn = f.pgn !== undefined ? ` pgn=${pgnHex(f.pgn)}` : "";
  const text = `j1939 ! ${f.code}${pgn} ${hex2(f.source)}->${hex2(f.destination)}${f.transport ? ` ${f.transport}` : ""}: ${f.reason}`;
  const j1939: Record<string, unknown> = { fault: f.code };
  if (f.pgn !== undefined) j1939.pgn = f.pgn;
  Object.assign(j1939, { source: f.source, destination: f.destination });
  if (f.transport) j1939.transport = f.transport;
  if (f.abortReason !== undefined) j1939.abortReason = f.abortReason;
  return withPlace({ text, json: { j1939, error: `${f.code}: ${f.reason}` } }, f);
}

function withPlace(line: J1939Line, from: { t?: number; bus?: string }): J1939Line {
  if (from.t !== undefined) line.t = from.t;
  if (from.bus !== undefined) line.bus = from.bus;
  return line;
}

/** PGNs print as 4 or 5 hex digits (EDP/DP bits above the 16). */
function pgnHex(pgn: number): string {
  return pgn.toString(16).toUpperCase().padStart(4, "0");
}
