/**
 * Gateway benchmark (`node dist/bench/gateway.js`, under `flock /tmp/vgw-devtools.lock`): the firmware's real bytecode
 * in the DeviceScript VM, the host's CanBus server, a broker (mosquitto, or aedes in-process), measured end to end.
 *
 *   1. bytes on the wire per frame for the bundled candump.log (12,974 real frames) replayed in real time, beside
 *      candump text (can-utils' own format, the reference) and one JSON object per frame (as WiCAN-style gateways
 *      publish), each with its MQTT framing
 *   2. latency from a frame entering the simulated bus to the broker, p50/p99, at 2,000 frames/s, for batch windows of
 *      100 ms and 20 ms (goal: p99 <= window + 20 ms)
 *   3. sustained throughput with 8-byte frames: rising offered rates for 4 s each, until frames are lost or the
 *      delivered rate stops following; reports the highest zero-loss rate and what bounds it (goal >= 100k frames/s)
 *   4. the host's decoder (cbor-x + records) beside python-can reading the same frames from a candump log, same run
 *
 * Environment: VGW_BENCH_BROKER (mosquitto with TCP_NODELAY, the default; mosquitto-nagle; aedes, in this process);
 * VGW_BENCH_RATES (comma-separated offered rates, default 10000,20000,40000,60000,80000,90000,100000,110000,130000);
 * VGW_BENCH_PARTS (which parts to run, default 1,2,3,4,5,6); VGW_BENCH_SETTINGS (JSON firmware settings for parts 3 and
 * 5, e.g. '{"outboxBytes":16384}', to measure what a setting buys). Every part prints the load average beside it.
 *
 *   5. stall tolerance: the VM process stopped (SIGSTOP) for 25-150 ms under 40,000 frames/s, as a busy machine's
 *      scheduler would; what arrives meanwhile is handled as one burst
 *   6. the signal path: part 3 with signals selected (2-3 per frame, 8 rows: what one settings packet holds) and raw
 *      frames published too
 *
 * Parts 3 and 6 print the VM process's CPU time per frame (/proc/PID/stat, offer to last delivery): the cost of a
 * frame in the gateway, which the load of a shared machine distorts far less than the rates it reaches.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { makeFrame, type Frame } from "../frame/frame";
import { openBroker, type HilBroker } from "../host/gateway/broker";
import { openTraceReader } from "../host/trace";
import { connectBroker, parseBrokerUrl } from "../host/gateway/broker-url";
import { firmwareBuildOnce, startSimulatedGateway, type SimulatedGateway } from "../host/simulator/gateway";
import { GatewayReceiver, publishWireBytes } from "../host/gateway/receiver";
import { GatewaySession, requestStatus, type SessionSummary } from "../host/simulator/session";
import { decodeBatch, encodeBatch } from "../host/gateway/uplink";

const ROOT = resolve(__dirname, "../..");
const TRACE = resolve(ROOT, "test/fixtures/traces/candump.log");
const RATES = (process.env.VGW_BENCH_RATES ?? "10000,20000,40000,60000,80000,90000,100000,110000,130000").split(",").map(Number);
const PARTS = new Set((process.env.VGW_BENCH_PARTS ?? "1,2,3,4,5,6").split(",").map(Number));
/**
 * The broker: "mosquitto" (the default) is a process of its own with TCP_NODELAY on its sockets, as a deployment
 * should run it (docs/firmware.md, "Throughput"); "mosquitto-nagle" is the same broker with `set_tcp_nodelay false`
 * (its default: Nagle's algorithm on). With Nagle a PUBACK waits until the gateway acknowledges the previous one, and
 * the gateway's stack delays that acknowledgement until it sends again (the next batch): each batch's PUBACK can then
 * come one batch interval late. "aedes" runs inside this process, so its PUBACKs also wait whenever this event loop is
 * busy producing frames. Part 3 run with each shows what the broker's socket options cost the gateway's outbox.
 */
const BROKERS = ["mosquitto", "mosquitto-nagle", "aedes"] as const;
const BROKER = (process.env.VGW_BENCH_BROKER ?? "mosquitto") as (typeof BROKERS)[number];
const SETTINGS = JSON.parse(process.env.VGW_BENCH_SETTINGS ?? "{}") as Record<string, unknown>;
const DEVICE = "bench";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : "-");
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : "-");
const k = (n: number): string => Math.round(n).toLocaleString("en-US");
/** The 1-minute load average: every figure of this machine's shared cores is printed beside it. */
const load = (): string => readFileSync("/proc/loadavg", "utf8").split(" ")[0];

async function readTrace(): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const batch of openTraceReader(TRACE)) frames.push(...batch);
  return frames;
}

/** Frames as a busy vehicle bus has them: 64 IDs, 8 bytes, a counter and slowly changing values. */
function busFrames(n: number, start: number): Frame[] {
  const out: Frame[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = start + i;
    const id = 0x100 + (s % 64) * 8;
    const v = Math.floor(s / 64);
    out[i] = makeFrame({ id, data: Uint8Array.from([v & 0xff, (v >> 8) & 0xff, 0x12, 0x34, (v * 7) & 0xff, 0, s & 0x0f, 0xaa]) });
  }
  return out;
}

/**
 * The signal table of part 6: as firmware/bench/ingest.bench.ts's rows (Intel 16-bit, Motorola signed 12-bit, Intel
 * 8-bit per ID), but 7 of them on 3 IDs, every frame carrying 2 or 3 signals: the simulator deploys each setting in
 * one Jacdac packet (236 bytes; a 224-byte value made the VM panic), which holds these 7 rows and not 50. What a frame costs
 * depends on the signals it carries (one hash probe finds them), not on the table's size, so this stands for 50
 * signals at about 3 per frame.
 */
const SIGNAL_IDS = [0x10, 0x18, 0x20];
const SIGNAL_ROWS: number[][] = SIGNAL_IDS.flatMap((id, k) =>
  [
    [id, 0, 16, 0, 1, 10, 0, 0, 0, 0, 0],
    [id, 23, 12, 3, 1, 4, -160, 0, 0, 0, 0],
    [id, 40, 8, 0, 1, 1, 0, 0, 0, 0, 0],
  ].slice(0, k === 0 ? 3 : 2),
);

/** Part 3's frames on the IDs of SIGNAL_IDS: every frame carries 2 or 3 selected signals. */
function signalFrames(n: number, start: number): Frame[] {
  const out: Frame[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = start + i;
    const v = Math.floor(s / SIGNAL_IDS.length);
    out[i] = makeFrame({ id: SIGNAL_IDS[s % SIGNAL_IDS.length], data: Uint8Array.from([v & 0xff, (v >> 8) & 0xff, 0x12, 0x34, (v * 7) & 0xff, 0, s & 0x0f, 0xaa]) });
  }
  return out;
}

/** The VM process's share of one core over 2 s without frames (timers, keep-alive, status): its floor. */
async function idleVmShare(gw: SimulatedGateway): Promise<number> {
  const c0 = cpuSeconds(gw.sim.vm.pid);
  const t0 = performance.now();
  await sleep(2000);
  return ((cpuSeconds(gw.sim.vm.pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

interface Rig {
  gw: SimulatedGateway;
  receiver: GatewayReceiver;
  client: Awaited<ReturnType<typeof connectBroker>>;
}

function session(rig: Rig): GatewaySession {
  return new GatewaySession(rig.gw.bus, rig.receiver, DEVICE);
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    // fields after the command name "(...)": state is field 3, utime 14, stime 15 (clock ticks, 100 per second)
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Share of one core used by the VM process, the devtools server and this process (CanBus server, broker, receiver,
 * checks) between two samples: shows which one saturates first on a 2-core machine.
 */
function cpuSampler(gw: SimulatedGateway): () => { text: string; vmSeconds: number } {
  const pids = { vm: gw.sim.vm.pid, devtools: gw.sim.devtools.pid, bench: process.pid };
  const t0 = performance.now();
  const c0 = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuSeconds(pid)]));
  return () => {
    const s = (performance.now() - t0) / 1000;
    const text = Object.entries(pids)
      .map(([n, pid]) => `${n} ${Math.round(((cpuSeconds(pid) - c0[n]) / s) * 100)}%`)
      .join(", ");
    return { text, vmSeconds: cpuSeconds(pids.vm) - c0.vm };
  };
}

interface Offered extends SessionSummary {
  /** CPU shares while frames were offered, and this process's event-loop delay. */
  cpu: string;
  /**
   * CPU time of the VM process (user + system, /proc/PID/stat) from the first frame offered until the last one
   * arrived (or the drain gave up), per frame sent, in microseconds: what one frame costs the gateway, whatever
   * else the machine runs (wall-clock rates depend on the load; this does much less).
   */
  vmUsPerFrame: number;
}

/** Offers `rate` frames/s for `seconds`; returns the delivery summary and the CPU the VM and the rig used. */
async function offer(rig: Rig, rate: number, seconds: number, frames: (n: number, start: number) => Frame[]): Promise<Offered> {
  const s = session(rig);
  const cpu = cpuSampler(rig.gw);
  // this process runs the CanBus server, the broker and the receiver: a pause of its event loop holds frames and
  // PUBACKs alike
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  await s.offer(rate, seconds, frames);
  loop.disable();
  const during = cpu();
  const cpuShare = `${during.text}; bench event loop delay p99 ${f1(loop.percentile(99) / 1e6)} ms, max ${f1(loop.max / 1e6)} ms`;
  await s.drain(3000);
  const vmSeconds = cpu().vmSeconds;
  const summary = s.summary();
  return { ...summary, cpu: cpuShare, vmUsPerFrame: (vmSeconds * 1e6) / summary.sent };
}

async function openBenchBroker(): Promise<HilBroker> {
  if (!BROKERS.includes(BROKER)) throw new Error(`VGW_BENCH_BROKER: expected one of ${BROKERS.join(", ")}, got '${BROKER}'`);
  if (BROKER === "aedes") return openBroker({ kind: "aedes" });
  return openBroker({ kind: "mosquitto", nodelay: BROKER === "mosquitto" });
}

async function main(): Promise<void> {
  const trace = await readTrace();
  const broker = await openBenchBroker();
  const client = await connectBroker(parseBrokerUrl(broker.url));
  const receiver = await GatewayReceiver.attach(client, { device: DEVICE, expectStart: true });
  const build = await firmwareBuildOnce();
  const firmwareLines: string[] = [];
  const gw = await startSimulatedGateway({
    broker: broker.url,
    device: DEVICE,
    build,
    onFirmwareLine: (line) => {
      firmwareLines.push(line);
      if (firmwareLines.length > 50) firmwareLines.shift();
    },
  });
  const rig: Rig = { gw, receiver, client };
  const out = (line: string): void => void process.stdout.write(line + "\n");
  try {
    await waitOnline(rig);
    out(`gateway benchmark: firmware ${build.bytecode.length} B in the DeviceScript VM, ${BROKER}, Node ${process.version}; load average ${load()}`);

    // 1. Bytes per frame, candump.log in real time.
    if (PARTS.has(1)) {
      const replay = await session(rig).replay(() => openTraceReader(TRACE), { speed: 1 });
      const candumpBytes = statSync(TRACE).size / trace.length;
      const topic = `vgw/${DEVICE}/frames`;
      let jsonBytes = 0;
      let jsonWire = 0;
      for (const f of trace) {
        const json = JSON.stringify({ t: f.t, id: f.id, ext: f.ext, dlc: f.data.length, data: Buffer.from(f.data).toString("hex") });
        jsonBytes += json.length;
        jsonWire += publishWireBytes(topic, json.length, 1);
      }
      out("");
      out(`1. bytes per frame, ${TRACE.replace(ROOT + "/", "")} (${trace.length} frames) replayed in real time (batch window 100 ms)`);
      out(`   vgw batches (CBOR, MQTT PUBLISH incl. header+topic)  ${f2(replay.wireBytesPerFrame)} B/frame   (payload only ${f2(replay.payloadBytesPerFrame)}; delivered ${replay.delivered}/${replay.sent}, lost ${replay.lost}; load ${load()})`);
      out(`   candump -l text (reference: can-utils' format)        ${f2(candumpBytes)} B/frame`);
      out(`   one JSON object per frame, one PUBLISH each            ${f2(jsonWire / trace.length)} B/frame   (JSON alone ${f2(jsonBytes / trace.length)})`);
    }

    // 2. Latency at a steady 2,000 frames/s for two batch windows.
    if (PARTS.has(2)) {
      out("");
      out("2. latency, CAN bus -> broker, 2,000 frames/s for 5 s (goal p99 <= batch window + 20 ms)");
      for (const window of [100, 20]) {
        await gw.reboot({ batchWindow: window });
        await waitOnline(rig);
        const s = await offer(rig, 2000, 5, (n, start) => trace.slice(start % (trace.length - n), (start % (trace.length - n)) + n));
        out(`   batchWindow ${String(window).padStart(3)} ms: p50 ${f1(s.latencyMs.p50)} ms, p99 ${f1(s.latencyMs.p99)} ms, max ${f1(s.latencyMs.max)} ms; lost ${s.lost}; ${f2(s.wireBytesPerFrame)} B/frame; load ${load()}`);
      }
    }

    // 3. Throughput.
    if (PARTS.has(3)) {
      await gw.reboot({ batchWindow: 100, ...SETTINGS });
      await waitOnline(rig);
      out("");
      out(`3. sustained throughput, 8-byte frames, 4 s per offered rate${Object.keys(SETTINGS).length ? `, settings ${JSON.stringify(SETTINGS)}` : ""}`);
      out(`   the VM idle (no frames): ${f1(await idleVmShare(gw))}% of one core; load ${load()}`);
      let best = 0;
      for (const rate of RATES) {
        const s = await offer(rig, rate, 4, busFrames);
        const st = await requestStatus(client, receiver, DEVICE, 5000);
        const achieved = s.delivered / Math.max(s.seconds, 4);
        const lossless = s.lost === 0 && s.unexpected === 0 && s.delivered === s.sent;
        out(
          `   offered ${k(rate).padStart(8)}/s: sent ${k(s.sent)}, delivered ${k(s.delivered)} (${k(achieved)}/s), lost ${k(s.lost)}, ` +
              `p99 ${f1(s.latencyMs.p99)} ms, ${f2(s.wireBytesPerFrame)} B/frame, ${k(s.batches)} batches of ${k(s.delivered / s.batches)} frames; ` +
            `gateway drops ${JSON.stringify(st?.drop ?? {})}, outbox bound ${st?.obmax ?? "-"} B, CanBus rx_overflow ${gw.server.counters.rxOverflow}; ` +
            `VM CPU ${f2(s.vmUsPerFrame)} us/frame; CPU of one core while offered: ${s.cpu}; load ${load()}`,
        );
        if (lossless) best = Math.max(best, achieved);
        if (!st) {
          const why = firmwareLines.filter((l) => /Exception|stop program|PANIC/.test(l)).join(" | ");
          out(`   the gateway stopped answering${why ? `: ${why}` : ""}`);
        }
        if (!lossless || s.latencyMs.p99 > 2000) break;
        await sleep(500);
      }
      out(`   highest zero-loss sustained rate: ${k(best)} frames/s`);
    }

    // 6. The signal path end to end: every frame carries 2 or 3 selected signals (SIGNAL_ROWS says why not 50 rows),
    // frames published raw as well (the firmware's heaviest ordinary load); rising rates as in part 3.
    if (PARTS.has(6)) {
      await gw.reboot({ batchWindow: 100, ...SETTINGS, sigTable: SIGNAL_ROWS });
      await waitOnline(rig);
      out("");
      out(`6. signal path: ${SIGNAL_ROWS.length} signals selected over ${SIGNAL_IDS.length} IDs (${f2(SIGNAL_ROWS.length / SIGNAL_IDS.length)} per frame) + raw frames, 8-byte frames, 4 s per offered rate`);
      out(`   the VM idle (no frames): ${f1(await idleVmShare(gw))}% of one core; load ${load()}`);
      let best = 0;
      for (const rate of RATES) {
        const before = await requestStatus(client, receiver, DEVICE, 5000);
        const s = await offer(rig, rate, 4, signalFrames);
        const st = await requestStatus(client, receiver, DEVICE, 5000);
        const samples = Number(st?.raw.sig ?? NaN) - Number(before?.raw.sig ?? NaN);
        const sigDropped = Number((st?.drop as Record<string, number> | undefined)?.sig ?? NaN) - Number((before?.drop as Record<string, number> | undefined)?.sig ?? NaN);
        const achieved = s.delivered / Math.max(s.seconds, 4);
        const lossless = s.lost === 0 && s.unexpected === 0 && s.delivered === s.sent && sigDropped === 0;
        out(
          `   offered ${k(rate).padStart(8)}/s: sent ${k(s.sent)}, delivered ${k(s.delivered)} (${k(achieved)}/s), lost ${k(s.lost)}, ` +
            `signal samples published ${k(samples)} (${f2(samples / s.sent)} per frame), dropped ${k(sigDropped)}; p99 ${f1(s.latencyMs.p99)} ms; ` +
            `gateway drops ${JSON.stringify(st?.drop ?? {})}; VM CPU ${f2(s.vmUsPerFrame)} us/frame; CPU of one core while offered: ${s.cpu}; load ${load()}`,
        );
        if (lossless) best = Math.max(best, achieved);
        if (!st) out(`   the gateway stopped answering; the firmware's last lines:\n     ${firmwareLines.slice(-12).join("\n     ")}`);
        if (!lossless || s.latencyMs.p99 > 2000) break;
        await sleep(500);
      }
      out(`   highest zero-loss sustained rate with signals: ${k(best)} frames/s`);
    }

    // 5. Stall tolerance: the VM process stopped (SIGSTOP) for a while under a steady load, as the machine's scheduler
    // or a GC pause would. Frames keep arriving meanwhile and are handled as one burst when it resumes.
    if (PARTS.has(5)) {
      await gw.reboot({ batchWindow: 100, ...SETTINGS });
      await waitOnline(rig);
      out("");
      out(`5. stall tolerance: 40,000 frames/s for 3 s, the VM process stopped for a while 1.5 s in`);
      for (const stallMs of [25, 50, 75, 100, 150]) {
        const before = await requestStatus(client, receiver, DEVICE, 5000);
        const stall = (async () => {
          await sleep(1500);
          process.kill(gw.sim.vm.pid, "SIGSTOP");
          try {
            await sleep(stallMs);
          } finally {
            process.kill(gw.sim.vm.pid, "SIGCONT");
          }
        })();
        const s = await offer(rig, 40_000, 3, busFrames);
        await stall;
        const st = await requestStatus(client, receiver, DEVICE, 5000);
        const dropped = (st?.drop?.outbox ?? NaN) - (before?.drop?.outbox ?? NaN);
        out(
          `   stopped ${String(stallMs).padStart(3)} ms (${k((40_000 * stallMs) / 1000)} frames arrive meanwhile): delivered ${k(s.delivered)} of ${k(s.sent)}, ` +
            `lost ${k(s.lost)} (drop.outbox ${k(dropped)}), p99 ${f1(s.latencyMs.p99)} ms; load ${load()}`,
        );
        await sleep(500);
      }
    }

    // 4. Host decoder beside python-can.
    if (PARTS.has(4)) {
      out("");
      out("4. host side: decoding uplink batches beside python-can reading candump text, same frames");
      const batches: Uint8Array[] = [];
      for (let i = 0; i < trace.length; i += 800) batches.push(encodeBatch(1, i, trace.slice(i, i + 800)));
      let decoded = 0;
      const t0 = performance.now();
      for (let rep = 0; rep < 40; rep++) for (const b of batches) decoded += decodeBatch(b).frames.length;
      const ours = decoded / ((performance.now() - t0) / 1000);
      const py = spawnSync("/usr/bin/python3", ["-c", PY_READ, TRACE], { timeout: 120_000 });
      const pyRate = py.status === 0 ? Number(py.stdout.toString().trim()) : NaN;
      out(`   vgw decodeBatch (cbor-x + records)     ${k(ours)} frames/s`);
      out(`   python-can CanutilsLogReader (reference) ${k(pyRate)} frames/s${py.status === 0 ? "" : `  (failed: ${py.stderr.toString().slice(-200)})`}; load ${load()}`);
    }
  } finally {
    await gw.stop();
    await receiver.detach();
    await client.endAsync();
    await broker.close();
  }
}

const PY_READ = `
import sys, time, can
t = time.perf_counter(); n = 0
for rep in range(5):
    for m in can.CanutilsLogReader(sys.argv[1]): n += 1
print(n / (time.perf_counter() - t))
`;

async function waitOnline(rig: Rig): Promise<void> {
  const st = await requestStatus(rig.client, rig.receiver, DEVICE, 20_000);
  if (!st) throw new Error("the gateway did not answer a status request within 20 s");
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/gateway: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
