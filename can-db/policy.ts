/**
 * The gateway policy compiler: a policy (policy-file.ts) + a DBC -> the firmware's exact setting values
 * (`canFilters`, `rateRules`, `txAllow`, `txRate`; docs/firmware.md, docs/protocol.md "Matching keys").
 *
 *   const compiled = compilePolicy(loadPolicyFile("abs.policy.yaml"), loadDbcFile("abs.dbc"))
 *   compiled.settings   // { canFilters: [[value, mask], ...], rateRules: [[key, ms, onChange], ...], txAllow: [[value, mask(, kinds)], ...], txRate }
 *   compiled.rows       // per message: kept or dropped, interval, on-change, the filter that admits it
 *
 * The flow: select messages (uplink, then exclude) -> resolve each one's downsampling (`every` through the DBC's
 * GenMsgCycleTime) -> exact accept filters (policy-filters.ts), widened only when asked -> the same for transmit.
 * A policy that would forward nothing is an error: the firmware reads an empty filter list as "accept all".
 */
import { PolicyError, type PolicySpec, type RateSpec, type SelectorSpec, type SignalsSpec } from "./policy-file";
import { admits, admitsAny, admittedCount, admittedKeys, exactCover, widenFilters, type KeyFilter } from "./policy-filters";
import { EXT_BIT, frameKey, keyText } from "./frame-key";
import { MAX_FILTERS, MAX_RULES, policySettings, type AllowFilter, type PolicySettings } from "./gateway-settings";
import { VgwError } from "../frame/errors";
import { attributeValue, type Database, type MessageDef } from "./model";
import { makeJ1939Id } from "./j1939";
import { MAX_SIGNALS, MAX_SIG_ONLY, exactScaling, rawDeadband, signalRefusal, signalRow, tableHash, type Scaling, type SignalRow } from "./signal-table";
import type { SignalDef } from "./model";

export interface CompileOptions {
  /** When the exact filters do not fit, widen masks (admitting extra IDs, all reported) instead of failing. */
  allowSuperset?: boolean;
  /** Filter table size; default and maximum MAX_FILTERS. */
  maxFilters?: number;
}

/** One message (or an ID the DBC does not define but the policy names) and what the policy does with it. */
export interface PolicyRow {
  key: number;
  id: number;
  ext: boolean;
  /** The DBC message; undefined for an ID the policy names that the DBC does not define. */
  message?: MessageDef;
  /** Selected for uplink. */
  uplink: boolean;
  /** Admitted by the uplink filters without being selected (only with allowSuperset). */
  extra: boolean;
  /** Minimum interval in ms (0 = none). */
  interval: number;
  /** `every` as written, when the interval came from the cycle time. */
  every?: number;
  /** GenMsgCycleTime, ms, when the DBC gives one. */
  cycle?: number;
  onChange: boolean;
  /** Index into settings.canFilters of the first filter admitting it, or -1. */
  filter: number;
  /** Admitted by the transmit allowlist. */
  tx: boolean;
  /** Admitted by the allowlist without being selected for transmit (only with allowSuperset). */
  txExtra: boolean;
  /** How many of its signals are in the signal table. */
  signals?: number;
  /** Its frames go only to signals (`raw: false`): its key is in `sigOnly`. */
  sigOnly?: boolean;
}

/** One row of the signal table, with where it came from. */
export interface CompiledSignal {
  /** Index in sigTable: the `i` of the samples on the wire. */
  index: number;
  message: MessageDef;
  signal: SignalDef;
  key: number;
  row: SignalRow;
  /** The deadband as written (physical units), when given. */
  deadband?: number;
  /** The policy entry that last set its rules. */
  where: string;
  line: number;
}

/** Keys admitted beyond the selection, when filters had to be widened. */
export interface Widening {
  table: "canFilters" | "txAllow";
  exactCount: number;
  /** DBC messages admitted without being selected. */
  extraMessages: PolicyRow[];
  /** How many IDs the DBC does not define are admitted too. */
  extraOther: number;
  /** Those IDs as keys, when there are few enough to list (at most 64). */
  extraOtherKeys?: number[];
}

/** A J1939 parameter group selected as a whole (`pgn:`): one filter, any priority, source (unless given) and destination. */
export interface PgnGroup {
  pgn: number;
  source?: number;
  filter: KeyFilter;
  uplink: boolean;
  tx: boolean;
}

export interface CompiledPolicy {
  settings: PolicySettings;
  rows: PolicyRow[];
  /** PGN groups, in the order the policy names them; their filters lead the tables they are in. */
  groups: PgnGroup[];
  widenings: Widening[];
  /** Rules that will do less than they seem to (a rule that silently does nothing is the rate-limit twin of a filter that forwards nothing). */
  warnings: string[];
  /** The signal table, in sigTable order (empty without a `signals` section). */
  signals: CompiledSignal[];
  /** FNV-1a hash of the table (the gateway's status `sh`). */
  signalHash: number;
}

const CYCLE_ATTRIBUTE = "GenMsgCycleTime";
/** Signal names of alive counters and checksums (English and VW/German usage): such data changes in every frame. */
const CHANGES_EVERY_FRAME = /counter|checksum|chksum|crc|alive|(^|_)(cnt|bz)(_|$)/i;

/** The filter for every frame of a J1939 PGN: EDP, DP, PF (and PS for PDU2) fixed; priority, SA (unless given), DA free. */
export function pgnFilter(pgn: number, source?: number): KeyFilter {
  const pdu2 = ((pgn >> 8) & 0xff) >= 240;
  const value = makeJ1939Id(0, pgn, source ?? 0, 0);
  const mask = 0x03ff0000 | (pdu2 ? 0xff00 : 0) | (source !== undefined ? 0xff : 0);
  return { value: (value | EXT_BIT) >>> 0, mask: (mask | EXT_BIT) >>> 0 };
}
const LIST_OTHER_LIMIT = 64;

/** `*` any run, `?` one character, `[...]` a class; everything else literal. */
function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += "[" + glob.slice(i + 1, end).replace(/\\/g, "\\\\").replace(/^!/, "^") + "]";
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

class Resolver {
  /** Rows by key, in DBC order; IDs outside the DBC are added when a selector names them. */
  readonly rows = new Map<number, PolicyRow>();
  readonly groups: PgnGroup[] = [];
  /** Where each row's `every` came from, for errors. */
  private readonly everyFrom = new Map<number, { where: string; line: number }>();

  constructor(
    readonly spec: PolicySpec,
    readonly db: Database,
  ) {
    for (const m of db.messages) {
      if (m.pseudo) continue;
      const key = frameKey(m.id, m.ext);
      if (this.rows.has(key)) continue; // a second definition of the same frame: the first one names it
      const cycle = attributeValue(db, m.attributes, CYCLE_ATTRIBUTE);
      this.rows.set(key, {
        key,
        id: m.id,
        ext: m.ext,
        message: m,
        uplink: false,
        extra: false,
        interval: 0,
        cycle: typeof cycle === "number" && cycle > 0 ? cycle : undefined,
        onChange: false,
        filter: -1,
        tx: false,
        txExtra: false,
      });
    }
  }

  private dbcName(): string {
    return this.db.file ?? "the DBC";
  }

  /** The PGN group of a `pgn:` entry (one per PGN and source), and the DBC messages inside it. */
  private group(s: SelectorSpec): { group: PgnGroup; rows: PolicyRow[] } {
    const filter = pgnFilter(s.pgn!, s.source);
    let group = this.groups.find((g) => g.filter.value === filter.value && g.filter.mask === filter.mask);
    if (!group) {
      group = { pgn: s.pgn!, source: s.source, filter, uplink: false, tx: false };
      this.groups.push(group);
    }
    // a PGN the DBC does not define is still a valid choice (DM1, requests...), so no "matches nothing" error here
    return { group, rows: [...this.rows.values()].filter((r) => r.message && r.ext && admits(filter, r.key)) };
  }

  /** The rows a selector picks; an ID the DBC lacks becomes a row of its own. Nothing picked is an error. */
  select(s: SelectorSpec): PolicyRow[] {
    const all = [...this.rows.values()].filter((r) => r.message);
    let picked: PolicyRow[];
    if (s.pgn !== undefined) {
      picked = this.group(s).rows;
    } else if (s.message !== undefined) {
      const re = globRegExp(s.message);
      picked = all.filter((r) => re.test(r.message!.name) || re.test(r.message!.dbcName));
      if (!picked.length) throw new PolicyError(this.spec.file, s.line, `${s.where}.message`, `'${s.message}' matches no message in ${this.dbcName()}`);
    } else if (s.sender !== undefined) {
      picked = all.filter((r) => r.message!.sender === s.sender || r.message!.transmitters.includes(s.sender!));
      if (!picked.length) {
        const nodes = this.db.nodes.map((n) => n.name);
        const known = nodes.includes(s.sender) ? `node '${s.sender}' sends no message` : `no node '${s.sender}' (nodes: ${nodes.join(", ") || "none"})`;
        throw new PolicyError(this.spec.file, s.line, `${s.where}.sender`, `${known} in ${this.dbcName()}`);
      }
    } else {
      const { lo, hi } = s.id!;
      picked = all.filter((r) => r.id >= lo && r.id <= hi && (s.ext === undefined || r.ext === s.ext));
      if (!picked.length && lo === hi) {
        // an ID the DBC does not define (diagnostics, another ECU): still selectable, by its key
        const ext = s.ext ?? lo > 0x7ff;
        const key = frameKey(lo, ext);
        let row = this.rows.get(key);
        if (!row) {
          row = { key, id: lo, ext, uplink: false, extra: false, interval: 0, onChange: false, filter: -1, tx: false, txExtra: false };
          this.rows.set(key, row);
        }
        picked = [row];
      }
      if (!picked.length) throw new PolicyError(this.spec.file, s.line, `${s.where}.id`, `no message of ${this.dbcName()} has an ID in ${keyText(lo)}-${keyText(hi)}`);
    }
    return picked;
  }

  private applyRate(row: PolicyRow, rate: RateSpec, where: string, line: number) {
    if (rate.interval !== undefined) {
      row.interval = rate.interval;
      row.every = undefined;
      this.everyFrom.delete(row.key);
    }
    if (rate.every !== undefined) {
      row.every = rate.every;
      this.everyFrom.set(row.key, { where: `${where}.every`, line });
    }
    if (rate.onChange !== undefined) row.onChange = rate.onChange;
  }

  uplink(): PolicyRow[] {
    for (const s of this.spec.uplink) {
      if (s.pgn !== undefined) {
        // the group's DBC messages are kept, without defaults: a rate rule would cover one source of the group only
        const g = this.group(s);
        g.group.uplink = true;
        for (const row of g.rows) row.uplink = true;
        continue;
      }
      for (const row of this.select(s)) {
        if (!row.uplink) {
          row.uplink = true;
          this.applyRate(row, this.spec.defaults, "defaults", this.spec.defaults.line);
        }
        this.applyRate(row, s, s.where, s.line);
      }
    }
    for (const s of this.spec.exclude) {
      for (const row of this.select(s)) {
        row.uplink = false;
        // accept filters cannot subtract: a message inside a selected PGN group would still get through
        const g = this.groups.find((x) => x.uplink && admits(x.filter, row.key));
        if (g) {
          throw new PolicyError(this.spec.file, s.line, s.where, `${row.message?.name ?? keyText(row.key)} is in the uplinked PGN group 0x${g.pgn.toString(16).toUpperCase()} and cannot be excluded from it`);
        }
      }
    }
    const kept = [...this.rows.values()].filter((r) => r.uplink);
    if (!kept.length && !this.groups.some((g) => g.uplink) && !this.spec.signals?.length) {
      const last = this.spec.exclude[this.spec.exclude.length - 1];
      throw new PolicyError(this.spec.file, last?.line ?? 1, "exclude", "excludes every selected message: the gateway would forward nothing");
    }
    for (const row of kept) this.resolveEvery(row);
    return kept;
  }

  /** `every: N` -> a minimum interval of N - 1/2 cycles: one frame in N even when the sender's timing jitters. */
  private resolveEvery(row: PolicyRow) {
    if (row.every === undefined) return;
    const from = this.everyFrom.get(row.key)!;
    if (row.cycle === undefined) {
      const what = row.message ? `message ${row.message.name} has no ${CYCLE_ATTRIBUTE} in ${this.dbcName()}` : `ID ${keyText(row.key)} is not in ${this.dbcName()}, so it has no cycle time`;
      throw new PolicyError(this.spec.file, from.line, from.where, `${what}: give interval in ms instead`);
    }
    row.interval = Math.round((row.every - 0.5) * row.cycle);
  }

  transmit(): PolicyRow[] {
    const t = this.spec.transmit;
    if (!t) return [];
    for (const s of t.allow) {
      if (s.pgn !== undefined) this.group(s).group.tx = true;
      for (const row of this.select(s)) row.tx = true;
    }
    return [...this.rows.values()].filter((r) => r.tx);
  }
}

const GLOB_CHARS = /[*?[]/;
/** Skipped signals named in a warning before "and N more". */
const SKIP_LIST = 6;

interface SignalChoice {
  row: PolicyRow;
  signal: SignalDef;
  onChange?: boolean;
  deadband?: number;
  relPm?: number;
  interval?: number;
  heartbeat?: number;
  entry: SignalsSpec;
}

/**
 * The `signals` section -> the signal table: each entry's messages and signals, rules merged per signal (later entries
 * win per field), every signal checked for exact extraction. A signal named exactly that cannot be extracted is an
 * error; one picked by a glob (or by naming no signals) is skipped, and the skip is reported as a warning.
 */
function compileSignals(resolver: Resolver, spec: PolicySpec, warnings: string[]): { signals: CompiledSignal[]; sigOnly: number[] } {
  const chosen = new Map<string, SignalChoice>();
  const raw = new Map<number, { raw: boolean; entry: SignalsSpec }>();
  // skipped signals, one warning per entry, message and reason
  const skipped = new Map<string, string[]>();
  for (const e of spec.signals ?? []) {
    for (const row of resolver.select(e.select)) {
      const m = row.message;
      if (!m) throw new PolicyError(spec.file, e.line, e.where, `${keyText(row.key)} is not a message of ${resolver.db.file ?? "the DBC"}, so it has no signals`);
      if (e.raw !== undefined) raw.set(row.key, { raw: e.raw, entry: e });
      const picked: SignalDef[] = [];
      const consider = (s: SignalDef, named: boolean, where: string) => {
        const why = signalRefusal(s);
        if (!why) picked.push(s);
        else if (named) throw new PolicyError(spec.file, e.line, where, `signal ${m.name}.${s.name}: ${why}`);
        else {
          const id = `${spec.file}:${e.line}: ${where}: skipped|${m.name}|${why}`;
          skipped.set(id, [...(skipped.get(id) ?? []), s.name]);
        }
      };
      if (!e.signals) for (const s of m.signals) consider(s, false, e.where);
      else {
        e.signals.forEach((glob, k) => {
          const re = globRegExp(glob);
          const matches = m.signals.filter((s) => re.test(s.name) || re.test(s.dbcName));
          if (!matches.length) throw new PolicyError(spec.file, e.line, `${e.where}.signals[${k}]`, `'${glob}' matches no signal of ${m.name}`);
          for (const s of matches) consider(s, !GLOB_CHARS.test(glob), `${e.where}.signals[${k}]`);
        });
      }
      for (const s of picked) {
        const id = `${row.key}/${s.dbcName}`;
        const c = chosen.get(id) ?? { row, signal: s, entry: e };
        c.entry = e;
        for (const f of ["onChange", "deadband", "relPm", "interval", "heartbeat"] as const) if (e[f] !== undefined) c[f] = e[f] as never;
        // a deadband means "changed by more than": it implies onChange
        if (c.onChange === undefined && (e.deadband !== undefined || e.relPm !== undefined)) c.onChange = true;
        chosen.set(id, c);
      }
    }
  }
  for (const [id, names] of skipped) {
    const [where, message, why] = id.split("|");
    const list = names.length > SKIP_LIST ? `${names.slice(0, SKIP_LIST).join(", ")} and ${names.length - SKIP_LIST} more` : names.join(", ");
    warnings.push(`${where} ${names.length} signal${names.length > 1 ? "s" : ""} of ${message} (${list}): ${why}`);
  }
  if (chosen.size > MAX_SIGNALS) {
    throw new PolicyError(spec.file, spec.signalsLine ?? 1, "signals", `${chosen.size} signals selected; the gateway's table holds ${MAX_SIGNALS}. Name fewer signals (signals: [...])`);
  }
  const signals: CompiledSignal[] = [];
  for (const c of chosen.values()) {
    const m = c.row.message!;
    const scaling = exactScaling(c.signal.factor, c.signal.offset) as Scaling;
    let deadband = 0;
    if (c.deadband !== undefined) {
      const d = rawDeadband(c.deadband, scaling);
      if (d === undefined || d >= 2 ** 31) throw new PolicyError(spec.file, c.entry.line, `${c.entry.where}.deadband`, `signal ${m.name}.${c.signal.name}: deadband ${c.deadband} has no exact raw equivalent below 2^31`);
      deadband = d;
    }
    const r = signalRow(c.signal, c.row.key, { onChange: c.onChange, minInt: c.interval, heartbeat: c.heartbeat, deadband, relPm: c.relPm });
    if (!r.row) throw new PolicyError(spec.file, c.entry.line, c.entry.where, `${m.name}: ${r.refusal}`);
    if (c.onChange && CHANGES_EVERY_FRAME.test(c.signal.name)) {
      warnings.push(`${m.name}.${c.signal.name}: onChange will publish every sample: it looks like a counter or checksum, which changes in every frame`);
    }
    c.row.signals = (c.row.signals ?? 0) + 1;
    signals.push({ index: signals.length, message: m, signal: c.signal, key: c.row.key, row: r.row, deadband: c.deadband, where: c.entry.where, line: c.entry.line });
  }
  const sigOnly: number[] = [];
  for (const [key, { raw: goesRaw, entry }] of [...raw].sort((a, b) => a[0] - b[0])) {
    const row = resolver.rows.get(key)!;
    if (goesRaw || !row.signals) continue;
    row.sigOnly = true;
    sigOnly.push(key);
    if (row.uplink) warnings.push(`${row.message!.name}: ${entry.where} has raw: false, so its frames go only to signals although uplink selects it`);
  }
  if (sigOnly.length > MAX_SIG_ONLY) {
    throw new PolicyError(spec.file, spec.signalsLine ?? 1, "signals", `${sigOnly.length} messages have raw: false; the gateway holds ${MAX_SIG_ONLY} sigOnly keys`);
  }
  return { signals, sigOnly };
}

/**
 * The filters for `selected` keys and whole PGN `groups`: one filter per group, exact filters for the keys outside
 * the groups, widened to `max` when allowed; every extra key reported.
 */
function compileFilters(
  table: Widening["table"],
  selected: readonly PolicyRow[],
  groups: readonly KeyFilter[],
  rows: readonly PolicyRow[],
  max: number,
  options: CompileOptions,
  what: string,
): { filters: KeyFilter[]; widening?: Widening } {
  const inGroup = (k: number) => admitsAny(groups, k);
  const keys = selected.map((r) => r.key).filter((k) => !inGroup(k));
  const { filters: exact, proven } = exactCover(keys);
  const all = [...groups, ...exact];
  if (all.length <= max) return { filters: all };
  if (!options.allowSuperset) {
    // `proven` false: the search stopped at its bound; a smaller exact cover may exist, but none was found
    const need = proven ? `need ${exact.length}` : `need ${exact.length} (the best cover found; the search was bounded)`;
    const plus = groups.length ? ` besides ${groups.length} PGN filters` : "";
    throw new VgwError(
      `${table}: the ${keys.length} ${what} IDs ${need} exact [value, mask] filters${plus}; the firmware holds ${max}. ` +
        `Select fewer or neighbouring IDs (e.g. a range or a sender), or use --allow-superset to widen masks (the extra IDs are reported)`,
    );
  }
  const chosen = new Set(keys);
  const isChosen = (k: number) => chosen.has(k) || inGroup(k);
  const chosenCount = keys.length + admittedCount(groups);
  const known = rows.filter((r) => r.message && !isChosen(r.key)).map((r) => r.key);
  const filters = widenFilters(all, known, max);
  const extraMessages = rows.filter((r) => r.message && !isChosen(r.key) && admitsAny(filters, r.key));
  const extraOther = admittedCount(filters) - chosenCount - extraMessages.length;
  const widening: Widening = { table, exactCount: all.length, extraMessages, extraOther };
  if (extraOther <= LIST_OTHER_LIMIT) {
    const knownKeys = new Set(rows.map((r) => r.key));
    widening.extraOtherKeys = admittedKeys(filters, chosenCount + extraMessages.length + LIST_OTHER_LIMIT)!.filter((k) => !isChosen(k) && !knownKeys.has(k));
  }
  return { filters, widening };
}

/** Frame kinds of a `txAllow` entry (firmware/src/allowlist.ts): FD and BRS, the record flag bits 0x04 | 0x08. */
export const TX_KINDS_FD = 0x0c;

/**
 * The transmit allowlist as the firmware reads it (docs/protocol.md, "Transmit allowlist"): `[value, mask]` admits
 * classic data frames only, so an entry that admits a CAN FD message of the DBC names the FD kinds:
 * `[value, mask, 0x0C]`. Every mask already carries bit 31 (policy-filters.ts), which the firmware requires anyway.
 */
function allowEntries(filters: readonly KeyFilter[], sent: readonly PolicyRow[]): AllowFilter[] {
  return filters.map((f) => {
    const fd = sent.some((r) => r.message?.fd && admitsAny([f], r.key));
    return fd ? { ...f, kinds: TX_KINDS_FD } : f;
  });
}

export function compilePolicy(spec: PolicySpec, db: Database, options: CompileOptions = {}): CompiledPolicy {
  const max = options.maxFilters ?? MAX_FILTERS;
  if (!Number.isInteger(max) || max < 1 || max > MAX_FILTERS) throw new VgwError(`the filter table size must be 1..${MAX_FILTERS}, not ${max}`);
  const resolver = new Resolver(spec, db);
  const kept = resolver.uplink();
  const sent = resolver.transmit();
  const warnings: string[] = [];
  const sig = compileSignals(resolver, spec, warnings);
  const rows = [...resolver.rows.values()].sort((a, b) => a.key - b.key);

  // rate rules act on the raw-frame path only, which a sigOnly message does not take
  const rules = kept.filter((r) => (r.interval > 0 || r.onChange) && !r.sigOnly).sort((a, b) => a.key - b.key);
  if (rules.length > MAX_RULES) {
    throw new VgwError(
      `rateRules: ${rules.length} messages have an interval or onChange; the firmware holds ${MAX_RULES} rules. ` +
        `Downsample fewer messages (e.g. drop defaults and set interval per message)`,
    );
  }

  const widenings: Widening[] = [];
  const groups = resolver.groups;
  // the messages signals are extracted from must pass the accept filters too
  const admitted = [...kept, ...rows.filter((r) => r.signals && !r.uplink)];
  const uplink = compileFilters("canFilters", admitted, groups.filter((g) => g.uplink).map((g) => g.filter), rows, max, options, "selected");
  if (uplink.widening) widenings.push(uplink.widening);
  const txGroups = groups.filter((g) => g.tx).map((g) => g.filter);
  const tx = sent.length || txGroups.length ? compileFilters("txAllow", sent, txGroups, rows, max, options, "transmit") : { filters: [] as KeyFilter[] };
  if (tx.widening) widenings.push(tx.widening);

  for (const r of rows) {
    r.filter = uplink.filters.findIndex((f) => admitsAny([f], r.key));
    r.extra = !r.uplink && !r.signals && r.filter >= 0;
    const txAdmitted = admitsAny(tx.filters, r.key);
    r.txExtra = !r.tx && txAdmitted;
  }
  for (const r of rules) {
    const name = r.message?.name ?? keyText(r.key);
    if (r.interval > 0 && r.cycle !== undefined && r.interval < r.cycle) {
      warnings.push(`${name}: interval ${r.interval} ms is shorter than its cycle time ${r.cycle} ms, so the rule only drops frames that arrive early`);
    }
    const counter = r.onChange ? r.message?.signals.find((sig) => CHANGES_EVERY_FRAME.test(sig.name)) : undefined;
    if (counter) warnings.push(`${name}: onChange will keep every frame: its signal ${counter.name} looks like a counter or checksum, which changes in every frame`);
  }
  return {
    warnings,
    settings: policySettings({
      filters: uplink.filters,
      rules: rules.map((r) => ({ key: r.key, interval: r.interval, onChange: r.onChange })),
      txAllow: allowEntries(tx.filters, sent),
      txRate: spec.transmit?.rate ?? 0,
      signals: spec.signals ? { table: sig.signals.map((x) => x.row), sigOnly: sig.sigOnly } : undefined,
    }),
    signals: sig.signals,
    signalHash: tableHash(sig.signals.map((x) => x.row)),
    rows,
    groups,
    widenings,
  };
}
