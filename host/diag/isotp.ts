/**
 * ISO-TP (ISO 15765-2) endpoint: one MessageLink over any Bus. Messages of any length are cut into single, first and
 * consecutive frames and put back together, paced both ways by flow control (block size, STmin down to 100 us, WAIT
 * frames up to a limit, OVERFLOW). Normal, extended and mixed addressing (an address byte before the PCI), 11- and
 * 29-bit IDs, classic CAN and CAN FD (TX_DL 8..64, escape single frames, 32-bit first frames beyond 4095 bytes),
 * optional padding, and the N_As / N_Bs / N_Cr timeouts.
 *
 * A bad frame or a timeout ends that one message with an IsoTpError naming the reason (`code`), counted in
 * `counters()`; the endpoint carries on with the next message. Sending and receiving run independently (full
 * duplex): flow control frames arriving on the receive ID drive the sender, data frames feed the reassembler.
 */
import { makeFrame, type Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import { openBus, type Bus } from "../bus";
import { log } from "../log";
import { FRAME_FLAG, PACKED_HEADER, type PackedBatch } from "../../frame/packed";
import type { MessageLink } from "./link";
import { FlowStatus, IsoTpError, MAX_12BIT_LENGTH, MAX_MESSAGE_LENGTH, frameLengthFor, readPdu, stMinMicros, type IsoTpErrorCode } from "./isotp-pci";
import { IsoTpReassembler, type PaddingCheck, type ReassemblyEvent } from "./isotp-reassembler";

export { IsoTpError, type IsoTpErrorCode } from "./isotp-pci";

export interface IsoTpOptions {
  /** The ID this end sends on (data frames, and the flow control answering the peer). */
  txId: number;
  /** The ID this end receives on (the peer's data and flow control frames). */
  rxId: number;
  /** 29-bit IDs; default: an ID above 0x7FF is a 29-bit one. */
  txExt?: boolean;
  rxExt?: boolean;
  /**
   * Extended or mixed addressing: the address byte sent before the PCI in every frame (the target address, or the
   * address extension with mixed addressing). Unset: normal addressing.
   */
  txAddress?: number;
  /** The address byte expected before the PCI of received frames (default: none; frames with another one are not ours). */
  rxAddress?: number;
  /**
   * Pad every frame to 8 bytes (or, on CAN FD, to the next valid length) with this byte. Unset: frames are as long
   * as their content, except CAN FD frames over 8 bytes, which must have a valid length and are padded with 0xCC
   * (the Linux kernel's default).
   */
  txPadding?: number;
  /** Check the padding of received frames that end a message (default: both padded and unpadded are accepted). */
  rxPadding?: PaddingCheck;
  /** Block size granted to the sender: consecutive frames between two flow controls (0: no more flow control). */
  blockSize?: number;
  /** STmin granted to the sender, as the raw byte: 0x00-0x7F ms, 0xF1-0xF9 100-900 us. */
  stMin?: number;
  /** Override the receiver's STmin when sending: this many microseconds between consecutive frames (isotpsend -f). */
  forceStMinUs?: number;
  /** WAIT flow controls accepted in a row before the message is given up (N_WFTmax). Default 16. */
  maxWaitFrames?: number;
  /** Send CAN FD frames (TX_DL may then be 8..64). Default: true when txDl > 8. */
  fd?: boolean;
  /** With fd: the bit-rate switch flag on frames sent. */
  brs?: boolean;
  /** Transmit data length: the frame length of first and consecutive frames, 8 (classic) or 12..64 (CAN FD). Default 8. */
  txDl?: number;
  /** Longest message received; longer first frames are answered with OVERFLOW. Default 1 MiB. */
  maxLength?: number;
  /** Timeouts in ms: a frame leaving (N_As), flow control arriving (N_Bs), the next consecutive frame (N_Cr). Default 1000 each. */
  nAs?: number;
  nBs?: number;
  nCr?: number;
  /** Whole received messages (and errors) kept until receive() takes them; more are dropped and counted. Default 1024. */
  queueLimit?: number;
}

export interface IsoTpCounters {
  txMessages: number;
  rxMessages: number;
  txFrames: number;
  rxFrames: number;
  /** Frames on the receive ID that were not for this endpoint's state (flow control while not sending, another address byte). */
  ignoredFrames: number;
  /** Received messages dropped because nobody called receive() and the queue was full. */
  dropped: number;
  /** Consecutive frames received sooner after the previous one than the STmin this endpoint grants (taken anyway). */
  stMinViolations: number;
  /** Failed messages and stray frames, by reason. */
  errors: Partial<Record<IsoTpErrorCode, number>>;
}

interface FlowControl {
  status: number;
  blockSize: number;
  stMin: number;
}

/** Consecutive frames sent without STmin before the event loop gets a turn (one sendBatch call with a burst-capable bus). */
const BURST_FRAMES = 64;
const VALID_TX_DL = [8, 12, 16, 20, 24, 32, 48, 64];
/** The pad byte of CAN FD frames when no padding is configured: the kernel's CAN_ISOTP_DEFAULT_PAD_CONTENT. */
const FD_DEFAULT_PAD = 0xcc;

function now(): number {
  return performance.now() / 1000;
}

export class IsoTpEndpoint implements MessageLink {
  private readonly txExt: boolean;
  private readonly rxExt: boolean;
  private readonly ae: number;
  private readonly txDl: number;
  private readonly fd: boolean;
  private readonly reassembler: IsoTpReassembler;
  private readonly inbox: Array<Uint8Array | IsoTpError> = [];
  private readonly waiters: Array<{ resolve: (m: Uint8Array) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private crTimer: NodeJS.Timeout | undefined;
  private asTimer: NodeJS.Timeout | undefined;
  private readonly pendingSends = new Set<{ since: number; fail: (e: IsoTpError) => void }>();
  /** The sender waiting for flow control, if any. */
  private fcWaiter: ((fc: FlowControl) => void) | undefined;
  /** Sends run one after another: a message is never interleaved with the next one. */
  private txChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Receive time of the last consecutive frame of the message being received (STmin check). */
  private lastCf: number | undefined;
  private warnedThisMessage = false;
  private readonly reading: Promise<void>;
  private readonly stats: IsoTpCounters = { txMessages: 0, rxMessages: 0, txFrames: 0, rxFrames: 0, ignoredFrames: 0, dropped: 0, stMinViolations: 0, errors: {} };

  /**
   * Starts reading `bus`. With `ownsBus` the endpoint closes the bus on close(); otherwise the caller closes it
   * (which ends the endpoint's reading too).
   */
  constructor(
    private readonly bus: Bus,
    readonly options: IsoTpOptions,
    private readonly ownsBus = false,
  ) {
    this.txExt = options.txExt ?? options.txId > 0x7ff;
    this.rxExt = options.rxExt ?? options.rxId > 0x7ff;
    this.ae = options.txAddress !== undefined ? 1 : 0;
    this.txDl = options.txDl ?? 8;
    if (!VALID_TX_DL.includes(this.txDl)) throw new RangeError(`TX_DL ${this.txDl} is not one of ${VALID_TX_DL.join(", ")}`);
    this.fd = options.fd ?? this.txDl > 8;
    if (this.txDl > 8 && !this.fd) throw new RangeError(`TX_DL ${this.txDl} needs CAN FD frames`);
    for (const [name, v] of [
      ["txAddress", options.txAddress],
      ["rxAddress", options.rxAddress],
      ["txPadding", options.txPadding],
      ["blockSize", options.blockSize],
      ["stMin", options.stMin],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xff)) throw new RangeError(`${name} must be a byte (0..255), got ${v}`);
    }
    this.reassembler = new IsoTpReassembler({
      offset: options.rxAddress !== undefined ? 1 : 0,
      maxLength: options.maxLength,
      nCr: (options.nCr ?? 1000) / 1000,
      blockSize: options.blockSize ?? 0,
      padding: options.rxPadding,
    });
    this.reading = this.read();
  }

  /** What the endpoint counted so far (a copy). */
  counters(): IsoTpCounters {
    return { ...this.stats, errors: { ...this.stats.errors } };
  }

  async send(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new IsoTpError("closed", "the endpoint is closed");
    const run = this.txChain.then(() => this.transmit(payload));
    this.txChain = run.catch(() => undefined);
    return run;
  }

  receive(timeoutMs: number): Promise<Uint8Array> {
    const next = this.inbox.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next) return Promise.resolve(next);
    if (this.closed) return Promise.reject(new IsoTpError("closed", "the endpoint is closed"));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new IsoTpError("timeout", `no message within ${timeoutMs} ms (receive timeout)`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.crTimer);
    clearTimeout(this.asTimer);
    this.reassembler.reset();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new IsoTpError("closed", "the endpoint was closed"));
    }
    this.fcWaiter?.({ status: -1, blockSize: 0, stMin: 0 });
    if (this.ownsBus) {
      await this.bus.close();
      await this.reading;
    }
  }

  // ---- receiving ----

  private async read(): Promise<void> {
    try {
      if (this.ownsBus && this.bus.listenPacked) {
        // The bus is ours alone and its driver receives packed (native SocketCAN): read the records where the driver
        // hands them over, without a Frame object, a queue and an event-loop turn per frame.
        this.bus.listenPacked(this.onPacked);
        for await (const _ of this.bus) break; // ends when the bus closes
      } else if (this.bus.batches) {
        // Bursts where the bus delivers them so (one promise per burst, not per frame: a 4 KB message is 586 frames).
        for await (const batch of this.bus.batches()) {
          if (this.closed) break;
          for (const f of batch) this.onFrame(f.id, f.ext, f.err || f.rtr, f.data, f.t);
        }
      } else {
        for await (const f of this.bus) {
          if (this.closed) break;
          this.onFrame(f.id, f.ext, f.err || f.rtr, f.data, f.t);
        }
      }
    } catch (e) {
      if (!this.closed) log.warn(`isotp: ${this.bus.name}: receiving stopped: ${(e as Error).message}`);
    }
  }

  /** A packed chunk (frame/packed.ts records), straight from the driver's callback: must not throw. */
  private readonly onPacked = (batch: PackedBatch): void => {
    if (this.closed) return;
    const view = new DataView(batch.buffer, 0, batch.bytes);
    for (let i = 0, o = 0; i < batch.count; i++) {
      const len = view.getUint8(o + 13);
      const flags = view.getUint8(o + 12);
      const t = view.getFloat64(o, true);
      try {
        this.onFrame(view.getUint32(o + 8, true), (flags & FRAME_FLAG.ext) !== 0, (flags & (FRAME_FLAG.err | FRAME_FLAG.rtr)) !== 0, new Uint8Array(batch.buffer, o + PACKED_HEADER, len), Number.isNaN(t) ? undefined : t);
      } catch (e) {
        log.warn(`isotp: ${this.bus.name}: ${(e as Error).message}`);
      }
      o += PACKED_HEADER + len;
    }
  };

  /** Every frame of the bus: ours are on rxId (and carry rxAddress, when set). `t`: the receive time, when the bus stamps it. */
  private onFrame(id: number, ext: boolean, notData: boolean, data: Uint8Array, t: number | undefined): void {
    if (id !== this.options.rxId || ext !== this.rxExt || notData) return;
    const rxAddress = this.options.rxAddress;
    if (rxAddress !== undefined && data[0] !== rxAddress) {
      this.stats.ignoredFrames++;
      return;
    }
    this.stats.rxFrames++;
    const offset = rxAddress !== undefined ? 1 : 0;
    const type = data.length > offset ? data[offset] >> 4 : -1;
    if (type === 3) {
      this.onFlowControl(data, offset);
      return;
    }
    if (type === 2) this.checkStMin(t);
    else this.lastCf = undefined;
    this.handle(this.reassembler.push(data, now()));
  }

  /**
   * The STmin this endpoint grants is checked, not enforced: a consecutive frame that follows the previous one sooner
   * than granted (by the bus's receive times; a bus without them is not judged) is still taken, and counted in
   * `stMinViolations`, with one warning per message. ISO 15765-2 leaves the reaction to the receiver; dropping
   * the message would punish the data for the sender's timing.
   */
  private checkStMin(t: number | undefined): void {
    const grantedUs = stMinMicros(this.options.stMin ?? 0);
    const last = this.lastCf;
    this.lastCf = t;
    if (grantedUs === 0 || t === undefined || last === undefined) return;
    const gapUs = (t - last) * 1e6;
    // Receive stamps are microseconds: a gap one microsecond short of STmin is rounding, not a fast sender.
    if (gapUs >= grantedUs - 1) return;
    this.stats.stMinViolations++;
    if (!this.warnedThisMessage) {
      this.warnedThisMessage = true;
      log.warn(`isotp: 0x${this.options.rxId.toString(16)}: consecutive frames ${gapUs.toFixed(0)} us apart, sooner than the STmin of ${grantedUs} us granted (taken anyway; counted)`);
    }
  }

  private handle(events: ReassemblyEvent[]): void {
    for (const e of events) {
      // STmin spaces the frames of a block: the first one after our flow control may follow the last one at once.
      if (e.kind === "flow-control") this.lastCf = undefined;
      else this.warnedThisMessage = false;
      if (e.kind === "message") {
        this.stats.rxMessages++;
        this.deliver(e.payload);
      } else if (e.kind === "error") {
        this.count(e.error);
        // A stray frame ends no message of ours: counted, not handed to the receiver.
        if (e.error.code !== "unexpected-cf" && e.error.code !== "bad-frame") this.deliver(e.error);
        else log.debug(`isotp: 0x${this.options.rxId.toString(16)}: ${e.error.message}`);
      } else {
        this.sendFlowControl(e.status);
      }
    }
    this.armCrTimer();
  }

  /**
   * N_Cr: one timer while a message is being received, not one per frame; when it fires early (the last frame came
   * later than the timer was set) the reassembler finds nothing expired and the timer is set again for the rest.
   */
  private armCrTimer(): void {
    if (!this.reassembler.busy || this.closed) {
      clearTimeout(this.crTimer);
      this.crTimer = undefined;
      return;
    }
    if (this.crTimer) return;
    this.crTimer = setTimeout(() => {
      this.crTimer = undefined;
      this.handle(this.reassembler.expire(now()));
    }, this.reassembler.msUntilExpiry(now()));
  }

  private sendFlowControl(status: FlowStatus): void {
    const frame = this.frame(Uint8Array.of(0x30 | status, this.options.blockSize ?? 0, this.options.stMin ?? 0));
    this.sendFrame(frame).then(
      () => this.reassembler.touch(now()),
      (e: IsoTpError) => {
        // The sender will time out waiting (N_Bs); our side gives the message up now.
        this.reassembler.reset();
        this.armCrTimer();
        if (e.code === "closed") return;
        this.count(e);
        this.deliver(e);
      },
    );
  }

  private deliver(m: Uint8Array | IsoTpError): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      if (m instanceof Error) w.reject(m);
      else w.resolve(m);
      return;
    }
    if (this.inbox.length >= (this.options.queueLimit ?? 1024)) {
      this.stats.dropped++;
      return;
    }
    this.inbox.push(m);
  }

  private count(e: IsoTpError): void {
    this.stats.errors[e.code] = (this.stats.errors[e.code] ?? 0) + 1;
  }

  // ---- sending ----

  private onFlowControl(data: Uint8Array, offset: number): void {
    const pdu = readPdu(data, offset);
    if (pdu instanceof IsoTpError) {
      this.count(pdu);
      return;
    }
    if (pdu.type !== "FC" || !this.fcWaiter) {
      // Flow control while we send nothing, or in the middle of a block: ISO 15765-2 ignores it.
      this.stats.ignoredFrames++;
      return;
    }
    this.fcWaiter({ status: pdu.status, blockSize: pdu.blockSize, stMin: pdu.stMin });
  }

  private async transmit(payload: Uint8Array): Promise<void> {
    try {
      await this.segment(payload);
      this.stats.txMessages++;
    } catch (e) {
      if (e instanceof IsoTpError && e.code !== "closed") this.count(e);
      throw e;
    }
  }

  private async segment(payload: Uint8Array): Promise<void> {
    const len = payload.length;
    const ae = this.ae;
    if (len === 0) throw new IsoTpError("length", "an empty message cannot be sent");
    if (len > MAX_MESSAGE_LENGTH) throw new IsoTpError("length", `${len} bytes exceed the ${MAX_MESSAGE_LENGTH} ISO-TP can announce`);
    const sfMax = this.txDl <= 8 ? 7 - ae : this.txDl - 2 - ae;
    if (len <= sfMax) {
      // The classic single frame while the length fits its nibble; the escape form (CAN FD only) beyond.
      const pci = len <= 7 - ae ? Uint8Array.of(len) : Uint8Array.of(0, len);
      await this.sendFrame(this.frame(pci, payload));
      return;
    }
    const long = len > MAX_12BIT_LENGTH;
    const ffPci = long ? Uint8Array.of(0x10, 0, len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff) : Uint8Array.of(0x10 | (len >> 8), len & 0xff);
    let offset = this.txDl - ae - ffPci.length;
    await this.sendFrame(this.frame(ffPci, payload.subarray(0, offset)));
    const cfData = this.txDl - ae - 1;
    let sn = 1;
    let lastSent = now();
    while (offset < len) {
      const fc = await this.awaitClearToSend();
      const gapUs = this.options.forceStMinUs ?? stMinMicros(fc.stMin);
      const blockEnd = fc.blockSize === 0 ? len : Math.min(len, offset + fc.blockSize * cfData);
      if (gapUs === 0 && this.bus.sendBatch) {
        // No gap asked for: the block's consecutive frames leave in bursts (one bus call each, not one per frame).
        // Between bursts the event loop turns, so a receiver in this process and the driver's queue keep up.
        for (let first = true; offset < blockEnd; first = false) {
          if (!first) await new Promise((r) => setImmediate(r));
          if (this.closed) throw new IsoTpError("closed", "the endpoint was closed while sending");
          const frames: Frame[] = [];
          for (; offset < blockEnd && frames.length < BURST_FRAMES; offset += cfData, sn = (sn + 1) & 0x0f) {
            frames.push(this.frame(Uint8Array.of(0x20 | sn), payload.subarray(offset, Math.min(offset + cfData, len))));
          }
          await this.sendFrames(frames);
        }
        offset = Math.min(offset, len);
        continue;
      }
      for (let n = 0; offset < blockEnd; n++) {
        if (n > 0 && gapUs > 0) await waitUntil(lastSent + gapUs / 1e6);
        // Without STmin a long message would hold the event loop for all its frames (a bus's send resolves at once):
        // yield now and then, so a receiver in this process, and the driver's transmit queue, keep up.
        else if (n > 0 && n % BURST_FRAMES === 0) await new Promise((r) => setImmediate(r));
        if (this.closed) throw new IsoTpError("closed", "the endpoint was closed while sending");
        const chunk = payload.subarray(offset, offset + cfData);
        await this.sendFrame(this.frame(Uint8Array.of(0x20 | sn), chunk));
        lastSent = now();
        offset += chunk.length;
        sn = (sn + 1) & 0x0f;
      }
    }
  }

  /**
   * Waits for flow status CONTINUE TO SEND, through WAIT frames up to the limit; other statuses end the message.
   * Each flow control is judged as it arrives (not after an await), so a burst of them delivered together counts
   * every one.
   */
  private awaitClearToSend(): Promise<FlowControl> {
    const limit = this.options.maxWaitFrames ?? 16;
    const nBs = this.options.nBs ?? 1000;
    return new Promise((resolve, reject) => {
      let waits = 0;
      let timer: NodeJS.Timeout;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(new IsoTpError("timeout-bs", `no flow control within ${nBs} ms (N_Bs)`)), nBs);
      };
      const finish = (r: FlowControl | IsoTpError) => {
        clearTimeout(timer);
        this.fcWaiter = undefined;
        if (r instanceof IsoTpError) reject(r);
        else resolve(r);
      };
      this.fcWaiter = (fc) => {
        if (fc.status === -1) finish(new IsoTpError("closed", "the endpoint was closed while sending"));
        else if (fc.status === FlowStatus.ContinueToSend) finish(fc);
        else if (fc.status === FlowStatus.Wait) {
          if (++waits > limit) finish(new IsoTpError("wft-overrun", `more than ${limit} WAIT flow controls in a row (N_WFTmax)`));
          else arm(); // N_Bs starts again with each WAIT
        } else if (fc.status === FlowStatus.Overflow) finish(new IsoTpError("overflow", "the receiver cannot take a message this long (flow status OVERFLOW)"));
        else finish(new IsoTpError("bad-fc", `reserved flow status ${fc.status}`));
      };
      arm();
    });
  }

  /** A frame on txId: address byte, PCI, data, then padding as configured (and as CAN FD lengths require). */
  private frame(pci: Uint8Array, data?: Uint8Array): Frame {
    const used = this.ae + pci.length + (data?.length ?? 0);
    const pad = this.options.txPadding;
    const length = pad !== undefined ? Math.max(8, frameLengthFor(used)) : this.fd ? frameLengthFor(used) : used;
    const bytes = new Uint8Array(length);
    if (this.ae) bytes[0] = this.options.txAddress!;
    bytes.set(pci, this.ae);
    if (data) bytes.set(data, this.ae + pci.length);
    if (length > used) bytes.fill(pad ?? FD_DEFAULT_PAD, used);
    return makeFrame({ id: this.options.txId, ext: this.txExt, fd: this.fd, brs: this.fd && (this.options.brs ?? false), data: bytes });
  }

  private sendFrame(frame: Frame): Promise<void> {
    return this.sendFrames([frame]);
  }

  /** Frames handed to the bus (as one burst when there are several and the bus can), watched by N_As. */
  private async sendFrames(frames: Frame[]): Promise<void> {
    if (this.closed) throw new IsoTpError("closed", "the endpoint is closed");
    const sending = frames.length > 1 && this.bus.sendBatch ? this.bus.sendBatch(frames) : frames.length === 1 ? this.bus.send(frames[0]) : sendEach(this.bus, frames);
    const watch = { since: now(), fail: (_e: IsoTpError) => {} };
    try {
      await new Promise<void>((resolve, reject) => {
        watch.fail = reject;
        this.pendingSends.add(watch);
        this.armAsTimer();
        sending.then(resolve, reject);
      });
    } catch (e) {
      if (e instanceof IsoTpError) throw e;
      throw new IsoTpError("timeout-as", `the bus did not take a frame: ${(e as Error).message}`, { cause: e });
    } finally {
      this.pendingSends.delete(watch);
    }
    this.stats.txFrames += frames.length;
  }

  /**
   * N_As: one watchdog timer for the frames being sent, not one per frame (a timer per frame cost more than the
   * frame itself on the virtual bus). It runs while frames are pending and fails those older than N_As.
   */
  private armAsTimer(): void {
    if (this.asTimer) return;
    const nAs = this.options.nAs ?? 1000;
    this.asTimer = setTimeout(() => {
      this.asTimer = undefined;
      const t = now();
      for (const w of this.pendingSends) {
        if ((t - w.since) * 1000 >= nAs) {
          this.pendingSends.delete(w);
          w.fail(new IsoTpError("timeout-as", `a frame did not leave within ${nAs} ms (N_As)`));
        }
      }
      if (this.pendingSends.size > 0) this.armAsTimer();
    }, nAs);
  }
}

async function sendEach(bus: Bus, frames: Frame[]): Promise<void> {
  for (const f of frames) await bus.send(f);
}

/**
 * Waits until the monotonic clock reaches `deadline` (seconds). Timers are only good to about a millisecond, so the
 * last stretch of a wait (and every sub-millisecond STmin) yields with setImmediate instead.
 */
async function waitUntil(deadline: number): Promise<void> {
  for (;;) {
    const left = deadline - now();
    if (left <= 0) return;
    if (left > 0.002) await new Promise((r) => setTimeout(r, Math.floor(left * 1000) - 1));
    else await new Promise((r) => setImmediate(r));
  }
}

/**
 * An ISO-TP endpoint on its own bus (opened from a spec such as `vcan0` or `virtual:x`), which receives only the
 * endpoint's receive ID; closing the endpoint closes the bus.
 */
export async function openIsoTp(busSpec: string, options: IsoTpOptions): Promise<IsoTpEndpoint> {
  const rxExt = options.rxExt ?? options.rxId > 0x7ff;
  let bus: Bus;
  try {
    bus = await openBus(busSpec, { filters: [{ id: options.rxId, mask: rxExt ? 0x1fffffff : 0x7ff, ext: rxExt }] });
  } catch (e) {
    if (e instanceof BusError) throw e;
    throw new BusError(`${busSpec}: ${(e as Error).message}`, undefined, { cause: e });
  }
  try {
    return new IsoTpEndpoint(bus, options, true);
  } catch (e) {
    await bus.close();
    throw e;
  }
}
