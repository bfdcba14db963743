/**
 * Decoded signals beside live frames (dump, monitor): a DBC loaded once, each frame decoded with can-db's Decoder,
 * printed as `Message Sig=1.5 km/h Other=ON` or merged into a JSON object as `vgw decode --format jsonl` does.
 */
import type { Frame } from "../../../can-db/frame";
import { loadDbcFile } from "../../../can-db/load";
import { Decoder, type SignalValue } from "../../../can-db/decoder";
import type { Database } from "../../../can-db/model";

export interface FrameDecoder {
  readonly db: Database;
  /** `Name Sig=1 Other=2 unit`, or "" for an unknown ID. */
  text(frame: Frame): string;
  /** `{message, signals, error?}`; integers beyond 2^53 as decimal strings. */
  json(frame: Frame): Record<string, unknown>;
  /** The raw decode result. */
  decode(frame: Frame): { message: string | null; signals: Record<string, SignalValue>; error?: string };
  /** Unit of a signal of a message, "" when none. */
  unit(message: string, signal: string): string;
}

function valueText(v: SignalValue): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 1e6) / 1e6);
  return String(v);
}

export async function loadDecoder(path: string): Promise<FrameDecoder> {
  const db = loadDbcFile(path);
  const decoder = new Decoder(db);
  const units = new Map<string, string>();
  for (const m of db.messages) for (const s of m.signals) units.set(`${m.name}\u0000${s.name}`, s.unit);
  const unit = (message: string, signal: string) => units.get(`${message}\u0000${signal}`) ?? "";
  return {
    db,
    decode: (f) => decoder.decode(f, { choices: true }),
    unit,
    text(f) {
      const d = decoder.decode(f, { choices: true });
      if (!d.message) return "";
      const sigs = Object.entries(d.signals).map(([k, v]) => {
        const u = typeof v === "string" ? "" : unit(d.message as string, k);
        return `${k}=${valueText(v)}${u ? " " + u : ""}`;
      });
      return [d.message, ...sigs, ...(d.error ? [`(${d.error})`] : [])].join(" ");
    },
    json(f) {
      const d = decoder.decode(f, { choices: true });
      const signals: Record<string, number | string> = {};
      for (const [k, v] of Object.entries(d.signals)) signals[k] = typeof v === "bigint" ? v.toString() : v;
      const o: Record<string, unknown> = { message: d.message, signals };
      if (d.error) o.error = d.error;
      return o;
    },
  };
}
