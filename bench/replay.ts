/**
 * Replay timing benchmark: a 2,000 frames/s trace (60 s by default) replayed onto the in-process virtual bus by vgw's
 * scheduler, then by python-can's player (MessageSync onto its virtual bus) in the same run, one after the other.
 * Both are measured the same way: each frame's send timestamp against the trace's time, anchored at the most
 * on-time of the first 100 frames. Prints lateness p50/p99/max, late frames (>1 ms) and end-time drift side by side.
 *   node dist/bench/replay.js [--seconds 60] [--rate 2000]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { makeFrame, type Frame } from "../frame/frame";
import { openBus } from "../host/bus";
import { VirtualBus } from "../host/bus/virtual";
import { MonotonicClock } from "../host/replay/clock";
import { replayFrames } from "../host/replay/scheduler";
import { openTraceWriter } from "../host/trace";
import { readAhead } from "../host/replay/read-ahead";
import { percentile } from "../host/percentile";

interface Figures {
  frames: number;
  p50: number;
  p99: number;
  max: number;
  drift: number;
  late1ms: number;
  wall: number;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

/**
 * Lateness of each frame against the trace schedule. The anchor is the earliest (most on-time) frame among the first
 * 100: anchoring on frame 0 alone would charge a slow first send (lazy compilation) to every later frame as
 * "early". Used the same way for both players (replay_pycan.py does the same).
 */
function figures(sentAt: number[], traceT: number[], wall: number): Figures {
  const offsets = sentAt.map((t, i) => t - traceT[i]);
  const anchor = Math.min(...offsets.slice(0, 100));
  const late = offsets.map((o) => o - anchor);
  const s = [...late].sort((a, b) => a - b);
  return { frames: late.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1], drift: late[late.length - 1], late1ms: late.filter((x) => x > 0.001).length, wall };
}

async function main(): Promise<void> {
  const seconds = arg("--seconds", 60);
  const rate = arg("--rate", 2000);
  const dir = mkdtempSync(path.join(tmpdir(), "vgw-bench-replay-"));
  const file = path.join(dir, "trace.log");
  try {
    // Six IDs at 2 kHz in total with a little jitter, as a busy powertrain bus would look; microsecond timestamps.
    const n = Math.round(seconds * rate);
    const w = openTraceWriter(file);
    let batch: Frame[] = [];
    for (let i = 0; i < n; i++) {
      const t = 1000 + i / rate + (((i * 7919) % 200) - 100) * 1e-6;
      batch.push(makeFrame({ id: 0x100 + (i % 6), data: Uint8Array.of(i & 255, (i >> 8) & 255, 0, 0, 0, 0, 0, 0), t: Math.round(t * 1e6) / 1e6, bus: "vcan0" }));
      if (batch.length === 10000) {
        await w.write(batch);
        batch = [];
      }
    }
    await w.write(batch);
    await w.close();

    const tx = (await openBus("virtual:bench")) as VirtualBus;
    const rx = await openBus("virtual:bench");
    const sentAt: number[] = [];
    const traceT: number[] = [];
    const pump = (async () => {
      for await (const f of rx) sentAt.push(f.t as number);
    })();
    const started = process.hrtime.bigint();
    const summary = await replayFrames(() => readAhead(file), {
      clock: new MonotonicClock(),
      send: (f) => {
        traceT.push(f.t as number);
        tx.sendNow(f);
      },
    });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    await new Promise((r) => setImmediate(r));
    await tx.close();
    await rx.close();
    await pump;
    const ours = figures(sentAt, traceT, wall);

    const py = spawnSync("/usr/bin/python3", [path.join(__dirname, "../../bench/replay_pycan.py"), file], { encoding: "utf8", timeout: (seconds * 3 + 120) * 1000 });
    if (py.status !== 0) throw new Error(`python-can player failed: ${py.stderr}`);
    const theirs = JSON.parse(py.stdout) as Figures;

    const ms = (x: number) => (x * 1000).toFixed(3).padStart(9);
    const row = (name: string, f: Figures) =>
      `${name.padEnd(26)} ${String(f.frames).padStart(7)} ${ms(f.p50)} ${ms(f.p99)} ${ms(f.max)} ${ms(f.drift)} ${String(f.late1ms).padStart(8)} ${f.wall.toFixed(2).padStart(8)}`;
    process.stdout.write(
      `replay timing: ${seconds} s of a ${rate} frames/s trace onto a virtual bus (lateness = send time vs schedule, ms)\n` +
        `${"player".padEnd(26)} ${"frames".padStart(7)} ${"p50".padStart(9)} ${"p99".padStart(9)} ${"max".padStart(9)} ${"drift".padStart(9)} ${">1ms".padStart(8)} ${"wall s".padStart(8)}\n` +
        `${row("vgw replay (scheduler)", ours)}\n${row("python-can 4.1 MessageSync", theirs)}\n` +
        `vgw's own summary: p99 ${(summary.lateness.p99 * 1e3).toFixed(3)} ms, max ${(summary.lateness.max * 1e3).toFixed(3)} ms, drift ${(summary.drift * 1e3).toFixed(3)} ms\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exitCode = 1;
});
