/**
 * Accept filters for the gateway: a set of frame keys -> as few `[value, mask]` pairs as the firmware's table holds.
 *
 * A frame key (frame-key.ts) is the firmware's matching key (docs/protocol.md, "Matching keys"): the ID for standard
 * frames, the ID plus bit 31 for extended ones. A filter admits a key when `(key & mask) == (value & mask)`. Every
 * filter made here has bit 31 in its mask, so it admits one kind of frame only; within a kind, a filter is a cube over
 * the ID bits.
 *
 * Exact covers come from two-level logic minimisation (Quine-McCluskey prime implicants, then a minimum set cover
 * by branch and bound). No npm package does this for integer keys with a 16-entry bound, so it is written here.
 * When the exact cover does not fit, `widenFilters` merges filters pairwise, each time choosing the merge that
 * admits the fewest extra IDs the database knows (the ones actually on the bus), then the smallest cube.
 */
import { VgwError } from "../frame/errors";
import { EXT_BIT, isExtKey } from "./frame-key";

const STD_WIDTH = 11;
const EXT_WIDTH = 29;

/** One accept filter, both numbers unsigned 32-bit. */
export interface KeyFilter {
  value: number;
  mask: number;
}

export function admits(f: KeyFilter, key: number): boolean {
  return ((key & f.mask) >>> 0) === ((f.value & f.mask) >>> 0);
}

/** Every key `inner` admits, `outer` admits too. */
export function contains(outer: KeyFilter, inner: KeyFilter): boolean {
  return ((outer.mask & ~inner.mask) >>> 0) === 0 && (((outer.value ^ inner.value) & outer.mask) >>> 0) === 0;
}

export function admitsAny(filters: readonly KeyFilter[], key: number): boolean {
  for (const f of filters) if (admits(f, key)) return true;
  return false;
}

/** The minimisation ran out of its work bound (a set too large or too dense for an exact answer). */
export class FilterSearchError extends VgwError {}

/** A cube over the ID bits of one kind: `mask` = the bits that must equal `value`. */
interface Cube {
  value: number;
  mask: number;
}

/** Prime implicants above this many means the key set is too dense to minimise exactly in reasonable time. */
const MAX_IMPLICANTS = 400_000;
/** Branch-and-bound nodes for the minimum cover; past it the best cover found so far is used. */
const MAX_COVER_NODES = 200_000;

function widthMask(width: number): number {
  return width === 32 ? 0xffffffff : 2 ** width - 1;
}

function bitCount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v; v &= v - 1) n++;
  return n;
}

/** Quine-McCluskey: every maximal cube containing only `ids` (ids within `width` bits). */
function primeImplicants(ids: readonly number[], width: number): Cube[] {
  const primes: Cube[] = [];
  let current: Cube[] = ids.map((v) => ({ value: v, mask: widthMask(width) }));
  let total = 0;
  while (current.length) {
    const present = new Set(current.map((c) => `${c.mask}:${c.value}`));
    const merged = new Set<string>();
    const next = new Map<string, Cube>();
    for (const c of current) {
      for (let b = 0; b < width; b++) {
        const bit = 2 ** b;
        if (!(c.mask & bit) || c.value & bit) continue;
        const partner = `${c.mask}:${c.value + bit}`;
        if (!present.has(partner)) continue;
        merged.add(`${c.mask}:${c.value}`);
        merged.add(partner);
        const mask = c.mask - bit;
        next.set(`${mask}:${c.value}`, { value: c.value, mask });
      }
    }
    for (const c of current) if (!merged.has(`${c.mask}:${c.value}`)) primes.push(c);
    total += next.size;
    if (total > MAX_IMPLICANTS) throw new FilterSearchError(`${ids.length} IDs are too many to minimise exactly (over ${MAX_IMPLICANTS} implicants)`);
    current = [...next.values()];
  }
  return primes;
}

/**
 * A smallest subset of `cubes` covering every id: essential cubes first, then branch and bound. `proven` is false when
 * the search ran out of nodes: the cover is then the best found, possibly not the smallest.
 */
function minimumCover(ids: readonly number[], cubes: readonly Cube[]): { cover: Cube[]; proven: boolean } {
  const covers: number[][] = cubes.map((c) => {
    const list: number[] = [];
    ids.forEach((id, i) => {
      if ((id & c.mask) === c.value) list.push(i);
    });
    return list;
  });
  const coveredBy: number[][] = ids.map(() => []);
  covers.forEach((list, ci) => list.forEach((i) => coveredBy[i].push(ci)));

  const chosen: number[] = [];
  const covered = new Uint8Array(ids.length);
  const take = (ci: number) => {
    chosen.push(ci);
    for (const i of covers[ci]) covered[i] = 1;
  };
  // essential cubes: the only cube for some id
  for (let i = 0; i < ids.length; i++) if (!covered[i] && coveredBy[i].length === 1) take(coveredBy[i][0]);

  const rest: number[] = [];
  for (let i = 0; i < ids.length; i++) if (!covered[i]) rest.push(i);
  if (!rest.length) return { cover: chosen.map((ci) => cubes[ci]), proven: true };

  // greedy first: an upper bound and the answer when the search runs out of nodes
  const greedy = greedyCover(rest, covers, coveredBy);
  let best = greedy;
  let nodes = 0;
  const maxCover = Math.max(...covers.map((l) => l.length));
  const counts = new Int32Array(ids.length); // how many chosen cubes cover id i (search state)
  const search = (uncovered: number, picked: number[]) => {
    if (++nodes > MAX_COVER_NODES) return;
    if (uncovered === 0) {
      if (picked.length < best.length) best = picked.slice();
      return;
    }
    if (picked.length + Math.ceil(uncovered / maxCover) >= best.length) return;
    // branch on the uncovered id with the fewest cubes
    let pivot = -1;
    for (const i of rest) {
      if (counts[i] === 0 && (pivot < 0 || coveredBy[i].length < coveredBy[pivot].length)) pivot = i;
    }
    const options = coveredBy[pivot].slice().sort((a, b) => gain(b) - gain(a));
    for (const ci of options) {
      let newly = 0;
      for (const i of covers[ci]) if (!covered[i] && counts[i]++ === 0) newly++;
      picked.push(ci);
      search(uncovered - newly, picked);
      picked.pop();
      for (const i of covers[ci]) if (!covered[i]) counts[i]--;
    }
  };
  const gain = (ci: number) => {
    let g = 0;
    for (const i of covers[ci]) if (!covered[i] && counts[i] === 0) g++;
    return g;
  };
  search(rest.length, []);
  return { cover: [...chosen, ...best].map((ci) => cubes[ci]), proven: nodes <= MAX_COVER_NODES };
}

function greedyCover(rest: readonly number[], covers: number[][], coveredBy: number[][]): number[] {
  const need = new Set(rest);
  const picked: number[] = [];
  while (need.size) {
    let bestCube = -1;
    let bestGain = 0;
    const seen = new Set<number>();
    for (const i of need) {
      for (const ci of coveredBy[i]) {
        if (seen.has(ci)) continue;
        seen.add(ci);
        let g = 0;
        for (const j of covers[ci]) if (need.has(j)) g++;
        if (g > bestGain) {
          bestGain = g;
          bestCube = ci;
        }
      }
    }
    picked.push(bestCube);
    for (const j of covers[bestCube]) need.delete(j);
  }
  return picked;
}

function toFilter(c: Cube, ext: boolean): KeyFilter {
  return ext ? { value: (c.value | EXT_BIT) >>> 0, mask: (c.mask | EXT_BIT) >>> 0 } : { value: c.value, mask: (c.mask | EXT_BIT) >>> 0 };
}

/** An exact cover and whether it is proven the smallest. */
export interface ExactCover {
  filters: KeyFilter[];
  proven: boolean;
}

/**
 * The fewest filters admitting exactly `keys` and no other key (exact over the whole 11- and 29-bit ID spaces).
 * Standard and extended keys are covered separately (no filter mixes kinds), which keeps each search small.
 */
export function exactCover(keys: readonly number[]): ExactCover {
  const unique = [...new Set(keys)].sort((a, b) => a - b);
  const std = unique.filter((k) => !isExtKey(k));
  const ext = unique.filter(isExtKey).map((k) => (k - EXT_BIT) >>> 0);
  const filters: KeyFilter[] = [];
  let proven = true;
  if (std.length) {
    const r = minimumCover(std, primeImplicants(std, STD_WIDTH));
    for (const c of r.cover) filters.push(toFilter(c, false));
    proven &&= r.proven;
  }
  if (ext.length) {
    const r = minimumCover(ext, primeImplicants(ext, EXT_WIDTH));
    for (const c of r.cover) filters.push(toFilter(c, true));
    proven &&= r.proven;
  }
  return { filters: filters.sort((a, b) => a.value - b.value || b.mask - a.mask), proven };
}

export function exactFilters(keys: readonly number[]): KeyFilter[] {
  return exactCover(keys).filters;
}

/** Keys of one kind a filter admits (2^free bits). */
export function filterSize(f: KeyFilter): number {
  const width = isExtKey(f.value) ? EXT_WIDTH : STD_WIDTH;
  return 2 ** (width - bitCount(f.mask & widthMask(width)));
}

function intersect(a: KeyFilter, b: KeyFilter): KeyFilter | undefined {
  const both = (a.mask & b.mask) >>> 0;
  if (((a.value ^ b.value) & both) >>> 0) return undefined;
  return { value: ((a.value & a.mask) | (b.value & b.mask)) >>> 0, mask: (a.mask | b.mask) >>> 0 };
}

/** How many distinct keys the filters admit together (inclusion-exclusion; empty intersections prune the walk). */
export function admittedCount(filters: readonly KeyFilter[]): number {
  let total = 0;
  const walk = (start: number, current: KeyFilter, depth: number) => {
    for (let i = start; i < filters.length; i++) {
      const x = intersect(current, filters[i]);
      if (!x) continue;
      total += depth % 2 === 0 ? filterSize(x) : -filterSize(x);
      walk(i + 1, x, depth + 1);
    }
  };
  filters.forEach((f, i) => {
    total += filterSize(f);
    walk(i + 1, f, 1);
  });
  return total;
}

/** Every key the filters admit, when there are at most `limit` of them (else undefined). */
export function admittedKeys(filters: readonly KeyFilter[], limit: number): number[] | undefined {
  if (admittedCount(filters) > limit) return undefined;
  const keys = new Set<number>();
  for (const f of filters) {
    const width = isExtKey(f.value) ? EXT_WIDTH : STD_WIDTH;
    const free: number[] = [];
    for (let b = 0; b < width; b++) if (!(f.mask & 2 ** b)) free.push(2 ** b);
    const base = (f.value & f.mask) >>> 0;
    for (let n = 0; n < 2 ** free.length; n++) {
      let k = base;
      free.forEach((bit, i) => {
        if (n & (1 << i)) k += bit;
      });
      keys.add(k >>> 0);
    }
  }
  return [...keys].sort((a, b) => a - b);
}

/** The smallest filter admitting everything both admit (same kind). */
function superFilter(a: KeyFilter, b: KeyFilter): KeyFilter {
  const mask = (a.mask & b.mask & ~(a.value ^ b.value)) >>> 0;
  return { value: (a.value & mask) >>> 0, mask };
}

/**
 * Merges filters until at most `max` remain. `known` are the keys the database defines but the policy did not select:
 * each merge admits as few of them as possible (ties: the smaller merged filter). The result admits every key the
 * input admitted, and more.
 */
export function widenFilters(filters: readonly KeyFilter[], known: readonly number[], max: number): KeyFilter[] {
  if (max < 1) throw new VgwError("the filter table holds no entry");
  let list = filters.slice();
  const knownStd = known.filter((k) => !isExtKey(k));
  const knownExt = known.filter(isExtKey);
  // extra known keys a merged filter admits beyond what its two parts already did
  const cost = (a: KeyFilter, b: KeyFilter): [number, number, KeyFilter] => {
    const s = superFilter(a, b);
    let extra = 0;
    for (const k of isExtKey(s.value) ? knownExt : knownStd) if (admits(s, k) && !admits(a, k) && !admits(b, k)) extra++;
    return [extra, filterSize(s), s];
  };
  while (list.length > max) {
    let best: [number, number, KeyFilter] | undefined;
    let pair: [number, number] = [0, 0];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (isExtKey(list[i].value) !== isExtKey(list[j].value)) continue;
        const c = cost(list[i], list[j]);
        if (!best || c[0] < best[0] || (c[0] === best[0] && c[1] < best[1])) {
          best = c;
          pair = [i, j];
        }
      }
    }
    if (!best) {
      // one standard and one extended filter left with max = 1: only a filter admitting both kinds would do
      throw new VgwError("standard and extended frames need at least one filter each");
    }
    const merged = best[2];
    // filters the merged one contains are no longer needed
    list = list.filter((f, i) => i !== pair[0] && i !== pair[1] && !(superFilter(f, merged).mask === merged.mask && admits(merged, f.value)));
    list.push(merged);
  }
  return list.sort((a, b) => a.value - b.value || b.mask - a.mask);
}
