/**
 * The gateway policy file (YAML, docs/policy.md): what a gateway uplinks and may transmit, in the vehicle's terms.
 * This module only reads and checks the file's shape; `policy.ts` resolves it against a DBC. Every error names the
 * file, the line and the key (`policy.yaml:7: uplink[1].interval: expected ...`).
 *
 *   defaults: { interval: 100 }        # optional, applied to every uplinked message
 *   uplink:
 *     - BREMSE_3*                      # a message name or glob (shorthand for {message: ...})
 *     - { sender: ABS, every: 10 }     # by sender node; one frame in 10 cycles (GenMsgCycleTime)
 *     - { id: 0x7E8, onChange: true }  # by ID (or "0x100-0x1FF" for the DBC's messages in a range)
 *     - { pgn: 0xFEF1 }                # a J1939 parameter group, any priority and source
 *   exclude: [ MM5_10_TX3 ]
 *   transmit: { rate: 5, allow: [ ABS_Switch ] }
 */
import { LineCounter, YAMLMap, isMap, isScalar, isSeq, parseDocument, type Node, type Pair } from "yaml";
import { readFileSync } from "node:fs";
import { VgwError } from "../frame/errors";
import { MAX_TX_RATE } from "./gateway-settings";

/** A policy that cannot be used: where (file:line), which key, and why. */
export class PolicyError extends VgwError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${key ? `${key}: ` : ""}${reason}`);
  }
}

/** Per-message downsampling, as written; `every` is resolved with the DBC's cycle time. */
export interface RateSpec {
  /** Minimum interval between forwarded frames, ms. */
  interval?: number;
  /** Forward one frame per this many cycles (GenMsgCycleTime). */
  every?: number;
  onChange?: boolean;
}

/** One entry of `uplink`, `exclude` or `transmit.allow`: which messages it selects (exactly one way). */
export interface SelectorSpec extends RateSpec {
  /** Key path, for messages: `uplink[2]`. */
  where: string;
  line: number;
  message?: string;
  sender?: string;
  /** An ID or an inclusive ID range. */
  id?: { lo: number; hi: number };
  /** Restricts `id` to standard (false) or extended (true) frames. */
  ext?: boolean;
  /** A J1939 parameter group: every 29-bit frame of it, any priority, any source (or `source` only) and destination. */
  pgn?: number;
  source?: number;
}

/**
 * One entry of `signals`: the message(s) whose signals the gateway extracts and publishes on `P/signals`, which
 * signals (names or globs; all when absent), their publication rules, and whether raw frames go up too.
 */
export interface SignalsSpec {
  where: string;
  line: number;
  /** Which messages, as an uplink selector by message or id (no rates: those are the signal rules below). */
  select: SelectorSpec;
  /** Signal names or globs; undefined = every signal of the message. */
  signals?: string[];
  onChange?: boolean;
  /** Physical units; converted to raw per signal. */
  deadband?: number;
  /** Relative deadband in per mille (written as a percentage, e.g. "2%" or "0.5%"). */
  relPm?: number;
  /** ms: minimum interval between published samples. */
  interval?: number;
  /** ms: publish at least this often even when unchanged. */
  heartbeat?: number;
  /** false: the message's frames go only to signals (`sigOnly`), not into frame batches. */
  raw?: boolean;
}

export interface PolicySpec {
  file: string;
  defaults: RateSpec & { line: number };
  uplink: SelectorSpec[];
  exclude: SelectorSpec[];
  transmit?: { rate: number; allow: SelectorSpec[]; line: number };
  /** The `signals` section; undefined when the policy has none (then no signal settings are printed). */
  signals?: SignalsSpec[];
  signalsLine?: number;
}

const MAX_INTERVAL_MS = 3_600_000;
const MAX_EVERY = 1000;

class Reader {
  constructor(
    readonly file: string,
    readonly lines: LineCounter,
  ) {}

  line(node: Node | Pair | null | undefined): number {
    const range = node && "range" in node ? node.range : node && "key" in node ? (node.key as Node | null)?.range : undefined;
    return range ? this.lines.linePos(range[0]).line : 1;
  }

  fail(node: Node | Pair | null | undefined, key: string, reason: string): never {
    throw new PolicyError(this.file, this.line(node), key, reason);
  }

  /** The map's entries by key name, refusing keys outside `allowed` and duplicates (checked here for their line). */
  entries(map: YAMLMap, where: string, allowed: readonly string[]): Map<string, Pair> {
    const out = new Map<string, Pair>();
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined || !allowed.includes(key)) {
        this.fail(pair.key as Node, where, `unknown key '${key ?? "?"}' (expected one of: ${allowed.join(", ")})`);
      }
      if (out.has(key)) this.fail(pair.key as Node, where, `duplicate key '${key}'`);
      out.set(key, pair);
    }
    return out;
  }

  number(pair: Pair, where: string, min: number, max: number, what: string): number {
    const node = pair.value as Node | null;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(node ?? pair, where, `expected ${what} (an integer ${min}..${max}), got ${show(node)}`);
    }
    return v;
  }

  bool(pair: Pair, where: string): boolean {
    const node = pair.value as Node | null;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== "boolean") this.fail(node ?? pair, where, `expected true or false, got ${show(node)}`);
    return v;
  }

  text(pair: Pair, where: string): string {
    const node = pair.value as Node | null;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== "string" || v === "") this.fail(node ?? pair, where, `expected a name, got ${show(node)}`);
    return v;
  }

  rate(map: Map<string, Pair>, where: string, out: RateSpec): void {
    const interval = map.get("interval");
    const every = map.get("every");
    if (interval && every) this.fail(every, `${where}.every`, "give either interval (ms) or every (cycles), not both");
    if (interval) out.interval = this.number(interval, `${where}.interval`, 0, MAX_INTERVAL_MS, "a minimum interval in ms");
    if (every) out.every = this.number(every, `${where}.every`, 1, MAX_EVERY, "a number of cycles");
    const onChange = map.get("onChange");
    if (onChange) out.onChange = this.bool(onChange, `${where}.onChange`);
  }

  selectors(pair: Pair | undefined, where: string, withRate: boolean, withPgn = true): SelectorSpec[] {
    if (!pair) return [];
    const node = pair.value as Node | null;
    if (!isSeq(node)) this.fail(node ?? pair, where, `expected a list of messages, got ${show(node)}`);
    return node.items.map((item, i) => this.selector(item as Node, `${where}[${i}]`, withRate, withPgn));
  }

  selector(node: Node, where: string, withRate: boolean, withPgn: boolean): SelectorSpec {
    const line = this.line(node);
    if (isScalar(node)) {
      if (typeof node.value !== "string" || node.value === "") {
        this.fail(node, where, `expected a message name or glob, or a map with message/sender/id, got ${show(node)}`);
      }
      return { where, line, message: node.value };
    }
    if (!isMap(node)) this.fail(node, where, `expected a message name or a map, got ${show(node)}`);
    const rateKeys = ["interval", "every", "onChange"];
    const keys = ["message", "sender", "id", "ext", ...(withPgn ? ["pgn", "source"] : []), ...(withRate ? rateKeys : [])];
    const map = this.entries(node, where, keys);
    const allWays = ["message", "sender", "id", ...(withPgn ? ["pgn"] : [])];
    const ways = allWays.filter((k) => map.has(k));
    if (ways.length !== 1) {
      this.fail(node, where, ways.length ? `select by one of ${allWays.join(", ")}, not ${ways.join(" and ")}` : `select messages by one of ${allWays.join(", ")}`);
    }
    const out: SelectorSpec = { where, line };
    const message = map.get("message");
    if (message) out.message = this.text(message, `${where}.message`);
    const sender = map.get("sender");
    if (sender) out.sender = this.text(sender, `${where}.sender`);
    const id = map.get("id");
    if (id) out.id = this.idRange(id, `${where}.id`);
    const ext = map.get("ext");
    if (ext) {
      if (!id) this.fail(ext, `${where}.ext`, "ext applies to id only");
      out.ext = this.bool(ext, `${where}.ext`);
      const limit = out.ext ? 0x1fffffff : 0x7ff;
      if (out.id && out.id.hi > limit) this.fail(id, `${where}.id`, `${hex(out.id.hi)} is beyond the ${out.ext ? "29" : "11"}-bit ID range`);
    }
    const pgn = map.get("pgn");
    if (pgn) {
      out.pgn = this.number(pgn, `${where}.pgn`, 0, 0x3ffff, "a J1939 PGN");
      // PDU1 PGNs (PF < 240) carry a destination in PS, so their PGN has PS = 0
      if (((out.pgn >> 8) & 0xff) < 240 && (out.pgn & 0xff) !== 0) this.fail(pgn, `${where}.pgn`, `${hex(out.pgn)} is a PDU1 PGN (PF < 240) whose low byte must be 0 (it is the destination)`);
      const rate = rateKeys.find((k) => map.has(k));
      if (rate) this.fail(map.get(rate), `${where}.${rate}`, "a pgn entry matches frames from any source, but the firmware's rate rules are per exact ID: give rates per message");
    }
    const source = map.get("source");
    if (source) {
      if (!pgn) this.fail(source, `${where}.source`, "source applies to pgn only");
      out.source = this.number(source, `${where}.source`, 0, 0xff, "a J1939 source address");
    }
    if (withRate) this.rate(map, where, out);
    return out;
  }

  signalsEntry(node: Node, where: string): SignalsSpec {
    const line = this.line(node);
    if (!isMap(node)) this.fail(node, where, `expected a map with message (or id) and signals, got ${show(node)}`);
    const map = this.entries(node, where, ["message", "id", "ext", "signals", "onChange", "deadband", "relDeadband", "interval", "heartbeat", "raw"]);
    const sel = new Map([...map].filter(([k]) => ["message", "id", "ext"].includes(k)));
    if (!sel.has("message") && !sel.has("id")) this.fail(node, where, "select the message by message (a name or glob) or id");
    // the selector reader checks message/id/ext exactly as in uplink
    const selNode = new YAMLMap();
    selNode.items = node.items.filter((p) => isScalar(p.key) && sel.has(String(p.key.value)));
    selNode.range = node.range;
    const select = this.selector(selNode, where, false, false);
    select.line = line;
    const out: SignalsSpec = { where, line, select };
    const signals = map.get("signals");
    if (signals) {
      const v = signals.value as Node | null;
      const items = isSeq(v) ? v.items : isScalar(v) ? [v] : this.fail(v ?? signals, `${where}.signals`, `expected a signal name or glob, or a list of them, got ${show(v)}`);
      out.signals = items.map((item, i) => {
        const n = item as Node;
        if (!isScalar(n) || typeof n.value !== "string" || n.value === "") this.fail(n, `${where}.signals[${i}]`, `expected a signal name or glob, got ${show(n)}`);
        return n.value;
      });
      if (!out.signals.length) this.fail(v, `${where}.signals`, "the list is empty: leave it out for every signal of the message");
    }
    const onChange = map.get("onChange");
    if (onChange) out.onChange = this.bool(onChange, `${where}.onChange`);
    const raw = map.get("raw");
    if (raw) out.raw = this.bool(raw, `${where}.raw`);
    const interval = map.get("interval");
    if (interval) out.interval = this.number(interval, `${where}.interval`, 0, MAX_INTERVAL_MS, "a minimum interval in ms");
    const heartbeat = map.get("heartbeat");
    if (heartbeat) out.heartbeat = this.number(heartbeat, `${where}.heartbeat`, 0, MAX_INTERVAL_MS, "a heartbeat period in ms");
    const deadband = map.get("deadband");
    if (deadband) {
      const n = deadband.value as Node | null;
      const v = isScalar(n) ? n.value : undefined;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) this.fail(n ?? deadband, `${where}.deadband`, `expected a deadband in the signals' physical units (a number >= 0), got ${show(n)}`);
      out.deadband = v;
    }
    const rel = map.get("relDeadband");
    if (rel) {
      const n = rel.value as Node | null;
      const v = isScalar(n) ? n.value : undefined;
      const m = typeof v === "string" ? /^\s*(\d+(?:\.\d)?)\s*%\s*$/.exec(v) : null;
      if (!m) this.fail(n ?? rel, `${where}.relDeadband`, `expected a percentage with at most one decimal (the gateway counts per mille), e.g. "2%" or "0.5%", got ${show(n)}`);
      out.relPm = Math.round(Number(m[1]) * 10);
    }
    if ((out.deadband !== undefined || out.relPm !== undefined) && out.onChange === false) {
      this.fail(node, where, "a deadband applies to onChange only; onChange is false here");
    }
    return out;
  }

  /** `291`, `0x123`, `"0x100-0x1FF"`. */
  idRange(pair: Pair, where: string): { lo: number; hi: number } {
    const node = pair.value as Node | null;
    const v = isScalar(node) ? node.value : undefined;
    const parse = (t: string): number => (/^(0x[0-9a-f]+|\d+)$/i.test(t.trim()) ? Number(t.trim()) : NaN);
    let lo = NaN;
    let hi = NaN;
    if (typeof v === "number") lo = hi = v;
    else if (typeof v === "string") {
      const parts = v.split("-");
      if (parts.length === 1) lo = hi = parse(parts[0]);
      else if (parts.length === 2) [lo, hi] = [parse(parts[0]), parse(parts[1])];
    }
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 0x1fffffff || lo > hi) {
      this.fail(node ?? pair, where, `expected an ID (0x123, 291) or a range "0x100-0x1FF" within 0..0x1FFFFFFF, got ${show(node)}`);
    }
    return { lo, hi };
  }
}

function hex(n: number): string {
  return "0x" + n.toString(16).toUpperCase();
}

function show(node: Node | null | undefined): string {
  if (!node) return "nothing";
  if (isScalar(node)) return JSON.stringify(node.value) ?? String(node.value);
  if (isSeq(node)) return "a list";
  if (isMap(node)) return "a map";
  return "something else";
}

/** Reads and checks a policy from its text; `file` names it in errors. */
export function parsePolicy(text: string, file: string): PolicySpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? 1;
    throw new PolicyError(file, line, "", `not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const r: Reader = new Reader(file, lines);
  const root = doc.contents as Node | null;
  if (!isMap(root)) r.fail(root, "", "a policy is a map with uplink (and optionally defaults, exclude, transmit)");
  const top = r.entries(root, "", ["version", "defaults", "uplink", "exclude", "transmit", "signals"]);
  const version = top.get("version");
  if (version) r.number(version, "version", 1, 1, "the policy format version");

  const defaults: PolicySpec["defaults"] = { line: 1 };
  const d = top.get("defaults");
  if (d) {
    if (!isMap(d.value)) r.fail((d.value as Node) ?? d, "defaults", "expected a map of interval, every, onChange");
    defaults.line = r.line(d.value as Node);
    r.rate(r.entries(d.value, "defaults", ["interval", "every", "onChange"]), "defaults", defaults);
  }

  const sig = top.get("signals");
  let signals: SignalsSpec[] | undefined;
  if (sig) {
    const v = sig.value as Node | null;
    if (!isSeq(v)) r.fail(v ?? sig, "signals", `expected a list of entries with message and signals, got ${show(v)}`);
    signals = v.items.map((item, i) => r.signalsEntry(item as Node, `signals[${i}]`));
    if (!signals.length) r.fail(v, "signals", "the list is empty: leave signals out for frames only");
  }
  const uplink = top.get("uplink");
  // a policy with signals may uplink no raw frames at all
  if (!uplink && !signals) r.fail(root, "uplink", "missing: list the messages the gateway forwards (a gateway that forwards nothing is useless)");
  const spec: PolicySpec = {
    file,
    defaults,
    uplink: r.selectors(uplink, "uplink", true),
    // excluding a parameter group from a selection would need filters that subtract: not expressible as accept pairs
    exclude: r.selectors(top.get("exclude"), "exclude", false, false),
    signals,
    signalsLine: sig ? r.line(sig.value as Node) : undefined,
  };
  if (uplink && !spec.uplink.length) r.fail(uplink.value as Node, "uplink", "the list is empty: select at least one message");

  const t = top.get("transmit");
  if (t) {
    if (!isMap(t.value)) r.fail((t.value as Node) ?? t, "transmit", "expected a map with rate and allow");
    const tm = r.entries(t.value, "transmit", ["rate", "allow"]);
    const rate = tm.get("rate");
    const allow = tm.get("allow");
    if (!rate) r.fail(t.value, "transmit.rate", "missing: the most frames per second the gateway may send");
    if (!allow) r.fail(t.value, "transmit.allow", "missing: the messages the gateway may send");
    spec.transmit = {
      rate: r.number(rate, "transmit.rate", 0, MAX_TX_RATE, "frames per second"),
      allow: r.selectors(allow, "transmit.allow", false),
      line: r.line(t.value as Node),
    };
    if (!spec.transmit.allow.length) r.fail(allow.value as Node, "transmit.allow", "the list is empty: leave transmit out to allow nothing");
  }
  return spec;
}

export function loadPolicyFile(path: string): PolicySpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    throw new VgwError(`cannot read policy ${path}: ${reason}`, { cause: e });
  }
  return parsePolicy(text, path);
}
