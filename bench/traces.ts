/**
 * Trace benchmark (`node dist/bench/traces.js`): a generated trace of 1M frames (a vehicle-like mix: mostly 11-bit
 * classic frames, some 29-bit, some CAN FD) written by vgw as .log, .asc and .blf; each file read in full by vgw and by
 * python-can 4.1 in the same run, alternating, best of RUNS for both after one warm-up; then end to end, whole processes:
 * `vgw convert bench.X out.X` beside python-can's LogReader + Logger (bench/pycan_convert.py) on the same file, alternating,
 * best of CONVERT_RUNS, wall and CPU time (bench/timed.py); then the peak RSS of `vgw convert` on a large candump log
 * (default 1 GB) to BLF. Prints frames/s, ratios and the goals (read: .log >= 10x, .asc/.blf >= 5x; convert: >= 10x).
 *
 * Then every format vgw writes, python-can or not (.mf4 has no reference reader here): write and read frames/s, wall
 * and CPU, and bytes per frame on disk.
 *
 * Environment: VGW_BENCH_FRAMES (default 1000000), VGW_BENCH_RUNS (5), VGW_BENCH_CONVERT_RUNS (3), VGW_BENCH_BIG_MB
 * (1024; 0 skips the RSS part), VGW_BENCH_ONLY=convert (only the end-to-end part), VGW_BENCH_ONLY=formats (only the
 * per-format write/read figures), VGW_BENCH_KEEP=1 keeps the files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { makeFrame, type Frame } from "../frame/frame";
import { openTraceReader, openTraceWriter } from "../host/trace";

const ROOT = path.resolve(__dirname, "../..");
const N = Number(process.env.VGW_BENCH_FRAMES ?? 1_000_000);
const RUNS = Number(process.env.VGW_BENCH_RUNS ?? 5);
const BIG_MB = Number(process.env.VGW_BENCH_BIG_MB ?? 1024);
const CONVERT_RUNS = Number(process.env.VGW_BENCH_CONVERT_RUNS ?? 3);
const ONLY_CONVERT = process.env.VGW_BENCH_ONLY === "convert";
const ONLY_FORMATS = process.env.VGW_BENCH_ONLY === "formats";
const GOALS: Record<string, number> = { log: 10, asc: 5, blf: 5 };
const CONVERT_GOAL = 10;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* vehicleFrames(n: number): Generator<Frame[]> {
  const rnd = seeded(1);
  const ids = Array.from({ length: 120 }, () => Math.floor(rnd() * 0x800));
  let t = 1700000000;
  let batch: Frame[] = [];
  for (let i = 0; i < n; i++) {
    t += Math.round(rnd() * 400 + 20) / 1e6;
    const r = rnd();
    const bus = rnd() < 0.8 ? "1" : "2";
    const bytes = (len: number) => Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
    let f: Frame;
    if (r < 0.75) f = makeFrame({ id: ids[Math.floor(rnd() * ids.length)], data: bytes(8), t, bus });
    else if (r < 0.85) f = makeFrame({ id: ids[Math.floor(rnd() * ids.length)], data: bytes(Math.floor(rnd() * 9)), t, bus });
    else if (r < 0.95) f = makeFrame({ id: Math.floor(rnd() * 0x20000000), ext: true, data: bytes(8), t, bus });
    else f = makeFrame({ id: ids[Math.floor(rnd() * ids.length)], fd: true, brs: true, data: bytes([12, 16, 32, 64][Math.floor(rnd() * 4)]), t, bus });
    batch.push(f);
    if (batch.length === 4096) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

async function writeTrace(file: string, n: number): Promise<void> {
  const w = openTraceWriter(file);
  for (const batch of vehicleFrames(n)) await w.write(batch);
  await w.close();
}

/** Reads the whole file with vgw; returns frames and seconds. Touches every frame's data, as a consumer would. */
async function readOnce(file: string): Promise<{ frames: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  let frames = 0;
  let check = 0;
  for await (const batch of openTraceReader(file)) {
    frames += batch.length;
    for (let i = 0; i < batch.length; i++) check += batch[i].data.length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (check < 0) throw new Error("unreachable");
  return { frames, seconds };
}

/**
 * Write and read figures of vgw alone, per format (including those python-can 4.1 cannot read, such as .mf4): best
 * of RUNS, wall and process CPU (user + system: less disturbed by other jobs on a shared machine), bytes per frame.
 */
async function formatFigures(dir: string): Promise<void> {
  const formats = ["log", "asc", "blf", "trc", "mf4"];
  process.stdout.write(`\nvgw alone, per format: write and read of ${fmt(N)} frames, best of ${RUNS}\n`);
  const rows = [["format", "bytes/frame", "write frames/s", "write CPU s", "read frames/s", "read CPU s"]];
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  for (const format of formats) {
    const file = path.join(dir, `fig.${format}`);
    const best = { write: Infinity, writeCpu: Infinity, read: Infinity, readCpu: Infinity };
    for (let r = 0; r < RUNS; r++) {
      let t0 = process.hrtime.bigint();
      let c0 = cpuNow();
      await writeTrace(file, N);
      best.write = Math.min(best.write, Number(process.hrtime.bigint() - t0) / 1e9);
      best.writeCpu = Math.min(best.writeCpu, cpuNow() - c0);
      t0 = process.hrtime.bigint();
      c0 = cpuNow();
      const m = await readOnce(file);
      if (m.frames !== N) throw new Error(`${file}: read ${m.frames} of ${N} frames`);
      best.read = Math.min(best.read, m.seconds);
      best.readCpu = Math.min(best.readCpu, cpuNow() - c0);
    }
    rows.push([
      `.${format}`,
      (fs.statSync(file).size / N).toFixed(1),
      fmt(N / best.write),
      best.writeCpu.toFixed(2),
      fmt(N / best.read),
      best.readCpu.toFixed(2),
    ]);
    fs.rmSync(file);
  }
  printTable(rows);
  process.stdout.write(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
}

function pythonCan(files: string[]): Map<string, { frames: number; fps: number }> {
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "bench/pycan_traces.py"), "1", ...files], {
    encoding: "utf8",
    timeout: 1_800_000,
  });
  if (r.status !== 0) throw new Error(`pycan_traces.py failed (install python3-can): ${r.stderr ?? r.error}`);
  const out = new Map<string, { frames: number; fps: number }>();
  for (const line of r.stdout.trim().split("\n")) {
    const o = JSON.parse(line) as { file: string; frames: number; fps: number };
    out.set(o.file, o);
  }
  return out;
}

interface Timed {
  wall: number;
  cpu: number;
}

/** A whole process, timed by bench/timed.py (wall, and user + system CPU from the kernel). */
function timed(cmd: string[]): Timed {
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "bench/timed.py"), ...cmd], { encoding: "utf8", timeout: 1_800_000 });
  const o = r.status === 0 ? (JSON.parse(r.stdout) as Timed & { status: number }) : undefined;
  if (!o || o.status !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return o;
}

/**
 * End to end: `vgw convert` and python-can's LogReader + Logger, each a fresh process converting the same file to its
 * own format, alternating so both meet the same load; best wall and best CPU time of each side.
 */
function convertEndToEnd(dir: string, formats: string[], files: string[]): void {
  const vgw = path.join(ROOT, "bin/vgw");
  const py = path.join(ROOT, "bench/pycan_convert.py");
  process.stdout.write(`\nend to end, whole process: vgw convert IN OUT beside python-can LogReader + Logger, same format in and out, best of ${CONVERT_RUNS}\n`);
  const rows = [["format", "vgw wall s", "python-can wall s", "ratio wall", "vgw CPU s", "python-can CPU s", "ratio CPU", "goal"]];
  for (const [i, file] of files.entries()) {
    const out = path.join(dir, `converted.${formats[i]}`);
    const best = { vgw: { wall: Infinity, cpu: Infinity }, py: { wall: Infinity, cpu: Infinity } };
    for (let r = 0; r < CONVERT_RUNS; r++) {
      for (const [side, cmd] of [["vgw", [process.execPath, vgw, "convert", file, out]], ["py", ["/usr/bin/python3", py, file, out]]] as const) {
        const t = timed([...cmd]);
        best[side].wall = Math.min(best[side].wall, t.wall);
        best[side].cpu = Math.min(best[side].cpu, t.cpu);
      }
    }
    const wall = best.py.wall / best.vgw.wall;
    const cpu = best.py.cpu / best.vgw.cpu;
    rows.push([
      `.${formats[i]}`,
      best.vgw.wall.toFixed(2),
      best.py.wall.toFixed(2),
      `${wall.toFixed(1)}x`,
      best.vgw.cpu.toFixed(2),
      best.py.cpu.toFixed(2),
      `${cpu.toFixed(1)}x`,
      `>= ${CONVERT_GOAL}x ${wall >= CONVERT_GOAL ? "met" : "NOT met"}`,
    ]);
  }
  printTable(rows);
  process.stdout.write(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) process.stdout.write(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ") + "\n");
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Writes about `mb` MB of candump text without building frames (the generator must not be the bottleneck). */
function generateBigLog(file: string, mb: number): number {
  const fd = fs.openSync(file, "w");
  const hex = "0123456789ABCDEF";
  const target = mb * 1024 * 1024;
  let written = 0;
  let n = 0;
  let t = 1700000000;
  while (written < target) {
    const lines: string[] = [];
    for (let k = 0; k < 20000; k++, n++) {
      t += 0.000137;
      const id = (n * 2654435761) >>> 21;
      let data = "";
      for (let j = 0; j < 8; j++) data += hex[(n + j) & 15] + hex[(n >> j) & 15];
      lines.push(`(${t.toFixed(6)}) can0 ${hex[id >> 8]}${hex[(id >> 4) & 15]}${hex[id & 15]}#${data}\n`);
    }
    const s = lines.join("");
    fs.writeSync(fd, s);
    written += s.length;
  }
  fs.closeSync(fd);
  return n;
}

function convertMeasured(input: string, output: string): { rssMb: number; seconds: number; summary: string } {
  const convert = path.join(ROOT, "dist/cli/commands/convert.js");
  const script = `
    const t0 = process.hrtime.bigint();
    require(${JSON.stringify(convert)}).convert(process.argv[1], process.argv[2], {}).then(() =>
      process.stdout.write(JSON.stringify({ rss: process.resourceUsage().maxRSS / 1024, s: Number(process.hrtime.bigint() - t0) / 1e9 })));`;
  const r = spawnSync(process.execPath, ["-e", script, input, output], { encoding: "utf8", timeout: 3_600_000 });
  if (r.status !== 0) throw new Error(`convert failed: ${r.stderr}`);
  const o = JSON.parse(r.stdout) as { rss: number; s: number };
  return { rssMb: o.rss, seconds: o.s, summary: r.stderr.trim() };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), "vgw-bench-traces-"));
  try {
    process.stdout.write(`vgw trace benchmark: ${fmt(N)} frames, best of ${RUNS} alternating runs after a warm-up\n`);
    process.stdout.write(`machine: ${cpus()[0]?.model ?? "?"} x${cpus().length}, node ${process.version}\n\n`);
    if (ONLY_FORMATS) {
      await formatFigures(dir);
      return;
    }
    const formats = ["log", "asc", "blf"];
    const files = formats.map((f) => path.join(dir, `bench.${f}`));
    for (const file of files) await writeTrace(file, N);
    if (ONLY_CONVERT) {
      convertEndToEnd(dir, formats, files);
      return;
    }
    for (const file of files) await writeTrace(file.replace("bench.", "warm."), 20000);

    // Runs alternate between vgw and python-can, file by file, so that both meet the same bursts of load from
    // other jobs on the machine; each side keeps its best run.
    const ours = new Map<string, number>();
    const py = new Map<string, { frames: number; fps: number }>();
    for (const file of files) await readOnce(file.replace("bench.", "warm."));
    for (let r = 0; r < RUNS; r++) {
      for (const file of files) {
        const m = await readOnce(file);
        if (m.frames !== N) throw new Error(`${file}: read ${m.frames} of ${N} frames`);
        ours.set(file, Math.max(ours.get(file) ?? 0, m.frames / m.seconds));
        const p = pythonCan([file]).get(file);
        if (!p || p.frames !== N) throw new Error(`python-can read ${p?.frames} frames of ${file}`);
        if (p.fps > (py.get(file)?.fps ?? 0)) py.set(file, p);
      }
    }

    const rows = [["format", "file MB", "vgw frames/s", "python-can frames/s", "ratio", "goal"]];
    for (const [i, file] of files.entries()) {
      const p = py.get(file) as { fps: number };
      const mine = ours.get(file) as number;
      const ratio = mine / p.fps;
      const goal = GOALS[formats[i]];
      rows.push([
        `.${formats[i]}`,
        (fs.statSync(file).size / 1048576).toFixed(1),
        fmt(mine),
        fmt(p.fps),
        `${ratio.toFixed(1)}x`,
        `>= ${goal}x ${ratio >= goal ? "met" : "NOT met"}`,
      ]);
    }
    printTable(rows);
    convertEndToEnd(dir, formats, files);
    await formatFigures(dir);

    if (BIG_MB > 0) {
      const big = path.join(dir, "big.log");
      const n = generateBigLog(big, BIG_MB);
      const size = fs.statSync(big).size / 1048576;
      fs.rmSync(path.join(dir, "bench.log"));
      const m = convertMeasured(big, path.join(dir, "big.blf"));
      process.stdout.write(
        `\nvgw convert big.log (${size.toFixed(0)} MB, ${fmt(n)} frames) -> big.blf: ${m.seconds.toFixed(1)} s, ` +
          `${fmt(n / m.seconds)} frames/s, peak RSS ${m.rssMb.toFixed(0)} MB (goal < 200 MB: ${m.rssMb < 200 ? "met" : "NOT met"})\n`,
      );
    }
  } finally {
    if (process.env.VGW_BENCH_KEEP) process.stdout.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench/traces: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
