/**
 * The `sim` bus: the CAN side of the gateway firmware running in the DeviceScript simulator.
 *
 *   send(frame)   the frame is "received from the bus" by the gateway: packed into CanBus `frames` reports
 *   iterate       frames the firmware transmitted (CanBus `transmit` commands, normal mode only)
 *
 * The `sim` bus spec (host/bus/sim.ts) starts a whole simulated gateway and wraps its CanBusServer in one; code that
 * already runs a gateway (the demo, the tests, the HIL harness) wraps its CanBusServer with `new SimBus(server)`.
 *
 * Sends are coalesced: every frame sent in the same tick goes out in as few 236-byte packets as possible, which is what
 * makes replaying at 100k frames/s possible over the devtools websocket.
 */
import type { Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusCounters } from "../bus/bus";
import { RxQueue } from "../bus/rx-queue";
import type { CanBusServer } from "./canbus-server";
import { log } from "../log";

/** How many transmitted frames wait for a reader before the oldest are dropped (and counted). */
const QUEUE_BOUND = 100_000;

export class SimBus implements Bus {
  readonly name: string;
  private pending: Frame[] = [];
  private flushing: Promise<void> | undefined;
  /** Frames the firmware transmitted, waiting for a reader; bounded, overflow counted. */
  private readonly queue = new RxQueue(QUEUE_BOUND);
  private closed = false;
  /** Frames the firmware transmitted, and frames handed to it. */
  private rx = 0;
  private tx = 0;

  constructor(
    readonly server: CanBusServer,
    name = "sim",
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    this.name = name;
    server.onTransmit = (frames) => {
      const now = Date.now() / 1000;
      this.rx += frames.length;
      for (const f of frames) this.queue.push({ ...f, t: now, bus: this.name });
    };
  }

  counters(): BusCounters {
    return { rx: this.rx, tx: this.tx, queueDropped: this.queue.dropped };
  }

  send(frame: Frame): Promise<void> {
    return this.sendMany([frame]);
  }

  /** Sends frames in order; resolves once they were handed to the firmware. */
  sendMany(frames: readonly Frame[]): Promise<void> {
    if (this.closed) return Promise.reject(new BusError(`${this.name}: the bus is closed`));
    for (const f of frames) this.pending.push(f);
    if (!this.flushing) {
      this.flushing = new Promise<void>((resolve, reject) => {
        // Let every send of this tick join the batch, then pack them together.
        setImmediate(() => {
          const batch = this.pending;
          this.pending = [];
          this.flushing = undefined;
          this.server.receive(batch).then(() => {
            this.tx += batch.length;
            resolve();
          }, (e: unknown) => reject(new BusError(`${this.name}: cannot deliver frames: ${String(e)}`, undefined, { cause: e })));
        });
      });
    }
    return this.flushing;
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.queue[Symbol.asyncIterator]();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.end();
    if (this.queue.dropped) log.warn(`${this.name}: ${this.queue.dropped} transmitted frames were dropped: nobody read them`);
    await this.onClose();
  }
}
