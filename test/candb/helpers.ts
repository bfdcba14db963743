/** Shared by the can-db suites: fixture paths, a seeded random source, and the python reference runner. */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";

/** Repository root, from dist/test/candb. */
export const ROOT = resolve(__dirname, "../../..");
export const DBC_DIR = resolve(ROOT, "test/fixtures/dbc");
export const PYTHON = "/usr/bin/python3";

export function dbcFixtures(): string[] {
  return readdirSync(DBC_DIR)
    .filter((f) => f.endsWith(".dbc"))
    .sort();
}

/** mulberry32: small, fast, seeded; tests must be reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs a python script with stdin, bounded in time; throws with its stderr when it fails. */
export function runPython(script: string, args: string[], input: string, timeoutMs = 60_000): string {
  const r = spawnSync(PYTHON, [resolve(ROOT, script), ...args], { input, maxBuffer: 1 << 28, timeout: timeoutMs });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${script} exited ${r.status ?? r.signal}: ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString();
}

export interface VgwRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin/vgw` (the compiled CLI) as a user does, bounded in time, with info-level diagnostics on stderr. */
export function runVgw(args: string[], input?: string, cwd = ROOT): VgwRun {
  const r = spawnSync(process.execPath, [resolve(ROOT, "bin/vgw"), ...args], {
    cwd,
    input,
    timeout: 30_000,
    env: { ...process.env, VGW_LOG: "info" },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
