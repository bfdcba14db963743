/**
 * Database validation behind `vgw dbc --check`: problems a file can have while still parsing. Each finding carries the
 * line of the statement at fault. Errors make decoding wrong or ambiguous; warnings are legal but suspicious.
 */
import { attributeLabel, attributeValue, type Database, type MessageDef, type SignalDef } from "./model";
import { resolveMultiplexing, type MuxStructure } from "./multiplexing";
import { occupiedBits, signalLayout } from "./signal-layout";
import { printable } from "../frame/errors";

export interface Finding {
  severity: "error" | "warning";
  line: number;
  message: string;
}

export function checkDatabase(db: Database): Finding[] {
  const out: Finding[] = [];
  for (const w of db.warnings) out.push({ severity: w.severity ?? "warning", line: w.line, message: printable(`${w.reason} (near '${w.text}')`) });
  duplicateNames(db, out);
  for (const m of db.messages) {
    if (m.pseudo) continue;
    if (m.extImplied) {
      out.push({ severity: "warning", line: m.line, message: `message ${m.name}: ID ${m.id} is above 0x7FF without the extended flag; read as 29-bit` });
    }
    checkMessage(m, out);
    checkFrameFormat(db, m, out);
    for (const s of m.signals) checkRawValues(db, m, s, out);
    for (const g of m.signalGroups) {
      const missing = g.signals.filter((n) => !m.signals.some((s) => s.dbcName === n));
      if (missing.length) out.push({ severity: "warning", line: g.line, message: `signal group ${g.name} of ${m.name} names unknown signal(s) ${missing.join(", ")}` });
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

function duplicateNames(db: Database, out: Finding[]): void {
  const seen = new Map<string, number>();
  for (const m of db.messages) {
    const prev = seen.get(m.name);
    if (prev !== undefined) out.push({ severity: "error", line: m.line, message: `duplicate message name ${m.name} (first on line ${prev})` });
    else seen.set(m.name, m.line);
    const sigs = new Map<string, number>();
    for (const s of m.signals) {
      const p = sigs.get(s.name);
      if (p !== undefined) out.push({ severity: "error", line: s.line, message: `duplicate signal name ${s.name} in ${m.name} (first on line ${p})` });
      else sigs.set(s.name, s.line);
    }
  }
  const nodes = new Set<string>();
  for (const n of db.nodes) {
    if (nodes.has(n.name)) out.push({ severity: "error", line: n.line ?? 0, message: `duplicate node name ${n.name} in BU_` });
    nodes.add(n.name);
  }
}

function checkMessage(m: MessageDef, out: Finding[]): void {
  const mux = resolveMultiplexing(m);
  for (const p of mux.problems) out.push({ severity: "error", line: m.line, message: `message ${m.name}: ${p}` });
  const bits: Array<number[] | undefined> = [];
  m.signals.forEach((s, i) => {
    const layout = signalLayout(s);
    if (!layout) {
      out.push({ severity: "error", line: s.line, message: `signal ${m.name}.${s.name} lies beyond byte 63` });
      return;
    }
    if (layout.bytesNeeded > m.length) {
      out.push({ severity: "error", line: s.line, message: `signal ${m.name}.${s.name} needs ${layout.bytesNeeded} bytes, the message has ${m.length}` });
    }
    bits[i] = occupiedBits(layout);
    checkRange(m, i, out);
  });
  for (let i = 0; i < m.signals.length; i++) {
    for (let j = i + 1; j < m.signals.length; j++) {
      const a = bits[i];
      const b = bits[j];
      if (!a || !b || exclusive(mux, i, j)) continue;
      const shared = a.filter((x) => b.includes(x));
      if (shared.length) {
        const [si, sj] = [m.signals[i], m.signals[j]];
        out.push({
          severity: "error",
          line: sj.line,
          message: `signals ${si.name} and ${sj.name} of ${m.name} overlap in ${shared.length} bit(s) (first: bit ${Math.min(...shared)})`,
        });
      }
    }
  }
}

const FD_LENGTHS = [12, 16, 20, 24, 32, 48, 64];

function checkFrameFormat(db: Database, m: MessageDef, out: Finding[]): void {
  if (m.length <= 8) return;
  const format = attributeLabel(db, m.attributes, "VFrameFormat");
  if (format !== "StandardCAN_FD" && format !== "ExtendedCAN_FD") {
    out.push({ severity: "warning", line: m.line, message: `message ${m.name} has ${m.length} bytes but its VFrameFormat is ${format ?? "unset"}, not CAN FD` });
  }
  if (!FD_LENGTHS.includes(m.length)) {
    out.push({ severity: "warning", line: m.line, message: `message ${m.name}: ${m.length} bytes is not a CAN FD length; frames are padded to ${FD_LENGTHS.find((l) => l > m.length)}` });
  }
}

/** Value-table keys and the initial value are raw values: each must fit the signal's bits. */
function checkRawValues(db: Database, m: MessageDef, s: SignalDef, out: Finding[]): void {
  if (s.valueType !== "integer") return;
  const lo = s.signed ? -(2 ** (s.length - 1)) : 0;
  const hi = s.signed ? 2 ** (s.length - 1) - 1 : 2 ** s.length - 1;
  const bad = s.choices ? [...s.choices.keys()].filter((k) => k < lo || k > hi) : [];
  if (bad.length) {
    out.push({ severity: "warning", line: s.line, message: `signal ${m.name}.${s.name}: value-table key(s) ${bad.join(", ")} do not fit ${s.length} ${s.signed ? "signed" : "unsigned"} bits` });
  }
  const start = attributeValue(db, s.attributes, "GenSigStartValue");
  if (typeof start === "number" && (start < lo || start > hi)) {
    out.push({ severity: "warning", line: s.line, message: `signal ${m.name}.${s.name}: GenSigStartValue ${start} (raw) does not fit ${s.length} ${s.signed ? "signed" : "unsigned"} bits` });
  }
}

/** [min|max] the raw bits can reach; a DBC range outside it cannot be met. */
function checkRange(m: MessageDef, i: number, out: Finding[]): void {
  const s = m.signals[i];
  if (s.min === 0 && s.max === 0) return;
  if (s.min > s.max) {
    out.push({ severity: "warning", line: s.line, message: `signal ${m.name}.${s.name}: minimum ${s.min} is above maximum ${s.max}` });
    return;
  }
  if (s.valueType !== "integer") return;
  const lo = s.signed ? -(2 ** (s.length - 1)) : 0;
  const hi = s.signed ? 2 ** (s.length - 1) - 1 : 2 ** s.length - 1;
  const a = lo * s.factor + s.offset;
  const b = hi * s.factor + s.offset;
  const [pmin, pmax] = a <= b ? [a, b] : [b, a];
  const eps = Math.abs(s.factor) * 1e-6 + 1e-9 * Math.max(Math.abs(pmin), Math.abs(pmax));
  if (s.min < pmin - eps || s.max > pmax + eps) {
    out.push({
      severity: "warning",
      line: s.line,
      message: `signal ${m.name}.${s.name}: range [${s.min}, ${s.max}] exceeds what ${s.length} ${s.signed ? "signed" : "unsigned"} bits carry [${pmin}, ${pmax}]`,
    });
  }
}

/** True when two signals can never be present in the same frame: both depend on one switch through disjoint values. */
function exclusive(mux: MuxStructure, i: number, j: number): boolean {
  const need = (k: number) => {
    // switch index -> ranges required on the way from signal k to its root switch
    const req = new Map<number, Array<[number, number]>>();
    for (let guard = 0; guard < 64; guard++) {
      const c = mux.conditions[k];
      if (!c) break;
      req.set(c.switchIndex, c.ranges);
      k = c.switchIndex;
    }
    return req;
  };
  if (mux.conditions[i] === null || mux.conditions[j] === null) return true;
  const ri = need(i);
  const rj = need(j);
  for (const [sw, ranges] of ri) {
    const other = rj.get(sw);
    if (!other) continue;
    const meet = ranges.some(([a, b]) => other.some(([c, d]) => a <= d && c <= b));
    if (!meet) return true;
  }
  return false;
}
