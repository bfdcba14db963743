/**
 * Accept-filter minimisation (can-db/policy-filters.ts), checked by brute force: for random key sets the exact
 * filters admit every selected key and nothing else over the whole standard ID space and a window of the extended
 * one; widened filters admit a superset, fit the table, and their reported count is what brute force counts.
 */
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { admits, admitsAny, admittedCount, admittedKeys, contains, exactFilters, widenFilters, type KeyFilter } from "../../can-db/policy-filters";
import { EXT_BIT, frameKey } from "../../can-db/frame-key";

const ALL_STD = Array.from({ length: 0x800 }, (_, i) => i);
/** Extended IDs are tested in a window (2^12 IDs) plus its far neighbours: brute force over 2^29 is too slow. */
const EXT_BASE = 0x18fef000;
const EXT_WINDOW = Array.from({ length: 0x1000 }, (_, i) => frameKey(EXT_BASE + i, true));
const EXT_FAR = [0, 0x7ff, EXT_BASE - 1, EXT_BASE + 0x1000, 0x1fffffff, EXT_BASE ^ 0x10000000].map((id) => frameKey(id, true));

/** Keys admitted among those a frame can carry in the tested space. */
function bruteForce(filters: readonly KeyFilter[]): Set<number> {
  const out = new Set<number>();
  for (const k of [...ALL_STD, ...EXT_WINDOW, ...EXT_FAR]) if (admitsAny(filters, k)) out.add(k);
  return out;
}

const stdKey = fc.integer({ min: 0, max: 0x7ff });
const extKey = fc.integer({ min: 0, max: 0xfff }).map((o) => frameKey(EXT_BASE + o, true));
/** Clustered sets (neighbouring IDs, as DBCs have) as well as scattered ones. */
const keySet = fc.oneof(
  fc.uniqueArray(stdKey, { minLength: 1, maxLength: 60 }),
  fc.uniqueArray(fc.oneof(stdKey, extKey), { minLength: 1, maxLength: 60 }),
  fc.tuple(stdKey, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3 })).map(([start, n, step]) => {
    const out: number[] = [];
    for (let i = 0; i < n && start + i * step <= 0x7ff; i++) out.push(start + i * step);
    return out;
  }),
);

describe("policy: accept filter minimisation", () => {
  it("an exact ID is one filter with the kind bit in its mask", () => {
    assert.deepEqual(exactFilters([0x123]), [{ value: 0x123, mask: 0x800007ff }]);
    assert.deepEqual(exactFilters([frameKey(0x123, true)]), [{ value: 0x80000123, mask: 0x9fffffff }]);
    // the standard filter does not admit the extended frame with the same number, nor the reverse
    assert.equal(admits(exactFilters([0x123])[0], frameKey(0x123, true)), false);
    assert.equal(admits(exactFilters([frameKey(0x123, true)])[0], 0x123), false);
  });

  it("an aligned block is one filter; a block plus a stray is two", () => {
    assert.deepEqual(exactFilters([0x100, 0x101, 0x102, 0x103]), [{ value: 0x100, mask: 0x800007fc }]);
    assert.equal(exactFilters([0x100, 0x101, 0x102, 0x103, 0x200]).length, 2);
    // 0x101..0x104 is not aligned: {0x101}, {0x102,0x103}, {0x104} or equivalent, never a superset
    const f = exactFilters([0x101, 0x102, 0x103, 0x104]);
    assert.equal(f.length, 3);
    assert.deepEqual([...bruteForce(f)].sort((a, b) => a - b), [0x101, 0x102, 0x103, 0x104]);
  });

  it("all 2048 standard IDs are one filter that admits no extended frame", () => {
    const f = exactFilters(ALL_STD);
    assert.deepEqual(f, [{ value: 0, mask: EXT_BIT }]);
    assert.equal(admittedCount(f), 2048);
  });

  it("property: exact filters admit exactly the selected keys (brute force) and are no more than the keys", () => {
    fc.assert(
      fc.property(keySet, (keys) => {
        const f = exactFilters(keys);
        const admitted = bruteForce(f);
        assert.deepEqual([...admitted].sort((a, b) => a - b), [...new Set(keys)].sort((a, b) => a - b));
        assert.equal(admittedCount(f), new Set(keys).size, "exact over the whole ID space, not only the tested one");
        assert.ok(f.length <= new Set(keys).size);
        for (const x of f) assert.ok(x.mask & EXT_BIT, "every filter fixes the frame kind");
      }),
      { numRuns: 150, seed: 20261122 },
    );
  });

  it("property: the cover is minimal for small sets (checked against every smaller combination of primes)", () => {
    // exhaustive check: no set of fewer cubes (any value/mask over 4 bits) covers exactly the keys
    const cubes: KeyFilter[] = [];
    for (let mask = 0; mask < 16; mask++) for (let value = 0; value < 16; value++) if ((value & ~mask) === 0) cubes.push({ value, mask: (mask | 0x7f0 | EXT_BIT) >>> 0 });
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 16 }), (keys) => {
        const want = new Set(keys);
        const inside = cubes.filter((c) => bruteForceSmall(c).every((k) => want.has(k)));
        const n = exactFilters(keys).length;
        // is there a cover with n - 1 cubes? search all combinations of cubes inside the set
        const coverable = (k: number, start: number, covered: Set<number>): boolean => {
          if (covered.size === want.size) return true;
          if (k === 0) return false;
          for (let i = start; i < inside.length; i++) {
            const next = new Set([...covered, ...bruteForceSmall(inside[i])]);
            if (next.size > covered.size && coverable(k - 1, i + 1, next)) return true;
          }
          return false;
        };
        assert.equal(coverable(n - 1, 0, new Set()), false, `a cover with ${n - 1} filters exists for ${keys}`);
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it("property: widened filters fit, admit every selected key, and admittedCount/admittedKeys agree with brute force", () => {
    fc.assert(
      fc.property(keySet, fc.integer({ min: 1, max: 6 }), fc.uniqueArray(fc.oneof(stdKey, extKey), { maxLength: 40 }), (keys, max, others) => {
        const chosen = new Set(keys);
        const known = others.filter((k) => !chosen.has(k));
        const exact = exactFilters(keys);
        const kinds = new Set(keys.map((k) => k >= EXT_BIT)).size;
        if (max < kinds) return; // one filter per kind at least
        const f = widenFilters(exact, known, max);
        assert.ok(f.length <= Math.max(max, 0));
        const admitted = bruteForce(f);
        for (const k of chosen) assert.ok(admitted.has(k), `selected ${k.toString(16)} lost`);
        if (exact.length <= max) assert.deepEqual(f, exact, "nothing to widen");
        // every exact filter lies inside one widened filter
        for (const e of exact) assert.ok(f.some((w) => contains(w, e)), "an exact filter is not inside any widened one");
        const listed = admittedKeys(f, 1 << 13);
        if (listed) {
          assert.equal(listed.length, admittedCount(f));
          for (const k of listed) assert.ok(admitsAny(f, k));
          // every admitted key in the brute-forced space is listed
          for (const k of admitted) assert.ok(listed.includes(k));
        }
      }),
      { numRuns: 100, seed: 99 },
    );
  });

  it("contains: filter inside filter, checked against brute force over 4 bits", () => {
    for (let m1 = 0; m1 < 16; m1++)
      for (let v1 = 0; v1 < 16; v1++)
        for (let m2 = 0; m2 < 16; m2++)
          for (let v2 = 0; v2 < 16; v2++) {
            const a = { value: v1 & m1, mask: (m1 | 0x7f0 | EXT_BIT) >>> 0 };
            const b = { value: v2 & m2, mask: (m2 | 0x7f0 | EXT_BIT) >>> 0 };
            const brute = bruteForceSmall(b).every((k) => admits(a, k));
            assert.equal(contains(a, b), brute, `${JSON.stringify(a)} contains ${JSON.stringify(b)}`);
          }
  });

  it("widening prefers filters that admit no other message of the database", () => {
    // 0x100 and 0x103 merge into 0x100/0x7FC (admits 0x101, 0x102); 0x100 and 0x110 into 0x100/0x7EF (admits none of known)
    const known = [0x101, 0x102];
    const f = widenFilters(exactFilters([0x100, 0x103, 0x110]), known, 2);
    assert.equal(f.length, 2);
    for (const k of known) assert.equal(admitsAny(f, k), false, `known ID ${k.toString(16)} admitted`);
  });
});

function bruteForceSmall(c: KeyFilter): number[] {
  const out: number[] = [];
  for (let k = 0; k < 16; k++) if (admits(c, k)) out.push(k);
  return out;
}
