/**
 * Scenario files: what a HIL run replays, which faults it injects, and what it expects to see at the broker.
 *
 * A scenario is YAML (docs/hil.md has the full reference):
 *
 *   name: lossless delivery
 *   dbc: ../../test/fixtures/dbc/motohawk.dbc        # paths are relative to the scenario file
 *   traces: { drive: ../../test/fixtures/hil/drive.log }
 *   gateway: { filters: [{ id: 0x1F0, mask: 0x7FF }], minInterval: { 0x18FEF100x: 100ms }, allow: [{ id: 0x321 }] }
 *   steps:
 *     - replay: drive
 *       speed: 10
 *     - wait: 500ms
 *   expect:
 *     - delivery: {}
 *     - latency: { p99: 200ms }
 *
 * The loader walks the YAML syntax tree itself rather than validating a plain object, because every error must name
 * the file, the line and the key at fault, and only the tree still knows where each value came from (yaml's
 * LineCounter turns offsets into lines). Everything it returns is checked; the runner never re-validates.
 *
 * CAN IDs are read as the gateway's frame keys (can-db/frame-key.ts): `0x123` is the 11-bit ID, `0x123x` (or
 * `{ id: 0x123, ext: true }`) the 29-bit one; the kind is always written, never guessed from the ID's size. The
 * `gateway:` section is compiled into the firmware's own settings (can-db/gateway-settings.ts), which the run deploys
 * and the checks model.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node, type Pair } from "yaml";
import { VgwError } from "../frame/errors";
import { CAN_EFF_MASK, CAN_SFF_MASK, parseFrame, type Frame } from "../frame/frame";
import { EXT_BIT, frameKey } from "../can-db/frame-key";
import { MAX_FILTERS, MAX_RULES, MAX_TX_RATE, policySettings, type PolicySettings, type RateRule } from "../can-db/gateway-settings";
import type { KeyFilter } from "../can-db/policy-filters";
import { EcuConfigError, loadEcuConfig, type EcuConfig } from "../host/diag/ecu-sim";
import { SettingsModel } from "../can-db/gateway-settings";
import { compilePolicy } from "../can-db/policy";
import { loadPolicyFile } from "../can-db/policy-file";
import { loadDbcFile } from "../can-db/load";
import { SignalTable } from "../host/gateway/signals";

/** A scenario file that cannot be run as written: `file:line: key: reason`. */
export class ScenarioError extends VgwError {
  constructor(
    readonly reason: string,
    readonly file: string,
    readonly line: number,
    readonly key: string,
  ) {
    super(`${file}:${line}: ${key ? `${key}: ` : ""}${reason}`);
  }
}

/** Where a step or expectation was written, so results can point back at it. */
export interface Origin {
  file: string;
  line: number;
}

/**
 * The scenario's `gateway:` section: accept filters, downsampling and the transmit allowlist compiled into the
 * firmware's settings (filters and rules are sent as commands, the allowlist deployed; the checks model `settings`).
 * `txRate` 0 means the scenario gave no rate and the firmware keeps its default. Keys the harness does not
 * interpret travel to the firmware unchanged in `extra`.
 */
export interface ScenarioGateway {
  settings: PolicySettings;
  /** Other firmware settings, passed through as written. */
  extra: Record<string, unknown>;
  /**
   * `signals: policy.yaml`: the policy whose `signals:` section (docs/policy.md) is compiled with the scenario's DBC
   * into sigTable/sigOnly (deployed as settings); the observer decodes `P/signals` with this table.
   */
  signals?: { policy: string; table: SignalTable };
}

/** A trace to replay: a file (any format the trace registry reads), or a synthetic load the harness generates. */
export interface TraceRef {
  name: string;
  path?: string;
  synthetic?: SyntheticLoad;
  origin: Origin;
}

/** A generated bus load: `keys` periodic messages sharing `rate` frames/s for `durationMs`, data changing every frame. */
export interface SyntheticLoad {
  rate: number;
  durationMs: number;
  /** The frames' IDs, as frame keys. */
  keys: number[];
  fd: boolean;
  /** Frame key -> n: that ID's data changes only every n of its frames (others: every frame). */
  hold: Map<number, number>;
}

export type Step =
  | { kind: "replay"; trace: string; speed: number; limit?: number; durationMs?: number; origin: Origin }
  | { kind: "wait"; ms: number; origin: Origin }
  | { kind: "transmit"; ref: string; frame: Frame; expiresMs?: number; origin: Origin }
  | { kind: "broker"; action: "stop" | "start" | "restart"; origin: Origin }
  | { kind: "link"; mode: LinkMode; bytesPerSecond?: number; origin: Origin }
  | { kind: "can"; fault: CanFault; frames: number; origin: Origin }
  | { kind: "gateway"; action: "stop" | "start"; origin: Origin };

export type LinkMode = "pass" | "drop" | "stall" | "slow" | "reset";
export type CanFault = "overflow" | "report-loss" | "bus-off" | "recover";

export type Expectation =
  | { kind: "delivery"; ids: KeyFilter[]; maxLost: number; origin: Origin }
  | { kind: "signals"; messages: string[]; tolerance: number; relTolerance: number; from: "frames" | "gateway"; origin: Origin }
  | { kind: "latency"; p99Ms?: number; maxMs?: number; origin: Origin }
  | { kind: "cycle"; key: number; periodMs: number; toleranceMs: number; maxOutsidePct: number; origin: Origin }
  | { kind: "command"; ref: string; outcome: "transmitted" | "refused"; withinMs: number; reason?: string; origin: Origin }
  | { kind: "status"; counters: Record<string, CounterExpectation>; origin: Origin }
  | { kind: "lastWill"; withinMs: number; origin: Origin };

/** A status counter compared with a number, or with a quantity the harness measured itself. */
export type CounterExpectation = number | "replayed" | "forwarded" | "delivered" | "positive";

export interface Scenario {
  file: string;
  name: string;
  description: string;
  target?: "sim" | "board";
  dbc?: string;
  traces: Map<string, TraceRef>;
  gateway: ScenarioGateway;
  broker: { kind: "aedes" | "mosquitto" | "url"; url?: string };
  steps: Step[];
  expectations: Expectation[];
  /** Simulated ECUs on the gateway's CAN wire (`ecu: FILE`, host/diag/ecu-sim.ts's configuration). */
  ecu?: { file: string; configs: EcuConfig[] };
}

/** Reads and validates a scenario file; throws ScenarioError naming file, line and key. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ScenarioError(`cannot read: ${(e as Error).message}`, file, 0, "");
  }
  return parseScenario(text, file);
}

/** Validates scenario text; `file` names it in errors and anchors relative paths. */
export function parseScenario(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const cx = new Context(file, lines);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ScenarioError(`YAML syntax: ${e.message.split("\n")[0]}`, file, lines.linePos(e.pos[0]).line, "");
  }
  const root = cx.map(doc.contents as Node | null, "", ["name", "description", "target", "dbc", "traces", "gateway", "broker", "ecu", "steps", "expect"]);
  const dir = path.dirname(path.resolve(file));

  const traces = new Map<string, TraceRef>();
  const tracesNode = root.get("traces");
  if (tracesNode) {
    for (const pair of cx.pairs(tracesNode, "traces")) {
      const name = cx.keyName(pair, "traces");
      const key = `traces.${name}`;
      const v = pair.value as Node;
      const origin = cx.origin(pair.key as Node);
      if (isMap(v)) traces.set(name, { name, synthetic: syntheticLoad(cx, v, key), origin });
      else traces.set(name, { name, path: cx.existingFile(v, key, dir), origin });
    }
  }

  const pendingSignals: PendingSignals = {};
  const scenario: Scenario = {
    file,
    name: root.has("name") ? cx.str(root.get("name")!, "name") : path.basename(file, path.extname(file)),
    description: root.has("description") ? cx.str(root.get("description")!, "description") : "",
    traces,
    gateway: root.has("gateway") ? gatewaySection(cx, root.get("gateway")!, dir, pendingSignals) : defaultGateway(),
    broker: root.has("broker") ? brokerSpec(cx, root.get("broker")!) : { kind: "aedes" },
    steps: [],
    expectations: [],
  };
  if (root.has("target")) scenario.target = cx.oneOf(root.get("target")!, "target", ["sim", "board"] as const);
  if (root.has("dbc")) scenario.dbc = cx.existingFile(root.get("dbc")!, "dbc", dir);
  if (pendingSignals.value) scenario.gateway.signals = compileSignalPolicy(cx, pendingSignals.value, scenario);
  if (root.has("ecu")) {
    const file = cx.existingFile(root.get("ecu")!, "ecu", dir);
    try {
      scenario.ecu = { file, configs: loadEcuConfig(file) };
    } catch (e) {
      // The ECU file's own error already names its file, line and key.
      if (e instanceof EcuConfigError) throw cx.error(root.get("ecu")!, "ecu", e.message);
      throw e;
    }
  }

  const stepsNode = root.get("steps");
  if (!stepsNode) throw cx.error(doc.contents as Node, "", "missing 'steps': a scenario must do something");
  const refs = new Set<string>();
  cx.items(stepsNode, "steps").forEach((node, i) => {
    const step = parseStep(cx, node, `steps[${i}]`, traces);
    if (step.kind === "transmit") {
      if (refs.has(step.ref)) throw cx.error(node, `steps[${i}].as`, `command name '${step.ref}' is used twice`);
      refs.add(step.ref);
    }
    scenario.steps.push(step);
  });

  const expectNode = root.get("expect");
  if (!expectNode) throw cx.error(doc.contents as Node, "", "missing 'expect': a scenario without expectations cannot fail");
  cx.items(expectNode, "expect").forEach((node, i) => {
    const exp = parseExpectation(cx, node, `expect[${i}]`, scenario);
    if (exp.kind === "command" && !refs.has(exp.ref)) {
      throw cx.error(node, `expect[${i}].command`, `no transmit step is named '${exp.ref}' (name one with 'as: ${exp.ref}')`);
    }
    scenario.expectations.push(exp);
  });
  return scenario;
}

function syntheticLoad(cx: Context, node: Node, key: string): SyntheticLoad {
  const outer = cx.map(node, key, ["synthetic"]);
  const at = `${key}.synthetic`;
  const m = cx.map(outer.get("synthetic") ?? cx.missing(node, key, "synthetic"), at, ["rate", "duration", "ids", "fd", "hold"]);
  const load: SyntheticLoad = {
    rate: cx.positive(m.get("rate") ?? cx.missing(node, at, "rate"), `${at}.rate`),
    durationMs: cx.duration(m.get("duration") ?? cx.missing(node, at, "duration"), `${at}.duration`),
    keys: m.has("ids") ? cx.items(m.get("ids")!, `${at}.ids`).map((n, i) => cx.frameIdEntry(n, `${at}.ids[${i}]`)) : [],
    fd: m.has("fd") ? cx.bool(m.get("fd")!, `${at}.fd`) : false,
    hold: new Map(),
  };
  if (m.has("hold")) {
    for (const p of cx.pairs(m.get("hold")!, `${at}.hold`)) {
      const k = `${at}.hold.${cx.keyText(p)}`;
      const n = cx.count(p.value as Node, k);
      if (n < 1) throw cx.error(p.value as Node, k, "must be at least 1 frame");
      load.hold.set(cx.frameIdKey(p, `${at}.hold`), n);
    }
  }
  if (load.keys.length === 0) for (let i = 0; i < 16; i++) load.keys.push(0x100 + i * 0x10);
  return load;
}

/** A scenario without a `gateway:` section: every frame forwarded, nothing downsampled, no transmit allowed. */
export function defaultGateway(): ScenarioGateway {
  return { settings: policySettings({ filters: [], rules: [], txAllow: [], txRate: 0 }), extra: {} };
}

/**
 * Compiles the `gateway:` section into the firmware's settings. Per frame key, minInterval and onChange make one rate
 * rule; the firmware holds one transmit rate for every ID, so the lowest `rate` of the allowlist is it.
 */
/**
 * The signal table of `gateway.signals`: the policy's `signals:` section against the scenario's DBC. Its messages must
 * pass the scenario's accept filters, or the gateway would never see them.
 */
function compileSignalPolicy(cx: Context, p: { node: Node; path: string }, sc: Scenario): { policy: string; table: SignalTable } {
  if (!sc.dbc) throw cx.error(p.node, "gateway.signals", "a signal table needs a 'dbc' at the top of the scenario");
  let compiled;
  try {
    compiled = compilePolicy(loadPolicyFile(p.path), loadDbcFile(sc.dbc));
  } catch (e) {
    throw cx.error(p.node, "gateway.signals", (e as Error).message);
  }
  if (!compiled.signals.length) throw cx.error(p.node, "gateway.signals", `${p.path} has no signals section`);
  const model = new SettingsModel(sc.gateway.settings);
  const blocked = compiled.signals.find((x) => !model.accepts(x.key));
  if (blocked) throw cx.error(p.node, "gateway.signals", `${blocked.message.name} has signals in the table but the scenario's filters do not admit it`);
  sc.gateway.extra.sigTable = compiled.settings.sigTable;
  sc.gateway.extra.sigOnly = compiled.settings.sigOnly;
  // the checks model the gateway from its settings: sigOnly frames never reach the frame uplink
  sc.gateway.settings.sigTable = compiled.settings.sigTable;
  sc.gateway.settings.sigOnly = compiled.settings.sigOnly;
  return { policy: p.path, table: SignalTable.fromPolicy(compiled) };
}

/** `gateway.signals` as written: compiled once the scenario's DBC is known (it may come later in the file). */
interface PendingSignals {
  value?: { node: Node; path: string };
}

function gatewaySection(cx: Context, node: Node, dir: string, pending: PendingSignals): ScenarioGateway {
  let filters: KeyFilter[] = [];
  let txAllow: KeyFilter[] = [];
  const rates: number[] = [];
  const rules = new Map<number, RateRule>();
  const rule = (k: number) => rules.get(k) ?? rules.set(k, { key: k, interval: 0, onChange: false }).get(k)!;
  const extra: Record<string, unknown> = {};
  for (const pair of cx.pairs(node, "gateway")) {
    const k = cx.keyName(pair, "gateway");
    const key = `gateway.${k}`;
    const v = pair.value as Node;
    switch (k) {
      case "filters":
        filters = cx.items(v, key).map((n, i) => idFilter(cx, n, `${key}[${i}]`));
        if (filters.length > MAX_FILTERS) throw cx.error(v, key, `${filters.length} filters; the firmware holds ${MAX_FILTERS}`);
        break;
      case "minInterval":
        for (const p of cx.pairs(v, key)) rule(cx.frameIdKey(p, key)).interval = cx.duration(p.value as Node, `${key}.${cx.keyText(p)}`);
        break;
      case "onChange":
        cx.items(v, key).forEach((n, i) => (rule(cx.frameIdEntry(n, `${key}[${i}]`)).onChange = true));
        break;
      case "allow":
        txAllow = cx.items(v, key).map((n, i) => {
          const at = `${key}[${i}]`;
          const m = cx.map(n, at, ["id", "ext", "rate"]);
          if (m.has("rate")) {
            const rate = cx.positive(m.get("rate")!, `${at}.rate`);
            if (rate > MAX_TX_RATE) throw cx.error(m.get("rate")!, `${at}.rate`, `at most ${MAX_TX_RATE} frames/s (the firmware's txRate range), got ${rate}`);
            rates.push(rate);
          }
          return { value: cx.frameIdIn(m, n, at), mask: 0xffffffff };
        });
        if (txAllow.length > MAX_FILTERS) throw cx.error(v, key, `${txAllow.length} allowed IDs; the firmware holds ${MAX_FILTERS}`);
        break;
      case "signals":
        pending.value = { node: v, path: cx.existingFile(v, key, dir) };
        break;
      case "sigTable":
      case "sigOnly":
        throw cx.error(v, key, "give the signal table as 'signals: <policy.yaml>' (compiled with the scenario's DBC), so the observer can decode it");
      default:
        extra[k] = cx.plain(v);
    }
  }
  if (rules.size > MAX_RULES) throw cx.error(node, "gateway", `${rules.size} IDs with minInterval or onChange; the firmware holds ${MAX_RULES} rules`);
  const txRate = rates.length ? Math.min(...rates) : 0;
  return { settings: policySettings({ filters, rules: [...rules.values()], txAllow, txRate }), extra };
}

/** A bare ID (an exact match), or `{ id, mask, ext }`; the filter fixes the kind (bit 31 in its mask), as the policy compiler's do. */
function idFilter(cx: Context, node: Node, key: string): KeyFilter {
  if (!isMap(node)) return { value: cx.frameId(node, key), mask: (CAN_EFF_MASK | EXT_BIT) >>> 0 };
  const m = cx.map(node, key, ["id", "mask", "ext"]);
  const mask = m.has("mask") ? cx.idMask(m.get("mask")!, `${key}.mask`) : CAN_EFF_MASK;
  return { value: cx.frameIdIn(m, node, key), mask: (mask | EXT_BIT) >>> 0 };
}

function brokerSpec(cx: Context, node: Node): Scenario["broker"] {
  const s = cx.str(node, "broker");
  if (s === "aedes" || s === "mosquitto") return { kind: s };
  if (/^mqtts?:\/\//.test(s)) return { kind: "url", url: s };
  throw cx.error(node, "broker", `'${s}' is not aedes, mosquitto or an mqtt:// URL`);
}

const STEP_KINDS = ["replay", "wait", "transmit", "broker", "link", "can", "gateway"] as const;

function parseStep(cx: Context, node: Node, key: string, traces: Map<string, TraceRef>): Step {
  const m = cx.map(node, key, null);
  const kind = cx.kindOf(node, m, key, STEP_KINDS);
  const at = `${key}.${kind}`;
  const origin = cx.origin(node);
  const v = m.get(kind)!;
  switch (kind) {
    case "replay": {
      cx.allowKeys(node, m, key, ["replay", "speed", "limit", "duration"]);
      const trace = cx.str(v, at);
      if (!traces.has(trace)) throw cx.error(v, at, `no trace named '${trace}' under 'traces' (have: ${[...traces.keys()].join(", ") || "none"})`);
      const step: Step = { kind, trace, speed: m.has("speed") ? cx.positive(m.get("speed")!, `${key}.speed`) : 1, origin };
      if (m.has("limit")) step.limit = cx.count(m.get("limit")!, `${key}.limit`);
      if (m.has("duration")) step.durationMs = cx.duration(m.get("duration")!, `${key}.duration`);
      return step;
    }
    case "wait":
      cx.allowKeys(node, m, key, ["wait"]);
      return { kind, ms: cx.duration(v, at), origin };
    case "transmit": {
      cx.allowKeys(node, m, key, ["transmit", "as", "expires"]);
      const text = cx.str(v, at);
      let frame: Frame;
      try {
        frame = parseFrame(text);
      } catch (e) {
        throw cx.error(v, at, (e as Error).message);
      }
      const step: Step = { kind, ref: m.has("as") ? cx.str(m.get("as")!, `${key}.as`) : `transmit@${origin.line}`, frame, origin };
      if (m.has("expires")) step.expiresMs = cx.duration(m.get("expires")!, `${key}.expires`);
      return step;
    }
    case "broker":
      cx.allowKeys(node, m, key, ["broker"]);
      return { kind, action: cx.oneOf(v, at, ["stop", "start", "restart"] as const), origin };
    case "link": {
      cx.allowKeys(node, m, key, ["link", "bytesPerSecond"]);
      const mode = cx.oneOf(v, at, ["pass", "drop", "stall", "slow", "reset"] as const);
      const step: Step = { kind, mode, origin };
      if (mode === "slow") {
        step.bytesPerSecond = cx.positive(m.get("bytesPerSecond") ?? cx.missing(node, key, "bytesPerSecond"), `${key}.bytesPerSecond`);
      } else if (m.has("bytesPerSecond")) {
        throw cx.error(m.get("bytesPerSecond")!, `${key}.bytesPerSecond`, "only 'link: slow' takes a rate");
      }
      return step;
    }
    case "can": {
      cx.allowKeys(node, m, key, ["can", "frames"]);
      const fault = cx.oneOf(v, at, ["overflow", "report-loss", "bus-off", "recover"] as const);
      if (m.has("frames") && fault !== "overflow" && fault !== "report-loss") {
        throw cx.error(m.get("frames")!, `${key}.frames`, "only 'can: overflow' and 'can: report-loss' lose a number of frames");
      }
      return { kind, fault, frames: m.has("frames") ? cx.count(m.get("frames")!, `${key}.frames`) : 16, origin };
    }
    case "gateway":
      cx.allowKeys(node, m, key, ["gateway"]);
      return { kind, action: cx.oneOf(v, at, ["stop", "start"] as const), origin };
  }
}

const EXPECT_KINDS = ["delivery", "signals", "latency", "cycle", "command", "status", "lastWill"] as const;

function parseExpectation(cx: Context, node: Node, key: string, sc: Scenario): Expectation {
  const outer = cx.map(node, key, null);
  const kind = cx.kindOf(node, outer, key, EXPECT_KINDS);
  cx.allowKeys(node, outer, key, [kind]);
  const at = `${key}.${kind}`;
  const v = outer.get(kind)!;
  const origin = cx.origin(node);
  const isEmpty = isScalar(v) && (v.value === null || v.value === "");
  switch (kind) {
    case "delivery": {
      const m = isEmpty ? new Map<string, Node>() : cx.map(v, at, ["ids", "maxLost"]);
      return {
        kind,
        ids: m.has("ids") ? cx.items(m.get("ids")!, `${at}.ids`).map((n, i) => idFilter(cx, n, `${at}.ids[${i}]`)) : [],
        maxLost: m.has("maxLost") ? cx.count(m.get("maxLost")!, `${at}.maxLost`) : 0,
        origin,
      };
    }
    case "signals": {
      if (!sc.dbc) throw cx.error(v, at, "signal checks need a 'dbc' at the top of the scenario");
      const m = isEmpty ? new Map<string, Node>() : cx.map(v, at, ["messages", "tolerance", "relTolerance", "from"]);
      const from = m.has("from") ? cx.oneOf(m.get("from")!, `${at}.from`, ["frames", "gateway"] as const) : "frames";
      if (from === "gateway" && !sc.gateway.signals) throw cx.error(v, `${at}.from`, "signals from the gateway need a signal table: 'signals: <policy.yaml>' in the gateway section");
      return {
        kind,
        from,
        messages: m.has("messages") ? cx.items(m.get("messages")!, `${at}.messages`).map((n, i) => cx.str(n, `${at}.messages[${i}]`)) : [],
        tolerance: m.has("tolerance") ? cx.nonNegative(m.get("tolerance")!, `${at}.tolerance`) : 0,
        relTolerance: m.has("relTolerance") ? cx.nonNegative(m.get("relTolerance")!, `${at}.relTolerance`) : 0,
        origin,
      };
    }
    case "latency": {
      const m = cx.map(v, at, ["p99", "max"]);
      if (!m.has("p99") && !m.has("max")) throw cx.error(v, at, "give a bound: 'p99' and/or 'max'");
      const e: Expectation = { kind, origin };
      if (m.has("p99")) e.p99Ms = cx.duration(m.get("p99")!, `${at}.p99`);
      if (m.has("max")) e.maxMs = cx.duration(m.get("max")!, `${at}.max`);
      return e;
    }
    case "cycle": {
      const m = cx.map(v, at, ["id", "ext", "period", "tolerance", "maxOutside"]);
      const pct = m.has("maxOutside") ? cx.nonNegative(m.get("maxOutside")!, `${at}.maxOutside`) : 0;
      if (pct > 100) throw cx.error(m.get("maxOutside")!, `${at}.maxOutside`, `a percentage 0..100, got ${pct}`);
      return {
        kind,
        maxOutsidePct: pct,
        key: cx.frameIdIn(m, v, at),
        periodMs: cx.duration(m.get("period") ?? cx.missing(v, at, "period"), `${at}.period`),
        toleranceMs: cx.duration(m.get("tolerance") ?? cx.missing(v, at, "tolerance"), `${at}.tolerance`),
        origin,
      };
    }
    case "command": {
      const m = cx.map(v, at, ["ref", "outcome", "within", "reason"]);
      const e: Expectation = {
        kind,
        ref: cx.str(m.get("ref") ?? cx.missing(v, at, "ref"), `${at}.ref`),
        outcome: cx.oneOf(m.get("outcome") ?? cx.missing(v, at, "outcome"), `${at}.outcome`, ["transmitted", "refused"] as const),
        withinMs: m.has("within") ? cx.duration(m.get("within")!, `${at}.within`) : 1000,
        origin,
      };
      if (m.has("reason")) e.reason = cx.str(m.get("reason")!, `${at}.reason`);
      return e;
    }
    case "status": {
      const m = cx.map(v, at, ["counters"]);
      const counters: Record<string, CounterExpectation> = {};
      for (const p of cx.pairs(m.get("counters") ?? cx.missing(v, at, "counters"), `${at}.counters`)) {
        const name = cx.keyName(p, `${at}.counters`);
        const val = p.value as Node;
        const ck = `${at}.counters.${name}`;
        if (isScalar(val) && typeof val.value === "string") {
          counters[name] = cx.oneOf(val, ck, ["replayed", "forwarded", "delivered", "positive"] as const);
        } else counters[name] = cx.count(val, ck);
      }
      return { kind, counters, origin };
    }
    case "lastWill": {
      const m = isEmpty ? new Map<string, Node>() : cx.map(v, at, ["within"]);
      return { kind, withinMs: m.has("within") ? cx.duration(m.get("within")!, `${at}.within`) : 5000, origin };
    }
  }
}

/** Typed readers over the YAML tree; each failure becomes a ScenarioError at the node's line. */
class Context {
  constructor(
    readonly file: string,
    readonly lines: LineCounter,
  ) {}

  line(node: Node | null | undefined): number {
    const off = node?.range?.[0];
    return off === undefined ? 1 : this.lines.linePos(off).line;
  }

  origin(node: Node): Origin {
    return { file: this.file, line: this.line(node) };
  }

  error(node: Node | null | undefined, key: string, reason: string): ScenarioError {
    return new ScenarioError(reason, this.file, this.line(node), key);
  }

  missing(node: Node, key: string, name: string): never {
    throw this.error(node, key, `missing '${name}'`);
  }

  /** A mapping as key -> value node; `allowed` (unless null) lists the only keys it may have. */
  map(node: Node | null | undefined, key: string, allowed: readonly string[] | null): Map<string, Node> {
    if (!isMap(node)) throw this.error(node, key, `expected a mapping (key: value), got ${describe(node)}`);
    const out = new Map<string, Node>();
    for (const pair of node.items) {
      const name = this.keyName(pair, key);
      if (allowed && !allowed.includes(name)) {
        throw this.error(pair.key as Node, key ? `${key}.${name}` : name, `unknown key (expected one of: ${allowed.join(", ")})`);
      }
      out.set(name, pair.value as Node);
    }
    return out;
  }

  allowKeys(node: Node, m: Map<string, Node>, key: string, allowed: readonly string[]): void {
    for (const k of m.keys()) {
      if (!allowed.includes(k)) {
        const pair = (node as unknown as { items: Pair[] }).items.find((p) => this.keyText(p) === k);
        throw this.error((pair?.key as Node) ?? node, `${key}.${k}`, `unknown key (expected one of: ${allowed.join(", ")})`);
      }
    }
  }

  /** The one key among `kinds` a step or expectation must start with. */
  kindOf<K extends string>(node: Node, m: Map<string, Node>, key: string, kinds: readonly K[]): K {
    const found = kinds.filter((k) => m.has(k));
    if (found.length === 1) return found[0];
    if (found.length === 0) throw this.error(node, key, `expected one of: ${kinds.join(", ")} (got: ${[...m.keys()].join(", ") || "nothing"})`);
    throw this.error(node, key, `more than one of ${found.join(", ")} in one entry; write them as separate entries`);
  }

  pairs(node: Node, key: string): Pair[] {
    if (!isMap(node)) throw this.error(node, key, `expected a mapping (key: value), got ${describe(node)}`);
    return node.items as Pair[];
  }

  items(node: Node, key: string): Node[] {
    if (!isSeq(node)) throw this.error(node, key, `expected a list, got ${describe(node)}`);
    return node.items as Node[];
  }

  keyText(pair: Pair): string {
    return isScalar(pair.key) ? String(pair.key.value) : "?";
  }

  keyName(pair: Pair, key: string): string {
    if (!isScalar(pair.key)) throw this.error(pair.key as Node, key, "keys must be plain names");
    return String(pair.key.value);
  }

  /** A mapping key that is a CAN ID (`minInterval: { 0x123x: 100ms }`), as a frame key. */
  frameIdKey(pair: Pair, key: string): number {
    return this.frameId(pair.key as Node, `${key}.${this.keyText(pair)}`);
  }

  /** A list entry naming one frame: a CAN ID, or `{ id, ext }`. */
  frameIdEntry(node: Node, key: string): number {
    if (!isMap(node)) return this.frameId(node, key);
    return this.frameIdIn(this.map(node, key, ["id", "ext"]), node, key);
  }

  /** The `id` (and optional `ext`) of a mapping, as a frame key. */
  frameIdIn(m: Map<string, Node>, node: Node, key: string): number {
    const ext = m.has("ext") ? this.bool(m.get("ext")!, `${key}.ext`) : undefined;
    return this.frameId(m.get("id") ?? this.missing(node, key, "id"), `${key}.id`, ext);
  }

  scalar(node: Node | null | undefined, key: string): unknown {
    if (!isScalar(node)) throw this.error(node, key, `expected a single value, got ${describe(node)}`);
    return node.value;
  }

  str(node: Node, key: string): string {
    const v = this.scalar(node, key);
    if (typeof v !== "string" || v === "") throw this.error(node, key, `expected text, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(node: Node, key: string): boolean {
    const v = this.scalar(node, key);
    if (typeof v !== "boolean") throw this.error(node, key, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  num(node: Node, key: string): number {
    const v = this.scalar(node, key);
    if (typeof v !== "number" || !Number.isFinite(v)) throw this.error(node, key, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  }

  positive(node: Node, key: string): number {
    const v = this.num(node, key);
    if (v <= 0) throw this.error(node, key, `must be greater than 0, got ${v}`);
    return v;
  }

  nonNegative(node: Node, key: string): number {
    const v = this.num(node, key);
    if (v < 0) throw this.error(node, key, `must not be negative, got ${v}`);
    return v;
  }

  count(node: Node, key: string): number {
    const v = this.num(node, key);
    if (!Number.isInteger(v) || v < 0) throw this.error(node, key, `expected a whole number >= 0, got ${v}`);
    return v;
  }

  /**
   * A CAN ID as a frame key: an 11-bit ID as a YAML integer (`0x1F0`, `496`) or hex text (`"1F0"`); a 29-bit ID
   * with an `x` after its hex digits (`0x18FEF100x`), or any of those forms with `ext: true` beside it (`ext`).
   */
  frameId(node: Node, key: string, ext?: boolean): number {
    const v = this.scalar(node, key);
    let id: number | undefined;
    let written = false;
    if (typeof v === "number") id = v;
    else if (typeof v === "string") {
      const m = /^(0x)?([0-9a-f]{1,8})(x?)$/i.exec(v.trim());
      if (m) {
        id = parseInt(m[2], 16);
        written = m[3] !== "";
      }
    }
    if (id === undefined || !Number.isInteger(id) || id < 0) {
      throw this.error(node, key, `expected a CAN ID (0x123 for 11 bits, 0x123x for 29 bits), got ${JSON.stringify(v)}`);
    }
    if (written && ext === false) throw this.error(node, key, `${JSON.stringify(v)} is written as a 29-bit ID, but ext is false`);
    const extended = written || ext === true;
    const hex = `0x${id.toString(16).toUpperCase()}`;
    if (extended && id > CAN_EFF_MASK) throw this.error(node, key, `${hex} is beyond the 29-bit ID range (0x1FFFFFFF)`);
    if (!extended && id > CAN_SFF_MASK) {
      throw this.error(node, key, `${hex} is beyond the 11-bit ID range (0x7FF): write ${hex}x for a 29-bit ID`);
    }
    return frameKey(id, extended);
  }

  /** The ID bits of an accept filter's mask, 0..0x1FFFFFFF. */
  idMask(node: Node, key: string): number {
    const v = this.scalar(node, key);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > CAN_EFF_MASK) {
      throw this.error(node, key, `expected a mask of ID bits (0..0x1FFFFFFF), got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A duration in ms: a number (ms) or text with a unit: `250ms`, `2s`, `1.5min`. */
  duration(node: Node, key: string): number {
    const v = this.scalar(node, key);
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) return v;
    const m = typeof v === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)\s*$/.exec(v) : null;
    if (!m) throw this.error(node, key, `expected a duration such as 250ms, 2s or 1min, got ${JSON.stringify(v)}`);
    return Number(m[1]) * { ms: 1, s: 1000, min: 60000 }[m[2] as "ms" | "s" | "min"];
  }

  oneOf<T extends string>(node: Node, key: string, options: readonly T[]): T {
    const v = this.scalar(node, key);
    if (typeof v !== "string" || !options.includes(v as T)) {
      throw this.error(node, key, `expected one of: ${options.join(", ")}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  }

  existingFile(node: Node, key: string, dir: string): string {
    const p = path.resolve(dir, this.str(node, key));
    if (!fs.existsSync(p)) throw this.error(node, key, `file not found: ${p}`);
    return p;
  }

  plain(node: Node): unknown {
    return (node as unknown as { toJSON(): unknown }).toJSON();
  }
}

function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) return node.value === null ? "nothing" : JSON.stringify(node.value);
  return "an alias";
}
