/**
 * What both SocketCAN buses share, whichever socket they use (vgw's own module, socketcan.ts; or the `socketcan`
 * package, socketcan-addon.ts): the receive queue and the iterators over it, error frames counted by class, the
 * counters, and sending: refusing what the interface cannot carry, then retrying with back-off while the driver's
 * transmit queue is full.
 */
import { constants } from "node:os";
import type { Frame } from "../../frame/frame";
import { isValidFdLength } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import { ErrorCounters } from "../../frame/error-frame";
import type { Bus, BusCounters } from "./bus";
import { RxQueue } from "./rx-queue";
import { diagnoseInterface, interfaceRxDropped, isFdCapable, upHint } from "./can-interface";

/** A full TX queue is retried this many times, waiting 1, 2, 4 ... ms (about 0.5 s in all) before giving up. */
const TX_RETRIES = 9;
const { ENETDOWN, ENOBUFS, EAGAIN } = constants.errno;

/** The errno a write returns when the driver's transmit queue is full (sending retries on it). */
export const QUEUE_FULL = ENOBUFS;

export abstract class SocketCanBusBase implements Bus {
  protected readonly queue = new RxQueue();
  protected closed = false;
  private readonly fdCapable: boolean;
  private readonly rxDroppedAtOpen: number;
  readonly errors = new ErrorCounters();
  rx = 0;
  tx = 0;
  txRetries = 0;
  txFailed = 0;

  constructor(readonly name: string) {
    this.fdCapable = isFdCapable(name);
    this.rxDroppedAtOpen = interfaceRxDropped(name);
  }

  /** Starts delivering received frames (at open, or on first use for a `transmitOnly` bus). */
  abstract startReceiving(): void;
  /** One non-blocking write: 0, or the errno (QUEUE_FULL is retried). */
  protected abstract write(frame: Frame): number;
  /** The text of a write's errno. */
  protected abstract strerror(errno: number): string;
  abstract close(): Promise<void>;

  /**
   * The burst path: each frame written at once while the driver takes it (one native call each, no promise and no
   * event-loop turn per frame); a frame the driver refuses goes through send()'s retries and diagnosis, then the rest.
   */
  async sendBatch(frames: readonly Frame[]): Promise<void> {
    for (const frame of frames) {
      this.check(frame);
      if (this.write(frame) === 0) this.tx++;
      else await this.send(frame);
    }
  }

  /** Refuses what cannot be sent at all: a closed bus, an FD frame on a classic interface, an invalid FD length. */
  protected check(frame: Frame): void {
    if (this.closed) throw new BusError(`${this.name} is closed`);
    if (frame.fd && !this.fdCapable) {
      throw new BusError(
        `${this.name} is not in CAN FD mode, cannot send the FD frame`,
        this.name.startsWith("vcan")
          ? `sudo ip link set ${this.name} mtu 72`
          : `sudo ip link set ${this.name} down && sudo ip link set ${this.name} up type can bitrate 500000 dbitrate 2000000 fd on`,
      );
    }
    if (frame.fd && !isValidFdLength(frame.data.length)) throw new BusError(`CAN FD length ${frame.data.length} is not valid`);
  }

  async send(frame: Frame): Promise<void> {
    this.check(frame);
    let errno = 0;
    for (let attempt = 0; ; attempt++) {
      errno = this.write(frame);
      if (errno === 0) {
        this.tx++;
        return;
      }
      if ((errno !== ENOBUFS && errno !== EAGAIN) || attempt >= TX_RETRIES) break;
      // The driver's queue is full (a busy or unacknowledged bus): back off and retry, counting each retry.
      this.txRetries++;
      await new Promise((resolve) => setTimeout(resolve, 1 << attempt));
    }
    this.txFailed++;
    const down = diagnoseInterface(this.name);
    if (down) throw down;
    if (errno === ENOBUFS || errno === EAGAIN) {
      throw new BusError(
        `${this.name}: transmit queue full (ENOBUFS) for 0.5 s; is another node acknowledging frames and is the bitrate right?`,
        `check 'ip -details -statistics link show ${this.name}'; a longer queue helps bursts: sudo ip link set ${this.name} txqueuelen 1000`,
      );
    }
    throw new BusError(`${this.name}: cannot send ${frame.err ? "the error frame" : "the frame"}: ${this.strerror(errno)}`, errno === ENETDOWN ? upHint(this.name) : undefined);
  }

  /** What both sockets count; the socket's own counts (kernel drops) are added by the subclass. */
  counters(): BusCounters {
    return {
      rx: this.rx,
      tx: this.tx,
      txRetries: this.txRetries,
      txFailed: this.txFailed,
      errorFrames: this.errors.total,
      busOff: this.errors.busOff,
      queueDropped: this.queue.dropped,
      interfaceRxDropped: interfaceRxDropped(this.name, this.rxDroppedAtOpen) - this.rxDroppedAtOpen,
    };
  }

  batches(): AsyncIterable<Frame[]> {
    this.startReceiving();
    return this.queue.batches();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    this.startReceiving();
    return this.queue[Symbol.asyncIterator]();
  }
}
