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
import { Decoder, type DecodedFrame, type SignalValue } from "./decoder";
import type { Database } from "./model";

/** Unit of a signal of a message, "" when none. */
export type UnitOf = (message: string, signal: string) => string;

export interface FrameDecoder {
  readonly db: Database;
  /** `Name Sig=1 Other=2 unit`, or "" for an unknown ID. */
  text(frame: Frame): string;
  /** `{message, signals, error?}` (see signalsJson). */
  json(frame: Frame): Record<string, unknown>;
  /** The raw decode result. */
  decode(frame: Frame): DecodedFrame;
  unit: UnitOf;
}

/**
 * A value as people read it: scaled signals carry binary rounding noise (0.01 * 5248 = 52.480000000000004), so text
 * shows 15 significant digits, which is all a float64 holds reliably; JSON keeps the exact number for programs.
 */
export function signalValueText(v: SignalValue): string {
  return typeof v === "number" && Number.isFinite(v) ? String(Number(v.toPrecision(15))) : String(v);
}

/** A value in JSON: a number as is, except NaN/Infinity (JSON has none) and bigints, which become strings. */
export function signalValueJson(v: SignalValue): number | string {
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  return typeof v === "bigint" ? v.toString() : v;
}

/** `Message Sig=value unit ...` (plus `! reason` when undecodable); "" for an unknown ID without an error. */
export function signalsText(d: DecodedFrame, unit: UnitOf): string {
  if (d.message === null) return d.error ? `! ${d.error}` : "";
  const parts = [d.message];
  for (const name in d.signals) {
    const v = d.signals[name];
    const u = typeof v === "string" ? "" : unit(d.message, name);
    parts.push(`${name}=${signalValueText(v)}${u ? ` ${u}` : ""}`);
  }
  if (d.error) parts.push(`! ${d.error}`);
  return parts.join(" ");
}

/** The `message`, `signals` and `error` keys of a decoded frame's JSON object. */
export function signalsJson(d: DecodedFrame): Record<string, unknown> {
  const signals: Record<string, number | string> = {};
  for (const name in d.signals) signals[name] = signalValueJson(d.signals[name]);
  const o: Record<string, unknown> = { message: d.message, signals };
  if (d.error !== undefined) o.error = d.error;
  return o;
}

/** Units of every signal of a database, looked up by message and signal name. */
export function unitsOf(db: Database): UnitOf {
  const units = new Map<string, string>();
  for (const m of db.messages) for (const s of m.signals) if (s.unit) units.set(`${m.name}\u0000${s.name}`, s.unit);
  return (message, signal) => units.get(`${message}\u0000${signal}`) ?? "";
}

export async function loadDecoder(path: string): Promise<FrameDecoder> {
  const db = loadDbcFile(path);
  const decoder = new Decoder(db);
  const unit = unitsOf(db);
  const decode = (f: Frame): DecodedFrame => decoder.decode(f, { choices: true });
  return {
    db,
    decode,
    unit,
    text: (f) => signalsText(decode(f), unit),
    json: (f) => signalsJson(decode(f)),
  };
}
