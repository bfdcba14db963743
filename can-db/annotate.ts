/**
 * Decoded signals as people and programs read them, the one form every command prints (decode, dump, monitor, tail):
 *
 *   text: `Message Sig=1.5 km/h Other=ON`, then `! reason` when the frame could not be decoded
 *   JSON: `{"message": ..., "signals": {...}, "error"?: ...}`, integers beyond 2^53 and non-finite floats as strings
 *
 * `loadDecoder` wraps a DBC for the live commands (dump, monitor, tail): loaded once, value-table names shown.
 */
import type { Frame } from "../frame/frame";
import { loadDbcFile } from "./load";
import { Decoder, type CompiledMessage, type DecodedFrame, type SignalValue } from "./decoder";
import type { Database } from "./model";
import { TextBuffer } from "../frame/text-buffer";

export interface FrameDecoder {
  readonly db: Database;
  /** `Name Sig=1 Other=2 unit`, or "" for an unknown ID. */
  text(frame: Frame): string;
  /** `{message, signals, error?}` (see signalsJson). */
  json(frame: Frame): Record<string, unknown>;
  /** The raw decode result. */
  decode(frame: Frame): DecodedFrame;
}

/**
 * A value as people read it: scaled signals carry binary rounding noise (0.01 * 5248 = 52.480000000000004), so text
 * shows 15 significant digits, which is all a float64 holds reliably; JSON keeps the exact number for programs.
 */
export function signalValueText(v: SignalValue): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return String(v);
  const shortest = String(v);
  // A value whose shortest form has at most 15 significant digits is what rounding to 15 digits gives back (the
  // 15-digit grid is coarser than the double's own spacing), so only the longer ones need toPrecision.
  return significantDigits(shortest) <= 15 ? shortest : String(Number(v.toPrecision(15)));
}

/**
 * Significant digits of a number's String() form (`-0.00123` has 3, `1.5e-7` has 2). Zeros at the end of a whole
 * number count too, which can only send a value the long (exact) way, never give a wrong answer.
 */
function significantDigits(s: string): number {
  let n = 0;
  let leading = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x65 /* e */) break;
    if (c < 48 || c > 57) continue;
    if (leading && c === 48) continue;
    leading = false;
    n++;
  }
  return n;
}

/** A value in JSON: a number as is, except NaN/Infinity (JSON has none) and bigints, which become strings. */
export function signalValueJson(v: SignalValue): number | string {
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  return typeof v === "bigint" ? v.toString() : v;
}

/**
 * Prints decoded signals in the two forms above straight into bytes (see TextBuffer): `vgw decode` prints millions
 * of frames, and per-frame strings, JSON.stringify calls and unit look-ups by "message + signal" keys cost ten times
 * the decoding. The bytes of every name, key and unit are made once per message and signal.
 */
export class SignalPrinter {
  /** Units by message name, then signal name (the last definition of a name wins, as the DBC is read). */
  private readonly units = new Map<string, Map<string, string>>();
  /** Decimal places of each signal's factor and offset (the grid its values lie on), by message and signal name. */
  private readonly places = new Map<string, Map<string, number>>();
  private readonly forms = new Map<string, MessageForms>();
  private readonly labels = new Map<string, Buffer>();
  private readonly directPlain = new Map<CompiledMessage, DirectForms | null>();
  private readonly directChoices = new Map<CompiledMessage, DirectForms | null>();

  constructor(db: Database) {
    for (const m of db.messages) {
      let units = this.units.get(m.name);
      if (!units) this.units.set(m.name, (units = new Map()));
      for (const s of m.signals) if (s.unit) units.set(s.name, s.unit);
      let places = this.places.get(m.name);
      if (!places) this.places.set(m.name, (places = new Map()));
      for (const s of m.signals) places.set(s.name, Math.max(decimalPlaces(s.factor), decimalPlaces(s.offset)));
    }
  }

  /** `Message Sig=value unit ...` (plus `! reason` when undecodable); nothing for an unknown ID without an error. */
  text(out: TextBuffer, d: DecodedFrame): void {
    if (d.message === null) {
      if (d.error) out.text(`! ${d.error}`);
      return;
    }
    const m = this.formsOf(d.message);
    out.bytes(m.name);
    const signals = d.signals;
    for (const name in signals) {
      const f = m.signal(name);
      const v = signals[name];
      out.bytes(f.textKey);
      if (typeof v === "number") textNumber(out, v, f.places);
      else out.text(signalValueText(v));
      if (typeof v !== "string") out.bytes(f.unit);
    }
    if (d.error) out.text(` ! ${d.error}`);
  }

  /**
   * How to print a message's signals straight from `CompiledMessage.decodeInto`'s arrays, without the signals object
   * (`textDirect`, `jsonDirect`: the same bytes as `text` and `json`). Undefined when only the object gives the right
   * output: value-table labels with `choices`, integers wider than 53 bits (exact BigInt), or signal names an object
   * would merge (duplicates) or reorder (integer-like names come first in an object) or treat specially (__proto__).
   */
  direct(cm: CompiledMessage, choices: boolean): DirectForms | undefined {
    const cache = choices ? this.directChoices : this.directPlain;
    let p = cache.get(cm);
    if (p === undefined) {
      p = null;
      const names = new Set(cm.signals.map((s) => s.name));
      const objectOnly =
        names.size !== cm.signals.length ||
        cm.signals.some((s) => s.name === "__proto__" || /^\d+$/.test(s.name) || (s.valueType === "integer" && s.length > 53) || (choices && s.choices && s.choices.size > 0));
      if (!objectOnly) {
        const m = this.formsOf(cm.def.name);
        p = { message: m, signals: cm.signals.map((s) => m.signal(s.name)) };
      }
      cache.set(cm, p);
    }
    return p ?? undefined;
  }

  /** `text` for a complete frame of a `direct` message: present signals are those whose raw value is not NaN. */
  textDirect(out: TextBuffer, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    out.bytes(p.message.name);
    const signals = p.signals;
    for (let i = 0; i < signals.length; i++) {
      if (raw[i] !== raw[i]) continue;
      const f = signals[i];
      out.bytes(f.textKey);
      textNumber(out, phys[i], f.places);
      out.bytes(f.unit);
    }
  }

  /** `json` for a complete frame of a `direct` message. */
  jsonDirect(out: TextBuffer, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    out.bytes(p.message.jsonHead);
    const signals = p.signals;
    let first = true;
    for (let i = 0; i < signals.length; i++) {
      if (raw[i] !== raw[i]) continue;
      if (!first) out.byte(0x2c);
      first = false;
      const f = signals[i];
      out.bytes(f.jsonKey);
      jsonNumber(out, phys[i], f.places);
    }
    out.byte(0x7d);
  }

  /** `"message":...,"signals":{...}` and `,"error":...` when there is one: the keys of signalsJson, as JSON text. */
  json(out: TextBuffer, d: DecodedFrame): void {
    if (d.message === null) out.bytes(UNKNOWN_JSON);
    else {
      const m = this.formsOf(d.message);
      out.bytes(m.jsonHead);
      const signals = d.signals;
      let first = true;
      for (const name in signals) {
        if (!first) out.byte(0x2c);
        first = false;
        const f = m.signal(name);
        out.bytes(f.jsonKey);
        this.jsonValue(out, signals[name], f.places);
      }
    }
    out.byte(0x7d);
    if (d.error !== undefined) out.text(`,"error":${JSON.stringify(d.error)}`);
  }

  /** JSON.stringify(signalValueJson(v)) */
  private jsonValue(out: TextBuffer, v: SignalValue, places: number): void {
    if (typeof v === "number") jsonNumber(out, v, places);
    else if (typeof v === "bigint") out.text(`"${v}"`);
    else {
      let label = this.labels.get(v);
      if (!label) {
        if (this.labels.size >= 4096) this.labels.clear();
        label = Buffer.from(JSON.stringify(v), "utf8");
        this.labels.set(v, label);
      }
      out.bytes(label);
    }
  }

  private formsOf(message: string): MessageForms {
    let m = this.forms.get(message);
    if (!m) {
      m = new MessageForms(message, this.units.get(message), this.places.get(message));
      this.forms.set(message, m);
    }
    return m;
  }
}

/** A number as `text` prints it: signalValueText(v). */
function textNumber(out: TextBuffer, v: number, places: number): void {
  if (Number.isInteger(v) && v > -1e15 && v < 1e15) out.integer(v);
  else if (!out.gridDecimal(v, places, 1e15)) out.text(signalValueText(v));
}

/** A number as `json` prints it: JSON.stringify(signalValueJson(v)). */
function jsonNumber(out: TextBuffer, v: number, places: number): void {
  if (Number.isInteger(v) && v > -1e15 && v < 1e15) out.integer(v);
  else if (out.gridDecimal(v, places)) return;
  else if (Number.isFinite(v)) out.text(String(v));
  else out.text(`"${v}"`);
}

/** A message's printed forms with its signals' in definition order (SignalPrinter.direct). */
export interface DirectForms {
  readonly message: MessageForms;
  readonly signals: readonly SignalForms[];
}

const UNKNOWN_JSON = Buffer.from(`"message":null,"signals":{`);

/** The bytes printed for one message's name and signals. */
class MessageForms {
  readonly name: Buffer;
  readonly jsonHead: Buffer;
  private readonly signals = new Map<string, SignalForms>();

  constructor(
    message: string,
    private readonly units: Map<string, string> | undefined,
    private readonly places: Map<string, number> | undefined,
  ) {
    this.name = Buffer.from(message, "utf8");
    this.jsonHead = Buffer.from(`"message":${JSON.stringify(message)},"signals":{`, "utf8");
  }

  signal(name: string): SignalForms {
    let f = this.signals.get(name);
    if (!f) {
      const unit = this.units?.get(name) ?? "";
      f = {
        textKey: Buffer.from(` ${name}=`, "utf8"),
        unit: Buffer.from(unit ? ` ${unit}` : "", "utf8"),
        jsonKey: Buffer.from(`${JSON.stringify(name)}:`, "utf8"),
        places: this.places?.get(name) ?? 0,
      };
      this.signals.set(name, f);
    }
    return f;
  }
}

interface SignalForms {
  textKey: Buffer;
  unit: Buffer;
  jsonKey: Buffer;
  /** Decimal places of the signal's values (0: none, or not a short decimal). */
  places: number;
}

/** Digits after the point in a number's String() form; 0 for exponent forms (the grid is then not worth it). */
function decimalPlaces(x: number): number {
  const s = String(x);
  const dot = s.indexOf(".");
  return dot < 0 || s.includes("e") ? 0 : s.length - dot - 1;
}

/** `Message Sig=value unit ...` as a string (the live commands' form). */
export function signalsText(d: DecodedFrame, printer: SignalPrinter): string {
  const out = new TextBuffer(1024);
  printer.text(out, d);
  return out.take().toString("utf8");
}

/** The `message`, `signals` and `error` keys of a decoded frame's JSON object. */
export function signalsJson(d: DecodedFrame): Record<string, unknown> {
  const signals: Record<string, number | string> = {};
  for (const name in d.signals) signals[name] = signalValueJson(d.signals[name]);
  const o: Record<string, unknown> = { message: d.message, signals };
  if (d.error !== undefined) o.error = d.error;
  return o;
}

export async function loadDecoder(path: string): Promise<FrameDecoder> {
  const db = loadDbcFile(path);
  const decoder = new Decoder(db);
  const printer = new SignalPrinter(db);
  const decode = (f: Frame): DecodedFrame => decoder.decode(f, { choices: true });
  return {
    db,
    decode,
    text: (f) => signalsText(decode(f), printer),
    json: (f) => signalsJson(decode(f)),
  };
}
