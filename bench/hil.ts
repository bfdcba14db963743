/**
 * HIL harness benchmark: can the harness feed a gateway at 10x real time from a 4,000 frames/s trace (a full
 * 500 kbit/s bus, so 40,000 frames/s of wall time), and how large is its own timing error?
 *
 *   1. harness path only: the replay step of `vgw hil run` (scheduler + per-frame record + target send) onto the
 *      board target over an in-process virtual wire, a second endpoint counting what arrives;
 *   2. reference, same run, same schedule: python-can's player (MessageSync onto its virtual bus,
 *      bench/replay_pycan.py) on the same trace with its times divided by the speed;
 *   3. with --sim: the whole harness (broker, proxy, observer, checks) against the firmware in the DeviceScript VM,
 *      replaying the same load at the same speed (needs the devtools ports: run under flock /tmp/vgw-devtools.lock).
 *
 *   node dist/bench/hil.js [--seconds 10] [--rate 4000] [--speed 10] [--sim]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { openBus } from "../host/bus";
import type { VirtualBus } from "../host/bus/virtual";
import { MonotonicClock } from "../host/replay/clock";
import { openTraceWriter } from "../host/trace";
import { percentile } from "../host/percentile";
import { emptyRecord } from "../hil/record";
import { replayTrace, runScenario } from "../hil/runner";
import { defaultGateway, parseScenario, type Step, type TraceRef } from "../hil/scenario";
import { syntheticFrames } from "../hil/synthetic";
import { openTarget } from "../hil/target";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

interface Row {
  what: string;
  frames: number;
  received: number;
  wall: number;
  p50: number;
  p99: number;
  max: number;
  late1ms: number;
}

function row(r: Row): string {
  const ms = (s: number) => (s * 1000).toFixed(3).padStart(9);
  return `${r.what.padEnd(44)} ${String(r.frames).padStart(7)} ${String(r.received).padStart(8)} ${(r.frames / r.wall).toFixed(0).padStart(9)} ${ms(r.p50)} ${ms(r.p99)} ${ms(r.max)} ${String(r.late1ms).padStart(7)}`;
}

async function main(): Promise<void> {
  const seconds = arg("--seconds", 10);
  const rate = arg("--rate", 4000);
  const speed = arg("--speed", 10);
  const load = { rate, durationMs: seconds * 1000, keys: Array.from({ length: 16 }, (_, i) => 0x100 + i * 0x10), fd: false, hold: new Map<number, number>() };
  const trace: TraceRef = { name: "load", synthetic: load, origin: { file: "bench", line: 0 } };
  const step: Extract<Step, { kind: "replay" }> = { kind: "replay", trace: "load", speed, origin: { file: "bench", line: 0 } };
  const rows: Row[] = [];
  console.log(`HIL harness: ${rate} frames/s trace, ${seconds} s of trace time, replayed at ${speed}x (${rate * speed} frames/s of wall time)`);

  // 1. The harness's replay path onto a virtual wire.
  {
    const clock = new MonotonicClock();
    const rec = emptyRecord("bench", "board", clock.now() * 1000);
    const target = await openTarget("board", { gatewayBroker: "", device: "bench", prefix: "vgw", gateway: defaultGateway(), can: "virtual:hil-bench" });
    // The far end only counts (python-can's receiver is read after its replay too).
    const wire = (await openBus("virtual:hil-bench")) as VirtualBus;
    const t0 = process.hrtime.bigint();
    const summary = await replayTrace(trace, step, target, rec, clock, 1, 0);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const received = wire.counters().rx;
    await wire.close();
    await target.close();
    const late = rec.replayed.map((r) => (r.sentAt - r.dueAt) / 1000).sort((a, b) => a - b);
    rows.push({ what: "vgw hil replay step -> virtual wire", frames: summary.frames, received, wall, p50: percentile(late, 50), p99: percentile(late, 99), max: late[late.length - 1], late1ms: late.filter((x) => x > 0.001).length });
  }

  // 2. python-can's player on the same schedule (times divided by the speed: MessageSync has no speed setting).
  const dir = mkdtempSync(path.join(tmpdir(), "vgw-bench-hil-"));
  try {
    const file = path.join(dir, "load.log");
    const w = openTraceWriter(file);
    for await (const batch of syntheticFrames(load)) await w.write(batch.map((f) => ({ ...f, t: 1000 + f.t! / speed, bus: "can0" })));
    await w.close();
    const py = spawnSync("/usr/bin/python3", [path.join(__dirname, "../../bench/replay_pycan.py"), file], { encoding: "utf8", timeout: 600_000 });
    if (py.status !== 0) throw new Error(`python-can reference failed: ${py.stderr}`);
    const j = JSON.parse(py.stdout.trim().split("\n").pop()!);
    rows.push({ what: "python-can 4.1 MessageSync -> virtual bus", frames: j.frames, received: j.frames, wall: j.wall, p50: j.p50, p99: j.p99, max: j.max, late1ms: j.late1ms });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // 3. The whole harness against the firmware in the simulator.
  let simLine = "";
  if (process.argv.includes("--sim")) {
    const sc = parseScenario(
      `name: bench ${rate} frames/s at ${speed}x
traces: { load: { synthetic: { rate: ${rate}, duration: ${seconds}s } } }
steps:
  - replay: load
    speed: ${speed}
expect:
  - delivery: {}
`,
      path.join(__dirname, "bench.yaml"),
    );
    const t0 = Date.now();
    const o = await runScenario(sc, { target: "sim" });
    const late = o.record.replayed.map((r) => (r.sentAt - r.dueAt) / 1000).sort((a, b) => a - b);
    const wall = (o.record.replayed[o.record.replayed.length - 1]?.sentAt - o.record.replayed[0]?.sentAt) / 1000 || (Date.now() - t0) / 1000;
    rows.push({ what: "vgw hil run -> firmware in the simulator", frames: o.record.replayed.length, received: o.record.delivered.length, wall, p50: percentile(late, 50), p99: percentile(late, 99), max: late[late.length - 1], late1ms: late.filter((x) => x > 0.001).length });
    // Where frames went, by the gateway's own last status (docs/protocol.md): a loss is named by its counter.
    const st = [...o.record.statuses].reverse().find((x) => x.online)?.raw as Record<string, unknown> | undefined;
    const drop = (st?.drop ?? {}) as Record<string, number>;
    const can = (st?.can ?? []) as number[];
    const counters = st ? `gateway status: can.0 ${can[0]}, rx ${String(st.rx)}, ack ${String(st.ack)}, ${Object.entries(drop).map(([k, v]) => `drop.${k} ${v}`).join(", ")}` : "no gateway status";
    simLine = `simulator run: ${o.error ? `error: ${o.error}` : o.results.map((r) => `${r.name}: ${r.pass ? "pass" : "FAIL"} (${r.message})`).join("; ")}; ${counters}; event loop delay max during the steps ${o.record.harness["event loop delay max ms (steps)"]?.toFixed(1)} ms`;
  }

  console.log(`${"".padEnd(44)} ${"frames".padStart(7)} ${"received".padStart(8)} ${"frames/s".padStart(9)} ${"late p50".padStart(9)} ${"late p99".padStart(9)} ${"late max".padStart(9)} ${">1 ms".padStart(7)}`);
  console.log(`${"".padEnd(44)} ${"".padStart(7)} ${"".padStart(8)} ${"(wall)".padStart(9)} ${"ms".padStart(9)} ${"ms".padStart(9)} ${"ms".padStart(9)} ${"".padStart(7)}`);
  for (const r of rows) console.log(row(r));
  if (simLine) console.log(simLine);
  // Kept up: the whole trace went out within 5 % of its scheduled duration (the far end's losses are its own).
  for (const r of rows) {
    const keptUp = r.wall <= (seconds / speed) * 1.05;
    console.log(`${r.what}: ${keptUp ? "kept up" : "FELL BEHIND"} at ${speed}x (${r.frames} frames in ${r.wall.toFixed(3)} s, schedule ${(seconds / speed).toFixed(3)} s)`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
