/**
 * The options the commands share: the `-i can0,can1` list, `--filter`, sizes, numbers, and ending cleanly on
 * Ctrl-C / SIGTERM. (Opening and merging the buses themselves is host/bus/merge.ts.)
 */
import { UsageError } from "../frame/errors";
import type { BusOptions } from "../host/bus";
import { parseFilters } from "../host/bus/filter";

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

/**
 * An AbortSignal that fires on SIGINT or SIGTERM (and after `seconds`, or when `also` fires, when given), so a command can stop reading and
 * print its summary. The handlers are removed by `dispose()`.
 */
export function interruptSignal(seconds?: number, also?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  also?.addEventListener("abort", stop, { once: true });
  if (also?.aborted) stop();
  const timer = seconds !== undefined ? setTimeout(stop, seconds * 1000) : undefined;
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      also?.removeEventListener("abort", stop);
      if (timer) clearTimeout(timer);
    },
  };
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
