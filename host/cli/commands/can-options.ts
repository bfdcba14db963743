/**
 * What the CAN commands (dump, record, replay, send, monitor, stats) share: the `-i can0,can1` list, opening several
 * buses at once and reading them as one stream, `--filter` parsing, and ending cleanly on Ctrl-C / SIGTERM.
 */
import type { Frame } from "../../../can-db/frame";
import { UsageError } from "../../../can-db/errors";
import { openBus, type Bus, type BusOptions } from "../../bus";
import { parseFilters } from "../../bus/filter";
import { RxQueue } from "../../bus/rx-queue";

/** `can0,can1` -> ["can0", "can1"]; UsageError when empty. */
export function parseInterfaces(text: string | undefined): string[] {
  const names = (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new UsageError("no interface given: use -i can0 (several: -i can0,can1)");
  return names;
}

export function filtersOption(text: string | undefined): BusOptions["filters"] {
  return text ? parseFilters(text) : undefined;
}

/** `10M` -> 10485760; plain numbers are bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`bad size '${text}': use bytes or a suffix k, M, G (e.g. 10M)`);
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  const n = Math.floor(Number(m[1]) * scale);
  if (n <= 0) throw new UsageError(`size must be positive, got '${text}'`);
  return n;
}

/** The help text of `--rcvbuf` (dump, record, monitor, stats), candump's -r. */
export const RECEIVE_BUFFER_HELP = "kernel socket buffer to ask for (candump -r), e.g. 4M: absorbs longer bursts; capped by net.core.rmem_max unless root";

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
 * An AbortSignal that fires on SIGINT or SIGTERM (and after `seconds`, when given), so a command can stop reading and
 * print its summary. The handlers are removed by `dispose()`.
 */
export function interruptSignal(seconds?: number): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const timer = seconds !== undefined ? setTimeout(stop, seconds * 1000) : undefined;
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (timer) clearTimeout(timer);
    },
  };
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

export function positiveNumber(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got '${text}'`);
    return n;
  };
}

export function nonNegativeInteger(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number >= 0, got '${text}'`);
    return n;
  };
}
