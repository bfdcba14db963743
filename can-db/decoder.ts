/**
 * Frame decoding. Each message's decoder is generated as JavaScript source once, the first time a frame of that
 * message arrives, and compiled with `new Function`: the bit layout, scaling and multiplexer tests become constants in
 * straight-line code, so decoding a frame is a handful of byte reads with no per-signal loop or allocation.
 *
 * Two levels:
 * - `CompiledMessage.decodeInto(data, raw, phys)`: the fast path. Writes raw and physical values of every signal into
 *   caller-owned Float64Arrays (index = position in `message.signals`); NaN marks a signal that is not present
 *   (inactive multiplexed signal, or a frame too short to carry it). Allocates nothing.
 * - `Decoder.decode(frame)`: looks the frame up (by ID, then by J1939 PGN), runs the fast path and builds the
 *   `{ message, signals }` object; bad frames give `error`, never an exception.
 *
 * Values wider than 53 bits are exact: the object API re-reads them as BigInt (number when they fit in 2^53).
 * Float signals: `raw` holds the IEEE bit pattern, `phys` the value (times factor plus offset).
 */
import { endianness } from "node:os";
import type { Frame } from "../frame/frame";
import { isJ1939Message, type Database, type MessageDef, type SignalDef, type ValueTable } from "./model";
import { resolveMultiplexing, type MuxStructure } from "./multiplexing";
import { readRawBig, signalLayout, type BitRun, type SignalLayout } from "./signal-layout";
import { j1939Pgn } from "./j1939";

export type SignalValue = number | bigint | string;

export interface DecodedFrame {
  /** The message's name, or null for an ID the database does not know. */
  message: string | null;
  /** Present signals only, in definition order. */
  signals: Record<string, SignalValue>;
  /** Why the frame could not be (fully) decoded. */
  error?: string;
}

export interface DecodeOptions {
  /** Replace values that have a value-table label (looked up by raw value) with the label. */
  choices?: boolean;
}

type DecodeFn = (d: Uint8Array, raw: Float64Array, phys: Float64Array) => number;
type BuildFn = (d: Uint8Array, raw: Float64Array, phys: Float64Array) => Record<string, SignalValue>;
interface Builders {
  literal?: BuildFn;
  keyed: BuildFn;
}

// One scratch word reinterprets integer bits as IEEE floats (DataView per frame would allocate).
const SCRATCH = new ArrayBuffer(8);
const U32 = new Uint32Array(SCRATCH);
const F32 = new Float32Array(SCRATCH, 0, 1);
const F64 = new Float64Array(SCRATCH);
const LO = endianness() === "LE" ? 0 : 1;
const HI = 1 - LO;

const TWO32 = 4294967296;

/** A message ready to decode: its signals, layouts, multiplexing and generated functions. */
export class CompiledMessage {
  readonly signals: readonly SignalDef[];
  readonly layouts: ReadonlyArray<SignalLayout | undefined>;
  readonly mux: MuxStructure;
  /** The generated fast path; see the module comment. Returns how many present signals the frame was too short for. */
  readonly decodeInto: DecodeFn;
  /** Compile-time problems (unreachable signals, bad mux); decoding still works for the rest. */
  readonly problems: string[];
  private buildPlain?: Builders;
  private buildChoices?: Builders;

  constructor(readonly def: MessageDef) {
    this.signals = def.signals;
    this.layouts = def.signals.map((s) => signalLayout(s));
    this.mux = resolveMultiplexing(def);
    this.problems = [...this.mux.problems];
    this.layouts.forEach((l, i) => {
      if (!l) this.problems.push(`signal ${def.signals[i].name} lies beyond byte 63 and is never decoded`);
    });
    this.decodeInto = new Function("U32", "F32", "F64", decoderSource(this))(U32, F32, F64) as DecodeFn;
  }

  /**
   * Builds the signals object from the fast path's output (generated on first use per mode). `missing` is what
   * decodeInto returned: a complete frame of a message without multiplexing takes the object-literal form.
   */
  build(d: Uint8Array, raw: Float64Array, phys: Float64Array, choices: boolean, missing: number): Record<string, SignalValue> {
    const b = choices ? (this.buildChoices ??= this.compileBuild(true)) : (this.buildPlain ??= this.compileBuild(false));
    return b.literal && missing === 0 ? b.literal(d, raw, phys) : b.keyed(d, raw, phys);
  }

  private compileBuild(choices: boolean): Builders {
    const tables: Array<ValueTable | undefined> = [];
    const exact: Array<((d: Uint8Array) => SignalValue) | undefined> = [];
    const values = this.signals.map((s, i) => {
      let value = `phys[${i}]`;
      if (s.valueType === "integer" && s.length > 53 && this.layouts[i]) {
        exact[i] = exactReader(s, this.layouts[i]);
        value = `E[${i}](d)`;
      }
      if (choices && s.choices && s.choices.size > 0) {
        tables[i] = s.choices;
        value = `(T[${i}].get(raw[${i}]) ?? ${value})`;
      }
      return value;
    });
    const make = (body: string) => new Function("T", "E", `"use strict"; return function (d, raw, phys) { ${body} };`)(tables, exact) as BuildFn;
    const names = this.signals.map((s) => JSON.stringify(s.name));
    // Long names come from attribute strings: "__proto__" must become an own property, not the prototype.
    const assign = (i: number, v: string) =>
      this.signals[i].name === "__proto__"
        ? `Object.defineProperty(o, "__proto__", { value: ${v}, enumerable: true, writable: true, configurable: true });`
        : `o[${names[i]}] = ${v};`;
    const keyed = make(`const o = {}; ${values.map((v, i) => `if (raw[${i}] === raw[${i}]) ${assign(i, v)}`).join("\n")} return o;`);
    // Every signal always present: an object literal gives every frame of the message one hidden class.
    const always = this.mux.conditions.every((c) => c === undefined) && this.layouts.every((l) => l !== undefined);
    const literal = always ? make(`return { ${values.map((v, i) => `${this.signals[i].name === "__proto__" ? `[${names[i]}]` : names[i]}: ${v}`).join(", ")} };`) : undefined;
    return { literal, keyed };
  }
}

/** Exact value of a signal wider than 53 bits: BigInt raw, scaled; a number whenever that is exact. */
function exactReader(s: SignalDef, layout: SignalLayout): (d: Uint8Array) => SignalValue {
  return (d) => {
    const raw = readRawBig(d, layout, s.length, s.signed);
    if (s.factor === 1 && s.offset === 0) {
      return raw >= -(2n ** 53n) && raw <= 2n ** 53n ? Number(raw) : raw;
    }
    if (Number.isInteger(s.factor) && Number.isInteger(s.offset)) {
      const v = raw * BigInt(s.factor) + BigInt(s.offset);
      return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
    }
    return Number(raw) * s.factor + s.offset;
  };
}

function lit(n: number): string {
  return n < 0 || Object.is(n, -0) ? `(${n})` : String(n);
}

/** `((d[b] >> shift) & mask)` for a run. */
function runBits(r: BitRun): string {
  const src = r.shift ? `(d[${r.byte}] >> ${r.shift})` : `d[${r.byte}]`;
  return r.width === 8 && r.shift === 0 ? src : `(${src} & ${(1 << r.width) - 1})`;
}

/** 32-bit OR of runs, shifted to their raw positions minus `base`; `>>> 0` makes it unsigned. */
function or32(runs: BitRun[], base: number): string {
  if (runs.length === 0) return "0";
  return `((${runs.map((r) => (r.rawBit - base ? `(${runBits(r)} << ${r.rawBit - base})` : runBits(r))).join(" | ")}) >>> 0)`;
}

function decoderSource(cm: CompiledMessage): string {
  const lines: string[] = [];
  lines.push(`"use strict";`, `return function decode(d, raw, phys) {`, `const n = d.length; let missing = 0; let r = 0, lo = 0, hi = 0;`);
  for (const i of cm.mux.order) {
    const s = cm.signals[i];
    const layout = cm.layouts[i];
    const cond = cm.mux.conditions[i];
    const absent = `raw[${i}] = NaN; phys[${i}] = NaN;`;
    if (cond === null || !layout) {
      lines.push(absent);
      continue;
    }
    let test = "true";
    if (cond) {
      const sw = `raw[${cond.switchIndex}]`;
      test = cond.ranges.map(([a, b]) => (a === b ? `${sw} === ${a}` : `(${sw} >= ${a} && ${sw} <= ${b})`)).join(" || ");
    }
    const value = valueSource(s, layout.runs, i);
    const present = `if (n >= ${layout.bytesNeeded}) { ${value} } else { ${absent} missing++; }`;
    lines.push(test === "true" ? present : `if (${test}) { ${present} } else { ${absent} }`);
  }
  lines.push(`return missing;`, `};`);
  return lines.join("\n");
}

/** Statements that compute signal i's raw value into `r` and store raw[i] and phys[i]. */
function valueSource(s: SignalDef, runs: BitRun[], i: number): string {
  const L = s.length;
  const scale = (v: string) => (s.factor === 1 && s.offset === 0 ? v : `${v} * ${lit(s.factor)} + ${lit(s.offset)}`);
  if (s.valueType === "float32") {
    return `r = ${or32(runs, 0)}; U32[0] = r; raw[${i}] = r; phys[${i}] = ${scale("F32[0]")};`;
  }
  const low = runs.filter((r) => r.rawBit < 32);
  const high = runs.filter((r) => r.rawBit >= 32);
  if (s.valueType === "float64") {
    return `lo = ${or32(low, 0)}; hi = ${or32(high, 32)}; U32[${LO}] = lo; U32[${HI}] = hi; raw[${i}] = hi * ${TWO32} + lo; phys[${i}] = ${scale(`F64[0]`)};`;
  }
  let code: string;
  if (L <= 32) {
    // Bitwise path: exact for up to 32 bits; signed values sign-extend by shifting the top bit into bit 31 and back.
    const expr = `(${runs.map((r) => (r.rawBit ? `(${runBits(r)} << ${r.rawBit})` : runBits(r))).join(" | ")})`;
    if (s.signed) code = L === 32 ? `r = ${expr} | 0;` : `r = (${expr} << ${32 - L}) >> ${32 - L};`;
    else code = L === 32 ? `r = ${expr} >>> 0;` : `r = ${expr};`;
  } else if (L <= 53) {
    // Sum of per-byte terms: each is exact, and so is the sum below 2^53.
    code = `r = ${runs.map((r) => (r.rawBit ? `${runBits(r)} * ${2 ** r.rawBit}` : runBits(r))).join(" + ")};`;
    if (s.signed) code += ` if (r >= ${2 ** (L - 1)}) r -= ${2 ** L};`;
  } else {
    // Wider than 53 bits: a close double here; the object API re-reads the exact BigInt.
    const hiExpr = s.signed ? (L === 64 ? `(hi | 0)` : `((hi << ${64 - L}) >> ${64 - L})`) : "hi";
    code = `lo = ${or32(low, 0)}; hi = ${or32(high, 32)}; r = ${hiExpr} * ${TWO32} + lo;`;
  }
  return `${code} raw[${i}] = r; phys[${i}] = ${scale("r")};`;
}

/**
 * Decodes frames against a database. Message decoders are compiled on first use and kept; `decode` never throws
 * for a bad frame, it returns `error`.
 */
export class Decoder {
  private readonly byKey = new Map<number, Entry>();
  private readonly byPgn = new Map<number, Entry>();
  private readonly entries = new Map<MessageDef, Entry>();
  private raw = new Float64Array(64);
  private phys = new Float64Array(64);

  constructor(readonly db: Database) {
    for (const m of db.messages) {
      if (m.pseudo) continue;
      const entry: Entry = { def: m, compiled: undefined };
      this.entries.set(m, entry);
      this.byKey.set(lookupKey(m.id, m.ext), entry);
      if (isJ1939Message(db, m)) {
        const pgn = j1939Pgn(m.id);
        if (!this.byPgn.has(pgn)) this.byPgn.set(pgn, entry);
      }
    }
  }

  /** The message a frame belongs to: exact ID first, then (29-bit frames) a J1939 message with the same PGN. */
  lookup(id: number, ext: boolean): MessageDef | undefined {
    return this.entry(id, ext)?.def;
  }

  private entry(id: number, ext: boolean): Entry | undefined {
    const e = this.byKey.get(lookupKey(id, ext));
    if (e || !ext || this.byPgn.size === 0) return e;
    return this.byPgn.get(j1939Pgn(id));
  }

  /** The message's compiled decoder (built on first use, then kept). */
  compile(m: MessageDef): CompiledMessage {
    let e = this.entries.get(m);
    if (!e) {
      e = { def: m, compiled: undefined };
      this.entries.set(m, e);
    }
    return this.compiledOf(e);
  }

  /** The compiled decoder of the message a frame belongs to (as `decode` looks it up), or undefined for an unknown ID. */
  compiledFor(id: number, ext: boolean): CompiledMessage | undefined {
    const e = this.entry(id, ext);
    return e && (e.compiled ?? this.compiledOf(e));
  }

  private compiledOf(e: Entry): CompiledMessage {
    if (e.compiled) return e.compiled;
    const cm = new CompiledMessage(e.def);
    e.compiled = cm;
    if (cm.signals.length > this.raw.length) {
      this.raw = new Float64Array(cm.signals.length);
      this.phys = new Float64Array(cm.signals.length);
    }
    return cm;
  }

  decode(frame: Frame, options?: DecodeOptions): DecodedFrame {
    if (frame.err) return { message: null, signals: {}, error: `error frame (class 0x${frame.id.toString(16)})` };
    const e = this.entry(frame.id, frame.ext);
    if (!e) return { message: null, signals: {} };
    const m = e.def;
    if (frame.rtr) return { message: m.name, signals: {}, error: "remote frame: no data to decode" };
    const cm = e.compiled ?? this.compiledOf(e);
    const missing = cm.decodeInto(frame.data, this.raw, this.phys);
    const signals = cm.build(frame.data, this.raw, this.phys, options?.choices ?? false, missing);
    // Rule (docs/dbc.md): a frame shorter than the message is an error, with the signals that fit still decoded.
    // Signals the DBC places beyond the message's own length are decoded when a frame carries them, else absent.
    if (frame.data.length < m.length) {
      return {
        message: m.name,
        signals,
        error: `frame has ${frame.data.length} bytes, ${m.name} has ${m.length}${missing ? `: ${missing} signal(s) not decoded` : ""}`,
      };
    }
    return { message: m.name, signals };
  }
}

interface Entry {
  def: MessageDef;
  compiled: CompiledMessage | undefined;
}

/**
 * The decoder's map key for (ID, kind). Not the gateway's frame key (frame-key.ts), whose bit 31 makes extended keys
 * heap numbers in V8: this one stays below 2^30, a small integer, which keeps the per-frame lookup fast.
 */
function lookupKey(id: number, ext: boolean): number {
  return id * 2 + (ext ? 1 : 0);
}
