/**
 * Checks: each expectation of a scenario against what the run recorded, as pass/fail with a message that names the
 * frame (ID, replay index, trace time) or the signal at fault. `analyse()` does the shared work once (which replayed
 * frames the gateway should forward, dedup by (boot, seq), matching delivered frames to replayed ones); each
 * expectation kind then has one checker.
 */
import { formatFrame, sameFrame, type Frame } from "../frame/frame";
import { frameKey, keyText } from "../can-db/frame-key";
import { SettingsModel } from "../can-db/gateway-settings";
import { admitsAny, type KeyFilter } from "../can-db/policy-filters";
import { percentile } from "../host/percentile";
import type { Expectation, Origin, Scenario, CounterExpectation } from "./scenario";
import type { DeliveredFrame, ReplayedFrame, RunRecord } from "./record";

export interface CheckResult {
  /** Short title, e.g. `delivery` or `latency p99 <= 200 ms`: the JUnit testcase name. */
  name: string;
  kind: Expectation["kind"];
  pass: boolean;
  /** One line: what was found. On failure it names the first frame or signal at fault. */
  message: string;
  /** Further lines (at most MAX_DETAILS), each naming one frame or signal. */
  details: string[];
  origin: Origin;
  metrics: Record<string, number>;
}

const MAX_DETAILS = 20;

/** A DBC decode of one frame, as the checks need it (the runner adapts can-db's decoder to this). */
export type SignalDecoder = (frame: Frame) => { message: string; signals: Record<string, number | string | bigint> } | undefined;

/** The matching of delivered frames to replayed ones, shared by every checker. */
export interface Analysis {
  /** Delivered frames (duplicate batches already dropped by the receiver). */
  unique: DeliveredFrame[];
  duplicateBatches: number;
  /** Missing sequence numbers per boot: `boot:seq`. */
  gaps: string[];
  /** Replayed frames the gateway must forward: they pass the accept filters and, for send-on-change IDs, changed. */
  forwarded: ReplayedFrame[];
  /** For each unique delivered frame (same index), the replayed frame it matches, or undefined. */
  matchOf: Array<ReplayedFrame | undefined>;
  /** Replayed index -> delivered frame. */
  deliveredOf: Map<number, DeliveredFrame>;
  /** Delivered frames that match no replayed frame, with the reason. */
  unexpected: Array<{ d: DeliveredFrame; why: string }>;
  /** Streams (see streamKey) the gateway downsamples: a subset of their frames is expected. */
  downsampled: Set<string>;
  latencies: number[];
  /** How late the harness handed frames to the bus (sentAt - dueAt), ms. */
  lateness: number[];
}

/** The gateway's matching key of a frame (can-db/frame-key.ts): what its filters and rate rules see. */
function keyOf(f: Frame): number {
  return frameKey(f.id, f.ext);
}

/**
 * One stream per (ID, kind, format), for matching delivered frames to replayed ones in order: the same ID as FD or
 * as remote frame is another stream, although the gateway's rules (by frame key) treat them alike.
 */
function streamKey(f: Frame): string {
  return `${keyOf(f)}${f.fd ? "f" : ""}${f.rtr ? "r" : ""}`;
}

function idText(f: Frame): string {
  return keyText(keyOf(f));
}

/** Whether the gateway, configured as the scenario says, forwards this frame at all. */
export function gatewayForwards(f: Frame, model: SettingsModel): boolean {
  return !f.err && model.accepts(keyOf(f)) && !model.signalsOnly(keyOf(f));
}

/** Minimum-interval downsampling keeps a timing-dependent subset: those IDs are checked as a subsequence. */
function isDownsampled(f: Frame, model: SettingsModel): boolean {
  return (model.rule(keyOf(f))?.interval ?? 0) > 0;
}

/** Send-on-change alone is exact: a frame is forwarded exactly when its data differs from the previous one. */
function isOnChangeOnly(f: Frame, model: SettingsModel): boolean {
  return (model.rule(keyOf(f))?.onChange ?? false) && !isDownsampled(f, model);
}

/** A frame inside the scope of a delivery expectation's `ids` (none: every frame). */
function inIds(f: Frame, ids: readonly KeyFilter[]): boolean {
  return ids.length === 0 || admitsAny(ids, keyOf(f));
}

function sameData(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function describeReplayed(r: ReplayedFrame): string {
  return `${idText(r.frame)} replay #${r.index} (${r.trace} t=${r.traceT.toFixed(6)} s)`;
}

export function analyse(rec: RunRecord, sc: Scenario): Analysis {
  // Duplicate batches were already dropped by the receiver (host/gateway/receiver.ts); its counts come with the record.
  const unique = rec.delivered;
  const gaps = rec.uplink.gaps;
  const g = new SettingsModel(sc.gateway.settings);
  // The firmware keeps the last forwarded data per frame key (firmware/src/filters.ts), whatever the frame's format.
  const lastData = new Map<number, Uint8Array>();
  const forwarded = rec.replayed.filter((r) => {
    if (r.lost || !gatewayForwards(r.frame, g)) return false;
    if (!isOnChangeOnly(r.frame, g)) return true;
    const k = keyOf(r.frame);
    const prev = lastData.get(k);
    lastData.set(k, r.frame.data);
    return prev === undefined || !sameData(prev, r.frame.data);
  });
  const byKey = new Map<string, ReplayedFrame[]>();
  const downsampled = new Set<string>();
  for (const r of forwarded) {
    const k = streamKey(r.frame);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(r);
    if (isDownsampled(r.frame, g)) downsampled.add(k);
  }
  const cursor = new Map<string, number>();
  const matchOf: Array<ReplayedFrame | undefined> = [];
  const deliveredOf = new Map<number, DeliveredFrame>();
  const unexpected: Analysis["unexpected"] = [];
  const latencies: number[] = [];
  for (const d of unique) {
    const k = streamKey(d.frame);
    const list = byKey.get(k);
    if (!list) {
      matchOf.push(undefined);
      const replayedAtAll = rec.replayed.some((r) => streamKey(r.frame) === k);
      unexpected.push({ d, why: replayedAtAll ? "the gateway's filters should have dropped it" : "this ID was never replayed" });
      continue;
    }
    // In order per ID: the next match is searched forward from the last one. Identical consecutive frames are
    // indistinguishable, so the earliest identical one is taken.
    let j = cursor.get(k) ?? 0;
    while (j < list.length && !sameFrame(list[j].frame, d.frame)) j++;
    if (j < list.length) {
      matchOf.push(list[j]);
      deliveredOf.set(list[j].index, d);
      latencies.push(d.receivedAt - list[j].sentAt);
      cursor.set(k, j + 1);
      continue;
    }
    matchOf.push(undefined);
    const before = list.slice(0, cursor.get(k) ?? 0).find((r) => sameFrame(r.frame, d.frame));
    unexpected.push({
      d,
      why: before
        ? `out of order or repeated: it matches ${describeReplayed(before)}, which is before an already delivered frame of this ID`
        : `its data matches no replayed frame of this ID (expected next: ${list[cursor.get(k) ?? 0] ? formatFrame(list[cursor.get(k) ?? 0].frame) : "nothing"})`,
    });
  }
  return {
    unique,
    duplicateBatches: rec.uplink.duplicates,
    gaps,
    forwarded,
    matchOf,
    deliveredOf,
    unexpected,
    downsampled,
    latencies: latencies.sort((a, b) => a - b),
    lateness: rec.replayed.map((r) => r.sentAt - r.dueAt).sort((a, b) => a - b),
  };
}

function result(e: Expectation, name: string, pass: boolean, message: string, details: string[] = [], metrics: Record<string, number> = {}): CheckResult {
  return { name, kind: e.kind, pass, message, details: details.slice(0, MAX_DETAILS), origin: e.origin, metrics };
}

function describeDelivered(d: DeliveredFrame): string {
  return `${idText(d.frame)} ${formatFrame(d.frame)} (batch ${d.boot}:${d.seq} record ${d.pos})`;
}

export function checkDelivery(e: Extract<Expectation, { kind: "delivery" }>, rec: RunRecord, sc: Scenario, a: Analysis): CheckResult {
  const inScope = (f: Frame) => inIds(f, e.ids);
  const name = e.ids.length ? `delivery of ${e.ids.map((f) => keyText(f.value)).join(", ")}` : "delivery";
  const details: string[] = [];
  const missing = a.forwarded.filter((r) => inScope(r.frame) && !a.downsampled.has(streamKey(r.frame)) && !a.deliveredOf.has(r.index));
  const unexpected = a.unexpected.filter((u) => inScope(u.d.frame));
  for (const u of unexpected.slice(0, 10)) details.push(`unexpected ${describeDelivered(u.d)}: ${u.why}`);
  // Group missing frames into runs so an outage reads as one line, not thousands.
  let runStart = 0;
  for (let i = 1; i <= missing.length && details.length < MAX_DETAILS; i++) {
    if (i === missing.length || missing[i].index !== missing[i - 1].index + 1) {
      const first = missing[runStart];
      const n = i - runStart;
      details.push(`missing ${formatFrame(first.frame)}: ${describeReplayed(first)}${n > 1 ? ` and the next ${n - 1} frame(s)` : ""}`);
      runStart = i;
    }
  }
  if (a.gaps.length) details.push(`sequence gaps (boot:seq): ${a.gaps.slice(0, 10).join(", ")}${a.gaps.length > 10 ? ` ... (${a.gaps.length})` : ""}`);
  const expected = a.forwarded.filter((r) => inScope(r.frame)).length;
  const delivered = a.unique.filter((d) => inScope(d.frame)).length;
  const metrics = {
    replayed: rec.replayed.length,
    expected,
    delivered,
    missing: missing.length,
    unexpected: unexpected.length,
    duplicateBatches: a.duplicateBatches,
    gaps: a.gaps.length,
  };
  const pass = missing.length <= e.maxLost && unexpected.length === 0 && (e.maxLost > 0 || a.gaps.length === 0) && expected > 0;
  let message: string;
  if (expected === 0) message = "no replayed frame passes the gateway's filters: nothing to check (is the scenario right?)";
  else if (pass) {
    message = `${delivered} of ${expected} forwarded frames arrived bit-exact and in order per ID` +
      (missing.length ? `, ${missing.length} lost (allowed ${e.maxLost})` : "") +
      (a.duplicateBatches ? `; ${a.duplicateBatches} duplicate batch(es) dropped` : "") +
      (a.gaps.length ? `; ${a.gaps.length} sequence gap(s)` : "");
  } else {
    const parts: string[] = [];
    if (missing.length > e.maxLost) parts.push(`${missing.length} of ${expected} frames missing (allowed ${e.maxLost}); first: ${describeReplayed(missing[0])}`);
    if (unexpected.length) parts.push(`${unexpected.length} unexpected frame(s); first: ${describeDelivered(unexpected[0].d)}: ${unexpected[0].why}`);
    if (a.gaps.length && e.maxLost === 0) parts.push(`${a.gaps.length} sequence gap(s), first ${a.gaps[0]}`);
    message = parts.join("; ");
  }
  return result(e, name, pass, message, details, metrics);
}

export function checkLatency(e: Extract<Expectation, { kind: "latency" }>, _rec: RunRecord, _sc: Scenario, a: Analysis): CheckResult {
  const bounds = [e.p99Ms !== undefined ? `p99 <= ${e.p99Ms} ms` : "", e.maxMs !== undefined ? `max <= ${e.maxMs} ms` : ""].filter(Boolean);
  const name = `latency ${bounds.join(", ")}`;
  const lat = a.latencies;
  if (lat.length === 0) return result(e, name, false, "no delivered frame matched a replayed one: no latency to measure");
  const p50 = percentile(lat, 50);
  const p99 = percentile(lat, 99);
  const max = lat[lat.length - 1];
  const metrics = { samples: lat.length, p50, p99, max };
  const fails: string[] = [];
  if (e.p99Ms !== undefined && p99 > e.p99Ms) fails.push(`p99 ${p99.toFixed(1)} ms > ${e.p99Ms} ms`);
  if (e.maxMs !== undefined && max > e.maxMs) fails.push(`max ${max.toFixed(1)} ms > ${e.maxMs} ms`);
  const details: string[] = [];
  if (fails.length) {
    // Name the slowest frames, so a failure points at a moment in the run.
    const worst = a.unique
      .map((d, i) => ({ d, r: a.matchOf[i] }))
      .filter((x) => x.r !== undefined)
      .sort((x, y) => y.d.receivedAt - y.r!.sentAt - (x.d.receivedAt - x.r!.sentAt))
      .slice(0, 5);
    for (const w of worst) details.push(`${describeReplayed(w.r!)} took ${(w.d.receivedAt - w.r!.sentAt).toFixed(1)} ms`);
  }
  const summary = `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${lat.length} frames`;
  return result(e, name, fails.length === 0, fails.length ? `${fails.join("; ")} (${summary}); slowest: ${details[0] ?? "?"}` : summary, details, metrics);
}

/** Intervals between consecutive delivered frames of one frame key, by the gateway's receive time when the payload has it. */
export function cycleIntervals(a: Analysis, key: number): Array<{ d: DeliveredFrame; interval: number }> {
  const out: Array<{ d: DeliveredFrame; interval: number }> = [];
  let prev: DeliveredFrame | undefined;
  for (const d of a.unique) {
    if (keyOf(d.frame) !== key) continue;
    if (prev) out.push({ d, interval: (d.deviceT ?? d.receivedAt) - (prev.deviceT ?? prev.receivedAt) });
    prev = d;
  }
  return out;
}

export function checkCycle(e: Extract<Expectation, { kind: "cycle" }>, _rec: RunRecord, _sc: Scenario, a: Analysis): CheckResult {
  const idStr = keyText(e.key);
  const name = `cycle time of ${idStr} = ${e.periodMs} ms ± ${e.toleranceMs} ms${e.maxOutsidePct ? ` (at most ${e.maxOutsidePct}% outside)` : ""}`;
  const iv = cycleIntervals(a, e.key);
  if (iv.length === 0) return result(e, name, false, `fewer than two frames of ${idStr} arrived: no cycle time to measure`);
  const sorted = iv.map((x) => x.interval).sort((x, y) => x - y);
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  const bad = iv.filter((x) => Math.abs(x.interval - e.periodMs) > e.toleranceMs);
  const metrics = { intervals: iv.length, mean, min: sorted[0], max: sorted[sorted.length - 1], p1: percentile(sorted, 1), p99: percentile(sorted, 99), outside: bad.length };
  const details = bad.slice(0, MAX_DETAILS).map((x) => `${describeDelivered(x.d)}: ${x.interval.toFixed(1)} ms after the previous one`);
  const summary = `mean ${mean.toFixed(1)} ms, min ${metrics.min.toFixed(1)}, max ${metrics.max.toFixed(1)} over ${iv.length} intervals`;
  const pass = bad.length <= (e.maxOutsidePct / 100) * iv.length;
  const outside = `${bad.length} of ${iv.length} intervals outside ${e.periodMs} ± ${e.toleranceMs} ms`;
  return result(e, name, pass, pass ? `${summary}${bad.length ? `; ${outside} (allowed ${e.maxOutsidePct}%)` : ""}` : `${outside}; first: ${details[0]} (${summary})`, details, metrics);
}

/**
 * Signals: the broker-side view of each signal (decode of the delivered frames, held until the next delivered one)
 * against the DBC decode of every replayed input frame. Exact delivery gives zero error; downsampling is judged by
 * how far the held value strays from the input, within the tolerances.
 */
export function checkSignals(e: Extract<Expectation, { kind: "signals" }>, rec: RunRecord, sc: Scenario, a: Analysis, decode: SignalDecoder): CheckResult {
  const tol = e.tolerance;
  const rel = e.relTolerance;
  const name = `signals${e.messages.length ? ` of ${e.messages.join(", ")}` : ""} within ±${tol}${rel ? ` and ${rel * 100}%` : ""}`;
  const held = new Map<string, Record<string, number | string | bigint>>();
  let compared = 0;
  let worst = 0;
  const details: string[] = [];
  let failures = 0;
  const messages = new Set<string>();
  const model = new SettingsModel(sc.gateway.settings);
  for (const r of rec.replayed) {
    if (r.lost || !gatewayForwards(r.frame, model)) continue;
    const d = a.deliveredOf.get(r.index);
    const k = streamKey(r.frame);
    if (d) {
      const dec = decode(d.frame);
      if (dec) held.set(k, dec.signals);
    }
    const input = decode(r.frame);
    if (!input || (e.messages.length && !e.messages.includes(input.message))) continue;
    messages.add(input.message);
    const view = held.get(k);
    if (!view) continue; // nothing delivered yet for this message: the broker has no value to compare
    for (const [sig, v] of Object.entries(input.signals)) {
      if (!(sig in view)) continue;
      const got = view[sig];
      compared++;
      let ok: boolean;
      let dev = 0;
      if (typeof v === "number" && typeof got === "number") {
        dev = Math.abs(got - v);
        ok = dev <= tol + rel * Math.abs(v) + 1e-9 * Math.abs(v);
      } else ok = String(v) === String(got);
      if (dev > worst) worst = dev;
      if (!ok) {
        failures++;
        if (details.length < MAX_DETAILS) details.push(`${input.message}.${sig} at ${describeReplayed(r)}: input ${String(v)}, broker ${String(got)}${typeof v === "number" ? ` (off by ${dev.toPrecision(4)})` : ""}`);
      }
    }
  }
  const metrics = { compared, failures, worstDeviation: worst, messages: messages.size };
  if (compared === 0) return result(e, name, false, "no signal could be compared: no delivered frame of a DBC message (check 'messages' and the filters)", [], metrics);
  return result(
    e,
    name,
    failures === 0,
    failures ? `${failures} of ${compared} signal values out of tolerance; first: ${details[0]}` : `${compared} signal values of ${messages.size} message(s) agree (worst deviation ${worst.toPrecision(3)})`,
    details,
    metrics,
  );
}

/**
 * Signals from the gateway (`from: gateway`): every `P/signals` sample of a signal must equal, within the tolerances,
 * the DBC decode of a replayed input frame of its message, in order (sample k+1 comes from a later frame than sample
 * k); each signal that had input was published at least once (its first sample); and the rules held between
 * consecutive samples of a boot: at least `minInt` apart, and for on-change signals a change beyond the deadbands,
 * unless the heartbeat was due.
 */
export function checkGatewaySignals(e: Extract<Expectation, { kind: "signals" }>, rec: RunRecord, sc: Scenario, decode: SignalDecoder): CheckResult {
  const table = sc.gateway.signals!.table;
  const tol = e.tolerance;
  const rel = e.relTolerance;
  const name = `gateway signals${e.messages.length ? ` of ${e.messages.join(", ")}` : ""} within ±${tol}${rel ? ` and ${rel * 100}%` : ""}, rules respected`;
  const model = new SettingsModel(sc.gateway.settings);
  const details: string[] = [];
  let failures = 0;
  let compared = 0;
  const fail = (text: string) => {
    failures++;
    if (details.length < MAX_DETAILS) details.push(text);
  };
  // inputs per signal index, decoded once per frame
  const inputs = new Map<number, Array<{ v: number; r: (typeof rec.replayed)[number] }>>();
  const indices = table.rows.map((_, i) => i).filter((i) => !e.messages.length || e.messages.includes(table.info[i]?.message ?? ""));
  for (const r of rec.replayed) {
    // signals are extracted from every frame the accept filters pass, sigOnly or not
    if (r.lost || r.frame.err || !model.accepts(keyOf(r.frame))) continue;
    const d = decode(r.frame);
    if (!d) continue;
    for (const i of indices) {
      const info = table.info[i];
      const v = info && info.message === d.message ? d.signals[info.signal] : undefined;
      if (typeof v === "number") (inputs.get(i) ?? inputs.set(i, []).get(i)!).push({ v, r });
    }
  }
  for (const i of indices) {
    const ins = inputs.get(i) ?? [];
    const samples = rec.signals.filter((x) => x.i === i);
    const sig = table.name(i);
    if (ins.length && !samples.length) fail(`${sig}: ${ins.length} input frames, no sample published (the first one always is)`);
    let j = 0;
    for (const s of samples) {
      const v = s.value as number;
      while (j < ins.length && !(Math.abs(ins[j].v - v) <= tol + rel * Math.abs(ins[j].v) + 1e-9 * Math.abs(v))) j++;
      compared++;
      if (j >= ins.length) {
        fail(`${sig}: sample ${v} (raw ${s.raw}, gateway t ${s.deviceT} ms, batch ${s.boot?.toString(16)}:${s.seq}) matches no later replayed input`);
        j = 0;
      } else j++;
    }
    const [, , , flags, fNum, , oNum, minInt, heartbeat, deadband, relPm] = table.rows[i];
    for (let k = 1; k < samples.length; k++) {
      const p = samples[k - 1];
      const q = samples[k];
      if (p.boot !== q.boot) continue; // a reboot starts the rules afresh
      const dt = q.deviceT! - p.deviceT!;
      if (heartbeat > 0 && dt >= heartbeat) continue;
      const at = `${sig} at gateway t ${q.deviceT} ms (batch ${q.boot?.toString(16)}:${q.seq})`;
      if (dt < minInt) fail(`${at}: ${dt} ms after the previous sample, minimum interval ${minInt} ms`);
      if (flags & 4) {
        const d = Math.abs(q.raw! - p.raw!);
        if (d <= deadband) fail(`${at}: raw ${p.raw} -> ${q.raw} is within the deadband ${deadband}`);
        else if (relPm > 0 && d * Math.abs(fNum) * 1000 <= relPm * Math.abs(p.raw! * fNum + oNum)) fail(`${at}: raw ${p.raw} -> ${q.raw} is within the relative deadband ${relPm / 10}%`);
      }
    }
  }
  const metrics = { compared, failures, signals: indices.length };
  if (compared === 0) return result(e, name, false, "no gateway signal sample arrived (is the table deployed, and do the messages reach the gateway?)", details, metrics);
  return result(e, name, failures === 0, failures ? `${failures} problems in ${compared} samples; first: ${details[0]}` : `${compared} samples of ${indices.length} signals agree with the replayed frames and the rules`, details, metrics);
}

export function checkCommand(e: Extract<Expectation, { kind: "command" }>, rec: RunRecord): CheckResult {
  const cmd = rec.commands.find((c) => c.ref === e.ref && c.frame);
  const frameText = cmd?.frame ? formatFrame(cmd.frame) : "?";
  const name = `command ${e.ref} (${frameText}) ${e.outcome === "transmitted" ? `on the bus within ${e.withinMs} ms` : "refused"}`;
  if (!cmd) return result(e, name, false, `command '${e.ref}' was never sent (did the run stop early?)`);
  const onBus = rec.transmitted.filter((t) => t.at >= cmd.sentAt && sameFrame(t.frame, cmd.frame!));
  const resultText = cmd.result ? `result ${cmd.result.ok ? "ok" : `refused: ${cmd.result.reason ?? "?"}`}` : "no result";
  const metrics: Record<string, number> = { onBus: onBus.length };
  if (cmd.result) metrics.resultMs = cmd.result.at - cmd.sentAt;
  if (e.outcome === "transmitted") {
    const first = onBus[0];
    if (first) metrics.busMs = first.at - cmd.sentAt;
    const pass = first !== undefined && first.at - cmd.sentAt <= e.withinMs && cmd.result?.ok !== false;
    const msg = first
      ? `${frameText} appeared on the bus ${(first.at - cmd.sentAt).toFixed(1)} ms after the command (${resultText})`
      : `${frameText} never appeared on the bus (${resultText})`;
    return result(e, name, pass, pass ? msg : `${msg}; expected within ${e.withinMs} ms`, [], metrics);
  }
  const reasonOk = e.reason === undefined || (cmd.result?.reason ?? "").includes(e.reason);
  const refused = cmd.result !== undefined && !cmd.result.ok;
  const pass = refused && reasonOk && onBus.length === 0;
  const parts: string[] = [];
  if (onBus.length) parts.push(`${frameText} reached the bus ${onBus.length} time(s) although it must be refused`);
  if (!cmd.result) parts.push("the gateway sent no result");
  else if (cmd.result.ok) parts.push("the gateway reported it as done");
  else if (!reasonOk) parts.push(`refused with '${cmd.result.reason}', expected a reason containing '${e.reason}'`);
  return result(e, name, pass, pass ? `refused with '${cmd.result!.reason}', never on the bus` : parts.join("; "), [], metrics);
}

/** Counter names of the status map flattened: `rx`, `drop.outbox`, `can.0`... */
export function flattenCounters(raw: unknown, prefix = "", out: Record<string, number> = {}): Record<string, number> {
  if (raw && typeof raw === "object") {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (typeof v === "number") out[name] = v;
      else if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) flattenCounters(v, name, out);
    }
  }
  return out;
}

export function checkStatus(e: Extract<Expectation, { kind: "status" }>, rec: RunRecord, _sc: Scenario, a: Analysis): CheckResult {
  const name = `status counters ${Object.keys(e.counters).join(", ")}`;
  const last = [...rec.statuses].reverse().find((s) => s.online);
  if (!last) return result(e, name, false, "the gateway published no online status");
  const measured: Record<Exclude<CounterExpectation, number>, number> = {
    replayed: rec.replayed.length,
    forwarded: a.forwarded.length,
    delivered: a.unique.length,
    positive: 1,
  };
  const details: string[] = [];
  const metrics: Record<string, number> = {};
  for (const [counter, want] of Object.entries(e.counters)) {
    const got = last.counters[counter];
    if (got !== undefined) metrics[counter] = got;
    if (got === undefined) {
      details.push(`${counter}: not in the status (has: ${Object.keys(last.counters).join(", ")})`);
    } else if (want === "positive") {
      if (!(got > 0)) details.push(`${counter} = ${got}, expected > 0`);
    } else {
      const expected = typeof want === "number" ? want : measured[want];
      if (got !== expected) details.push(`${counter} = ${got}, expected ${expected}${typeof want === "string" ? ` (${want})` : ""}`);
    }
  }
  const shown = Object.keys(e.counters).map((k) => `${k}=${last.counters[k]}`).join(", ");
  return result(e, name, details.length === 0, details.length ? `${details.join("; ")} (last status, ${((last.at - rec.startedAt) / 1000).toFixed(2)} s into the run)` : shown, details, metrics);
}

export function checkLastWill(e: Extract<Expectation, { kind: "lastWill" }>, rec: RunRecord): CheckResult {
  const name = `last will within ${e.withinMs} ms of the gateway vanishing`;
  if (rec.gatewayStoppedAt === undefined) return result(e, name, false, "the scenario never stopped the gateway (add a step 'gateway: stop')");
  const will = rec.statuses.find((s) => !s.online && s.at >= rec.gatewayStoppedAt!);
  if (!will) return result(e, name, false, "no offline status arrived after the gateway stopped");
  const ms = will.at - rec.gatewayStoppedAt;
  return result(e, name, ms <= e.withinMs, `offline status ${ms.toFixed(0)} ms after the gateway stopped${ms > e.withinMs ? `, later than ${e.withinMs} ms` : ""}`, [], { ms });
}

/** Runs every expectation of the scenario; the order of results is the order in the file. */
export function checkAll(rec: RunRecord, sc: Scenario, decode?: SignalDecoder): { analysis: Analysis; results: CheckResult[] } {
  const a = analyse(rec, sc);
  const results = sc.expectations.map((e): CheckResult => {
    switch (e.kind) {
      case "delivery":
        return checkDelivery(e, rec, sc, a);
      case "latency":
        return checkLatency(e, rec, sc, a);
      case "cycle":
        return checkCycle(e, rec, sc, a);
      case "signals":
        if (!decode) return result(e, "signals", false, "no DBC decoder available for this run");
        return e.from === "gateway" ? checkGatewaySignals(e, rec, sc, decode) : checkSignals(e, rec, sc, a, decode);
      case "command":
        return checkCommand(e, rec);
      case "status":
        return checkStatus(e, rec, sc, a);
      case "lastWill":
        return checkLastWill(e, rec);
    }
  });
  return { analysis: a, results };
}
