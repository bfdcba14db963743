/**
 * Which switch governs each signal of a message, under which switch values it is present, and an evaluation order in
 * which every switch is decoded before the signals it governs. Covers plain (`M` / `mN`) and extended multiplexing
 * (`mNM` switches that are themselves multiplexed, SG_MUL_VAL_ ranges). The rules are in docs/dbc.md.
 */
import type { MessageDef } from "./model";

export interface MuxCondition {
  /** Index (in message.signals) of the switch signal. */
  switchIndex: number;
  /** Inclusive raw switch values under which the signal is present. */
  ranges: Array<[number, number]>;
}

export interface MuxStructure {
  /** Per signal: undefined = always present; null = never present (a problem below says why). */
  conditions: Array<MuxCondition | undefined | null>;
  /** Signal indices, switches before the signals they govern. */
  order: number[];
  problems: string[];
}

export function resolveMultiplexing(m: MessageDef): MuxStructure {
  const problems: string[] = [];
  const byName = new Map(m.signals.map((s, i) => [s.dbcName, i]));
  // Without SG_MUL_VAL_, an `mN` signal belongs to the message's top-level switch: the first plain `M`.
  let defaultSwitch = m.signals.findIndex((s) => s.isMultiplexer && s.muxValue === undefined && s.muxSwitch === undefined);
  if (defaultSwitch < 0) defaultSwitch = m.signals.findIndex((s) => s.isMultiplexer);
  const conditions = m.signals.map((s, i): MuxCondition | undefined | null => {
    if (s.muxSwitch !== undefined && s.muxRanges) {
      const sw = byName.get(s.muxSwitch);
      if (sw === undefined || !m.signals[sw].isMultiplexer || sw === i) {
        problems.push(`signal ${s.name}: SG_MUL_VAL_ names ${s.muxSwitch}, which is not a multiplexer switch of ${m.name}`);
        return null;
      }
      return { switchIndex: sw, ranges: s.muxRanges };
    }
    if (s.muxValue === undefined) return undefined;
    if (defaultSwitch < 0 || defaultSwitch === i) {
      problems.push(`signal ${s.name} is multiplexed (m${s.muxValue}) but ${m.name} has no multiplexer switch for it`);
      return null;
    }
    return { switchIndex: defaultSwitch, ranges: [[s.muxValue, s.muxValue]] };
  });
  // Depth-first topological order; a cycle of switches makes its members never present.
  const order: number[] = [];
  const state = new Uint8Array(m.signals.length); // 0 new, 1 visiting, 2 done
  const visit = (i: number): boolean => {
    if (state[i] === 2) return true;
    if (state[i] === 1) return false;
    state[i] = 1;
    const c = conditions[i];
    if (c && !visit(c.switchIndex)) {
      problems.push(`signal ${m.signals[i].name} is part of a multiplexer cycle`);
      conditions[i] = null;
    }
    state[i] = 2;
    order.push(i);
    return true;
  };
  for (let i = 0; i < m.signals.length; i++) visit(i);
  return { conditions, order, problems };
}

/** True when `value` lies in one of the inclusive ranges. */
export function inRanges(value: number, ranges: Array<[number, number]>): boolean {
  for (const [lo, hi] of ranges) if (value >= lo && value <= hi) return true;
  return false;
}
