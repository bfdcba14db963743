/**
 * Policy compiler benchmark (`node dist/bench/policy.js`): for large DBCs and selections of every, every 2nd and
 * every 3rd message, the time to minimise the accept filters exactly, the filters needed (and whether proven
 * minimal), and the time to widen to the firmware's 16 with the DBC messages that then get through. Beside it, in the
 * same run: vgw loading the DBC and compiling `uplink: ["*"]` with widening, and python3-canmatrix loading the same DBC, the
 * nearest reference figure (no reference tool compiles id/mask filters from a DBC).
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { loadDbcFile } from "../can-db/load";
import { compilePolicy } from "../can-db/policy";
import { MAX_FILTERS } from "../can-db/gateway-settings";
import { parsePolicy } from "../can-db/policy-file";
import { admitsAny, exactCover, widenFilters } from "../can-db/policy-filters";
import { frameKey } from "../can-db/frame-key";

const ROOT = resolve(__dirname, "../..");
const FILES = ["vw_mqb.dbc", "FORD_CADS_64.dbc", "ThinkCity.dbc", "gm_global_a_lowspeed_1818125.dbc", "vehicle.dbc"];

function bestOf<T>(n: number, f: () => T): { ms: number; value: T } {
  let best = Infinity;
  let value!: T;
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    value = f();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: best, value };
}

/** Seconds per path (best of 3), measured by the decode benchmark's canmatrix helper. */
function canmatrixLoadSeconds(paths: string[]): Record<string, number> {
  const r = spawnSync("/usr/bin/python3", [resolve(ROOT, "bench/canmatrix_bench.py"), "load", ...paths], { maxBuffer: 1 << 26, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`canmatrix_bench.py failed: ${r.stderr?.toString().slice(-1000)}`);
  return JSON.parse(r.stdout.toString()) as Record<string, number>;
}

/** What `vgw policy --allow-superset` does for `uplink: ["*"]`, in process (Node's start-up left out): load + compile. */
function loadAndCompileMs(dbc: string): number {
  const spec = parsePolicy('uplink: ["*"]', "all.yaml");
  return bestOf(3, () => compilePolicy(spec, loadDbcFile(dbc), { allowSuperset: true })).ms;
}

function main() {
  const paths = FILES.map((f) => resolve(ROOT, "test/fixtures/dbc", f));
  const reference = canmatrixLoadSeconds(paths);
  const rows: string[] = [];
  rows.push("| DBC | selection | IDs | exact filters | minimise ms | widen to 16 ms | DBC messages let through | vgw load + compile all (superset) ms | canmatrix DBC load ms |");
  rows.push("|---|---|---|---|---|---|---|---|---|");
  for (const path of paths) {
    const db = loadDbcFile(path);
    const keys = db.messages.filter((m) => !m.pseudo).map((m) => frameKey(m.id, m.ext));
    const whole = loadAndCompileMs(path);
    const refMs = reference[path] * 1000;
    for (const [name, step] of [["all", 1], ["every 2nd", 2], ["every 3rd", 3]] as const) {
      const sel = keys.filter((_, i) => i % step === 0);
      const exact = bestOf(3, () => exactCover(sel));
      const chosen = new Set(sel);
      const known = keys.filter((k) => !chosen.has(k));
      const wide = exact.value.filters.length > MAX_FILTERS ? bestOf(3, () => widenFilters(exact.value.filters, known, MAX_FILTERS)) : undefined;
      const through = wide ? known.filter((k) => admitsAny(wide.value, k)).length : 0;
      rows.push(
        `| ${path.split("/").pop()} | ${name} | ${sel.length} | ${exact.value.filters.length}${exact.value.proven ? "" : " (bound hit)"} | ${exact.ms.toFixed(1)} | ` +
          `${wide ? wide.ms.toFixed(1) : "-"} | ${wide ? `${through} of ${known.length}` : "-"} | ${step === 1 ? whole.toFixed(1) : ""} | ${step === 1 ? refMs.toFixed(0) : ""} |`,
      );
    }
  }
  process.stdout.write(rows.join("\n") + "\n");
}

main();
