/**
 * `virtual:NAME`: an in-process bus. Every bus opened with the same name shares one wire: a frame sent on one is
 * received by all the others (and by the sender itself with `receiveOwn`), timestamped at send time, in send order.
 * Used by tests and the replay benchmark where no kernel is involved (python-can's `virtual` interface, same idea).
 */
import type { Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusCounters, BusOptions, BusFilter } from "./bus";
import { acceptFrame } from "./filter";
import { RxQueue } from "./rx-queue";
import { wallClockSeconds } from "../replay/clock";

const wires = new Map<string, Set<VirtualBus>>();

export class VirtualBus implements Bus {
  private readonly queue = new RxQueue();
  private closed = false;
  private readonly filters: BusFilter[] | undefined;
  private readonly receiveOwn: boolean;
  /** Counters: frames sent and received on this endpoint, and frames dropped because its receiver fell behind. */
  tx = 0;
  rx = 0;

  constructor(
    readonly name: string,
    private readonly wire: string,
    options: BusOptions,
  ) {
    this.filters = options.filters;
    this.receiveOwn = options.receiveOwn ?? false;
    let peers = wires.get(wire);
    if (!peers) wires.set(wire, (peers = new Set()));
    peers.add(this);
  }

  async send(frame: Frame): Promise<void> {
    this.sendNow(frame);
  }

  async sendBatch(frames: readonly Frame[]): Promise<void> {
    for (const f of frames) this.sendNow(f);
  }

  /** Synchronous send: the replay scheduler's hot path calls this directly to avoid a promise per frame. */
  sendNow(frame: Frame): void {
    if (this.closed) throw new BusError(`${this.name} is closed`);
    this.tx++;
    const stamped: Frame = { ...frame, t: wallClockSeconds(), bus: this.wire };
    for (const peer of wires.get(this.wire) ?? []) {
      if (peer === this && !this.receiveOwn) continue;
      peer.deliver(stamped);
    }
  }

  private deliver(frame: Frame): void {
    if (!acceptFrame(this.filters, frame)) return;
    this.rx++;
    this.queue.push(frame);
  }

  counters(): BusCounters {
    return { rx: this.rx, tx: this.tx, queueDropped: this.queue.dropped };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const peers = wires.get(this.wire);
    peers?.delete(this);
    if (peers && peers.size === 0) wires.delete(this.wire);
    this.queue.end();
  }

  batches(): AsyncIterable<Frame[]> {
    return this.queue.batches();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.queue[Symbol.asyncIterator]();
  }
}

export async function openVirtualBus(spec: string, options: BusOptions): Promise<Bus> {
  const wire = spec.slice("virtual:".length);
  if (!wire) throw new BusError(`'${spec}' has no name`, "use virtual:NAME, e.g. virtual:test");
  return new VirtualBus(spec, wire, options);
}
