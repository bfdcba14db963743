/**
 * Differential check against python-can 4.1: the compiled accept filters, given to python-can as `can_filters`
 * (`{can_id, can_mask, extended}`, its documented id/mask semantics, the same as SocketCAN's), pass exactly the frames
 * the policy selected, on real DBCs and on seeded random selections (widened ones included, where python-can must
 * pass exactly the selection plus the reported extras).
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadDbcFile } from "../../can-db/load";
import { compilePolicy, type CompiledPolicy } from "../../can-db/policy";
import { loadPolicyFile, parsePolicy } from "../../can-db/policy-file";
import { EXT_BIT } from "../../can-db/frame-key";
import { j1939Pgn, j1939Source, makeJ1939Id } from "../../can-db/j1939";
import type { Database } from "../../can-db/model";
import { PYTHON, ROOT, seededRandom } from "../candb/helpers";

const FIX = join(ROOT, "test/fixtures/policy");

interface Case {
  name: string;
  compiled: CompiledPolicy;
  /** [id, ext] */
  probes: Array<[number, boolean]>;
  /** indices of the probes that must pass */
  expected: number[];
}

/** The key is a frame of one of the uplinked PGN groups (J1939 arithmetic, independent of the compiled filters). */
function inGroup(c: CompiledPolicy, key: number): boolean {
  if (key < EXT_BIT) return false;
  const id = (key - EXT_BIT) >>> 0;
  return c.groups.some((g) => g.uplink && j1939Pgn(id) === g.pgn && (g.source === undefined || j1939Source(id) === g.source));
}

function makeCase(name: string, compiled: CompiledPolicy): Case {
  const want = new Set(compiled.rows.filter((r) => r.uplink).map((r) => r.key));
  for (const w of compiled.widenings.filter((x) => x.table === "canFilters")) {
    for (const r of w.extraMessages) want.add(r.key);
    for (const k of w.extraOtherKeys ?? []) want.add(k);
  }
  const othersListed = compiled.widenings.every((w) => w.table !== "canFilters" || w.extraOtherKeys !== undefined);
  const known = new Set(compiled.rows.filter((r) => r.message).map((r) => r.key));
  const keys = new Set<number>();
  for (const r of compiled.rows) {
    keys.add(r.key);
    keys.add(r.ext ? r.id & 0x7ff : (r.id | EXT_BIT) >>> 0); // the same number in the other kind
    for (let b = 0; b < (r.ext ? 29 : 11); b++) keys.add(r.ext ? ((r.id ^ (1 << b)) | EXT_BIT) >>> 0 : r.id ^ (1 << b));
  }
  // each PGN group: a frame of it at priority 6 from source 0x21 to 0x42, and that frame with each bit flipped
  for (const g of compiled.groups) {
    const id = makeJ1939Id(6, g.pgn, g.source ?? 0x21, 0x42);
    for (let b = -1; b < 29; b++) keys.add(((b < 0 ? id : id ^ (1 << b)) | EXT_BIT) >>> 0);
  }
  // with unlisted extras outside the DBC, only the DBC's own keys and the selection can be judged
  const probeKeys = [...keys].filter((k) => othersListed || known.has(k) || want.has(k) || inGroup(compiled, k)).sort((a, b) => a - b);
  const probes = probeKeys.map((k): [number, boolean] => (k >= EXT_BIT ? [(k - EXT_BIT) >>> 0, true] : [k, false]));
  return { name, compiled, probes, expected: probeKeys.flatMap((k, i) => (want.has(k) || inGroup(compiled, k) ? [i] : [])) };
}

/** A random selection of a DBC's messages by name, compiled with widening allowed. */
function randomCase(db: Database, seed: number): Case {
  const r = seededRandom(seed);
  const names = db.messages.filter((m) => !m.pseudo).map((m) => m.name);
  const count = 1 + Math.floor(r() * Math.min(40, names.length));
  const picked = new Set<string>();
  while (picked.size < count) picked.add(names[Math.floor(r() * names.length)]);
  const text = `uplink:\n${[...picked].map((n) => `  - ${JSON.stringify(n)}`).join("\n")}\n`;
  return makeCase(`${db.file?.split("/").pop()} seed ${seed} (${count} messages)`, compilePolicy(parsePolicy(text, `seed-${seed}.yaml`), db, { allowSuperset: true }));
}

describe("policy: compiled filters in python-can (can_filters on a virtual bus)", function () {
  this.timeout(60_000);

  it("python-can passes exactly the selected frames (plus reported extras), on real DBCs and random selections", () => {
    const abs = loadDbcFile(join(FIX, "abs.dbc"));
    const vehicle = loadDbcFile(join(FIX, "vehicle.dbc"));
    const example = loadPolicyFile(join(FIX, "abs.policy.yaml"));
    const cases: Case[] = [
      makeCase("abs example", compilePolicy(example, abs)),
      makeCase("abs widened to 2", compilePolicy(example, abs, { maxFilters: 2, allowSuperset: true })),
      makeCase("j1939 PGN groups", compilePolicy(loadPolicyFile(join(FIX, "j1939.policy.yaml")), loadDbcFile(join(FIX, "j1939.dbc")))),
      makeCase("vehicle ext", compilePolicy(parsePolicy('uplink: [ "RT_IRTemp_Temp_*" ]', "ext.yaml"), vehicle)),
    ];
    for (let seed = 1; seed <= 12; seed++) cases.push(randomCase(seed % 2 ? abs : vehicle, seed));
    const input = cases.map((c) => ({
      filters: c.compiled.settings.canFilters.map(([value, mask]) => {
        assert.ok(mask & EXT_BIT, "every compiled filter fixes the frame kind, so it maps onto python-can's 'extended'");
        return { can_id: value & 0x1fffffff, can_mask: mask & 0x1fffffff, extended: (value & EXT_BIT) !== 0 };
      }),
      probes: c.probes,
    }));
    const run = spawnSync(PYTHON, [join(ROOT, "test/policy/pycan_filters.py")], { input: JSON.stringify(input), encoding: "utf8", timeout: 45_000, maxBuffer: 1 << 26 });
    assert.equal(run.status, 0, run.stderr);
    const passed = JSON.parse(run.stdout) as number[][];
    assert.equal(passed.length, cases.length);
    cases.forEach((c, i) => {
      const name = (j: number) => `${c.probes[j][1] ? "ext " : ""}0x${c.probes[j][0].toString(16)}`;
      const extra = passed[i].filter((j) => !c.expected.includes(j)).map(name);
      const missing = c.expected.filter((j) => !passed[i].includes(j)).map(name);
      assert.deepEqual({ extra, missing }, { extra: [], missing: [] }, c.name);
      assert.ok(c.expected.length > 0, `${c.name}: nothing selected`);
    });
  });
});
