/**
 * Plot benchmark (`node dist/bench/plot.js`): a generated candump log of 1M frames (two messages, four signals: a
 * square wave, its value-table state, a noisy engine speed and a temperature) plotted by `vgw plot` to HTML and to PNG,
 * whole processes timed by bench/timed.py (wall, and user + system CPU), best of RUNS; the phases inside one process
 * (read + decode, SVG with the reduction per pixel column, PNG rasterisation); and in the same run the reference,
 * bench/plot_matplotlib.py: python-can reads, canmatrix decodes, matplotlib draws the same panes to PNG and SVG
 * (cantools plot's own stack is matplotlib; Debian has no cantools package).
 *
 * Environment: VGW_BENCH_FRAMES (default 1000000), VGW_BENCH_RUNS (3), VGW_BENCH_REF_RUNS (1; 0 skips the
 * reference), VGW_BENCH_KEEP=1 keeps the files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { makeFrame, type Frame } from "../frame/frame";
import { openTraceReader, openTraceWriter } from "../host/trace";
import { parseDbc } from "../can-db/dbc-parser";
import { selectSignals } from "../host/plot/select";
import { SeriesExtractor } from "../host/plot/series";
import { traceFigure } from "../host/plot/figure";
import { renderSvg } from "../host/plot/render";
import { svgToPng } from "../host/plot/png";

const ROOT = path.resolve(__dirname, "../..");
const N = Number(process.env.VGW_BENCH_FRAMES ?? 1_000_000);
const RUNS = Number(process.env.VGW_BENCH_RUNS ?? 3);
const REF_RUNS = Number(process.env.VGW_BENCH_REF_RUNS ?? 1);

const DBC = `VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 256 Square: 8 ECU
 SG_ Level : 0|16@1+ (0.1,0) [0|6553.5] "V" Vector__XXX
 SG_ State : 16|8@1+ (1,0) [0|3] "" Vector__XXX

BO_ 512 Engine: 8 ECU
 SG_ Rpm : 0|16@1+ (0.25,0) [0|16383.75] "rpm" Vector__XXX
 SG_ CoolantTemp : 16|8@1+ (1,-40) [-40|215] "degC" Vector__XXX

VAL_ 256 State 0 "Off" 1 "On" 2 "Fault" ;
`;
const PATTERNS = ["Square.*", "Engine.*"];
const PANES = ["Square.Level,Square.State", "Engine.Rpm,Engine.CoolantTemp"];

function* frames(n: number): Generator<Frame[]> {
  let t = 1_700_000_000;
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  let batch: Frame[] = [];
  for (let i = 0; i < n; i++) {
    t += 0.0005;
    const data = new Uint8Array(8);
    let id: number;
    if (i % 2 === 0) {
      id = 0x100;
      const high = Math.floor(i / 20000) % 2 === 1;
      const level = high ? 500 : 100;
      data[0] = level & 0xff;
      data[1] = level >> 8;
      data[2] = high ? 1 : 0;
    } else {
      id = 0x200;
      const rpm = Math.round((2000 + 1000 * Math.sin(i / 5000) + rnd() * 100) * 4);
      data[0] = rpm & 0xff;
      data[1] = rpm >> 8;
      data[2] = 120 + Math.floor(i / 100000);
    }
    batch.push(makeFrame({ id, data, t, bus: "can0" }));
    if (batch.length === 4096) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

interface Timed {
  wall: number;
  cpu: number;
  status: number;
}

function timed(cmd: string[], out?: string): Timed {
  const args = [path.join(ROOT, "bench/timed.py"), ...(out ? ["-o", out] : []), ...cmd];
  const r = spawnSync("/usr/bin/python3", args, { encoding: "utf8", timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`timed.py failed: ${r.stderr}`);
  const t = JSON.parse(r.stdout.trim().split("\n").pop()!) as Timed;
  if (t.status !== 0) throw new Error(`${cmd.join(" ")} exited ${t.status}: ${r.stderr}`);
  return t;
}

function best(cmd: string[], runs: number, out?: string): Timed {
  let b: Timed | undefined;
  for (let i = 0; i < runs; i++) {
    const t = timed(cmd, out);
    if (!b || t.wall < b.wall) b = { ...t, cpu: Math.min(t.cpu, b?.cpu ?? Infinity) };
    else b.cpu = Math.min(b.cpu, t.cpu);
  }
  return b!;
}

const kb = (file: string) => `${(fs.statSync(file).size / 1024).toFixed(0)} KB`;
const s = (x: number) => `${x.toFixed(2)} s`;

async function phases(dbcFile: string, trace: string): Promise<void> {
  const db = parseDbc(DBC, dbcFile);
  const matches = selectSignals(db, PATTERNS);
  // The trace reader alone, for scale: what part of read + decode is reading.
  const r0 = performance.now();
  let read = 0;
  for await (const batch of openTraceReader(trace)) read += batch.length;
  const readSeconds = (performance.now() - r0) / 1000;
  const t0 = performance.now();
  const x = new SeriesExtractor(
    db,
    matches.flatMap((m) => m.signals),
  );
  for await (const batch of openTraceReader(trace)) x.add(batch);
  x.finish();
  const t1 = performance.now();
  const r = renderSvg(traceFigure(matches, x, "pattern", { source: trace }));
  const t2 = performance.now();
  const png = await svgToPng(r.svg);
  const t3 = performance.now();
  const samples = r.panes.flatMap((p) => p.traces).reduce((n, t) => n + t.samples, 0);
  const points = r.panes.flatMap((p) => p.traces).reduce((n, t) => n + t.points, 0);
  process.stdout.write(
    `vgw phases (one process): read alone ${s(readSeconds)} (${Math.round(read / readSeconds).toLocaleString("en-US")} frames/s); read + decode ${s((t1 - t0) / 1000)} (${Math.round(N / ((t1 - t0) / 1000)).toLocaleString("en-US")} frames/s); ` +
      `SVG ${((t2 - t1)).toFixed(0)} ms (${samples.toLocaleString("en-US")} samples -> ${points.toLocaleString("en-US")} points, ${(r.svg.length / 1024).toFixed(0)} KB); ` +
      `PNG ${(t3 - t2).toFixed(0)} ms (${(png.length / 1024).toFixed(0)} KB)\n`,
  );
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), "vgw-bench-plot-"));
  try {
    process.stdout.write(`load average at the start: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
    const dbc = path.join(dir, "bench.dbc");
    fs.writeFileSync(dbc, DBC);
    const trace = path.join(dir, "bench.log");
    const w = openTraceWriter(trace);
    for (const batch of frames(N)) await w.write(batch);
    await w.close();
    process.stdout.write(`trace: ${N.toLocaleString("en-US")} frames, ${kb(trace)}, signals ${PANES.join(" | ")}\n`);
    await phases(dbc, trace);

    const vgw = (out: string) => [process.execPath, path.join(ROOT, "bin/vgw"), "plot", "--dbc", dbc, trace, ...PATTERNS, "-o", out];
    const rows: Array<[string, Timed, string]> = [];
    for (const ext of ["html", "png"]) {
      const out = path.join(dir, `vgw.${ext}`);
      rows.push([`vgw plot -> .${ext}`, best(vgw(out), RUNS), kb(out)]);
    }
    if (REF_RUNS > 0) {
      for (const ext of ["png", "svg"]) {
        const out = path.join(dir, `ref.${ext}`);
        const phasesFile = path.join(dir, `ref-${ext}.json`);
        const t = best(["/usr/bin/python3", path.join(ROOT, "bench/plot_matplotlib.py"), dbc, trace, out, ...PANES], REF_RUNS, phasesFile);
        const p = JSON.parse(fs.readFileSync(phasesFile, "utf8")) as { read_decode: number; plot: number; points: number };
        rows.push([`python-can + canmatrix + matplotlib -> .${ext} (read+decode ${s(p.read_decode)}, plot ${s(p.plot)} for ${p.points.toLocaleString("en-US")} points)`, t, kb(out)]);
      }
    }
    process.stdout.write(`\n| what (${N.toLocaleString("en-US")} frames, whole process) | wall | CPU | output |\n|---|---|---|---|\n`);
    for (const [what, t, size] of rows) process.stdout.write(`| ${what} | ${s(t.wall)} | ${s(t.cpu)} | ${size} |\n`);
    const ref = rows.find(([w]) => w.includes("matplotlib") && w.includes(".png"));
    const mine = rows.find(([w]) => w === "vgw plot -> .png");
    if (ref && mine) process.stdout.write(`\nPNG: vgw ${(ref[1].wall / mine[1].wall).toFixed(1)}x faster by wall time, ${(ref[1].cpu / mine[1].cpu).toFixed(1)}x by CPU time\n`);
    process.stdout.write(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  } finally {
    if (process.env.VGW_BENCH_KEEP) process.stdout.write(`files kept in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
