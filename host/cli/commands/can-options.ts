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

/** Frames of several buses as one stream, in arrival order; ends when every bus has ended. */
export interface MergedBuses {
  frames: AsyncIterable<Frame>;
  /** Frames dropped because the merged stream's reader fell behind (0 for a single bus: nothing in between). */
  dropped(): number;
}

export function mergeBuses(buses: Bus[]): MergedBuses {
  if (buses.length === 1) return { frames: buses[0], dropped: () => 0 };
  const queue = new RxQueue();
  let open = buses.length;
  for (const bus of buses) {
    void (async () => {
      try {
        for await (const f of bus) queue.push(f);
      } finally {
        if (--open === 0) queue.end();
      }
    })();
  }
  return { frames: queue, dropped: () => queue.dropped };
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

/** Iterates frames until the signal fires; the pending read is abandoned (the caller closes the buses). */
export async function* untilAborted(frames: AsyncIterable<Frame>, signal: AbortSignal): AsyncGenerator<Frame> {
  const it = frames[Symbol.asyncIterator]();
  const aborted = new Promise<IteratorResult<Frame>>((resolve) => {
    if (signal.aborted) resolve({ value: undefined, done: true });
    signal.addEventListener("abort", () => resolve({ value: undefined, done: true }), { once: true });
  });
  for (;;) {
    const r = await Promise.race([it.next(), aborted]);
    if (r.done) return;
    yield r.value;
  }
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
