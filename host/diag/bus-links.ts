/**
 * Diagnostic links on a CAN bus: the tester's (UDS to one ECU; OBD-II functional requests and the answering ECUs)
 * and the simulated ECU's, each a MessageLink carried by ISO-TP (ISO 15765-2) over its own Bus opened with a filter
 * on its receive ID, so every link reads only its own frames, on any bus vgw opens (`virtual:`, vcan0, can0).
 *
 * Addressing follows ISO 15765-4 (OBD-II on CAN): 11-bit functional 0x7DF, ECU n physical 0x7E0+n, answers from
 * 0x7E8+n; 29-bit functional 0x18DB33F1, physical 0x18DA<ecu>F1, answers 0x18DAF1<ecu>. Frames are padded to 8
 * bytes, as ISO 15765-4 requires.
 */
import { makeFrame, type Frame } from "../../frame/frame";
import { VgwError } from "../../frame/errors";
import { openBus, type Bus, type BusOptions } from "../bus";
import { log } from "../log";
import type { MessageLink } from "./link";
import type { ObdChannels } from "./obd";
import { SimulatedEcu, type EcuConfig } from "./ecu-sim";
import { hex } from "./uds";

export interface LinkAddress {
  /** The ID this end sends on (requests for a tester, answers for an ECU) and the ID it receives on. */
  txId: number;
  rxId: number;
  ext: boolean;
}

/** A transport-level failure of one message (ISO 15765-2 names): the link goes on. */
export class IsoTpError extends VgwError {}

/** ISO 15765-2 N_Bs / N_Cr: how long a sender waits for flow control and a receiver for the next consecutive frame. */
const N_TIMEOUT_MS = 1000;
const PADDING = 0xcc;

/**
 * ISO-TP on classic CAN with normal addressing: single frames, and first + consecutive frames paced by the
 * receiver's flow control (block size, STmin), up to 4095 bytes. Kept small: it carries the diagnostic services;
 * extended addressing and CAN FD are the job of a full ISO-TP endpoint.
 */
class IsoTpLink implements MessageLink {
  private readonly inbox: Array<Uint8Array | Error> = [];
  private waiter: (() => void) | undefined;
  private flowControl: ((f: Frame) => void) | undefined;
  private rx: { data: Uint8Array; filled: number; sn: number; timer: NodeJS.Timeout } | undefined;
  private closed = false;
  private readonly reading: Promise<void>;

  constructor(
    private readonly bus: Bus,
    readonly address: LinkAddress,
  ) {
    this.reading = this.read();
  }

  private frame(data: number[]): Frame {
    const padded = new Uint8Array(8).fill(PADDING);
    padded.set(data);
    return makeFrame({ id: this.address.txId, ext: this.address.ext, data: padded });
  }

  private async read(): Promise<void> {
    try {
      for await (const f of this.bus) {
        if (f.id !== this.address.rxId || f.ext !== this.address.ext || f.err || f.rtr || f.data.length === 0) continue;
        this.onFrame(f);
      }
    } catch (e) {
      if (!this.closed) this.deliver(new IsoTpError(`${this.bus.name}: ${(e as Error).message}`, { cause: e }));
    }
  }

  private onFrame(f: Frame): void {
    const d = f.data;
    const type = d[0] >> 4;
    if (type === 3) {
      this.flowControl?.(f);
      return;
    }
    if (type === 0) {
      const len = d[0] & 0x0f;
      if (len === 0 || len > d.length - 1) return this.deliver(new IsoTpError(`single frame with a bad length ${len}`));
      this.abortRx("a new single frame");
      this.deliver(d.slice(1, 1 + len));
      return;
    }
    if (type === 1) {
      const len = ((d[0] & 0x0f) << 8) | d[1];
      if (len < 8) return this.deliver(new IsoTpError(`first frame announcing only ${len} bytes`));
      this.abortRx("a new first frame");
      const data = new Uint8Array(len);
      data.set(d.subarray(2, Math.min(d.length, 2 + len)));
      this.rx = { data, filled: Math.min(d.length - 2, len), sn: 1, timer: this.rxTimer() };
      void this.bus.send(this.frame([0x30, 0x00, 0x00])).catch((e: Error) => this.deliver(new IsoTpError(`flow control not sent: ${e.message}`)));
      return;
    }
    if (type === 2) {
      const rx = this.rx;
      if (!rx) return; // a consecutive frame of no message of ours (ISO 15765-2: ignored)
      const sn = d[0] & 0x0f;
      if (sn !== rx.sn) {
        this.abortRx();
        this.deliver(new IsoTpError(`wrong sequence number: expected ${rx.sn}, got ${sn}`));
        return;
      }
      rx.sn = (rx.sn + 1) & 0x0f;
      const take = Math.min(d.length - 1, rx.data.length - rx.filled);
      rx.data.set(d.subarray(1, 1 + take), rx.filled);
      rx.filled += take;
      clearTimeout(rx.timer);
      if (rx.filled >= rx.data.length) {
        this.rx = undefined;
        this.deliver(rx.data);
      } else rx.timer = this.rxTimer();
    }
  }

  private rxTimer(): NodeJS.Timeout {
    return setTimeout(() => {
      this.rx = undefined;
      this.deliver(new IsoTpError(`timeout waiting for a consecutive frame (N_Cr ${N_TIMEOUT_MS} ms)`));
    }, N_TIMEOUT_MS);
  }

  private abortRx(why?: string): void {
    if (!this.rx) return;
    clearTimeout(this.rx.timer);
    this.rx = undefined;
    if (why) this.deliver(new IsoTpError(`message interrupted by ${why}`));
  }

  private deliver(m: Uint8Array | Error): void {
    this.inbox.push(m);
    this.waiter?.();
  }

  async send(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new IsoTpError("the link is closed");
    if (payload.length <= 7) {
      await this.bus.send(this.frame([payload.length, ...payload]));
      return;
    }
    if (payload.length > 4095) throw new IsoTpError(`${payload.length} bytes: this link carries at most 4095`);
    await this.bus.send(this.frame([0x10 | (payload.length >> 8), payload.length & 0xff, ...payload.subarray(0, 6)]));
    let offset = 6;
    let sn = 1;
    while (offset < payload.length) {
      const fc = await this.awaitFlowControl();
      const bs = fc.data[1];
      const stMin = fc.data[2] <= 0x7f ? fc.data[2] : fc.data[2] >= 0xf1 && fc.data[2] <= 0xf9 ? 1 : 0x7f;
      for (let n = 0; offset < payload.length && (bs === 0 || n < bs); n++) {
        if (n > 0 && stMin > 0) await new Promise((r) => setTimeout(r, stMin));
        await this.bus.send(this.frame([0x20 | sn, ...payload.subarray(offset, offset + 7)]));
        offset += 7;
        sn = (sn + 1) & 0x0f;
      }
    }
  }

  /** The next clear-to-send flow control; WAIT frames restart the wait, overflow ends the message. */
  private awaitFlowControl(): Promise<Frame> {
    return new Promise((resolve, reject) => {
      let timer = setTimeout(() => done(new IsoTpError(`no flow control within ${N_TIMEOUT_MS} ms (N_Bs)`)), N_TIMEOUT_MS);
      const done = (r: Frame | Error) => {
        clearTimeout(timer);
        this.flowControl = undefined;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.flowControl = (f) => {
        const status = f.data[0] & 0x0f;
        if (status === 0) done(f);
        else if (status === 1) {
          clearTimeout(timer);
          timer = setTimeout(() => done(new IsoTpError(`no flow control within ${N_TIMEOUT_MS} ms after WAIT (N_Bs)`)), N_TIMEOUT_MS);
        } else done(new IsoTpError(status === 2 ? "the receiver's buffer overflowed (flow status OVFLW)" : `flow status ${status} is invalid`));
      };
    });
  }

  async receive(timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m instanceof Error) throw m;
      if (m) return m;
      if (this.closed) throw new IsoTpError("the link is closed");
      const left = deadline - Date.now();
      if (left <= 0) {
        const e = new IsoTpError(`timeout: no message within ${timeoutMs} ms`);
        e.name = "TimeoutError";
        throw e;
      }
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortRx();
    this.waiter?.();
    await this.bus.close();
    await this.reading;
  }
}

/** Where links get their buses: a bus spec for openBus, or an opener (the HIL harness's view of a gateway's wire). */
export type BusSource = string | ((options: BusOptions) => Promise<Bus>);

/** One ISO-TP link on its own Bus, which receives only `rxId`. */
export async function openIsoTpLink(source: BusSource, address: LinkAddress): Promise<MessageLink> {
  const options: BusOptions = { filters: [{ id: address.rxId, mask: address.ext ? 0x1fffffff : 0x7ff, ext: address.ext }] };
  const bus = typeof source === "string" ? await openBus(source, options) : await source(options);
  return new IsoTpLink(bus, address);
}

/** The IDs a tester uses to reach OBD-II ECUs. */
export interface ObdAddressing {
  ext: boolean;
  /** Physical addressing to one ECU (its request ID) instead of the functional broadcast. */
  physical?: number;
  /**
   * The answer IDs to listen on. Default: the eight of ISO 15765-4 for 11-bit IDs (0x7E8-0x7EF); for 29-bit IDs, where
   * any ECU address may answer (0x18DAF1xx), the addresses 0x10-0x17 (the engine ECU is 0x10 by convention).
   */
  responseIds?: number[];
}

/** ISO 15765-4: the request ID that pairs with an answer ID (flow control for the ECU's multi-frame answers goes there). */
export function requestIdFor(responseId: number, ext: boolean): number {
  return ext ? 0x18da00f1 | ((responseId & 0xff) << 8) : responseId - 8;
}

/** The tester's OBD-II links: a functional request link and one link per answering ECU. */
export async function openObdChannels(busSpec: string, a: ObdAddressing): Promise<ObdChannels & { close(): Promise<void> }> {
  const responseIds =
    a.responseIds ??
    (a.physical !== undefined
      ? [a.ext ? 0x18daf100 | ((a.physical >> 8) & 0xff) : a.physical + 8]
      : Array.from({ length: 8 }, (_, i) => (a.ext ? 0x18daf110 + i : 0x7e8 + i)));
  const links: MessageLink[] = [];
  try {
    const responders: Array<{ ecu: number; link: MessageLink }> = [];
    for (const id of responseIds) {
      const link = await openIsoTpLink(busSpec, { txId: requestIdFor(id, a.ext), rxId: id, ext: a.ext });
      links.push(link);
      responders.push({ ecu: id, link });
    }
    let request: MessageLink;
    if (a.physical !== undefined) request = responders[0].link;
    else {
      // Functional requests are single frames (ISO 15765-4): nothing answers on this link's receive ID.
      request = await openIsoTpLink(busSpec, { txId: a.ext ? 0x18db33f1 : 0x7df, rxId: a.ext ? 0x18db33f1 : 0x7df, ext: a.ext });
      links.push(request);
    }
    return { request, responders, close: async () => void (await Promise.all(links.map((l) => l.close()))) };
  } catch (e) {
    await Promise.all(links.map((l) => l.close()));
    throw e;
  }
}

/** Simulated ECUs answering on a bus until close(). */
export interface RunningEcus {
  ecus: SimulatedEcu[];
  close(): Promise<void>;
}

export async function startEcus(busSpec: BusSource, configs: EcuConfig[]): Promise<RunningEcus> {
  const links: MessageLink[] = [];
  const ecus: SimulatedEcu[] = [];
  const serving: Array<Promise<void>> = [];
  try {
    for (const c of configs) {
      const physical = await openIsoTpLink(busSpec, { txId: c.responseId, rxId: c.requestId, ext: c.ext });
      links.push(physical);
      const functional = await openIsoTpLink(busSpec, { txId: c.responseId, rxId: c.functionalId, ext: c.ext });
      links.push(functional);
      const ecu = new SimulatedEcu(c);
      ecus.push(ecu);
      serving.push(ecu.serve(physical, functional));
      log.debug(`ecu ${c.name}: requests on 0x${hex(c.requestId, 3)} and 0x${hex(c.functionalId, 3)}, answers from 0x${hex(c.responseId, 3)}`);
    }
  } catch (e) {
    for (const ecu of ecus) ecu.stop();
    await Promise.all(links.map((l) => l.close()));
    throw e;
  }
  return {
    ecus,
    close: async () => {
      for (const ecu of ecus) ecu.stop();
      await Promise.all(links.map((l) => l.close()));
      await Promise.all(serving);
    },
  };
}
