/**
 * Several buses read as one: opening a list of specs all-or-nothing, and their frames merged into one stream of bursts
 * in arrival order (`-i can0,can1`). The receiving commands use them through capture.ts.
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

/** `limit`: frames the merged stream holds for a reader that fell behind; beyond it they are dropped and counted. */
export function mergeBuses(buses: Bus[], limit?: number): MergedBuses {
  if (buses.length === 1) return { batches: busBatches(buses[0]), dropped: () => 0 };
  const queue = new RxQueue(limit);
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
