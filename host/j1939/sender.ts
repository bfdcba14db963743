/**
 * Sending J1939 messages of any size (J1939-21), the originator's side of transport.ts:
 *   up to 8 bytes      one frame
 *   9..1785 to FF      BAM: TP.CM_BAM, then TP.DT 1..n with a gap between packets (50-200 ms by the standard)
 *   9..1785 to an ECU  RTS/CTS: TP.CM_RTS, then the packets each CTS asks for, until the receiver's EndOfMsgAck
 *   1786.. to an ECU   ETP: ETP.CM_RTS, then for each CTS a DPO (the packet offset) and ETP.DT 1..count, until EndOfMsgAck
 * The frames of a transfer are built by pure functions (bamFrames, rtsFrame, dataFrames), so tests and traces can
 * use them without a bus; `sendJ1939` drives them on a bus and answers the receiver's CTS frames.
 */
import { makeFrame, type Frame } from "../../frame/frame";
import { makeJ1939Id, j1939Pgn, j1939Source } from "../../can-db/j1939";
import type { Bus } from "../bus/bus";
import {
  CM,
  ETP_MAX_SIZE,
  J1939_GLOBAL,
  J1939_TIMEOUTS,
  J1939TransportError,
  PGN_ETP_CM,
  PGN_ETP_DT,
  PGN_TP_CM,
  PGN_TP_DT,
  TP_MAX_SIZE,
  abortReasonName,
  hex2,
  type J1939Fault,
} from "./transport";

export interface J1939Outgoing {
  pgn: number;
  source: number;
  /** 0xFF (global) sends BAM; another address RTS/CTS. */
  destination: number;
  data: Uint8Array;
  /** Priority of a single frame (default 6); transport frames use 7, as J1939-21 recommends. */
  priority?: number;
}

/** Priority of TP.CM and TP.DT frames. */
const TP_PRIORITY = 7;

function tpFrame(pgn: number, source: number, destination: number, data: number[] | Uint8Array): Frame {
  return makeFrame({ id: makeJ1939Id(TP_PRIORITY, pgn, source, destination), ext: true, data: Uint8Array.from(data) });
}

function pgnBytes(pgn: number): number[] {
  return [pgn & 0xff, (pgn >> 8) & 0xff, (pgn >> 16) & 0x03];
}

function checkSize(m: J1939Outgoing): number {
  if (m.data.length > TP_MAX_SIZE) throw new RangeError(`${m.data.length} bytes: TP carries at most ${TP_MAX_SIZE}`);
  return Math.ceil(m.data.length / 7);
}

/** TP.CM_BAM or TP.CM_RTS for a message (RTS allows any number of packets per CTS: byte 5 = FF). */
export function announceFrame(m: J1939Outgoing): Frame {
  const packets = checkSize(m);
  const size = m.data.length;
  const code = m.destination === J1939_GLOBAL ? CM.bam : CM.rts;
  return tpFrame(PGN_TP_CM, m.source, m.destination, [code, size & 0xff, size >> 8, packets, 0xff, ...pgnBytes(m.pgn)]);
}

/** TP.DT packets `first`..`last` (1-based) of a message; the last one padded with FF. */
export function dataFrames(m: J1939Outgoing, first: number, last: number): Frame[] {
  const out: Frame[] = [];
  for (let n = first; n <= last; n++) {
    const chunk = new Uint8Array(8).fill(0xff);
    chunk[0] = n;
    chunk.set(m.data.subarray((n - 1) * 7, n * 7), 1);
    out.push(tpFrame(PGN_TP_DT, m.source, m.destination, chunk));
  }
  return out;
}

/** Every frame of a BAM: the announcement, then all packets. */
export function bamFrames(m: J1939Outgoing): Frame[] {
  return [announceFrame(m), ...dataFrames(m, 1, checkSize(m))];
}

/** A TP.CM_Abort from `source` to `destination`. */
export function abortFrame(pgn: number, source: number, destination: number, reason: number): Frame {
  return tpFrame(PGN_TP_CM, source, destination, [CM.abort, reason, 0xff, 0xff, 0xff, ...pgnBytes(pgn)]);
}

/** A message of up to 8 bytes as one frame. */
export function singleFrame(m: J1939Outgoing): Frame {
  return makeFrame({ id: makeJ1939Id(m.priority ?? 6, m.pgn, m.source, m.destination), ext: true, data: m.data });
}

export interface SendOptions {
  /** Gap between BAM packets in ms (default 50, the least J1939-21 allows). */
  bamGapMs?: number;
  /** Scales the T3/T4 waits (a slow test machine may need more); default 1. */
  timeoutScale?: number;
  /** Waits between frames (injected so tests can run without real time). */
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends one message on `bus`, as one frame, BAM, RTS/CTS or ETP by its size and destination. RTS/CTS and ETP read the
 * bus for the receiver's CTS, EndOfMsgAck and Abort frames, so the bus must receive (not be transmit-only). Rejects with a
 * J1939TransportError when the receiver aborts or stays silent beyond T3/T4 (then this side sends an Abort, reason 3).
 */
export async function sendJ1939(bus: Bus, m: J1939Outgoing, options: SendOptions = {}): Promise<void> {
  const sleep = options.sleep ?? realSleep;
  if (m.data.length <= 8) return bus.send(singleFrame(m));
  if (m.destination === J1939_GLOBAL) {
    const [head, ...packets] = bamFrames(m);
    await bus.send(head);
    for (const f of packets) {
      await sleep(options.bamGapMs ?? 50);
      await bus.send(f);
    }
    return;
  }
  if (m.data.length > ETP_MAX_SIZE) throw new RangeError(`${m.data.length} bytes: ETP carries at most ${ETP_MAX_SIZE}`);
  await new ConnectedTransfer(bus, m, m.data.length > TP_MAX_SIZE, options.timeoutScale ?? 1).run();
}

/** ETP.CM_RTS: the size in 4 bytes. */
function etpRtsFrame(m: J1939Outgoing): Frame {
  const n = m.data.length;
  return tpFrame(PGN_ETP_CM, m.source, m.destination, [CM.etpRts, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff, ...pgnBytes(m.pgn)]);
}

/** ETP.CM_DPO and the ETP.DT packets `offset + 1`..`offset + count` (sequence numbers 1..count). */
function etpWindowFrames(m: J1939Outgoing, offset: number, count: number): Frame[] {
  const out = [tpFrame(PGN_ETP_CM, m.source, m.destination, [CM.etpDpo, count, offset & 0xff, (offset >> 8) & 0xff, (offset >> 16) & 0xff, ...pgnBytes(m.pgn)])];
  for (let seq = 1; seq <= count; seq++) {
    const packet = offset + seq;
    const chunk = new Uint8Array(8).fill(0xff);
    chunk[0] = seq;
    chunk.set(m.data.subarray((packet - 1) * 7, packet * 7), 1);
    out.push(tpFrame(PGN_ETP_DT, m.source, m.destination, chunk));
  }
  return out;
}

/** The originator of one RTS/CTS (or ETP) transfer: it sends what the receiver's CTS frames ask for. */
class ConnectedTransfer {
  private readonly frames: AsyncIterator<Frame>;
  private pending: Promise<IteratorResult<Frame>> | undefined;
  private readonly packets: number;
  private readonly cmPgn: number;

  constructor(
    private readonly bus: Bus,
    private readonly m: J1939Outgoing,
    private readonly etp: boolean,
    private readonly timeoutScale: number,
  ) {
    this.frames = bus[Symbol.asyncIterator]();
    this.packets = Math.ceil(m.data.length / 7);
    this.cmPgn = etp ? PGN_ETP_CM : PGN_TP_CM;
  }

  private abortFrame(reason: number): Frame {
    return tpFrame(this.cmPgn, this.m.source, this.m.destination, [CM.abort, reason, 0xff, 0xff, 0xff, ...pgnBytes(this.m.pgn)]);
  }

  async run(): Promise<void> {
    await this.bus.send(this.etp ? etpRtsFrame(this.m) : announceFrame(this.m));
    let timer: "T3" | "T4" = "T3";
    for (;;) {
      const f = await this.nextControl(J1939_TIMEOUTS[timer] * 1000 * this.timeoutScale);
      if (!f) {
        await this.bus.send(this.abortFrame(3));
        this.throwFault(timer === "T3" ? "timeout-T3" : "timeout-T4", `no ${timer === "T3" ? "CTS or EndOfMsgAck" : "CTS after the hold"} from ${hex2(this.m.destination)}`);
      }
      const d = f.data;
      if (d[0] === CM.abort) this.throwFault("aborted", `${hex2(this.m.destination)} aborted: ${abortReasonName(d[1])} (reason ${d[1]})`, d[1]);
      if (d[0] === (this.etp ? CM.etpEoma : CM.eoma)) return;
      if (d[0] !== (this.etp ? CM.etpCts : CM.cts)) continue;
      const count = d[1];
      const next = this.etp ? d[2] | (d[3] << 8) | (d[4] << 16) : d[2];
      if (count === 0) {
        timer = "T4";
        continue;
      }
      if (next < 1 || next + count - 1 > this.packets) {
        await this.bus.send(this.abortFrame(15 /* requested packets exceed the message */));
        this.throwFault("unexpected-control", `CTS asks for packets ${next}..${next + count - 1} of ${this.packets}`);
      }
      const window = this.etp ? etpWindowFrames(this.m, next - 1, count) : dataFrames(this.m, next, next + count - 1);
      for (const p of window) await this.bus.send(p);
      timer = "T3";
    }
  }

  private throwFault(code: J1939Fault["code"], reason: string, abortReason?: number): never {
    const fault: J1939Fault = { code, reason, source: this.m.source, destination: this.m.destination, pgn: this.m.pgn, transport: this.etp ? "etp" : "rts-cts" };
    if (abortReason !== undefined) fault.abortReason = abortReason;
    throw new J1939TransportError(fault);
  }

  /** The receiver's next TP.CM (ETP.CM) frame about this message, or undefined after `ms` without one. */
  private async nextControl(ms: number): Promise<Frame | undefined> {
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return undefined;
      this.pending ??= this.frames.next();
      let timeout: NodeJS.Timeout | undefined;
      const r = await Promise.race([this.pending, new Promise<"timeout">((resolve) => (timeout = setTimeout(() => resolve("timeout"), left)))]);
      clearTimeout(timeout);
      if (r === "timeout") return undefined;
      this.pending = undefined;
      if (r.done) return undefined;
      const f = r.value;
      if (!f.ext || f.err || j1939Pgn(f.id) !== this.cmPgn || f.data.length < 8) continue;
      if (j1939Source(f.id) !== this.m.destination || ((f.id >>> 8) & 0xff) !== this.m.source) continue;
      const pgn = f.data[5] | (f.data[6] << 8) | ((f.data[7] & 3) << 16);
      if (pgn === this.m.pgn) return f;
    }
  }
}
