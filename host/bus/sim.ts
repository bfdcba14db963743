/**
 * The `sim` bus: the CAN side of the gateway firmware running in the DeviceScript simulator.
 *
 *   send(frame)   the frame is "received from the bus" by the gateway: packed into CanBus `frames` reports
 *   iterate       frames the firmware transmitted (CanBus `transmit` commands, normal mode only)
 *
 * Opened from a spec (registered in ./index.ts), `sim[?broker=URL&device=ID&prefix=P]`, it starts the whole simulated gateway (build, devtools, VM,
 * deploy with those settings) and stops it on close(). Code that already runs a gateway (the demo, the tests, the HIL
 * harness) wraps its CanBusServer with `new SimBus(server)` instead.
 *
 * Sends are coalesced: every frame sent in the same tick goes out in as few 236-byte packets as possible, which is what
 * makes replaying at 100k frames/s possible over the devtools websocket.
 */
import type { Frame } from "../../can-db/frame";
import { BusError } from "../../can-db/errors";
import type { Bus, BusOptions } from "./bus";
import { RxQueue } from "./rx-queue";
import type { CanBusServer } from "../gateway/canbus-server";
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

  constructor(
    readonly server: CanBusServer,
    name = "sim",
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    this.name = name;
    server.onTransmit = (frames) => {
      const now = Date.now() / 1000;
      for (const f of frames) this.queue.push({ ...f, t: now, bus: this.name });
    };
  }

  /** Transmitted frames dropped because nobody read them in time. */
  get dropped(): number {
    return this.queue.dropped;
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
          this.server.receive(batch).then(resolve, (e: unknown) => reject(new BusError(`${this.name}: cannot deliver frames: ${String(e)}`, undefined, { cause: e })));
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
    if (this.dropped) log.warn(`${this.name}: ${this.dropped} transmitted frames were dropped: nobody read them`);
    await this.onClose();
  }
}

/** `sim[?broker=mqtt://host:port&device=gw1&prefix=vgw]`: starts a simulated gateway and attaches to its CAN side. */
export async function openSimBus(spec: string, options: BusOptions): Promise<Bus> {
  void options;
  const query = new URLSearchParams(spec.includes("?") ? spec.slice(spec.indexOf("?") + 1) : "");
  if (spec !== "sim" && !spec.startsWith("sim?")) throw new BusError(`'${spec}' is not a sim bus spec`, "use sim or sim?broker=mqtt://host:port&device=gw1");
  // Loaded here, not at the top: opening any other bus must not pull in jacdac-ts and the DeviceScript tooling.
  const { startSimulatedGateway } = await import("../gateway/gateway");
  const gw = await startSimulatedGateway({
    broker: query.get("broker") ?? undefined,
    device: query.get("device") ?? undefined,
    prefix: query.get("prefix") ?? undefined,
  });
  return new SimBus(gw.server, spec, () => gw.stop());
}
