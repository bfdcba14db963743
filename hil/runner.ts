/**
 * The steps runner: one scenario, start to finish.
 *
 *   broker (aedes / mosquitto / external) -> fault proxy in front of it (the gateway's only way to the broker)
 *   -> observer at the broker (GatewayReceiver) -> target gateway started, pointed at the proxy
 *   -> wait for its online status -> configure filters/downsampling by command -> the steps, in order
 *   -> settle (until nothing new arrives) -> final status -> everything closed, also on failure -> checks
 *
 * Time is the harness's monotonic clock in ms from one injected Clock (host/replay/clock.ts); replays are paced by the
 * shared replay scheduler (host/replay/scheduler.ts), which also measures the harness's own timing error.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Frame } from "../frame/frame";
import { VgwError } from "../frame/errors";
import { loadDbcFile } from "../can-db/load";
import { Decoder } from "../can-db/decoder";
import { log } from "../host/log";
import { openTraceReader } from "../host/trace";
import { MonotonicClock, type Clock } from "../host/replay/clock";
import { replayFrames, type FrameSource, type ReplaySummary } from "../host/replay/scheduler";
import { openBroker, type HilBroker } from "../host/gateway/broker";
import { FaultProxy } from "./proxy";
import { GatewayObserver, waitFor } from "./observer";
import { openTarget, type GatewayTarget } from "./target";
import { checkAll, type Analysis, type CheckResult, type SignalDecoder } from "./checks";
import { emptyRecord, type RunRecord } from "./record";
import { syntheticFrameCount, syntheticFrames } from "./synthetic";
import { startScenarioEcus } from "./ecu";
import type { Scenario, Step, TraceRef } from "./scenario";

export interface RunOptions {
  target: "sim" | "board";
  /** board: the CAN interface the gateway is wired to. */
  can?: string;
  /** An external broker both the harness and the gateway reach (instead of the scenario's own broker). */
  broker?: string;
  /** Device id and topic prefix of the gateway (defaults: hil, vgw). */
  device?: string;
  prefix?: string;
  /** Multiplies the duration of synthetic loads (long soak runs: `--soak 60`). */
  loadScale?: number;
  clock?: Clock;
  /** Progress of each replay step: frames sent and, when known, the total. */
  onProgress?: (step: string, sent: number, total: number | undefined) => void;
  onFirmwareLine?: (line: string) => void;
}

export interface RunOutcome {
  scenario: Scenario;
  record: RunRecord;
  analysis?: Analysis;
  results: CheckResult[];
  /** Set when the run itself failed (setup, a step that could not be carried out). */
  error?: string;
  pass: boolean;
  /** The replay scheduler's own timing error, ms. */
  harness: { framesSent: number; latenessP50: number; latenessP99: number; latenessMax: number; late: number; drift: number };
  /** DBC decode of frames, when the scenario names a DBC (for signal checks and plots). */
  decode?: SignalDecoder;
}

/** How long the run waits for the gateway to say it is online, and for the uplink to go quiet at the end. */
const ONLINE_TIMEOUT_MS = 60_000;
const SETTLE_QUIET_MS = 1500;
const SETTLE_MAX_MS = 30_000;

export async function runScenario(sc: Scenario, opts: RunOptions): Promise<RunOutcome> {
  const clock = opts.clock ?? new MonotonicClock();
  const now = () => clock.now() * 1000;
  const targetKind = opts.target;
  const rec = emptyRecord(sc.name, targetKind, now());
  const decode = sc.dbc ? dbcDecoder(sc.dbc) : undefined;
  const harness = { framesSent: 0, latenessP50: 0, latenessP99: 0, latenessMax: 0, late: 0, drift: 0 };
  const cleanup: Array<() => Promise<void>> = [];
  let error: string | undefined;
  let broker: HilBroker | undefined;
  let proxy: FaultProxy | undefined;
  // Event-loop stalls of this process are the main source of harness timing error: measure them for the report.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  try {
    broker = await openBroker(opts.broker ? { kind: "url", url: opts.broker } : sc.broker);
    const b = broker;
    cleanup.push(() => b.close());
    proxy = await FaultProxy.start({ host: broker.host, port: broker.port }, { now });
    const p = proxy;
    cleanup.push(() => p.close());
    const device = opts.device ?? "hil";
    const prefix = opts.prefix ?? "vgw";
    const observer = await GatewayObserver.connect(broker.url, prefix, device, rec, now, undefined, sc.gateway.signals?.table);
    cleanup.push(() => observer.close());
    const target = await openTarget(targetKind, {
      // A board reaches the broker on its own; the simulated gateway goes through the proxy, so links can be cut.
      gatewayBroker: targetKind === "sim" ? proxy.url : broker.url,
      device,
      prefix,
      gateway: sc.gateway,
      can: opts.can,
      onFirmwareLine: opts.onFirmwareLine,
    });
    cleanup.push(() => target.close());
    target.onTransmit = (frame) => rec.transmitted.push({ frame, at: now() });
    const startAt = now();
    await target.start();
    // A board is already online and its retained status predates the run: ask for a fresh one.
    if (targetKind === "board") await observer.command({ op: "status", id: "hil-initial" });
    await waitFor("the gateway's online status", () => rec.statuses.some((s) => s.online && s.at >= startAt), ONLINE_TIMEOUT_MS);
    await waitReady(rec, observer, now);
    await configure(sc, observer, rec, now);
    const ctx: StepContext = { sc, opts, clock, now, rec, broker, proxy, observer, target, harness, replayIndex: 0 };
    if (sc.ecu) cleanup.push(await startScenarioEcus(sc.ecu.configs, target, rec, now));
    rec.harness["event loop delay max ms (start)"] = loopDelay.max / 1e6;
    loopDelay.reset();
    for (const step of sc.steps) {
      try {
        await runStep(step, ctx);
      } catch (e) {
        throw new VgwError(`${step.origin.file}:${step.origin.line}: step '${step.kind}' failed: ${(e as Error).message}`, { cause: e });
      }
    }
    await target.flush();
    rec.harness["event loop delay max ms (steps)"] = loopDelay.max / 1e6;
    loopDelay.reset();
    await settle(rec, observer, now);
  } catch (e) {
    error = (e as Error).message;
    log.debug((e as Error).stack ?? "");
  } finally {
    for (const c of cleanup.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn(`hil: cleanup: ${(e as Error).message}`);
      }
    }
    rec.endedAt = now();
    loopDelay.disable();
    rec.harness["event loop delay max ms (end)"] = loopDelay.max / 1e6;
    if (proxy) Object.assign(rec.harness, prefixKeys("proxy.", proxy.counts));
    if (broker) rec.harness["broker.outages"] = broker.outages;
  }
  const { analysis, results } = checkAll(rec, sc, decode);
  if (error) {
    // A failed run explains its failed checks: "nothing arrived" is a consequence, not the finding.
    const first = error.split("\n")[0];
    for (const r of results) if (!r.pass) r.message = `not checked, the run failed: ${first} (on what was recorded: ${r.message})`;
  }
  const pass = !error && results.every((r) => r.pass);
  return { scenario: sc, record: rec, analysis, results, error, pass, harness, decode };
}

function prefixKeys(prefix: string, o: object): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [prefix + k, v as number]));
}

export function dbcDecoder(path: string): SignalDecoder {
  const decoder = new Decoder(loadDbcFile(path));
  return (frame) => {
    const d = decoder.decode(frame);
    if (d.message === null || d.error) return undefined;
    return { message: d.message, signals: d.signals };
  };
}

interface StepContext {
  sc: Scenario;
  opts: RunOptions;
  clock: Clock;
  now: () => number;
  rec: RunRecord;
  broker: HilBroker;
  proxy: FaultProxy;
  observer: GatewayObserver;
  target: GatewayTarget;
  harness: RunOutcome["harness"];
  /** Next replay index across all replay steps. */
  replayIndex: number;
}

/**
 * The gateway is ready for CAN traffic when its status says the controller is on the bus (`bus: "error-active"`);
 * its first online status comes right after CONNACK and may still say `unbound` or `stopped`.
 */
async function waitReady(rec: RunRecord, observer: GatewayObserver, now: () => number): Promise<void> {
  const end = now() + ONLINE_TIMEOUT_MS;
  for (;;) {
    const last = [...rec.statuses].reverse().find((s) => s.online);
    const bus = (last?.raw as Record<string, unknown> | undefined)?.bus;
    if (bus === "error-active") return;
    if (now() > end) throw new VgwError(`the gateway's CAN controller never became active (status bus: ${String(bus)})`);
    await observer.command({ op: "status", id: "hil-ready" });
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Sends the scenario's filters and downsampling rules as commands (docs/protocol.md), which works for every target. */
async function configure(sc: Scenario, observer: GatewayObserver, rec: RunRecord, now: () => number): Promise<void> {
  const { canFilters, rateRules } = sc.gateway.settings;
  const commands: Array<{ ref: string; send: () => Promise<void> }> = [];
  if (canFilters.length) {
    const acc = canFilters as Array<[number, number]>;
    commands.push({ ref: "config:filter", send: () => observer.command({ op: "filter", id: "config:filter", acc }) });
  }
  if (rateRules.length) {
    const rules = rateRules as Array<[number, number, 0 | 1]>;
    commands.push({ ref: "config:rate", send: () => observer.command({ op: "rate", id: "config:rate", rules }) });
  }
  for (const c of commands) {
    const cmd = { ref: c.ref, sentAt: now() } as RunRecord["commands"][number];
    rec.commands.push(cmd);
    await c.send();
    await waitFor(`the gateway's answer to ${c.ref}`, () => cmd.result !== undefined, 10_000);
    if (!cmd.result!.ok) throw new VgwError(`the gateway refused ${c.ref}: ${cmd.result!.reason}`);
  }
}

function traceSource(t: TraceRef, scale: number): { source: FrameSource; total?: number } {
  if (t.synthetic) {
    const load = { ...t.synthetic, durationMs: t.synthetic.durationMs * scale };
    return { source: () => syntheticFrames(load), total: syntheticFrameCount(load) };
  }
  const path = t.path!;
  return { source: () => openTraceReader(path) };
}

/** Cuts a source after `limit` frames or `durationMs` of trace time. */
function bounded(source: FrameSource, limit?: number, durationMs?: number): FrameSource {
  if (limit === undefined && durationMs === undefined) return source;
  return async function* () {
    let n = 0;
    let t0: number | undefined;
    for await (const batch of source()) {
      const out: Frame[] = [];
      for (const f of batch) {
        t0 ??= f.t ?? 0;
        if ((limit !== undefined && n >= limit) || (durationMs !== undefined && ((f.t ?? t0) - t0) * 1000 >= durationMs)) {
          if (out.length) yield out;
          return;
        }
        out.push(f);
        n++;
      }
      yield out;
    }
  };
}

/**
 * One replay step: the trace paced by the shared scheduler onto the target's wire, each frame recorded with when it
 * was due and when it was handed over (the harness's timing error), and whether an injected fault ate it.
 * Exported for the benchmark, which measures exactly this path.
 */
export async function replayTrace(
  trace: TraceRef,
  step: Extract<Step, { kind: "replay" }>,
  target: Pick<GatewayTarget, "send" | "flush">,
  rec: RunRecord,
  clock: Clock,
  loadScale: number,
  firstIndex: number,
  onProgress?: RunOptions["onProgress"],
): Promise<ReplaySummary> {
  const now = () => clock.now() * 1000;
  const { source, total } = traceSource(trace, loadScale);
  const label = `replay ${step.trace} at ${step.speed}x`;
  const totalShown = step.limit !== undefined && total !== undefined ? Math.min(total, step.limit) : (step.limit ?? total);
  let startMs = NaN;
  let t0 = 0;
  let index = firstIndex;
  const summary = await replayFrames(bounded(source, step.limit, step.durationMs), {
    clock,
    speed: step.speed,
    send: (frame) => {
      const sentAt = now();
      const t = frame.t ?? 0;
      if (Number.isNaN(startMs)) {
        startMs = sentAt;
        t0 = t;
      }
      const lost = target.send(frame);
      const r: RunRecord["replayed"][number] = { frame, index: index++, trace: step.trace, traceT: t, dueAt: startMs + ((t - t0) / step.speed) * 1000, sentAt };
      if (lost) r.lost = lost;
      rec.replayed.push(r);
      // The clock (host/replay/clock.ts) lets the event loop turn at least every 5 ms between frames, which
      // the simulated gateway needs at 4,000 frames/s (its Jacdac packets and announcements; docs/hil.md).
    },
    onProgress: (sent) => onProgress?.(label, sent, totalShown),
  });
  await target.flush();
  return summary;
}

async function runStep(step: Step, c: StepContext): Promise<void> {
  const { rec, now } = c;
  switch (step.kind) {
    case "replay": {
      const trace = c.sc.traces.get(step.trace)!;
      const summary = await replayTrace(trace, step, c.target, rec, c.clock, c.opts.loadScale ?? 1, c.replayIndex, c.opts.onProgress);
      c.replayIndex += summary.frames;
      const h = c.harness;
      // Several replay steps: keep the worst figures (the report states the harness's timing error once).
      h.framesSent += summary.frames;
      h.latenessP50 = Math.max(h.latenessP50, summary.lateness.p50 * 1000);
      h.latenessP99 = Math.max(h.latenessP99, summary.lateness.p99 * 1000);
      h.latenessMax = Math.max(h.latenessMax, summary.lateness.max * 1000);
      h.late += summary.late;
      h.drift = Math.max(h.drift, summary.drift * 1000);
      return;
    }
    case "wait":
      await new Promise((r) => setTimeout(r, step.ms));
      return;
    case "transmit": {
      const st = c.observer.lastStatus;
      const boot = st?.raw && typeof (st.raw as Record<string, unknown>).b === "number" ? ((st.raw as Record<string, unknown>).b as number) : undefined;
      const up = st?.counters.up;
      if (!st || boot === undefined || up === undefined) throw new VgwError("no status with boot id and uptime from the gateway yet: cannot address a transmit command");
      const exp = Math.round(up + (now() - st.at) + (step.expiresMs ?? 10_000));
      const cmd: RunRecord["commands"][number] = { ref: step.ref, frame: step.frame, sentAt: now() };
      rec.commands.push(cmd);
      await c.observer.command({ op: "tx", id: step.ref, boot, exp, frame: step.frame });
      return;
    }
    case "broker":
      if (step.action === "stop" || step.action === "restart") {
        await c.broker.stop();
        rec.faults.push({ at: now(), what: "broker stopped" });
      }
      if (step.action === "start" || step.action === "restart") {
        // Until the observer is back and subscribed, the gateway's link stays refused: what it publishes after the
        // broker returns must have someone listening, or the check would blame the gateway for the harness's delay.
        const mode = c.proxy.mode;
        const rate = c.proxy.bytesPerSecond;
        c.proxy.setMode("reset");
        await c.broker.start();
        await waitFor("the observer to reconnect to the restarted broker", () => c.observer.ready, 10_000);
        c.proxy.setMode(mode, rate || undefined);
        rec.faults.push({ at: now(), what: "broker started" });
      }
      return;
    case "link":
      c.proxy.setMode(step.mode, step.bytesPerSecond);
      rec.faults.push({ at: now(), what: `link ${step.mode}${step.bytesPerSecond ? ` ${step.bytesPerSecond} B/s` : ""}` });
      return;
    case "can":
      rec.faults.push({ at: now(), what: await c.target.fault(step.fault, step.frames) });
      return;
    case "gateway":
      if (step.action === "stop") {
        // The will may arrive while power-off is still tidying up: the clock starts when the power goes.
        rec.gatewayStoppedAt = now();
        await c.target.powerOff();
        rec.faults.push({ at: now(), what: "gateway powered off" });
      } else {
        const at = now();
        await c.target.powerOn();
        await waitFor("the gateway's online status after power-on", () => rec.statuses.some((s) => s.online && s.at >= at), ONLINE_TIMEOUT_MS);
        rec.faults.push({ at: now(), what: "gateway powered on" });
      }
      return;
  }
}

/** True when the status accounts for every frame the gateway received: nothing left in its open batch or outbox. */
function accountedFor(c: Record<string, number>): boolean {
  // `sonly`: frames that went only to signals (sigOnly), never into a frame batch
  const settled = (c.flt ?? 0) + (c.ds ?? 0) + (c.ack ?? 0) + (c.sonly ?? 0) + (c["drop.outbox"] ?? 0) + (c["drop.malformed"] ?? 0);
  return c.rx !== undefined && c.rx === settled && (c.ob ?? 0) === 0;
}

/**
 * Waits until the gateway has nothing left to deliver: its status (asked for every second) accounts for every frame
 * it received and the uplink has been quiet for a while. Bounded by SETTLE_MAX_MS: a gateway still reconnecting
 * after a fault gets that long. A gateway that is gone (last will) is only waited for to go quiet.
 */
async function settle(rec: RunRecord, observer: GatewayObserver, now: () => number): Promise<void> {
  const end = now() + SETTLE_MAX_MS;
  let count = rec.delivered.length;
  let quietSince = now();
  let askedAt = -Infinity;
  const gone = () => !rec.statuses[rec.statuses.length - 1]?.online;
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    if (rec.delivered.length !== count) {
      count = rec.delivered.length;
      quietSince = now();
    }
    const quiet = now() - quietSince >= SETTLE_QUIET_MS;
    const last = rec.statuses[rec.statuses.length - 1];
    if (quiet && (gone() || (last.at > askedAt && askedAt > -Infinity && accountedFor(last.counters)))) break;
    if (now() > end) {
      log.warn(`hil: the gateway did not settle within ${SETTLE_MAX_MS} ms (frames still unaccounted for); checking what arrived`);
      break;
    }
    if (!gone() && observer.ready && now() - askedAt >= 1000) {
      askedAt = now();
      await observer.command({ op: "status", id: "hil-settle" }).catch(() => undefined);
    }
  }
  if (gone() || !observer.ready) return;
  // The status the checks read: asked for after everything settled.
  const before = rec.statuses.length;
  await observer.command({ op: "status", id: "hil-final" });
  await waitFor("the final status", () => rec.statuses.length > before, 5000).catch((e: Error) => log.warn(`hil: ${e.message}`));
}
