/**
 * `vgw demo`: the gateway's main job on this machine, end to end, with nothing to set up:
 *
 *   in-process aedes broker -> the firmware's real bytecode in the DeviceScript VM (devtools + VM, settings deployed)
 *   -> a bundled candump trace replayed onto its simulated CAN bus in real time -> what arrives at the broker,
 *   decoded and checked against what was replayed: live rates, the latest frames (signals with --dbc), and a summary:
 *   frames replayed, delivered, lost (must be 0), duplicates, latency p50/p99, bytes per frame on the wire.
 *
 * Exits 0 at the end of the trace when nothing was lost or corrupted, 1 otherwise; `--loop` replays until Ctrl-C.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { formatFrame, type Frame } from "../../frame/frame";
import { loadDecoder } from "../../can-db/annotate";
import { openTraceReader } from "../../host/trace";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { GatewayReceiver } from "../../host/gateway/receiver";
import { GatewaySession, requestStatus, type SessionSummary } from "../../host/simulator/session";
import { log } from "../../host/log";
import { writeStdout } from "../stdout";

/** The bundled trace: a real candump -l log (SavvyCAN's example, MIT), 12,974 frames over 8 s. */
export const DEMO_TRACE = resolve(__dirname, "../../..", "test/fixtures/traces/candump.log");

interface DemoOptions {
  trace: string;
  speed: string;
  loop?: boolean;
  dbc?: string;
  device: string;
  batchWindow?: string;
  firmwareLog?: boolean;
}

function positive(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got '${text}'`);
  return n;
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : "-");

export function formatDemoSummary(s: SessionSummary): string {
  const st = s.status;
  const drops = st?.drop ? Object.entries(st.drop).map(([k, v]) => `${k} ${v}`).join(", ") : "-";
  return [
    "",
    "summary",
    `  frames replayed      ${s.sent}${s.replay.loops > 1 ? ` (${s.replay.loops} loops)` : ""}`,
    `  frames delivered     ${s.delivered}  (bit-exact, in order)`,
    `  frames lost          ${s.lost}${s.unexpected ? `   unexpected frames: ${s.unexpected}` : ""}`,
    `  duplicate batches    ${s.duplicateBatches} (dropped by (boot, seq))   missing batches: ${s.missingBatches}   malformed: ${s.malformed}`,
    `  latency              p50 ${fmt(s.latencyMs.p50)} ms, p99 ${fmt(s.latencyMs.p99)} ms, max ${fmt(s.latencyMs.max)} ms (CAN bus -> broker)`,
    `  bytes per frame      ${fmt(s.wireBytesPerFrame, 2)} B on the wire (MQTT PUBLISH incl. topic and header), ${fmt(s.payloadBytesPerFrame, 2)} B CBOR payload; ` +
      `candump text is ~38 B`,
    `  batches              ${s.batches}`,
    `  replay timing        lateness p99 ${fmt(s.replay.lateness.p99 * 1000, 2)} ms, end drift ${fmt(s.replay.drift * 1000, 2)} ms`,
    `  gateway status       rx ${st?.rx ?? "-"}, published ${st?.pub ?? "-"}, acknowledged ${st?.ack ?? "-"}, dropped: ${drops}, reconnects ${st?.rc ?? "-"}`,
    ...(s.problems.length ? ["  problems:", ...s.problems.map((p) => `    ${p}`)] : []),
  ].join("\n");
}

export async function demo(opts: DemoOptions): Promise<number> {
  const speed = positive(opts.speed, "--speed");
  const batchWindow = opts.batchWindow !== undefined ? positive(opts.batchWindow, "--batch-window") : undefined;
  const decoder = opts.dbc ? await loadDecoder(opts.dbc) : undefined;
  const out = (line: string): Promise<boolean> => writeStdout(line + "\n");

  // The broker (aedes) and the simulator (jacdac-ts) load here, not with the module: every other `vgw` command would
  // pay their ~60 ms of loading at start otherwise.
  const { openBroker } = await import("../../host/gateway/broker");
  const { startSimulatedGateway } = await import("../../host/simulator/gateway");
  const broker = await openBroker({ kind: "aedes" });
  const cleanups: Array<() => Promise<unknown>> = [() => broker.close()];
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await out(`vgw demo: broker aedes at ${broker.url}; starting the gateway firmware in the DeviceScript simulator...`);
    const client = await connectBroker(parseBrokerUrl(broker.url));
    cleanups.unshift(() => client.endAsync());
    // Listening before the gateway boots: its first batch must be number 0, so nothing can go missing unseen.
    const receiver = await GatewayReceiver.attach(client, { device: opts.device, expectStart: true });
    const online = new Promise<void>((resolveOnline) => receiver.on("status", (_d, s) => s.online && resolveOnline()));
    const settings: Record<string, unknown> = {};
    if (batchWindow !== undefined) settings.batchWindow = batchWindow;
    const started = Date.now();
    const gateway = await startSimulatedGateway({
      broker: broker.url,
      device: opts.device,
      settings,
      onFirmwareLine: (line) => (opts.firmwareLog ? log.info(`firmware: ${line}`) : log.debug(`firmware: ${line}`)),
    });
    cleanups.unshift(() => gateway.stop());
    await Promise.race([online, new Promise((r) => setTimeout(r, 15_000))]);
    await out(`gateway ${opts.device} online after ${((Date.now() - started) / 1000).toFixed(1)} s; replaying ${opts.trace} at ${speed}x${opts.loop ? ", looping (Ctrl-C stops)" : ""}`);

    const session = new GatewaySession(gateway.bus, receiver, opts.device);
    // Live view: once a second, rates and the latest frames of a few busy IDs (with signals when a DBC is given).
    const latest = new Map<string, { frame: Frame; count: number }>();
    receiver.on("batch", (b) => {
      for (const f of b.frames) {
        const key = `${f.ext ? "x" : ""}${f.id}`;
        const seen = latest.get(key);
        if (seen) {
          seen.frame = f;
          seen.count++;
        } else latest.set(key, { frame: f, count: 1 });
      }
    });
    receiver.on("gap", (_d, g) => log.warn(`GAP: batches ${g.from}..${g.to} missing`));
    let last = { sent: 0, delivered: 0, at: Date.now() };
    const ticker = setInterval(() => {
      const c = session.check.counts;
      const now = Date.now();
      const dt = (now - last.at) / 1000;
      const lines = [
        `replayed ${c.sent} (${fmt((c.sent - last.sent) / dt)}/s)  delivered ${c.delivered} (${fmt((c.delivered - last.delivered) / dt)}/s)  ` +
          `lost ${c.lost}  in flight ${c.pending}  batches ${receiver.counts.batches}  ` +
          `${fmt(receiver.counts.wireBytes / Math.max(1, c.delivered), 2)} B/frame  latency p50 ${fmt(session.check.percentile(50))} ms`,
      ];
      // The four busiest IDs of the last second, with their latest frame.
      const busiest = [...latest.values()].sort((a, b) => b.count - a.count).slice(0, 4);
      for (const { frame, count } of busiest) {
        const text = decoder?.text(frame);
        const sigs = text ? `  ${text}` : "";
        lines.push(`    ${formatFrame(frame).padEnd(28)} ${String(count).padStart(5)}/s${sigs}`);
      }
      latest.clear();
      last = { sent: c.sent, delivered: c.delivered, at: now };
      void out(lines.join("\n"));
    }, 1000);
    let summary: SessionSummary;
    try {
      summary = await session.replay(() => openTraceReader(opts.trace), { speed, loops: opts.loop ? 0 : 1, signal: abort.signal });
    } finally {
      clearInterval(ticker);
    }
    // The gateway's own counters, fresh (its periodic status may be seconds old).
    summary.status = (await requestStatus(client, receiver, opts.device, 5000)) ?? summary.status;
    await out(formatDemoSummary(summary));
    const ok = summary.lost === 0 && summary.unexpected === 0 && summary.delivered === summary.sent;
    if (!ok) log.error(`vgw demo: ${summary.lost} frames lost, ${summary.unexpected} unexpected`);
    return ok ? 0 : 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    for (const c of cleanups) await c().catch((e: unknown) => log.debug(`demo cleanup: ${String(e)}`));
  }
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run the gateway end to end: firmware in the simulator, in-process broker, a bundled trace replayed, live output and a summary")
    .option("--trace <file>", "trace to replay (any format vgw reads)", DEMO_TRACE)
    .option("--speed <x>", "replay speed factor", "1")
    .option("--loop", "replay the trace again and again until Ctrl-C")
    .option("--dbc <file>", "decode the live frames' signals with this DBC")
    .option("--device <id>", "gateway device id", "gw1")
    .option("--batch-window <ms>", "the gateway's batch window (setting batchWindow)")
    .option("--firmware-log", "show what the firmware prints")
    .addHelpText(
      "after",
      `
Needs the DeviceScript devtools ports 8081-8083 free (one simulator per machine).

Examples:
  vgw demo                                   replay the bundled candump.log in real time (about 20 s in all)
  vgw demo --speed 4 --batch-window 50       four times faster, smaller batches
  vgw demo --trace drive.asc --dbc car.dbc   your own trace, with signals decoded live
  vgw demo --loop                            keep going until Ctrl-C, then print the summary`,
    )
    .action(async (opts: DemoOptions) => {
      process.exitCode = await demo(opts);
    });
}
