/**
 * What a HIL run saw: the frames the harness put on the gateway's CAN wire, what arrived at the broker, what the
 * gateway transmitted back onto the wire, command results, status messages and the faults injected. The steps
 * runner fills it; the checks and the reports only read it. Times are harness milliseconds (the run's clock).
 */
import type { Frame } from "../frame/frame";

export interface ReplayedFrame {
  frame: Frame;
  /** Position in the run's replay order (0-based, across every replay step). */
  index: number;
  /** The trace it came from and its time in that trace (seconds, as the file gives it). */
  trace: string;
  traceT: number;
  /** When it was due (schedule) and when it was actually handed to the bus, harness ms. */
  dueAt: number;
  sentAt: number;
  /** Set when an injected controller fault ate the frame on the wire: the gateway never saw it. */
  lost?: string;
}

export interface DeliveredFrame {
  frame: Frame;
  /** The uplink batch it travelled in: boot id and sequence number, and its position in the batch. */
  boot: number | string;
  seq: number;
  pos: number;
  /** The gateway's own receive time for it (ms, the gateway's clock), when the payload carries one. */
  deviceT?: number;
  /** When its MQTT message reached the harness, harness ms. */
  receivedAt: number;
}

/** A decoded signal value the gateway published (its signals topic). */
export interface DeliveredSignal {
  message: string;
  signal: string;
  value: number | string;
  deviceT?: number;
  receivedAt: number;
  /** Its index in the signal table and its raw value, for `P/signals` samples. */
  i?: number;
  raw?: number;
  /** The signal batch it travelled in. */
  boot?: number;
  seq?: number;
}

export interface CommandRecord {
  ref: string;
  /** The frame of a transmit command; configuration commands (filter, rate) have none. */
  frame?: Frame;
  sentAt: number;
  /** The gateway's answer on the results topic. */
  result?: { ok: boolean; reason?: string; at: number; raw: unknown };
}

export interface StatusRecord {
  at: number;
  online: boolean;
  counters: Record<string, number>;
  raw: unknown;
}

export interface FaultRecord {
  at: number;
  what: string;
}

export interface RunRecord {
  scenario: string;
  target: string;
  startedAt: number;
  endedAt: number;
  replayed: ReplayedFrame[];
  delivered: DeliveredFrame[];
  signals: DeliveredSignal[];
  /** Frames the gateway put on the CAN wire (seen by the harness). */
  transmitted: Array<{ frame: Frame; at: number }>;
  commands: CommandRecord[];
  statuses: StatusRecord[];
  faults: FaultRecord[];
  /** Uplink messages that could not be decoded, with the reason (counted, never fatal). */
  undecodable: Array<{ topic: string; at: number; reason: string }>;
  /** What the receiver (host/gateway/receiver.ts) dropped or found missing: resent batches, skipped batch numbers. */
  uplink: { duplicates: number; gaps: string[] };
  /** When the harness stopped the gateway (last-will checks measure from here). */
  gatewayStoppedAt?: number;
  /** Counters of the harness's own plumbing (fault proxy, broker outages). */
  harness: Record<string, number>;
}

export function emptyRecord(scenario: string, target: string, startedAt: number): RunRecord {
  return {
    scenario,
    target,
    startedAt,
    endedAt: startedAt,
    replayed: [],
    delivered: [],
    signals: [],
    transmitted: [],
    commands: [],
    statuses: [],
    faults: [],
    undecodable: [],
    uplink: { duplicates: 0, gaps: [] },
    harness: {},
  };
}
