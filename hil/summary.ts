/**
 * From a run's outcome to what people read: the report data (headline metrics and plot series, rendered by
 * report.ts) and the concise console summary of `vgw hil run`.
 */
import { percentile } from "../host/percentile";
import { frameKey, keyText } from "../can-db/frame-key";
import { cycleIntervals, type Analysis } from "./checks";
import type { RunOutcome } from "./runner";
import { latencyHistogram, type Plot, type ScenarioReport, type Series } from "./report";

/** At most this many signals and IDs get a plot each, so a report over a big DBC stays readable. */
const MAX_SIGNAL_PLOTS = 4;
const MAX_CYCLE_IDS = 4;

export function scenarioReport(o: RunOutcome, startedAtEpochMs: number): ScenarioReport {
  const rec = o.record;
  const a = o.analysis;
  const t0 = rec.startedAt;
  const sec = (ms: number) => (ms - t0) / 1000;
  const metrics: Record<string, number> = {
    "frames replayed": rec.replayed.length,
    "frames lost to injected controller faults": rec.replayed.filter((r) => r.lost).length,
    "frames expected upstream": a?.forwarded.length ?? 0,
    "frames delivered": rec.delivered.length,
    "duplicate batches dropped": rec.uplink.duplicates,
    "sequence gaps": rec.uplink.gaps.length,
    "undecodable messages": rec.undecodable.length,
  };
  if (a && a.latencies.length) {
    metrics["latency p50 ms"] = percentile(a.latencies, 50);
    metrics["latency p99 ms"] = percentile(a.latencies, 99);
    metrics["latency max ms"] = a.latencies[a.latencies.length - 1];
  }
  // The harness's own timing error: how late the replay scheduler handed frames to the gateway's wire.
  metrics["harness timing error p50 ms"] = o.harness.latenessP50;
  metrics["harness timing error p99 ms"] = o.harness.latenessP99;
  metrics["harness timing error max ms"] = o.harness.latenessMax;
  metrics["harness frames later than 1 ms"] = o.harness.late;
  for (const [k, v] of Object.entries(rec.harness)) metrics[k] = v;
  // The gateway's own view at the end: its last online status, every counter.
  const last = [...rec.statuses].reverse().find((s) => s.online);
  if (last) for (const [k, v] of Object.entries(last.counters)) metrics[`gateway status ${k}`] = v;

  const plots: Plot[] = [];
  if (a) {
    plots.push(...cyclePlots(o, a, sec));
    plots.push(...signalPlots(o, a, sec));
  }
  plots.push(counterPlot(o, sec));
  return {
    name: o.scenario.name,
    file: o.scenario.file,
    description: o.scenario.description,
    target: o.record.target,
    startedAt: new Date(startedAtEpochMs).toISOString(),
    durationMs: rec.endedAt - rec.startedAt,
    pass: o.pass,
    error: o.error,
    results: o.results,
    metrics,
    histograms: a && a.latencies.length ? [latencyHistogram(a.latencies)] : [],
    plots,
  };
}

function cyclePlots(o: RunOutcome, a: Analysis, sec: (ms: number) => number): Plot[] {
  const keys: number[] = o.scenario.expectations.flatMap((e) => (e.kind === "cycle" ? [e.key] : []));
  if (keys.length === 0) {
    // No cycle expectation: show the busiest IDs, which is what a reader looks for first.
    const counts = new Map<number, number>();
    for (const d of a.unique) {
      const k = frameKey(d.frame.id, d.frame.ext);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    keys.push(...[...counts.entries()].sort((x, y) => y[1] - x[1]).slice(0, 2).map(([k]) => k));
  }
  const series: Series[] = keys.slice(0, MAX_CYCLE_IDS).map((k) => ({
    name: keyText(k),
    points: cycleIntervals(a, k).map((x): [number, number] => [sec(x.d.receivedAt), x.interval]),
  }));
  return series.length ? [{ title: "cycle time at the broker (gateway receive times)", xLabel: "s into the run", yLabel: "interval ms", series, style: "points" }] : [];
}

function signalPlots(o: RunOutcome, a: Analysis, sec: (ms: number) => number): Plot[] {
  const decode = o.decode;
  if (!decode) return [];
  const wanted = o.scenario.expectations.flatMap((e) => (e.kind === "signals" ? e.messages : []));
  const input = new Map<string, Array<[number, number]>>();
  const delivered = new Map<string, Array<[number, number]>>();
  const add = (m: Map<string, Array<[number, number]>>, key: string, x: number, v: unknown) => {
    if (typeof v !== "number") return;
    if (!m.has(key)) {
      if (m.size >= MAX_SIGNAL_PLOTS * 4) return;
      m.set(key, []);
    }
    m.get(key)!.push([x, v]);
  };
  for (const r of o.record.replayed) {
    const d = decode(r.frame);
    if (!d || (wanted.length && !wanted.includes(d.message))) continue;
    for (const [s, v] of Object.entries(d.signals)) add(input, `${d.message}.${s}`, sec(r.sentAt), v);
  }
  for (const d of a.unique) {
    const dec = decode(d.frame);
    if (!dec || (wanted.length && !wanted.includes(dec.message))) continue;
    for (const [s, v] of Object.entries(dec.signals)) add(delivered, `${dec.message}.${s}`, sec(d.receivedAt), v);
  }
  // Prefer signals that change: a constant signal says nothing about downsampling.
  const names = [...input.keys()].sort((x, y) => distinct(input.get(y)!) - distinct(input.get(x)!)).slice(0, MAX_SIGNAL_PLOTS);
  return names.map((name) => ({
    title: `signal ${name}: input vs delivered`,
    xLabel: "s into the run",
    yLabel: name.split(".").pop()!,
    style: "step" as const,
    series: [
      { name: "input (DBC decode of replayed frames)", points: input.get(name)! },
      { name: "delivered (decode at the broker)", points: delivered.get(name) ?? [] },
    ],
  }));
}

function distinct(points: Array<[number, number]>): number {
  return new Set(points.slice(0, 2000).map((p) => p[1])).size;
}

function counterPlot(o: RunOutcome, sec: (ms: number) => number): Plot {
  const series: Series[] = [];
  const rec = o.record;
  // Replayed and delivered as running totals, plus the gateway's own counters from its status messages.
  series.push({ name: "replayed (harness)", points: runningTotal(rec.replayed.map((r) => sec(r.sentAt))) });
  series.push({ name: "delivered (broker)", points: runningTotal(rec.delivered.map((d) => sec(d.receivedAt))) });
  for (const key of ["rx", "ack", "drop.outbox", "drop.ctrl"]) {
    const pts = rec.statuses.filter((s) => s.online && s.counters[key] !== undefined).map((s): [number, number] => [sec(s.at), s.counters[key]]);
    if (pts.some((p) => p[1] > 0)) series.push({ name: `status ${key}`, points: pts });
  }
  return { title: "counters over the run", xLabel: "s into the run", yLabel: "frames", series, style: "step" };
}

/** Running count over event times, thinned to about 500 points. */
function runningTotal(times: number[]): Array<[number, number]> {
  const stride = Math.max(1, Math.ceil(times.length / 500));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < times.length; i += stride) out.push([times[i], i + 1]);
  if (times.length) out.push([times[times.length - 1], times.length]);
  return out;
}

/** The console summary: one line per expectation, failures with their first details. */
export function consoleSummary(reports: ScenarioReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`${r.pass ? "PASS" : "FAIL"}  ${r.name}  (${r.target}, ${(r.durationMs / 1000).toFixed(1)} s, ${r.file})`);
    if (r.error) lines.push(`      run error: ${r.error}`);
    for (const c of r.results) {
      lines.push(`  ${c.pass ? "ok  " : "FAIL"}  ${c.name}: ${c.message}`);
      if (!c.pass) for (const d of c.details.slice(0, 5)) lines.push(`          ${d}`);
    }
    const m = r.metrics;
    lines.push(
      `      frames: ${m["frames replayed"]} replayed, ${m["frames delivered"]} delivered; harness timing error p99 ${m["harness timing error p99 ms"].toFixed(3)} ms, max ${m["harness timing error max ms"].toFixed(3)} ms`,
    );
  }
  const failed = reports.filter((r) => !r.pass).length;
  lines.push(`${reports.length - failed} of ${reports.length} scenario(s) passed`);
  return lines.join("\n");
}
