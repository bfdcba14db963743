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
import { PolicyError, type PolicySpec, type RateSpec, type SelectorSpec } from "./policy-file";
import { admits, admitsAny, admittedCount, admittedKeys, exactCover, widenFilters, type KeyFilter } from "./policy-filters";
import { EXT_BIT, frameKey, keyText } from "./frame-key";
import { MAX_FILTERS, MAX_RULES, policySettings, type AllowFilter, type PolicySettings } from "./gateway-settings";
import { VgwError } from "../frame/errors";
import { attributeValue, type Database, type MessageDef } from "./model";
import { makeJ1939Id } from "./j1939";

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
    if (!kept.length && !this.groups.some((g) => g.uplink)) {
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
  const rows = [...resolver.rows.values()].sort((a, b) => a.key - b.key);

  const rules = kept.filter((r) => r.interval > 0 || r.onChange).sort((a, b) => a.key - b.key);
  if (rules.length > MAX_RULES) {
    throw new VgwError(
      `rateRules: ${rules.length} messages have an interval or onChange; the firmware holds ${MAX_RULES} rules. ` +
        `Downsample fewer messages (e.g. drop defaults and set interval per message)`,
    );
  }

  const widenings: Widening[] = [];
  const groups = resolver.groups;
  const uplink = compileFilters("canFilters", kept, groups.filter((g) => g.uplink).map((g) => g.filter), rows, max, options, "selected");
  if (uplink.widening) widenings.push(uplink.widening);
  const txGroups = groups.filter((g) => g.tx).map((g) => g.filter);
  const tx = sent.length || txGroups.length ? compileFilters("txAllow", sent, txGroups, rows, max, options, "transmit") : { filters: [] as KeyFilter[] };
  if (tx.widening) widenings.push(tx.widening);

  for (const r of rows) {
    r.filter = uplink.filters.findIndex((f) => admitsAny([f], r.key));
    r.extra = !r.uplink && r.filter >= 0;
    const txAdmitted = admitsAny(tx.filters, r.key);
    r.txExtra = !r.tx && txAdmitted;
  }
  const warnings: string[] = [];
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
    }),
    rows,
    groups,
    widenings,
  };
}
