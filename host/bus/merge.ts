/**
 * Several buses read as one: opening a list of specs all-or-nothing, their frames merged into one stream of bursts in
 * arrival order, and closing them when a signal fires. Used by dump, record, monitor and stats (`-i can0,can1`).
 */
import type { Frame } from "../../frame/frame";
import { openBus, type Bus, type BusOptions } from ".";
import { RxQueue } from "./rx-queue";

/** Opens every bus or none: when one fails, the ones already open are closed before the error propagates. */
export async function openBuses(specs: string[], options: BusOptions = {}): Promise<Bus[]> {
  const buses: Bus[] = [];
  try {
    for (const spec of specs) buses.push(await openBus(spec, options));
  } catch (e) {
    await Promise.all(buses.map((b) => b.close()));
    throw e;
  }
  return buses;
}

/** Frames of several buses as one stream of bursts, in arrival order; ends when every bus has ended. */
export interface MergedBuses {
  batches: AsyncIterable<Frame[]>;
  /** Frames dropped because the merged stream's reader fell behind (0 for a single bus: nothing in between). */
  dropped(): number;
}

/** A bus's bursts: its own `batches()` when it has one, else its frames one by one. */
export async function* busBatches(bus: Bus): AsyncGenerator<Frame[]> {
  if (bus.batches) {
    yield* bus.batches();
    return;
  }
  for await (const f of bus) yield [f];
}

export function mergeBuses(buses: Bus[]): MergedBuses {
  if (buses.length === 1) return { batches: busBatches(buses[0]), dropped: () => 0 };
  const queue = new RxQueue();
  let open = buses.length;
  for (const bus of buses) {
    void (async () => {
      try {
        for await (const batch of busBatches(bus)) for (const f of batch) queue.push(f);
      } finally {
        if (--open === 0) queue.end();
      }
    })();
  }
  return { batches: queue.batches(), dropped: () => queue.dropped };
}

/**
 * Closes the buses when the signal fires. Their receive streams then end after the frames already received, so a
 * `for await` over them finishes normally and nothing that arrived before Ctrl-C is lost. (Racing every read against
 * the signal instead cost a promise per frame on the receive hot path.)
 */
export function closeOnAbort(signal: AbortSignal, buses: Bus[]): void {
  const close = () => void Promise.all(buses.map((b) => b.close()));
  if (signal.aborted) close();
  else signal.addEventListener("abort", close, { once: true });
}
