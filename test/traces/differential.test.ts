/**
 * Differential tests against python-can 4.1 (Debian's python3-can): every trace fixture read by both; every file our
 * writers produce read by python-can; every file python-can's writers produce read by us. Disagreements are allowed
 * only where known-differences.ts lists them, and every listed one must still happen.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import type { Frame } from "../../frame/frame";
import { findFormat, openTraceReader, openTraceWriter } from "../../host/trace";
import { KNOWN, RULES, type KnownDifference } from "./known-differences";
import { FIELDS, ours, pythonCanRead, pythonCanWrite, type Comparable, type PyMsg, type PyResult } from "./reference";
import { FIXTURES, fixture, sampleFrames, tmpDir } from "./helpers";

const TIME_TOLERANCE = 1e-6;
const used = new Set<KnownDifference>();

function theirs(m: PyMsg, format: string): Comparable {
  return {
    t: m.t,
    id: m.id,
    ext: m.ext,
    rtr: m.rtr,
    fd: m.fd,
    brs: m.brs,
    esi: m.esi,
    err: m.err,
    dlc: m.rtr ? m.dlc : m.data.length / 2,
    data: m.data,
    channel: RULES.channel(format, m.channel),
  };
}

async function readOurs(file: string): Promise<{ frames: Frame[]; skipped: number }> {
  const frames: Frame[] = [];
  const reader = openTraceReader(file, { onError: () => undefined });
  for await (const batch of reader) frames.push(...batch);
  return { frames, skipped: reader.skipped };
}

function formatOf(file: string): string {
  const f = findFormat(file);
  assert.ok(f, `no format for ${file}`);
  return f.name === "candump" ? "log" : f.name;
}

/** Compares our reading of a file with python-can's, honouring (and recording the use of) the known differences. */
function compare(key: string, format: string, mine: Frame[], skipped: number, py: PyResult): void {
  const known = KNOWN.filter((k) => k.file === key);
  let a = mine.map(ours);
  const b = py.msgs.map((m) => theirs(m, format));
  const fails = known.find((k) => k.kind === "python-can fails");
  if (fails) {
    assert.ok(py.error && fails.error?.test(py.error), `${key}: python-can was expected to fail with ${fails.error}, got ${py.error ?? "no error"}`);
    used.add(fails);
    assert.ok(a.length > b.length, `${key}: we should read more than python-can before its failure`);
    a = a.slice(0, b.length);
  } else assert.equal(py.error, undefined, `${key}: python-can failed: ${py.error}`);
  const rejects = known.find((k) => k.kind === "we reject");
  if (rejects) {
    assert.equal(skipped, rejects.count, `${key}: expected ${rejects.count} rejected records, got ${skipped}`);
    assert.equal(b.length - a.length, rejects.count, `${key}: python-can should return the ${rejects.count} records we reject`);
    used.add(rejects);
    return;
  }
  assert.equal(skipped, 0, `${key}: we skipped ${skipped} records that python-can reads`);
  const skips = known.find((k) => k.kind === "python-can skips");
  if (skips?.skips) {
    const before = a.length;
    a = a.filter((f) => !(skips.skips as (f: Comparable) => boolean)(f));
    assert.ok(a.length < before, `${key}: expected python-can to skip some frames`);
    used.add(skips);
  }
  assert.equal(a.length, b.length, `${key}: ${a.length} frames (vgw) vs ${b.length} (python-can)`);
  const relative = RULES.relativeTime(format);
  const mismatches: string[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    const fields = x.err && y.err ? RULES.errorFrameFields : FIELDS;
    for (const field of fields) {
      let same: boolean;
      if (field === "t") {
        const tx = relative ? x.t - a[0].t : x.t;
        const ty = relative ? y.t - b[0].t : y.t;
        same = Math.abs(tx - ty) <= TIME_TOLERANCE;
      } else same = x[field] === y[field];
      if (same) continue;
      const k = known.find((d) => d.kind === "field" && d.field === field && (!d.frames || d.frames.includes(i)));
      if (k) used.add(k);
      else mismatches.push(`frame ${i} ${field}: vgw ${JSON.stringify(x[field])}, python-can ${JSON.stringify(y[field])}`);
    }
  }
  assert.deepEqual(mismatches, [], `${key}: unlisted differences:\n${mismatches.slice(0, 20).join("\n")}`);
}

describe("trace formats vs python-can (differential)", function () {
  this.timeout(90000);
  const TRACE = /\.(log|asc|blf|trc)(\.gz)?$/;
  const names = fs.readdirSync(FIXTURES).filter((n) => TRACE.test(n));
  let dir: string;
  let py: Map<string, PyResult>;

  before(() => {
    dir = tmpDir();
    py = pythonCanRead(names.map(fixture));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("covers every format among the fixtures", () => {
    for (const ext of [".log", ".asc", ".asc.gz", ".blf", ".trc"]) assert.ok(names.some((n) => n.endsWith(ext)), ext);
  });

  for (const name of names) {
    it(`reads ${name} as python-can does`, async () => {
      const { frames, skipped } = await readOurs(fixture(name));
      compare(name, formatOf(name), frames, skipped, py.get(fixture(name)) as PyResult);
    });
  }

  it("python-can reads what our writers write (.log, .log.gz, .asc, .blf, .blf.gz, .trc)", async () => {
    const frames = sampleFrames({ otherErrorClasses: true });
    const files: string[] = [];
    for (const ext of ["log", "log.gz", "asc", "blf", "blf.gz", "trc"]) {
      const file = path.join(dir, `written.${ext}`);
      const w = openTraceWriter(file);
      // Frames a format cannot hold are not handed to it: that is the round-trip test's business.
      await w.write(ext === "log" || ext === "log.gz" ? frames : frames.filter((f) => !(f.err && f.id !== 0x80)));
      await w.close();
      files.push(file);
    }
    const results = pythonCanRead(files);
    for (const file of files) {
      const { frames: mine, skipped } = await readOurs(file);
      compare(path.basename(file).replace(/\.gz$/, ""), formatOf(file), mine, skipped, results.get(file) as PyResult);
    }
  });

  it("we read what python-can's writers write (.log, .asc, .blf, .trc)", async () => {
    // Every kind of frame, except for TRC: python-can 4.1's TRC writer refuses CAN FD, remote and error frames
    // ("Logging CAN FD is not implemented"), so it gets the classic data frames.
    const frames = sampleFrames();
    const files: string[] = [];
    for (const ext of ["log", "asc", "blf", "trc"]) {
      const file = path.join(dir, `pywritten.${ext}`);
      pythonCanWrite(file, ext === "trc" ? frames.filter((f) => !f.fd && !f.rtr && !f.err) : frames);
      files.push(file);
    }
    const results = pythonCanRead(files);
    for (const file of files) {
      const { frames: mine, skipped } = await readOurs(file);
      assert.ok(mine.length > 10, `${file}: read ${mine.length} frames`);
      compare(path.basename(file), formatOf(file), mine, skipped, results.get(file) as PyResult);
    }
  });

  it("every listed difference still happens (none is stale)", () => {
    const stale = KNOWN.filter((k) => !used.has(k)).map((k) => `${k.file} ${k.kind} ${k.field ?? ""}: ${k.reason}`);
    assert.deepEqual(stale, []);
  });
});
