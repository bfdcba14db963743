/**
 * Percentiles by nearest rank, the one definition every latency and timing figure of vgw uses (the HIL checks and
 * report, the gateway sessions of the demo and the benchmarks): the smallest sample with at least p % of the samples
 * at or below it, so p100 is the maximum and every figure is a value that was actually measured.
 */

/** The p-th percentile (0..100) of samples sorted ascending; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
