/**
 * Runs the reference tools (python-can via /usr/bin/python3, can-utils) for the differential trace tests and
 * compares frames field by field. A reference that is missing fails the test with the install command: these
 * tests never skip.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import type { Frame } from "../../frame/frame";
import { bytesToHex } from "../../frame/frame";

export const PYTHON = "/usr/bin/python3";
const SCRIPTS = path.resolve(__dirname, "../../../test/traces");

/** One message as python-can reports it (pycan_read.py): our fields, with python-can's channel. */
export type PyMsg = Omit<Comparable, "channel"> & { channel: string | number | null };

export interface PyResult {
  msgs: PyMsg[];
  /** python-can's exception, when it stopped early (`msgs` holds what it read before). */
  error?: string;
}

function run(cmd: string, args: string[], input?: string, encoding: BufferEncoding = "utf8"): string {
  const r = spawnSync(cmd, args, { input, encoding, timeout: 60000, maxBuffer: 256 << 20 });
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}); install: sudo apt-get install -y python3-can can-utils`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
  return r.stdout;
}

/** Reads every path with python-can in one process. */
export function pythonCanRead(paths: string[]): Map<string, PyResult> {
  const out = run(PYTHON, [path.join(SCRIPTS, "pycan_read.py"), ...paths]);
  const results = new Map<string, PyResult>();
  let current: PyResult | undefined;
  for (const line of out.split("\n")) {
    if (!line) continue;
    const o = JSON.parse(line);
    if (o.file !== undefined) {
      current = { msgs: [] };
      results.set(o.file, current);
    } else if (o.error !== undefined) (current as PyResult).error = o.error;
    else if (o.end === undefined) (current as PyResult).msgs.push(o as PyMsg);
  }
  for (const p of paths) assert.ok(results.has(p), `python-can printed nothing for ${p}`);
  return results;
}

/** Writes frames with python-can's writer for `file`'s extension. */
export function pythonCanWrite(file: string, frames: Frame[]): void {
  const input = frames.map((f) => JSON.stringify({ t: f.t, bus: f.bus, id: f.id, ext: f.ext, rtr: f.rtr, fd: f.fd, brs: f.brs, esi: f.esi, err: f.err, dlc: f.dlc, data: bytesToHex(f.data) })).join("\n") + "\n";
  run(PYTHON, [path.join(SCRIPTS, "pycan_write.py"), file], input);
}

export function canUtils(tool: "log2asc" | "asc2log", args: string[]): string {
  return run(tool, args, undefined, "latin1");
}

/** The fields the differential tests compare, in our terms. */
export interface Comparable {
  t: number;
  id: number;
  ext: boolean;
  rtr: boolean;
  fd: boolean;
  brs: boolean;
  esi: boolean;
  err: boolean;
  dlc: number;
  data: string;
  channel: string;
}
export type Field = keyof Comparable;
export const FIELDS: Field[] = ["t", "id", "ext", "rtr", "fd", "brs", "esi", "err", "dlc", "data", "channel"];

export function ours(f: Frame): Comparable {
  return {
    t: f.t ?? 0,
    id: f.id,
    ext: f.ext,
    rtr: f.rtr,
    fd: f.fd,
    brs: f.brs,
    esi: f.esi,
    err: f.err,
    dlc: f.rtr ? (f.dlc ?? 0) : f.data.length,
    data: bytesToHex(f.data),
    channel: f.bus ?? "",
  };
}
