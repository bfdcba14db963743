/**
 * Reduces a series to what a plot of a given width can show: per pixel column, the first, smallest, largest and last
 * sample (in time order). A line or step drawn through those points covers exactly the pixels the full series would,
 * because within one column only the vertical extent and the entry and exit values are visible; the extremes are the
 * samples themselves, not averages, so a one-sample spike survives. (Jugel et al., "M4: A Visualization-Oriented
 * Time Series Data Aggregation", VLDB 2014.) A million samples become at most four per column.
 */

export interface Reduced {
  t: Float64Array;
  v: Float64Array;
  /** Samples read (inside the columns' range, plus the neighbours kept at the edges). */
  input: number;
  /** The series had more samples than 4 per column and was reduced. */
  reduced: boolean;
}

/**
 * The samples of `t`/`v` in [start, end) reduced to at most four per column over [x0, x1] split into `columns`
 * columns. Samples are expected in time order (a trace's arrival order); a sample before x0 or after x1 is kept
 * only when it is the nearest one outside, so lines and steps enter and leave the plot at the right height.
 */
export function downsample(t: Float64Array, v: Float64Array, start: number, end: number, x0: number, x1: number, columns: number): Reduced {
  // The visible span, widened by the one neighbour on each side.
  let lo = start;
  while (lo < end && t[lo] < x0) lo++;
  if (lo > start) lo--;
  let hi = end;
  while (hi > lo && t[hi - 1] > x1) hi--;
  if (hi < end) hi++;
  const n = hi - lo;
  if (n <= 4 * columns) {
    return { t: t.slice(lo, hi), v: v.slice(lo, hi), input: n, reduced: false };
  }
  // Four per column, and the two outside neighbours.
  const outT = new Float64Array(4 * columns + 2);
  const outV = new Float64Array(4 * columns + 2);
  let k = 0;
  const scale = columns / (x1 - x0 || 1);
  const emit = (i: number) => {
    outT[k] = t[i];
    outV[k] = v[i];
    k++;
  };
  let i = lo;
  while (i < hi) {
    const col = Math.min(columns - 1, Math.max(0, Math.floor((t[i] - x0) * scale)));
    const first = i;
    let min = i;
    let max = i;
    let last = i;
    // Samples outside [x0, x1] (the kept neighbours) get a column of their own so they stay separate points.
    const outside = t[i] < x0 || t[i] > x1;
    i++;
    if (!outside) {
      while (i < hi && t[i] >= x0 && t[i] <= x1 && Math.min(columns - 1, Math.floor((t[i] - x0) * scale)) === col) {
        const y = v[i];
        if (y < v[min]) min = i;
        if (y > v[max]) max = i;
        last = i;
        i++;
      }
    }
    // The four in time order, each once.
    const a = min < max ? min : max;
    const b = min < max ? max : min;
    emit(first);
    if (a !== first) emit(a);
    if (b !== a && b !== first) emit(b);
    if (last !== b && last !== a && last !== first) emit(last);
  }
  return { t: outT.subarray(0, k), v: outV.subarray(0, k), input: n, reduced: true };
}
