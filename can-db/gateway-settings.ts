/**
 * The gateway's matching settings, as the firmware loads them (docs/firmware.md, docs/protocol.md "Matching keys"):
 * accept filters, downsampling rules and the transmit allowlist, all over frame keys (frame-key.ts), and the transmit
 * rate. The policy compiler (policy.ts) produces them from a DBC; the HIL harness compiles a scenario's `gateway:`
 * section into them too; `SettingsModel` answers what the firmware will do with a frame under them, so the HIL checks
 * model the gateway from the very values it was configured with.
 */
import { admitsAny, type KeyFilter } from "./policy-filters";

/** The firmware's table sizes (firmware/src/filters.ts MAX_FILTERS / MAX_RULES; a test keeps them equal). */
export const MAX_FILTERS = 16;
export const MAX_RULES = 32;
/** The firmware's range for txRate (firmware/src/config.ts). */
export const MAX_TX_RATE = 1000;

/** The setting values the firmware loads, by their setting keys. */
export interface PolicySettings {
  /** `[value, mask]` accept filters; empty accepts every frame. */
  canFilters: number[][];
  /** `[key, minIntervalMs, onChange 0|1]`, one per key. */
  rateRules: number[][];
  /**
   * `[value, mask]` or `[value, mask, kinds]` filters a transmit must pass; empty allows none (safe by default). Without
   * `kinds` only classic data frames pass; `kinds` admits RTR 0x02, FD 0x04, BRS 0x08 (firmware/src/allowlist.ts).
   */
  txAllow: number[][];
  /** Transmitted frames per second, all IDs together. */
  txRate: number;
  /** The signal table (can-db/signal-table.ts), when the policy has signals; the firmware's default is empty. */
  sigTable?: number[][];
  /** Frame keys whose frames go only to signals. */
  sigOnly?: number[];
}

/** A transmit allowlist filter, with the frame kinds it admits beyond classic data frames. */
export interface AllowFilter extends KeyFilter {
  kinds?: number;
}

/** One downsampling rule: frames of `key` at most every `interval` ms, and/or only when their data changed. */
export interface RateRule {
  key: number;
  interval: number;
  onChange: boolean;
}

/** Settings from filters and rules, in the firmware's encoding (the tables' sizes are the caller's to check). */
export function policySettings(p: {
  filters: readonly KeyFilter[];
  rules: readonly RateRule[];
  txAllow: readonly AllowFilter[];
  txRate: number;
  signals?: { table: number[][]; sigOnly: number[] };
}): PolicySettings {
  const pairs = (filters: readonly KeyFilter[]) => filters.map((f) => [f.value, f.mask]);
  const settings: PolicySettings = {
    canFilters: pairs(p.filters),
    rateRules: p.rules.map((r) => [r.key, r.interval, r.onChange ? 1 : 0]),
    txAllow: p.txAllow.map((f) => (f.kinds ? [f.value, f.mask, f.kinds] : [f.value, f.mask])),
    txRate: p.txRate,
  };
  if (p.signals) {
    settings.sigTable = p.signals.table;
    settings.sigOnly = p.signals.sigOnly;
  }
  return settings;
}

/** What the firmware's frame selection does with a frame key under given settings (firmware/src/filters.ts). */
export class SettingsModel {
  private readonly filters: KeyFilter[];
  private readonly rules = new Map<number, RateRule>();
  private readonly sigOnly: Set<number>;

  constructor(settings: PolicySettings) {
    this.sigOnly = new Set((settings.sigOnly ?? []).map((k) => k >>> 0));
    this.filters = settings.canFilters.map(([value, mask]) => ({ value: value >>> 0, mask: mask >>> 0 }));
    // a later rule for the same key wins, as in the firmware
    for (const [key, interval, onChange] of settings.rateRules) this.rules.set(key >>> 0, { key: key >>> 0, interval, onChange: onChange !== 0 });
  }

  /** The accept filters pass the key (no filters: every frame passes). */
  accepts(key: number): boolean {
    return this.filters.length === 0 || admitsAny(this.filters, key);
  }

  /** Frames of the key go only to signals (`sigOnly`): never into frame batches. */
  signalsOnly(key: number): boolean {
    return this.sigOnly.has(key >>> 0);
  }

  /** The key's downsampling rule, if it has one. */
  rule(key: number): RateRule | undefined {
    return this.rules.get(key);
  }
}
