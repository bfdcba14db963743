/**
 * SAE J1939-21 transport protocols, seen from the bus (a passive observer, as a trace or a listening tool sees them):
 * multi-packet messages reassembled from their frames.
 *
 *   TP  (9..1785 bytes)   TP.CM (PGN 0xEC00) and TP.DT (PGN 0xEB00)
 *     BAM      to global (0xFF): BAM, then DT 1..n, 50-200 ms apart; nobody answers.
 *     RTS/CTS  to one address:   RTS, CTS(count, next), DT..., CTS..., EndOfMsgAck; either side may send Abort.
 *   ETP (1786..117440505 bytes) ETP.CM (PGN 0xC800) and ETP.DT (PGN 0xC700), to one address only:
 *              RTS, CTS(count, next), DPO(count, offset), DT 1..count (packet = offset + sequence), ..., EndOfMsgAck.
 *
 * A session is identified by (bus, source, destination): TP.DT frames carry no PGN, so a sender can only have one
 * transfer open to each destination at a time; the PGN of every TP.CM frame is checked against the session's.
 * Whatever goes wrong (a wrong or repeated sequence number, a timeout T1-T4 measured from the frames' own times, a
 * size that does not match, an Abort) ends that session only, as a named fault (J1939FaultCode), and is counted.
 * Frames without times (bare `123#..` lines) are reassembled without timeout checks.
 */
import type { Frame } from "../../frame/frame";
import { VgwError } from "../../frame/errors";
import { j1939Pgn, j1939Priority, j1939Source } from "../../can-db/j1939";

export const PGN_TP_CM = 0xec00;
export const PGN_TP_DT = 0xeb00;
export const PGN_ETP_CM = 0xc800;
export const PGN_ETP_DT = 0xc700;
/** The global (broadcast) destination address. */
export const J1939_GLOBAL = 0xff;
/** Largest TP message (255 packets of 7 bytes), and largest ETP message (2^24 - 1 packets of 7 bytes). */
export const TP_MAX_SIZE = 1785;
export const ETP_MAX_SIZE = 117440505;

/** TP.CM / ETP.CM control bytes (byte 1 of the frame). */
export const CM = { rts: 16, cts: 17, eoma: 19, bam: 32, etpRts: 20, etpCts: 21, etpDpo: 22, etpEoma: 23, abort: 255 } as const;

/** J1939-21 timeouts in seconds: T1 between data packets, T2 after CTS, T3 after the last packet sent (or RTS), T4 after a hold CTS. */
export const J1939_TIMEOUTS = { T1: 0.75, T2: 1.25, T3: 1.25, T4: 1.05 } as const;
export type TimeoutName = keyof typeof J1939_TIMEOUTS;

/** Connection Abort reasons (J1939-21, TP.CM_Abort byte 2). */
export const ABORT_REASONS: Readonly<Record<number, string>> = {
  1: "already in one or more connection-managed sessions",
  2: "system resources were needed for another task",
  3: "timeout",
  4: "CTS received while a data transfer was in progress",
  5: "maximum retransmit request limit reached",
  6: "unexpected data transfer packet",
  7: "bad sequence number",
  8: "duplicate sequence number",
  9: "unexpected EDPO packet, or message size greater than 1785 bytes",
  10: "unexpected EDPO PGN",
  11: "EDPO number of packets greater than CTS",
  12: "bad EDPO offset",
  13: "other (deprecated)",
  14: "unexpected ECTS PGN",
  15: "ECTS requested packets exceed the message size",
  250: "other",
};

export function abortReasonName(reason: number): string {
  return ABORT_REASONS[reason] ?? `reserved reason ${reason}`;
}

export type J1939Transport = "bam" | "rts-cts" | "etp";

/**
 * Why a transfer ended without its message (one name each, as printed and counted):
 * - bad-sequence: a data packet other than the next one expected (skipped, zero, beyond the total or the CTS window)
 * - duplicate-sequence: a data packet repeating the one before it
 * - timeout-T1..T4: the next frame of the session came too late (see J1939_TIMEOUTS)
 * - size-mismatch: the announced size and packet count disagree, or EndOfMsgAck names another size
 * - bad-size: a size outside the protocol's range (TP 9..1785, ETP 1786..117440505)
 * - aborted: a Connection Abort, with its reason
 * - unexpected-data: a data packet with no transfer open between its addresses (or before the CTS that allows it)
 * - unexpected-control: a CTS, DPO or EndOfMsgAck that does not fit the transfer's state, or names another PGN
 * - replaced: a new BAM or RTS between the same addresses while a transfer was still open
 * - incomplete: the input ended with the transfer open
 */
export type J1939FaultCode =
  | "bad-sequence"
  | "duplicate-sequence"
  | "timeout-T1"
  | "timeout-T2"
  | "timeout-T3"
  | "timeout-T4"
  | "size-mismatch"
  | "bad-size"
  | "aborted"
  | "unexpected-data"
  | "unexpected-control"
  | "replaced"
  | "incomplete";

/** A reassembled multi-packet message. */
export interface J1939Message {
  /** Time of the frame that completed it. */
  t?: number;
  bus?: string;
  pgn: number;
  /** Priority of the transfer's first control frame (the message's own priority is not carried by the transport). */
  priority: number;
  source: number;
  /** 0xFF for BAM. */
  destination: number;
  transport: J1939Transport;
  data: Uint8Array;
  /** Data packets the message took. */
  packets: number;
}

/** A transfer that ended without its message. */
export interface J1939Fault {
  t?: number;
  bus?: string;
  code: J1939FaultCode;
  /** What happened, for people. */
  reason: string;
  source: number;
  destination: number;
  /** Undefined when no control frame named it (a data packet with no transfer). */
  pgn?: number;
  transport?: J1939Transport;
  /** The Abort's reason code (aborted only). */
  abortReason?: number;
}

/** A fault as an error, for callers that reject with it (senders, message links). */
export class J1939TransportError extends VgwError {
  constructor(readonly fault: J1939Fault) {
    super(`${fault.code}: ${fault.reason}`);
  }
}

export type J1939Event = { kind: "message"; message: J1939Message } | { kind: "fault"; fault: J1939Fault };

export interface J1939Counts {
  messages: number;
  byTransport: Record<J1939Transport, number>;
  faults: number;
  byFault: Partial<Record<J1939FaultCode, number>>;
  /** Data packets that belonged to no transfer (dropped: they cannot be placed). */
  orphanPackets: number;
}

type State = "wait-cts" | "hold" | "wait-dpo" | "wait-data" | "wait-eoma";

interface Session {
  key: number;
  transport: J1939Transport;
  bus?: string;
  source: number;
  destination: number;
  pgn: number;
  priority: number;
  size: number;
  packets: number;
  data: Uint8Array;
  /** Packets received in order so far (the next expected packet is received + 1). */
  received: number;
  /** Last packet number the current CTS window allows (BAM: all). */
  windowEnd: number;
  /** ETP: packet number = offset + sequence. */
  offset: number;
  state: State;
  /** When the session times out (seconds), and which timer that is; Infinity without frame times. */
  deadline: number;
  timer: TimeoutName;
  /** What the session was waiting for, for the timeout's reason. */
  waitingFor: string;
}

const NONE: J1939Event[] = [];

/** A session's key: bus number, source, destination. */
function sessionKey(busIndex: number, source: number, destination: number): number {
  return busIndex * 65536 + source * 256 + destination;
}

/**
 * Reassembles J1939 transport sessions from frames in time order. `push` takes every frame (others are ignored
 * cheaply) and returns what it completed or ended; `finish` ends the input. Never throws for bad input.
 */
export class J1939Reassembler {
  readonly counts: J1939Counts = { messages: 0, byTransport: { bam: 0, "rts-cts": 0, etp: 0 }, faults: 0, byFault: {}, orphanPackets: 0 };
  private readonly sessions = new Map<number, Session>();
  /** Keys whose orphan data packets were already reported (one fault per run of them, not one per packet). */
  private readonly orphaned = new Set<number>();
  private readonly busIndex = new Map<string | undefined, number>();
  private nextDeadline = Infinity;
  private events: J1939Event[] = NONE;

  /** Feeds one frame; returns the messages and faults it completed (often none). */
  push(f: Frame): J1939Event[] {
    this.events = NONE;
    const t = f.t;
    if (t !== undefined && t > this.nextDeadline) this.expire(t);
    if (!f.ext || f.err || f.rtr) return this.events;
    const pgn = j1939Pgn(f.id);
    if (pgn === PGN_TP_DT || pgn === PGN_ETP_DT) this.data(f, pgn === PGN_ETP_DT);
    else if (pgn === PGN_TP_CM || pgn === PGN_ETP_CM) this.control(f, pgn === PGN_ETP_CM);
    return this.events;
  }

  /** End of input: every open transfer is a fault (incomplete). */
  finish(t?: number): J1939Event[] {
    this.events = NONE;
    for (const s of [...this.sessions.values()]) {
      if (s.state === "wait-eoma") this.close(s);
      else this.fail(s, "incomplete", `the input ended after packet ${s.received} of ${s.packets}`, t);
    }
    return this.events;
  }

  /** Open transfers (for tests and live views). */
  get openTransfers(): number {
    return this.sessions.size;
  }

  private keyOf(f: Frame, source: number, destination: number): number {
    let b = this.busIndex.get(f.bus);
    if (b === undefined) this.busIndex.set(f.bus, (b = this.busIndex.size));
    return sessionKey(b, source, destination);
  }

  private emit(e: J1939Event): void {
    if (this.events === NONE) this.events = [];
    this.events.push(e);
  }

  private deliver(s: Session, t: number | undefined): void {
    this.counts.messages++;
    this.counts.byTransport[s.transport]++;
    const message: J1939Message = {
      pgn: s.pgn,
      priority: s.priority,
      source: s.source,
      destination: s.destination,
      transport: s.transport,
      data: s.data.length === s.size ? s.data : s.data.slice(0, s.size),
      packets: s.packets,
    };
    if (t !== undefined) message.t = t;
    if (s.bus !== undefined) message.bus = s.bus;
    this.emit({ kind: "message", message });
  }

  private fault(fault: J1939Fault): void {
    this.counts.faults++;
    this.counts.byFault[fault.code] = (this.counts.byFault[fault.code] ?? 0) + 1;
    this.emit({ kind: "fault", fault });
  }

  /** Ends a session with a fault. */
  private fail(s: Session, code: J1939FaultCode, reason: string, t: number | undefined, abortReason?: number): void {
    this.close(s);
    const fault: J1939Fault = { code, reason, source: s.source, destination: s.destination, pgn: s.pgn, transport: s.transport };
    if (t !== undefined) fault.t = t;
    if (s.bus !== undefined) fault.bus = s.bus;
    if (abortReason !== undefined) fault.abortReason = abortReason;
    this.fault(fault);
  }

  private close(s: Session): void {
    this.sessions.delete(s.key);
  }

  /** A fault that belongs to no session (an Abort or control frame for a transfer never seen). */
  private stray(f: Frame, code: J1939FaultCode, reason: string, source: number, destination: number, pgn?: number, abortReason?: number): void {
    const fault: J1939Fault = { code, reason, source, destination };
    if (pgn !== undefined) fault.pgn = pgn;
    if (f.t !== undefined) fault.t = f.t;
    if (f.bus !== undefined) fault.bus = f.bus;
    if (abortReason !== undefined) fault.abortReason = abortReason;
    this.fault(fault);
  }

  private arm(s: Session, t: number | undefined, timer: TimeoutName, waitingFor: string): void {
    s.timer = timer;
    s.waitingFor = waitingFor;
    if (t === undefined) {
      s.deadline = Infinity;
      return;
    }
    s.deadline = t + J1939_TIMEOUTS[timer];
    if (s.deadline < this.nextDeadline) this.nextDeadline = s.deadline;
  }

  /** Ends every session whose deadline passed before `t`. */
  private expire(t: number): void {
    let next = Infinity;
    for (const s of [...this.sessions.values()]) {
      if (s.deadline < t) {
        const ms = Math.round(J1939_TIMEOUTS[s.timer] * 1000);
        if (s.state === "wait-eoma") {
          this.fail(s, "timeout-T3", `no EndOfMsgAck within ${ms} ms of the last packet (the data was complete and is shown)`, s.deadline);
        } else {
          this.fail(s, `timeout-${s.timer}`, `no ${s.waitingFor} within ${ms} ms (after packet ${s.received} of ${s.packets})`, s.deadline);
        }
      } else if (s.deadline < next) next = s.deadline;
    }
    this.nextDeadline = next;
  }

  private data(f: Frame, etp: boolean): void {
    const source = j1939Source(f.id);
    const destination = (f.id >>> 8) & 0xff;
    const key = this.keyOf(f, source, destination);
    const s = this.sessions.get(key);
    const name = etp ? "ETP.DT" : "TP.DT";
    if (!s || (s.transport === "etp") !== etp || f.data.length < 1) {
      this.counts.orphanPackets++;
      if (!this.orphaned.has(key)) {
        this.orphaned.add(key);
        this.stray(f, "unexpected-data", `${name} from ${hex2(source)} to ${hex2(destination)} with no transfer open`, source, destination);
      }
      return;
    }
    const seq = f.data[0];
    if (s.state !== "wait-data") {
      this.fail(s, "unexpected-data", `${name} ${seq} while waiting for ${s.state === "wait-eoma" ? "EndOfMsgAck" : s.state === "wait-dpo" ? "DPO" : "CTS"}`, f.t);
      return;
    }
    const packet = s.offset + seq;
    const expected = s.received + 1;
    if (packet !== expected || seq === 0) {
      if (seq !== 0 && packet === s.received) this.fail(s, "duplicate-sequence", `${name} ${seq} repeated (packet ${packet} of ${s.packets})`, f.t);
      else this.fail(s, "bad-sequence", `${name} ${seq} where ${expected - s.offset} was expected (packet ${expected} of ${s.packets})`, f.t);
      return;
    }
    const at = (packet - 1) * 7;
    const n = Math.min(7, s.size - at, f.data.length - 1);
    if (s.data.length < at + n) s.data = grow(s.data, at + n, s.size);
    s.data.set(f.data.subarray(1, 1 + n), at);
    s.received = packet;
    if (packet === s.packets) {
      if (s.transport === "bam") {
        this.close(s);
        this.deliver(s, f.t);
      } else {
        // The receiver has the whole message now (and hands it on); the transfer ends with its EndOfMsgAck.
        this.deliver(s, f.t);
        s.state = "wait-eoma";
        this.arm(s, f.t, "T3", "EndOfMsgAck");
      }
    } else if (packet === s.windowEnd) {
      s.state = "wait-cts";
      this.arm(s, f.t, "T3", "CTS");
    } else this.arm(s, f.t, "T1", `${name} ${packet + 1 - s.offset}`);
  }

  private control(f: Frame, etp: boolean): void {
    const d = f.data;
    const source = j1939Source(f.id);
    const destination = (f.id >>> 8) & 0xff;
    if (d.length < 8) {
      this.stray(f, "unexpected-control", `${etp ? "ETP.CM" : "TP.CM"} with ${d.length} bytes (8 expected)`, source, destination);
      return;
    }
    const pgn = d[5] | (d[6] << 8) | ((d[7] & 0x03) << 16);
    const code = d[0];
    if (code === CM.abort) {
      this.abort(f, source, destination, pgn, d[1]);
      return;
    }
    if (!etp && (code === CM.bam || code === CM.rts)) this.begin(f, code === CM.bam ? "bam" : "rts-cts", source, destination, pgn, d[1] | (d[2] << 8), d[3]);
    else if (etp && code === CM.etpRts) this.begin(f, "etp", source, destination, pgn, (d[1] | (d[2] << 8) | (d[3] << 16) | (d[4] << 24)) >>> 0, -1);
    else if (code === CM.cts || code === CM.etpCts) {
      // The receiver answers the originator: the session is (originator = this frame's destination, receiver = source).
      this.cts(f, this.sessions.get(this.keyOf(f, destination, source)), etp, source, destination, pgn);
    } else if (code === CM.etpDpo) this.dpo(f, this.sessions.get(this.keyOf(f, source, destination)), source, destination, pgn);
    else if (code === CM.eoma || code === CM.etpEoma) this.eoma(f, this.sessions.get(this.keyOf(f, destination, source)), etp, source, destination, pgn);
    else this.stray(f, "unexpected-control", `${etp ? "ETP.CM" : "TP.CM"} control byte ${code} is not defined`, source, destination, pgn);
  }

  private begin(f: Frame, transport: J1939Transport, source: number, destination: number, pgn: number, size: number, packets: number): void {
    const key = this.keyOf(f, source, destination);
    this.orphaned.delete(key);
    const old = this.sessions.get(key);
    const what = transport === "bam" ? "BAM" : transport === "etp" ? "ETP.CM_RTS" : "TP.CM_RTS";
    if (old) {
      if (old.state === "wait-eoma") this.close(old);
      else this.fail(old, "replaced", `a new ${what} (PGN ${hexPgn(pgn)}) came after packet ${old.received} of ${old.packets}`, f.t);
    }
    const fake: Session = newSession(key, transport, f, source, destination, pgn, size, 0);
    if ((transport === "bam") !== (destination === J1939_GLOBAL)) {
      this.fail(fake, "unexpected-control", transport === "bam" ? `BAM to ${hex2(destination)} (BAM goes to the global address FF)` : `${what} to the global address`, f.t);
      return;
    }
    const [min, max] = transport === "etp" ? [TP_MAX_SIZE + 1, ETP_MAX_SIZE] : [9, TP_MAX_SIZE];
    if (size < min || size > max) {
      this.fail(fake, "bad-size", `${what} announces ${size} bytes (${transport === "etp" ? "ETP" : "TP"} carries ${min}..${max})`, f.t);
      return;
    }
    const needed = Math.ceil(size / 7);
    if (packets >= 0 && packets !== needed) {
      this.fail(fake, "size-mismatch", `${what} announces ${size} bytes in ${packets} packets (${needed} needed)`, f.t);
      return;
    }
    const s = newSession(key, transport, f, source, destination, pgn, size, needed);
    this.sessions.set(key, s);
    if (transport === "bam") {
      s.state = "wait-data";
      s.windowEnd = needed;
      this.arm(s, f.t, "T1", "TP.DT 1");
    } else this.arm(s, f.t, "T3", "CTS");
  }

  private cts(f: Frame, s: Session | undefined, etp: boolean, source: number, destination: number, pgn: number): void {
    const d = f.data;
    const count = d[1];
    const next = etp ? d[2] | (d[3] << 8) | (d[4] << 16) : d[2];
    if (!s || s.transport === "bam" || (s.transport === "etp") !== etp) {
      this.stray(f, "unexpected-control", `CTS from ${hex2(source)} to ${hex2(destination)} with no transfer open`, destination, source, pgn);
      return;
    }
    if (s.pgn !== pgn) return this.fail(s, "unexpected-control", `CTS names PGN ${hexPgn(pgn)}, the transfer is ${hexPgn(s.pgn)}`, f.t);
    if (s.state === "wait-data" || s.state === "wait-dpo") {
      return this.fail(s, "unexpected-control", `CTS while packets ${s.received + 1}..${s.windowEnd} were still due`, f.t);
    }
    if (s.state === "wait-eoma") return this.fail(s, "unexpected-control", `CTS after the last packet (EndOfMsgAck expected)`, f.t);
    if (count === 0) {
      // Hold: the receiver needs time; it must send another CTS within T4.
      s.state = "hold";
      this.arm(s, f.t, "T4", "CTS after the hold");
      return;
    }
    // next <= received asks for packets again (a retransmission); beyond received + 1 would leave a gap.
    if (next < 1 || next > s.received + 1 || next + count - 1 > s.packets) {
      return this.fail(s, "unexpected-control", `CTS for packets ${next}..${next + count - 1} (${s.received} of ${s.packets} received)`, f.t);
    }
    s.received = next - 1;
    s.windowEnd = next + count - 1;
    if (etp) {
      s.state = "wait-dpo";
      this.arm(s, f.t, "T2", "ETP.CM_DPO");
    } else {
      s.state = "wait-data";
      this.arm(s, f.t, "T2", `TP.DT ${next}`);
    }
  }

  private dpo(f: Frame, s: Session | undefined, source: number, destination: number, pgn: number): void {
    const d = f.data;
    const count = d[1];
    const offset = d[2] | (d[3] << 8) | (d[4] << 16);
    if (!s || s.transport !== "etp") {
      this.stray(f, "unexpected-control", `ETP.CM_DPO from ${hex2(source)} to ${hex2(destination)} with no transfer open`, source, destination, pgn);
      return;
    }
    if (s.pgn !== pgn) return this.fail(s, "unexpected-control", `DPO names PGN ${hexPgn(pgn)}, the transfer is ${hexPgn(s.pgn)}`, f.t);
    if (s.state !== "wait-dpo") return this.fail(s, "unexpected-control", `DPO without a CTS before it`, f.t);
    if (offset !== s.received || count === 0 || offset + count > s.windowEnd) {
      return this.fail(s, "unexpected-control", `DPO for packets ${offset + 1}..${offset + count}, the CTS allowed ${s.received + 1}..${s.windowEnd}`, f.t);
    }
    s.offset = offset;
    s.windowEnd = offset + count;
    s.state = "wait-data";
    this.arm(s, f.t, "T1", "ETP.DT 1");
  }

  private eoma(f: Frame, s: Session | undefined, etp: boolean, source: number, destination: number, pgn: number): void {
    const d = f.data;
    if (!s || s.transport === "bam" || (s.transport === "etp") !== etp) {
      this.stray(f, "unexpected-control", `EndOfMsgAck from ${hex2(source)} to ${hex2(destination)} with no transfer open`, destination, source, pgn);
      return;
    }
    if (s.pgn !== pgn) return this.fail(s, "unexpected-control", `EndOfMsgAck names PGN ${hexPgn(pgn)}, the transfer is ${hexPgn(s.pgn)}`, f.t);
    if (s.state !== "wait-eoma") return this.fail(s, "unexpected-control", `EndOfMsgAck after packet ${s.received} of ${s.packets}`, f.t);
    const size = etp ? (d[1] | (d[2] << 8) | (d[3] << 16) | (d[4] << 24)) >>> 0 : d[1] | (d[2] << 8);
    if (size !== s.size || (!etp && d[3] !== s.packets)) {
      return this.fail(s, "size-mismatch", `EndOfMsgAck acknowledges ${size} bytes${etp ? "" : ` in ${d[3]} packets`}, the transfer had ${s.size}`, f.t);
    }
    this.close(s);
  }

  private abort(f: Frame, source: number, destination: number, pgn: number, reason: number): void {
    // Either side may abort: the originator (session source -> destination) or the receiver (the reverse).
    const s = this.sessions.get(this.keyOf(f, source, destination)) ?? this.sessions.get(this.keyOf(f, destination, source));
    const text = `Abort from ${hex2(source)}: ${abortReasonName(reason)} (reason ${reason})`;
    if (s && s.pgn === pgn) this.fail(s, "aborted", `${text}, after packet ${s.received} of ${s.packets}`, f.t, reason);
    else this.stray(f, "aborted", `${text}, for no open transfer of PGN ${hexPgn(pgn)}`, source, destination, pgn, reason);
  }
}

function newSession(key: number, transport: J1939Transport, f: Frame, source: number, destination: number, pgn: number, size: number, packets: number): Session {
  const s: Session = {
    key,
    transport,
    source,
    destination,
    pgn,
    priority: j1939Priority(f.id),
    size,
    packets,
    // ETP sizes reach 117 MB: the buffer grows as data arrives instead of trusting the announced size.
    data: new Uint8Array(Math.min(size, 64 << 10)),
    received: 0,
    windowEnd: 0,
    offset: 0,
    state: "wait-cts",
    deadline: Infinity,
    timer: "T3",
    waitingFor: "CTS",
  };
  if (f.bus !== undefined) s.bus = f.bus;
  return s;
}

function grow(data: Uint8Array, needed: number, limit: number): Uint8Array {
  const bigger = new Uint8Array(Math.min(limit, Math.max(needed, data.length * 2)));
  bigger.set(data);
  return bigger;
}

export function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** A PGN as J1939 documents write it: 0xFECA (65226). */
export function hexPgn(pgn: number): string {
  return `0x${pgn.toString(16).toUpperCase().padStart(4, "0")} (${pgn})`;
}
