/**
 * The gateway's signal table (`sigTable`, docs/policy.md "Signals", docs/protocol.md): one row of 11 integers per
 * signal the firmware extracts from frames and publishes on `P/signals`, and the table hash (`sh`) that ties a
 * decoder on the host to the table the gateway runs.
 *
 *   row = [key, start, len, flags, fNum, fDen, oNum, minInt, heartbeat, deadband, relPm]
 *
 * `start`/`len` are the DBC's own start bit and length (Intel: the LSB; Motorola: the MSB in sawtooth numbering), so
 * a row extracts exactly what can-db's decoder reads. The scaling is kept as integers,
 * physical = (raw * fNum + oNum) / fDen, because the firmware evaluates the relative deadband in integers; a signal
 * whose factor or offset has no such exact form is refused rather than approximated.
 */
import type { SignalDef } from "./model";
import { signalLayout } from "./signal-layout";

/** The firmware's table size. */
export const MAX_SIGNALS = 64;
/** Frame keys whose frames go only to signals (`sigOnly`). */
export const MAX_SIG_ONLY = 32;
/** Integers per row. */
export const ROW_WIDTH = 11;
/** Widest raw value a row can carry (the firmware extracts into 32 bits). */
export const MAX_SIGNAL_BITS = 32;

export const FLAG_MOTOROLA = 1;
export const FLAG_SIGNED = 2;
export const FLAG_ON_CHANGE = 4;
const FLAGS_KNOWN = FLAG_MOTOROLA | FLAG_SIGNED | FLAG_ON_CHANGE;

/** Column indices of a row. */
export const COL = { key: 0, start: 1, len: 2, flags: 3, fNum: 4, fDen: 5, oNum: 6, minInt: 7, heartbeat: 8, deadband: 9, relPm: 10 } as const;

/** Bound (exclusive) of |fNum|, |oNum|, fDen and of every rule value: they must fit a signed 32-bit integer. */
const INT_LIMIT = 2 ** 31;

/** The 11 integers of one row. */
export type SignalRow = number[];

/** Publication rules of one signal, in the row's units (the policy compiler converts physical deadbands to raw). */
export interface SignalRules {
  /** Publish only when the value changed (beyond the deadbands). */
  onChange?: boolean;
  /** Minimum ms between two published samples. */
  minInt?: number;
  /** Publish at least this often (ms) even when unchanged. */
  heartbeat?: number;
  /** Raw units; with onChange, a change must exceed it. */
  deadband?: number;
  /** Relative deadband, per mille of the last published physical value; with onChange. */
  relPm?: number;
}

/** The exact integer scaling of a signal: physical = (raw * fNum + oNum) / fDen. */
export interface Scaling {
  fNum: number;
  fDen: number;
  oNum: number;
}

export type SignalRowResult = { row: SignalRow; refusal?: undefined } | { row?: undefined; refusal: string };

/** An exact fraction num/den with den >= 1, in lowest terms. */
interface Fraction {
  num: bigint;
  den: bigint;
}

const absBig = (v: bigint) => (v < 0n ? -v : v);

function gcdBig(a: bigint, b: bigint): bigint {
  a = absBig(a);
  b = absBig(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

function reduce(num: bigint, den: bigint): Fraction {
  const g = gcdBig(num, den) || 1n;
  return { num: num / g, den: den / g };
}

/**
 * The decimal a number was written as: the shortest decimal that reads back as the same double, which is the DBC's
 * text whenever that text was itself a shortest form (`0.1`, `0.05`, `0.0625`, `1E-3`, `-40`).
 */
function decimalFraction(x: number): Fraction {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(x));
  if (!m) throw new Error(`not a finite number: ${x}`);
  const frac = m[3] ?? "";
  let num = BigInt(m[2] + frac);
  let den = 1n;
  const exp = Number(m[4] ?? 0) - frac.length;
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den = 10n ** BigInt(-exp);
  if (m[1]) num = -num;
  return reduce(num, den);
}

/**
 * The fraction p/q with q < 2^31 that reads back as exactly `x`, by continued fractions (e.g. 1/3 written as
 * 0.333333333333333333), or undefined. Each convergent is checked by the double division the reader would do.
 */
function continuedFraction(x: number): Fraction | undefined {
  const sign = x < 0 ? -1n : 1n;
  let rest = Math.abs(x);
  let [h0, h1] = [0n, 1n];
  let [k0, k1] = [1n, 0n];
  for (let step = 0; step < 64; step++) {
    const a = Math.floor(rest);
    if (!Number.isSafeInteger(a)) return undefined;
    const ab = BigInt(a);
    [h0, h1] = [h1, ab * h1 + h0];
    [k0, k1] = [k1, ab * k1 + k0];
    if (k1 >= BigInt(INT_LIMIT)) return undefined;
    if (Number(h1) / Number(k1) === Math.abs(x)) return reduce(sign * h1, k1);
    const f = rest - a;
    if (f === 0) return undefined;
    rest = 1 / f;
  }
  return undefined;
}

const fits = (v: bigint) => absBig(v) < BigInt(INT_LIMIT);

/** The exact fraction a DBC number stands for, with a denominator below 2^31, or undefined. */
export function exactFraction(x: number): { num: bigint; den: bigint } | undefined {
  if (!Number.isFinite(x)) return undefined;
  const d = decimalFraction(x);
  if (d.den < BigInt(INT_LIMIT)) return d;
  return continuedFraction(x);
}

/**
 * The integers (fNum, fDen, oNum) with physical = (raw * fNum + oNum) / fDen for a factor and offset, or why there are
 * none: a factor or offset with no exact fraction, or a common denominator / numerator of 2^31 or more.
 */
export function exactScaling(factor: number, offset: number): Scaling | string {
  const f = exactFraction(factor);
  if (!f) return `factor ${factor} is not an exact fraction with a denominator below 2^31`;
  const o = exactFraction(offset);
  if (!o) return `offset ${offset} is not an exact fraction with a denominator below 2^31`;
  const den = (f.den / gcdBig(f.den, o.den)) * o.den;
  const fNum = f.num * (den / f.den);
  const oNum = o.num * (den / o.den);
  if (!fits(den) || !fits(fNum) || !fits(oNum)) {
    return `factor ${factor} and offset ${offset} need (raw * ${fNum} + ${oNum}) / ${den}, beyond the 32-bit integers the gateway uses`;
  }
  const s = { fNum: Number(fNum), fDen: Number(den), oNum: Number(oNum) };
  // the reader's doubles and the fraction must agree, or the fraction is not what the file says
  if (s.fNum / s.fDen !== factor || s.oNum / s.fDen !== offset) return `factor ${factor} / offset ${offset} have no exact integer form`;
  return s;
}

/** Why a signal cannot be extracted by the gateway, or undefined when it can. */
export function signalRefusal(s: SignalDef): string | undefined {
  if (s.valueType !== "integer") return `it is an IEEE ${s.valueType} signal (SIG_VALTYPE_); the gateway extracts integers only`;
  if (s.muxValue !== undefined || s.muxSwitch !== undefined) return "it is multiplexed; the gateway extracts signals that are in every frame of their message";
  if (s.length > MAX_SIGNAL_BITS) return `it is ${s.length} bits long; the gateway extracts at most ${MAX_SIGNAL_BITS}`;
  if (!signalLayout(s)) return "its bits run past byte 63, beyond any frame";
  const scaling = exactScaling(s.factor, s.offset);
  return typeof scaling === "string" ? scaling : undefined;
}

function ruleValue(rules: SignalRules, name: keyof SignalRules & string): number | string {
  const v = rules[name] ?? 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= INT_LIMIT) return `${name} must be an integer 0..${INT_LIMIT - 1}, got ${String(v)}`;
  return v;
}

/** The row for one signal of the frame `key` under `rules`, or a refusal naming the signal and the reason. */
export function signalRow(signal: SignalDef, key: number, rules: SignalRules = {}): SignalRowResult {
  const refuse = (reason: string): SignalRowResult => ({ refusal: `signal ${signal.name}: ${reason}` });
  if (!Number.isInteger(key) || key < 0 || key > 0xffffffff) return refuse(`frame key ${key} is not a 32-bit unsigned integer`);
  const why = signalRefusal(signal);
  if (why) return refuse(why);
  const scaling = exactScaling(signal.factor, signal.offset) as Scaling;
  const values: number[] = [];
  for (const name of ["minInt", "heartbeat", "deadband", "relPm"] as const) {
    const v = ruleValue(rules, name);
    if (typeof v === "string") return refuse(v);
    values.push(v);
  }
  const flags = (signal.byteOrder === "big_endian" ? FLAG_MOTOROLA : 0) | (signal.signed ? FLAG_SIGNED : 0) | (rules.onChange ? FLAG_ON_CHANGE : 0);
  return { row: [key >>> 0, signal.startBit, signal.length, flags, scaling.fNum, scaling.fDen, scaling.oNum, ...values] };
}

/**
 * Why the firmware would refuse a row, or undefined: the same checks it makes (docs/protocol.md), so the host can tell
 * a bad table before it is sent, and a loader can tell one it was handed.
 */
export function rowProblem(row: readonly number[]): string | undefined {
  if (!Array.isArray(row) || row.length !== ROW_WIDTH) return `a row has ${ROW_WIDTH} integers, got ${Array.isArray(row) ? row.length : typeof row}`;
  if (!row.every((v) => typeof v === "number" && Number.isInteger(v))) return "every value must be an integer";
  const [key, start, len, flags, fNum, fDen, oNum, minInt, heartbeat, deadband, relPm] = row;
  if (key < 0 || key > 0xffffffff) return `key ${key} is not a 32-bit unsigned integer`;
  if (len < 1 || len > MAX_SIGNAL_BITS) return `len ${len} is not 1..${MAX_SIGNAL_BITS}`;
  if (start < 0 || start > 511) return `start ${start} is not 0..511`;
  if (!signalLayout({ startBit: start, length: len, byteOrder: flags & FLAG_MOTOROLA ? "big_endian" : "little_endian" })) return `start ${start} + len ${len} runs past 64 bytes`;
  if (flags < 0 || (flags & ~FLAGS_KNOWN) !== 0) return `flags ${flags} has reserved bits set`;
  if (fDen < 1 || fDen >= INT_LIMIT) return `fDen ${fDen} is not 1..2^31-1`;
  if (Math.abs(fNum) >= INT_LIMIT || Math.abs(oNum) >= INT_LIMIT) return "fNum and oNum must be below 2^31 in magnitude";
  if (fNum === 0) return "fNum is 0";
  for (const [name, v] of [["minInt", minInt], ["heartbeat", heartbeat], ["deadband", deadband], ["relPm", relPm]] as const) {
    if (v < 0 || v >= INT_LIMIT) return `${name} ${v} is not 0..2^31-1`;
  }
  return undefined;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The table hash (`sh` in the status, `h` in every `P/signals` batch): FNV-1a 32-bit over the rows' integers in order,
 * each as 4 bytes little-endian of its value modulo 2^32. An empty table hashes to 0, not to the offset basis.
 */
export function tableHash(rows: readonly (readonly number[])[]): number {
  if (rows.length === 0) return 0;
  let h = FNV_OFFSET;
  for (const row of rows) {
    for (const v of row) {
      const u = v >>> 0;
      for (let b = 0; b < 32; b += 8) {
        h ^= (u >>> b) & 0xff;
        h = Math.imul(h, FNV_PRIME) >>> 0;
      }
    }
  }
  return h >>> 0;
}

/**
 * A deadband in physical units as the raw deadband the row carries: |Δraw| * |factor| > d holds exactly when
 * |Δraw| > floor(d / |factor|), Δraw being an integer. Undefined when `physical` has no exact fraction.
 */
export function rawDeadband(physical: number, scaling: Scaling): number | undefined {
  const d = exactFraction(physical);
  if (!d || d.num < 0n) return undefined;
  // d / (|fNum| / fDen) = d.num * fDen / (d.den * |fNum|)
  return Number((d.num * BigInt(scaling.fDen)) / (d.den * BigInt(Math.abs(scaling.fNum))));
}

/**
 * A row's physical value for a raw one, computed as can-db's decoder does (raw * factor + offset, in doubles: the
 * row's fractions read back as exactly the DBC's factor and offset), so both give the same double.
 */
export function physicalValue(row: readonly number[], raw: number): number {
  return raw * (row[COL.fNum] / row[COL.fDen]) + row[COL.oNum] / row[COL.fDen];
}
