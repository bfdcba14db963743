/**
 * OBD-II (SAE J1979 / ISO 15031-5 over ISO 15765-4 CAN) tester.
 *
 * A request goes to the functional address (0x7DF, or 0x18DB33F1 with 29-bit IDs) and every emissions-related ECU
 * may answer from its own address (0x7E8-0x7EF, each with its physical request ID 0x7E0-0x7E7 for flow control): the
 * tester collects answers until a timeout (ISO 15765-4's P2CAN is 50 ms per ECU; the default here leaves room for a
 * loaded gateway), or until `expect` ECUs answered (what an ELM327 does with a response count after the request: it
 * is what makes fast polling possible). Physical addressing is the same with one responder.
 *
 * Services: 01 current data (supported-PID bitmaps, PID values decoded with can-db/obd-pids.ts), 03/07/0A stored,
 * pending and permanent DTCs, 04 clear, 09 vehicle information (VIN).
 */
import { VgwError } from "../../frame/errors";
import { log } from "../log";
import type { MessageLink } from "./link";
import { decodePid, OBD_PIDS, supportedPids, type DecodedPid } from "../../can-db/obd-pids";
import { dtcText } from "../../can-db/dtc-code";
import { hex, NEGATIVE_RESPONSE, NRC, nrcName } from "./uds-codes";
import { isLinkTimeout } from "./uds";

/** The links an OBD-II tester uses: where requests go and, by ECU address, where answers come from. */
export interface ObdChannels {
  /** The functional request link (0x7DF), or one ECU's physical link. */
  request: MessageLink;
  /** Answering ECUs: `ecu` is the address answers come from (0x7E8...). The request link may be one of them. */
  responders: ReadonlyArray<{ ecu: number; link: MessageLink }>;
}

export interface ObdOptions {
  /** How long to collect answers after a request, ms. */
  timeoutMs?: number;
  /** Wait after a responsePending (0x78), ms. */
  p2StarMs?: number;
  /** Stop collecting once this many ECUs answered (0: wait for the timeout). */
  expect?: number;
}

export interface EcuAnswer {
  ecu: number;
  payload: Uint8Array;
}

/** An ECU refused: `7F <service> <NRC>`. Kept per ECU; the others' answers still count. */
export interface EcuRefusal {
  ecu: number;
  nrc: number;
  nrcName: string;
}

export interface ObdResult<T> {
  answers: Array<{ ecu: number; value: T }>;
  refusals: EcuRefusal[];
}

export interface ObdCounters {
  requests: number;
  answers: number;
  /** Answers that arrived after their request's window (read before the next request and skipped). */
  late: number;
  /** Messages the transport lost on a responder (named transport errors). */
  transportErrors: number;
}

/**
 * One responder's messages in a queue filled by its own receive loop: a query that stops waiting early (`expect`)
 * leaves no receive pending on the link that would swallow the next query's answer.
 */
class Inbox {
  private readonly queue: Uint8Array[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly ecu: number,
    private readonly link: MessageLink,
    private readonly counters: ObdCounters,
  ) {
    void this.pump();
  }

  private async pump(): Promise<void> {
    while (!this.closed) {
      try {
        this.queue.push(await this.link.receive(60_000));
      } catch (e) {
        if (this.closed || (e as { code?: unknown }).code === "closed") break;
        if (!isLinkTimeout(e)) {
          this.counters.transportErrors++;
          log.debug(`obd: ECU 0x${hex(this.ecu, 3)}: ${(e as Error).message}`);
          // A link that failed for good would spin: give the loop a breath.
          await new Promise((r) => setTimeout(r, 5));
        }
        continue;
      }
      this.waiter?.();
    }
    this.waiter?.();
  }

  /** Drops what arrived before a request: answers to an earlier one. */
  drain(): number {
    const n = this.queue.length;
    this.queue.length = 0;
    return n;
  }

  /** The next message, or undefined at `deadline` (ms since epoch). */
  async next(deadline: () => number): Promise<Uint8Array | undefined> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      const left = deadline() - Date.now();
      if (left <= 0 || this.closed) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  putBack(m: Uint8Array): void {
    this.queue.unshift(m);
  }

  /** Makes a pending `next` look at its deadline again. */
  wake(): void {
    this.waiter?.();
  }

  close(): void {
    this.closed = true;
    this.waiter?.();
  }
}

export class ObdClient {
  readonly counters: ObdCounters = { requests: 0, answers: 0, late: 0, transportErrors: 0 };
  private readonly inboxes: Inbox[];
  /** Timing and answer count, changeable between queries. */
  readonly settings: Required<ObdOptions>;

  /**
   * The client reads its responders' links from now until close(). A link has no way to cancel a pending receive,
   * so give each link to one client at a time: a closed client's last receive still takes the next message.
   */
  constructor(
    private readonly channels: ObdChannels,
    opts: ObdOptions = {},
  ) {
    this.settings = { timeoutMs: opts.timeoutMs ?? 200, p2StarMs: opts.p2StarMs ?? 5000, expect: opts.expect ?? 0 };
    this.inboxes = channels.responders.map((r) => new Inbox(r.ecu, r.link, this.counters));
  }

  /** Stops the receive loops (the links stay open: whoever opened them closes them). */
  close(): void {
    for (const i of this.inboxes) i.close();
  }

  /**
   * Sends one request and collects each ECU's final answer to it (positive `service+0x40`, or a refusal) until the
   * timeout or `expect` answers. A responsePending (0x78) gives that ECU P2* more.
   */
  async query(payload: Uint8Array): Promise<{ answers: EcuAnswer[]; refusals: EcuRefusal[] }> {
    const service = payload[0];
    for (const i of this.inboxes) this.counters.late += i.drain();
    this.counters.requests++;
    await this.channels.request.send(payload);
    const start = Date.now();
    const answers: EcuAnswer[] = [];
    const refusals: EcuRefusal[] = [];
    const { timeoutMs, p2StarMs, expect } = this.settings;
    const done = () => expect > 0 && answers.length + refusals.length >= expect;
    await Promise.all(
      this.inboxes.map(async (inbox) => {
        let deadline = start + timeoutMs;
        for (;;) {
          if (done()) return;
          const m = await inbox.next(() => (done() ? 0 : deadline));
          if (!m) return;
          if (done()) {
            // Another ECU's answer completed the query while this one was waking up: leave it for the late count.
            inbox.putBack(m);
            return;
          }
          if (m.length >= 3 && m[0] === NEGATIVE_RESPONSE && m[1] === service) {
            if (m[2] === NRC.requestCorrectlyReceivedResponsePending) {
              deadline = Date.now() + p2StarMs;
              continue;
            }
            refusals.push({ ecu: inbox.ecu, nrc: m[2], nrcName: nrcName(m[2]) });
          } else if (m[0] === service + 0x40) {
            answers.push({ ecu: inbox.ecu, payload: m });
            this.counters.answers++;
          } else {
            this.counters.late++;
            continue;
          }
          // Enough answers: the other ECUs' waits end now instead of at the timeout.
          if (done()) for (const other of this.inboxes) other.wake();
          return;
        }
      }),
    );
    answers.sort((a, b) => a.ecu - b.ecu);
    return { answers, refusals };
  }

  /**
   * Service 01: the values of up to 6 PIDs per request (ISO 15765-4), decoded. PIDs the table does not know go one
   * per request (their length is unknown, so their answer cannot be split).
   */
  async readPids(pids: number[]): Promise<ObdResult<DecodedPid[]>> {
    const byEcu = new Map<number, DecodedPid[]>();
    const refusals: EcuRefusal[] = [];
    for (const group of pidGroups(pids)) {
      const r = await this.query(Uint8Array.of(0x01, ...group));
      refusals.push(...r.refusals);
      for (const a of r.answers) {
        const list = byEcu.get(a.ecu) ?? byEcu.set(a.ecu, []).get(a.ecu)!;
        list.push(...splitService01(a.payload, group));
      }
    }
    return { answers: [...byEcu].sort((a, b) => a[0] - b[0]).map(([ecu, value]) => ({ ecu, value })), refusals };
  }

  /** Service 01 PIDs 0x00, 0x20, 0x40...: each ECU's supported PIDs, following each bitmap's "next range" bit. */
  async supportedPids(): Promise<ObdResult<number[]>> {
    const byEcu = new Map<number, number[]>();
    const refusals: EcuRefusal[] = [];
    let asking = [0x00];
    for (let base = 0x00; base <= 0xe0 && asking.length; base += 0x20) {
      const r = await this.query(Uint8Array.of(0x01, base));
      refusals.push(...r.refusals);
      asking = [];
      for (const a of r.answers) {
        if (a.payload.length < 6 || a.payload[1] !== base) continue;
        const pids = supportedPids(base, a.payload.subarray(2, 6));
        const list = byEcu.get(a.ecu) ?? byEcu.set(a.ecu, []).get(a.ecu)!;
        list.push(...pids.filter((p) => p % 0x20 !== 0));
        if (pids.includes(base + 0x20)) asking.push(a.ecu);
      }
    }
    return { answers: [...byEcu].sort((a, b) => a[0] - b[0]).map(([ecu, value]) => ({ ecu, value })), refusals };
  }

  /** Services 03 (stored), 07 (pending), 0A (permanent): each ECU's trouble codes. */
  async readDtcs(kind: "stored" | "pending" | "permanent" = "stored"): Promise<ObdResult<string[]>> {
    const service = { stored: 0x03, pending: 0x07, permanent: 0x0a }[kind];
    const r = await this.query(Uint8Array.of(service));
    return {
      answers: r.answers.map((a) => ({ ecu: a.ecu, value: parseDtcList(a.payload) })),
      refusals: r.refusals,
    };
  }

  /** Service 04: clear trouble codes and stored values. An ECU may refuse (conditionsNotCorrect with the engine running). */
  async clearDtcs(): Promise<ObdResult<true>> {
    const r = await this.query(Uint8Array.of(0x04));
    return { answers: r.answers.map((a) => ({ ecu: a.ecu, value: true as const })), refusals: r.refusals };
  }

  /** Service 09 PID 02: the VIN, 17 characters (ISO 3779), usually in a multi-frame answer. */
  async readVin(): Promise<ObdResult<string>> {
    const r = await this.query(Uint8Array.of(0x09, 0x02));
    return {
      answers: r.answers.map((a) => ({ ecu: a.ecu, value: parseVin(a.payload) })),
      refusals: r.refusals,
    };
  }
}

/** PIDs in requests of at most 6, unknown PIDs alone. */
function pidGroups(pids: number[]): number[][] {
  const groups: number[][] = [];
  let cur: number[] = [];
  for (const p of pids) {
    if (!OBD_PIDS.has(p)) {
      groups.push([p]);
      continue;
    }
    cur.push(p);
    if (cur.length === 6) {
      groups.push(cur);
      cur = [];
    }
  }
  if (cur.length) groups.push(cur);
  return groups;
}

/** Splits `41 <pid> <data> <pid> <data>...` by the table's data lengths; an unknown PID takes the rest. */
export function splitService01(payload: Uint8Array, asked: number[]): DecodedPid[] {
  const out: DecodedPid[] = [];
  let i = 1;
  while (i < payload.length) {
    const pid = payload[i];
    if (!asked.includes(pid)) throw new VgwError(`service 01: the answer names PID 0x${hex(pid)}, which was not asked for (${Buffer.from(payload).toString("hex")})`);
    const len = OBD_PIDS.get(pid)?.bytes ?? payload.length - i - 1;
    if (i + 1 + len > payload.length) throw new VgwError(`service 01: PID 0x${hex(pid)} needs ${len} data bytes, the answer has ${payload.length - i - 1}`);
    out.push(decodePid(pid, payload.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return out;
}

/** `43 <count> <hi lo>...` (on CAN the count comes first); code 0x0000 is padding, not a DTC. */
export function parseDtcList(payload: Uint8Array): string[] {
  const n = payload[1] ?? 0;
  if (payload.length < 2 + 2 * n) throw new VgwError(`service 0x${hex(payload[0] - 0x40)}: ${n} DTCs announced, ${Math.floor((payload.length - 2) / 2)} present`);
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const code = (payload[2 + 2 * k] << 8) | payload[3 + 2 * k];
    if (code !== 0) out.push(dtcText(code));
  }
  return out;
}

/** `49 02 01 <17 characters>` (the 01 is the number of data items); older ECUs pad with zeros before the VIN. */
export function parseVin(payload: Uint8Array): string {
  if (payload.length < 3 || payload[1] !== 0x02) throw new VgwError(`service 09: not a VIN answer (${Buffer.from(payload).toString("hex")})`);
  return Buffer.from(payload.subarray(3)).toString("latin1").replace(/^\0+/, "");
}
