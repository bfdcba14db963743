/**
 * A capture: the receive side that `vgw dump`, `stats`, `record` and `monitor` share. It opens every bus or none,
 * announces that it listens, stops the buses when asked or when a signal fires (their streams then end after the frames already
 * received, so nothing that arrived before Ctrl-C is lost), and on close adds up every drop the buses and the merge
 * counted into one `DropCounts`, printed the same way by every command (`dropsText`).
 */
import type { Frame } from "../../frame/frame";
import type { Bus, BusCounters, BusOptions, PackedListener } from "./bus";
import { busBatches, mergeBuses, openBuses, type MergedBuses } from "./merge";
import { log } from "../log";

/** Every received frame that did not reach the reader, by where it was lost. */
export interface DropCounts {
  /** By vgw: a receive queue (a bus's or the merge's) was full because its reader fell behind. */
  reader: number;
  /** By vgw: the writer thread of a recording fell behind (`vgw record` only). */
  writer?: number;
  /** By the kernel: a socket's receive buffer was full. */
  socket: number;
  /** By the interface (rx_dropped). */
  interface: number;
}

export interface CaptureOptions extends BusOptions {
  /** The command, for the line scripts wait for before they send: `dump: listening on vcan0`. */
  command: string;
  /** Frames the merged stream of several buses holds for a reader that fell behind (default: RxQueue's bound). */
  mergeLimit?: number;
}

export class Capture {
  private merged: MergedBuses | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly buses: Bus[],
    private readonly mergeLimit: number | undefined,
  ) {}

  static async open(specs: string[], options: CaptureOptions): Promise<Capture> {
    const { command, mergeLimit, ...busOptions } = options;
    const capture = new Capture(await openBuses(specs, busOptions), mergeLimit);
    // Scripts (and the SocketCAN tests) wait for this line before putting frames on the bus.
    log.debug(`${command}: listening on ${specs.join(",")}`);
    return capture;
  }

  /**
   * Stops the capture when `signal` fires (Ctrl-C, a timeout): the buses close and their streams end after the frames
   * already received. (Racing every read against the signal instead cost a promise per frame on the hot path.)
   */
  stopOn(signal: AbortSignal): void {
    if (signal.aborted) this.stop();
    else signal.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Every bus's frames as one stream of bursts, in arrival order (dump, stats, monitor). */
  batches(): AsyncIterable<Frame[]> {
    this.merged ??= mergeBuses(this.buses, this.mergeLimit);
    return this.merged.batches;
  }

  /**
   * Every bus's frames handed to `take` as they arrive, each bus on its own (no merge queue in between); a bus that
   * receives packed hands its chunks to `takePacked` instead (see Bus.listenPacked). Resolves when every bus ended.
   */
  async deliver(take: (f: Frame) => void, takePacked: PackedListener): Promise<void> {
    await Promise.all(
      this.buses.map(async (bus) => {
        bus.listenPacked?.(takePacked);
        for await (const batch of busBatches(bus)) for (const f of batch) take(f);
      }),
    );
  }

  /** Whether some bus receives packed on a thread of its own (native SocketCAN). */
  get receivesPacked(): boolean {
    return this.buses.some((b) => b.listenPacked !== undefined);
  }

  /** Stops receiving: the streams end after the frames already received. Idempotent. */
  stop(): void {
    this.closing ??= Promise.all(this.buses.map((b) => b.close())).then(() => undefined);
  }

  /** Stops (if not yet), waits for every bus to close, and returns what was dropped on the way. */
  async close(): Promise<DropCounts> {
    this.stop();
    await this.closing;
    return dropCounts(
      this.buses.map((b) => b.counters()),
      this.merged?.dropped() ?? 0,
    );
  }
}

/** The drops of several buses, plus what their merge dropped. */
export function dropCounts(counters: BusCounters[], mergeDropped = 0): DropCounts {
  const sum = (pick: (c: BusCounters) => number | undefined) => counters.reduce((n, c) => n + (pick(c) ?? 0), 0);
  return { reader: sum((c) => c.queueDropped) + mergeDropped, socket: sum((c) => c.socketDropped), interface: sum((c) => c.interfaceRxDropped) };
}

export function totalDropped(d: DropCounts): number {
  return d.reader + (d.writer ?? 0) + d.socket + d.interface;
}

/** The one drop summary: `dropped: 3 by vgw (reader behind), 0 by the kernel (socket buffer full), 0 by the interface (rx_dropped)`. */
export function dropsText(d: DropCounts): string {
  const vgw = d.writer === undefined ? `${d.reader} by vgw (reader behind)` : `${d.reader + d.writer} by vgw (reader behind: ${d.reader}, writer behind: ${d.writer})`;
  return `dropped: ${vgw}, ${d.socket} by the kernel (socket buffer full), ${d.interface} by the interface (rx_dropped)`;
}

/** What to do about the drops, when something can be done. */
export function dropsHint(d: DropCounts): string | undefined {
  return d.socket > 0 ? "the kernel dropped frames its socket buffer had no room for; a bigger one absorbs longer bursts: --rcvbuf 4M" : undefined;
}
