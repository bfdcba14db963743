/**
 * Lateness statistics in constant memory: a histogram of 1 us bins up to 100 ms (a one-hour trace at 2,000 frames/s is
 * 7.2 M samples; keeping them all would cost 58 MB), plus the exact maximum. Quantiles are exact to 1 us.
 */
const BIN_S = 1e-6;
const BINS = 100_000;

export class LatenessStats {
  private readonly bins = new Uint32Array(BINS + 1);
  count = 0;
  max = 0;
  /** Samples above `threshold` seconds (late frames). */
  late = 0;

  constructor(private readonly threshold = 0.001) {}

  add(seconds: number): void {
    const s = seconds > 0 ? seconds : 0;
    this.count++;
    if (s > this.max) this.max = s;
    if (s > this.threshold) this.late++;
    const bin = Math.floor(s / BIN_S);
    this.bins[bin < BINS ? bin : BINS]++;
  }

  /** The q-quantile (0..1) in seconds, to the bin's upper edge; 0 with no samples. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i <= BINS; i++) {
      seen += this.bins[i];
      if (seen >= rank) return i === BINS ? this.max : Math.min((i + 1) * BIN_S, this.max);
    }
    return this.max;
  }
}
