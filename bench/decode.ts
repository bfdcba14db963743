/**
 * Decode benchmark (`node dist/bench/decode.js`): 1M random frames drawn from vw_mqb.dbc's messages, decoded by
 * vgw (the allocation-free fast path and the object API) and by python3-canmatrix in the same run on the same frames;
 * then `vgw decode --format jsonl|text` end to end on the same frames as a candump log (whole process, output to a file,
 * bench/timed.py: wall and CPU time, best of 3; goal >= 1M frames/s; one thread, then --threads 2) beside python-can +
 * canmatrix doing the same
 * (bench/pycan_decode.py, one run); then DBC load (parse) time of the big fixtures
 * beside canmatrix's. Prints figures and ratios (goal: >= 40x canmatrix).
 * Environment: VGW_BENCH_FRAMES (default 1000000), VGW_BENCH_ONLY=command (only the end-to-end part).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { formatFrame, type Frame } from "../frame/frame";
import { Decoder } from "../can-db/decoder";
import { decodeDbcBytes, parseDbc } from "../can-db/dbc-parser";
import { loadDbcFile } from "../can-db/load";
import { seededRandom } from "../test/candb/helpers";

const ROOT = resolve(__dirname, "../..");
const DBC = resolve(ROOT, "test/fixtures/dbc/vw_mqb.dbc");
const LOAD_FILES = ["FORD_CADS_64.dbc", "ThinkCity.dbc", "gm_global_a_lowspeed_1818125.dbc", "vw_mqb.dbc", "vw_pq.dbc"];
const N = Number(process.env.VGW_BENCH_FRAMES ?? 1_000_000);

function python(args: string[]): Record<string, unknown> {
  const r = spawnSync("/usr/bin/python3", [resolve(ROOT, "bench/canmatrix_bench.py"), ...args], { maxBuffer: 1 << 26, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`canmatrix_bench.py failed: ${r.stderr?.toString().slice(-1000) ?? r.error}`);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

function rate(n: number, seconds: number): string {
  return `${Math.round(n / seconds).toLocaleString("en-US").padStart(12)} frames/s`;
}

/** `vgw decode` as a user runs it: a fresh process, the trace file in, every line out to a file. */
function commandEndToEnd(trace: string): void {
  const vgw = resolve(ROOT, "bin/vgw");
  process.stdout.write(`load average at the start: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  process.stdout.write(`vgw decode end to end (whole process, ${N.toLocaleString("en-US")} frames from a candump log, output to a file), best of 3:\n`);
  let vgwJsonl = { wall: NaN, cpu: NaN };
  // One thread (the default), then --threads 2 (worker threads; pays only where a core is free).
  for (const format of ["jsonl", "text"]) {
    for (const threads of [[], ["--threads", "2"]]) {
      let wall = Infinity;
      let cpu = Infinity;
      for (let r = 0; r < 3; r++) {
        const out = `${trace}.${format}`;
        const args = [resolve(ROOT, "bench/timed.py"), "-o", out, process.execPath, vgw, "decode", "--dbc", DBC, "--format", format, ...threads, trace];
        const run = spawnSync("/usr/bin/python3", args, { encoding: "utf8", timeout: 600_000 });
        if (run.status !== 0) throw new Error(`vgw decode failed: ${run.stderr}`);
        const t = JSON.parse(run.stdout) as { wall: number; cpu: number; status: number };
        if (t.status !== 0) throw new Error(`vgw decode exited ${t.status}: ${run.stderr}`);
        wall = Math.min(wall, t.wall);
        cpu = Math.min(cpu, t.cpu);
        rmSync(out);
      }
      const label = `--format ${format.padEnd(5)} ${threads.join(" ").padEnd(11)}`;
      process.stdout.write(
        `  ${label} ${rate(N, wall)} (wall ${wall.toFixed(2)} s)   ${rate(N, cpu)} per CPU second (${cpu.toFixed(2)} s)   goal >= 1,000,000 frames/s: ${N / wall >= 1e6 ? "met" : "NOT met"}\n`,
      );
      if (format === "jsonl" && threads.length === 0) vgwJsonl = { wall, cpu };
    }
  }
  // The reference in the same run, once (it is slow): python-can's LogReader + canmatrix + json.dumps per frame.
  const out = `${trace}.py.jsonl`;
  const run = spawnSync("/usr/bin/python3", [resolve(ROOT, "bench/timed.py"), "-o", out, "/usr/bin/python3", resolve(ROOT, "bench/pycan_decode.py"), DBC, trace], {
    encoding: "utf8",
    timeout: 1_800_000,
  });
  const t = JSON.parse(run.stdout) as { wall: number; cpu: number; status: number };
  if (t.status !== 0) throw new Error(`pycan_decode.py exited ${t.status}: ${run.stderr}`);
  rmSync(out);
  process.stdout.write(
    `  reference: python-can LogReader + canmatrix + json.dumps (bench/pycan_decode.py), one run: ${rate(N, t.wall)} (wall ${t.wall.toFixed(2)} s)   ${rate(N, t.cpu)} per CPU second (${t.cpu.toFixed(2)} s)\n` +
      `  vgw jsonl against it: ${(t.wall / vgwJsonl.wall).toFixed(1)}x wall, ${(t.cpu / vgwJsonl.cpu).toFixed(1)}x CPU\n`,
  );
  process.stdout.write(`  load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n\n`);
}

function main(): void {
  const db = loadDbcFile(DBC);
  const msgs = db.messages.filter((m) => !m.pseudo);
  const rnd = seededRandom(42);
  const pool = new Uint8Array(N * 8);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(rnd() * 256);
  const frames: Frame[] = new Array(N);
  const lines: string[] = new Array(N);
  for (let k = 0; k < N; k++) {
    const m = msgs[Math.floor(rnd() * msgs.length)];
    const data = pool.subarray(k * 8, k * 8 + m.length);
    frames[k] = { id: m.id, ext: m.ext, rtr: false, fd: m.fd, brs: false, esi: false, err: false, data };
    lines[k] = `${m.id} ${m.ext ? 1 : 0} ${Buffer.from(data).toString("hex")}`;
  }
  const dir = mkdtempSync(join(tmpdir(), "vgw-bench-"));
  try {
    const framesFile = join(dir, "frames.txt");
    writeFileSync(framesFile, lines.join("\n") + "\n");
    process.stdout.write(`vgw decode benchmark: ${basename(DBC)} (${msgs.length} messages), ${N.toLocaleString("en-US")} random frames\n`);
    process.stdout.write(`machine: ${cpus()[0]?.model ?? "?"} x${cpus().length}, node ${process.version}\n\n`);

    const trace = join(dir, "frames.log");
    writeFileSync(trace, frames.map((f, k) => `(${(1700000000 + k * 0.000137).toFixed(6)}) can0 ${formatFrame(f)}`).join("\n") + "\n");
    commandEndToEnd(trace);
    if (process.env.VGW_BENCH_ONLY === "command") return;

    const decoder = new Decoder(db);
    // Fast path: lookup + generated decoder into reusable arrays.
    const raw = new Float64Array(256);
    const phys = new Float64Array(256);
    const fast = () => {
      let sum = 0;
      for (let k = 0; k < N; k++) {
        const f = frames[k];
        const m = decoder.lookup(f.id, f.ext);
        if (m) sum += decoder.compile(m).decodeInto(f.data, raw, phys) + phys[0];
      }
      return sum;
    };
    const objects = () => {
      let n = 0;
      for (let k = 0; k < N; k++) if (decoder.decode(frames[k]).message) n++;
      return n;
    };
    const best = (fn: () => number, reps: number) => {
      fn(); // warm-up: compiles every message's decoder and lets V8 optimise
      let bestS = Infinity;
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        fn();
        bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return bestS;
    };
    const tFast = best(fast, 3);
    const tObj = best(objects, 3);
    const cm = python(["decode", DBC, framesFile]) as { frames: number; seconds: number };
    const cmRate = cm.frames / cm.seconds;
    process.stdout.write(`decode:\n`);
    process.stdout.write(`  vgw decodeInto (fast path)   ${rate(N, tFast)}   ${(N / tFast / cmRate).toFixed(1)}x canmatrix\n`);
    process.stdout.write(`  vgw decode() -> objects      ${rate(N, tObj)}   ${(N / tObj / cmRate).toFixed(1)}x canmatrix\n`);
    process.stdout.write(`  canmatrix Frame.decode       ${rate(cm.frames, cm.seconds)}   (same frames, same run)\n`);
    process.stdout.write(`  goal: >= 40x canmatrix\n\n`);

    const paths = LOAD_FILES.map((f) => resolve(ROOT, "test/fixtures/dbc", f));
    const cmLoad = python(["load", ...paths]) as Record<string, number>;
    process.stdout.write(`DBC load (read + parse), best of 3:\n`);
    process.stdout.write(`  ${"file".padEnd(36)} ${"KB".padStart(5)} ${"vgw ms".padStart(8)} ${"canmatrix ms".padStart(13)} ${"ratio".padStart(7)}\n`);
    for (const p of paths) {
      let bestMs = Infinity;
      for (let r = 0; r < 5; r++) {
        const t0 = process.hrtime.bigint();
        parseDbc(decodeDbcBytes(readFileSync(p)), p);
        bestMs = Math.min(bestMs, Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const cmMs = cmLoad[p] * 1000;
      process.stdout.write(
        `  ${basename(p).padEnd(36)} ${String(Math.round(statSync(p).size / 1024)).padStart(5)} ${bestMs.toFixed(1).padStart(8)} ${cmMs.toFixed(1).padStart(13)} ${(cmMs / bestMs).toFixed(0).padStart(6)}x\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
