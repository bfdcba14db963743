/**
 * The receiving half of ISO-TP as a pure state machine: the data frames of one direction go in (with their times),
 * whole messages and named errors come out. It owns no timer and sends nothing: the endpoint (isotp.ts) drives it
 * live and sends the flow control it asks for; `vgw isotp dump` and trace decoding feed it recorded frames, and the
 * N_Cr timeout is judged from the frames' own times (`expire(t)`).
 */
import { FD_LENGTHS } from "../../frame/frame";
import { FlowStatus, IsoTpError, frameLengthFor, readPdu } from "./isotp-pci";

export interface PaddingCheck {
  /** Frames that end a message (SF, last CF) must be padded to 8 bytes, or to their valid CAN FD length (can-utils' -P l). */
  length?: boolean;
  /** Padding bytes must be this value (can-utils' -P c with -p :RX). */
  content?: number;
}

export interface ReassemblerOptions {
  /** Bytes before the PCI: 1 with extended or mixed addressing (the address byte), else 0. */
  offset?: number;
  /** Longest message accepted; a first frame announcing more is answered with flow status OVERFLOW. Default 1 MiB. */
  maxLength?: number;
  /** N_Cr: the longest gap between consecutive frames (and after a flow control), in seconds. Default 1 s. */
  nCr?: number;
  /** Block size this receiver grants (0: all remaining frames at once); decides when flow control is owed. */
  blockSize?: number;
  padding?: PaddingCheck;
}

export type ReassemblyEvent =
  /** A whole message; `start` is the time of its first frame, `t` of its last, `frames` how many carried it. */
  | { kind: "message"; payload: Uint8Array; start: number; t: number; frames: number }
  /** A message (or a stray frame) that failed; the reassembler is ready for the next message. */
  | { kind: "error"; error: IsoTpError; t: number }
  /** The receiver owes the sender a flow control frame now (after a first frame, after each block). */
  | { kind: "flow-control"; status: FlowStatus; t: number };

interface InProgress {
  buffer: Uint8Array;
  filled: number;
  /** Next sequence number expected. */
  sn: number;
  /** The data length of the first frame: every CF but the last must have it (ISO 15765-2 RX_DL). */
  rxDl: number;
  start: number;
  /** Time of the last frame of this message (or of the flow control answering it). */
  last: number;
  frames: number;
  /** CFs received in the current block. */
  inBlock: number;
}

export class IsoTpReassembler {
  private readonly offset: number;
  private readonly maxLength: number;
  private readonly nCr: number;
  private readonly blockSize: number;
  private readonly padding: PaddingCheck | undefined;
  private current: InProgress | undefined;

  constructor(options: ReassemblerOptions = {}) {
    this.offset = options.offset ?? 0;
    this.maxLength = options.maxLength ?? 1 << 20;
    this.nCr = options.nCr ?? 1;
    this.blockSize = options.blockSize ?? 0;
    this.padding = options.padding;
  }

  /** A multi-frame message is being received. */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Bytes of the message in progress received so far, and its announced length. */
  get progress(): { filled: number; length: number } | undefined {
    return this.current && { filled: this.current.filled, length: this.current.buffer.length };
  }

  /**
   * One data frame of this direction (SF, FF, CF; flow control frames belong to the other direction's sender and are
   * ignored here) at time `t` in seconds. Returns what it completed, failed or asks for, in order.
   */
  push(data: Uint8Array, t: number): ReassemblyEvent[] {
    const events = this.expire(t);
    const pdu = readPdu(data, this.offset);
    if (pdu instanceof IsoTpError) {
      // A frame we cannot read ends the message in progress only if it was meant to continue it: unknown frames are
      // reported and otherwise ignored (ISO 15765-2 ignores them; we count them).
      events.push({ kind: "error", error: pdu, t });
      return events;
    }
    switch (pdu.type) {
      case "SF": {
        this.interrupt(events, t, "single frame");
        const end = pdu.dataStart + pdu.length;
        const bad = this.checkPadding(data, end);
        if (bad) events.push({ kind: "error", error: bad, t });
        else events.push({ kind: "message", payload: data.slice(pdu.dataStart, end), start: t, t, frames: 1 });
        return events;
      }
      case "FF":
        this.interrupt(events, t, "first frame");
        this.firstFrame(data, pdu.length, pdu.dataStart, t, events);
        return events;
      case "CF":
        this.consecutiveFrame(data, pdu.sn, pdu.dataStart, t, events);
        return events;
      case "FC":
        return events;
    }
  }

  /**
   * Ends the message in progress with "timeout-cr" when more than N_Cr passed since its last frame (at time `t`,
   * seconds on the frames' clock). The endpoint calls it from its timer; a trace reader with each frame and at the end.
   */
  expire(t: number): ReassemblyEvent[] {
    const c = this.current;
    if (!c || t - c.last <= this.nCr) return [];
    this.current = undefined;
    const error = new IsoTpError("timeout-cr", `no consecutive frame within ${Math.round(this.nCr * 1000)} ms (N_Cr): ${c.filled} of ${c.buffer.length} bytes received`);
    return [{ kind: "error", error, t }];
  }

  /** Milliseconds from `t` until the message in progress would expire (at least 1). */
  msUntilExpiry(t: number): number {
    const c = this.current;
    return c ? Math.max(1, Math.ceil((c.last + this.nCr - t) * 1000) + 1) : this.nCr * 1000;
  }

  /** The sender was just answered (flow control sent or seen at `t`): N_Cr runs from here. */
  touch(t: number): void {
    if (this.current) this.current.last = t;
  }

  /** Drops the message in progress without an event (the endpoint closing). */
  reset(): void {
    this.current = undefined;
  }

  private interrupt(events: ReassemblyEvent[], t: number, by: string): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    events.push({ kind: "error", error: new IsoTpError("interrupted", `a new ${by} arrived after ${c.filled} of ${c.buffer.length} bytes`), t });
  }

  private firstFrame(data: Uint8Array, length: number, dataStart: number, t: number, events: ReassemblyEvent[]): void {
    const rxDl = data.length;
    if (rxDl < 8 || (rxDl > 8 && !FD_LENGTHS.includes(rxDl))) {
      events.push({ kind: "error", error: new IsoTpError("length", `a first frame must fill 8 bytes or a CAN FD length, got ${rxDl}`), t });
      return;
    }
    // A message that fits a single frame of this frame length must not come as a first frame.
    const sfMax = rxDl <= 8 ? 7 - this.offset : rxDl - 2 - this.offset;
    if (length <= sfMax) {
      events.push({ kind: "error", error: new IsoTpError("length", `first frame announces ${length} bytes, which fit a single frame (at most ${sfMax})`), t });
      return;
    }
    if (length > this.maxLength) {
      events.push({ kind: "flow-control", status: FlowStatus.Overflow, t });
      events.push({ kind: "error", error: new IsoTpError("overflow", `first frame announces ${length} bytes, more than the ${this.maxLength} accepted`), t });
      return;
    }
    const buffer = new Uint8Array(length);
    const take = Math.min(rxDl - dataStart, length);
    buffer.set(data.subarray(dataStart, dataStart + take));
    this.current = { buffer, filled: take, sn: 1, rxDl, start: t, last: t, frames: 1, inBlock: 0 };
    events.push({ kind: "flow-control", status: FlowStatus.ContinueToSend, t });
  }

  private consecutiveFrame(data: Uint8Array, sn: number, dataStart: number, t: number, events: ReassemblyEvent[]): void {
    const c = this.current;
    if (!c) {
      events.push({ kind: "error", error: new IsoTpError("unexpected-cf", `consecutive frame SN ${sn} while no message is being received`), t });
      return;
    }
    const fail = (error: IsoTpError) => {
      this.current = undefined;
      events.push({ kind: "error", error, t });
    };
    if (sn !== c.sn) return fail(new IsoTpError("wrong-sn", `expected sequence number ${c.sn}, got ${sn} after ${c.filled} of ${c.buffer.length} bytes`));
    const remaining = c.buffer.length - c.filled;
    const room = data.length - dataStart;
    if (data.length > c.rxDl) return fail(new IsoTpError("length", `consecutive frame of ${data.length} bytes, longer than the first frame's ${c.rxDl}`));
    if (room < remaining && data.length !== c.rxDl) {
      return fail(new IsoTpError("length", `consecutive frame of ${data.length} bytes before the last one (must be ${c.rxDl})`));
    }
    const take = Math.min(room, remaining);
    if (take === remaining) {
      const bad = this.checkPadding(data, dataStart + take);
      if (bad) return fail(bad);
    }
    c.buffer.set(data.subarray(dataStart, dataStart + take), c.filled);
    c.filled += take;
    c.frames++;
    c.last = t;
    c.sn = (c.sn + 1) & 0x0f;
    if (c.filled === c.buffer.length) {
      this.current = undefined;
      events.push({ kind: "message", payload: c.buffer, start: c.start, t, frames: c.frames });
      return;
    }
    if (this.blockSize > 0 && ++c.inBlock === this.blockSize) {
      c.inBlock = 0;
      events.push({ kind: "flow-control", status: FlowStatus.ContinueToSend, t });
    }
  }

  /** The padding check for a frame that ends a message, whose data ends at `end`. */
  private checkPadding(data: Uint8Array, end: number): IsoTpError | undefined {
    const p = this.padding;
    if (!p) return undefined;
    if (p.length) {
      const want = Math.max(8, frameLengthFor(end));
      if (data.length < want) return new IsoTpError("padding", `frame of ${data.length} bytes is not padded to ${want}`);
    }
    if (p.content !== undefined) {
      for (let i = end; i < data.length; i++) {
        if (data[i] !== p.content) {
          return new IsoTpError("padding", `padding byte ${i} is 0x${data[i].toString(16).padStart(2, "0")}, expected 0x${p.content.toString(16).padStart(2, "0")}`);
        }
      }
    }
    return undefined;
  }
}
