/**
 * Encoding: signal values -> payload bytes for one message. Not a hot path, so it is written plainly on top of the
 * shared bit layout (BigInt raw values, exact to 64 bits) rather than generated; the property tests check it against
 * the generated decoders, which share only the layout with it.
 *
 * Rules: values are physical (raw = (value - offset) / factor, rounded) or value-table labels; a signal the caller
 * leaves out gets its GenSigStartValue attribute (a RAW value, as CANdb++ defines it) or raw 0; a value outside the
 * signal's [min|max] (when the DBC sets one) or outside what its bits can hold is a CodecError naming signal and range;
 * a multiplexed signal given a value while its switch selects another branch is an error too.
 */
import { CodecError } from "../frame/errors";
import { FD_LENGTHS, makeFrame, type Frame } from "../frame/frame";
import { attributeLabel, attributeValue, type Database, type MessageDef, type SignalDef } from "./model";
import { inRanges, resolveMultiplexing } from "./multiplexing";
import { signalLayout, writeRawBig } from "./signal-layout";

export type EncodeValue = number | bigint | string;

const SCRATCH = new ArrayBuffer(8);
const U32 = new Uint32Array(SCRATCH);
const F32 = new Float32Array(SCRATCH, 0, 1);
const F64 = new Float64Array(SCRATCH);
const U64 = new BigUint64Array(SCRATCH);

export function encodeMessage(db: Database, m: MessageDef, values: Record<string, EncodeValue>): Uint8Array {
  const index = new Map<string, number>();
  m.signals.forEach((s, i) => {
    index.set(s.name, i);
    index.set(s.dbcName, i);
  });
  const given = new Map<number, EncodeValue>();
  for (const [name, v] of Object.entries(values)) {
    const i = index.get(name);
    if (i === undefined) throw new CodecError(`message ${m.name} has no signal ${name} (its signals: ${m.signals.map((x) => x.name).join(", ")})`);
    given.set(i, v);
  }
  const mux = resolveMultiplexing(m);
  const raws: Array<bigint | undefined> = new Array(m.signals.length);
  const data = new Uint8Array(m.length);
  for (const i of mux.order) {
    const s = m.signals[i];
    const cond = mux.conditions[i];
    let present = cond === undefined;
    if (cond) {
      const sw = raws[cond.switchIndex];
      present = sw !== undefined && inRanges(Number(sw), cond.ranges);
    }
    const v = given.get(i);
    if (!present) {
      if (v !== undefined) {
        const why = cond ? `${m.signals[cond.switchIndex].name}=${raws[cond.switchIndex] ?? "absent"}` : "its multiplexer is invalid";
        throw new CodecError(`signal ${s.name} is not present in ${m.name} when ${why}`);
      }
      continue;
    }
    const raw = v === undefined ? initialRaw(db, s) : toRaw(s, v);
    raws[i] = raw;
    const layout = signalLayout(s);
    if (!layout || layout.bytesNeeded > m.length) {
      if (v !== undefined) throw new CodecError(`signal ${s.name} lies beyond the ${m.length} bytes of ${m.name}`);
      continue;
    }
    writeRawBig(data, layout, s.length, raw);
  }
  return data;
}

/**
 * One frame of message `m` carrying `values` (see encodeMessage). A CAN FD payload whose length is no CAN FD length
 * (variable_dlc.dbc has 10) is padded with zeros to the next one, as a controller pads it; the bit-rate switch is
 * set unless the message's CANFD_BRS attribute (Vector's) says "0".
 */
export function encodeFrame(db: Database, m: MessageDef, values: Record<string, EncodeValue>): Frame {
  let data = encodeMessage(db, m, values);
  if (m.fd && data.length > 8 && !FD_LENGTHS.includes(data.length)) {
    const padded = new Uint8Array(FD_LENGTHS.find((l) => l >= data.length) ?? 64);
    padded.set(data);
    data = padded;
  }
  const brs = m.fd && attributeLabel(db, m.attributes, "CANFD_BRS") !== "0";
  return makeFrame({ id: m.id, ext: m.ext, fd: m.fd, brs, data });
}

/** GenSigStartValue (raw) or 0. */
function initialRaw(db: Database, s: SignalDef): bigint {
  const v = attributeValue(db, s.attributes, "GenSigStartValue");
  if (typeof v === "number" && Number.isFinite(v)) return fitRaw(s, BigInt(Math.round(v)), true);
  return 0n;
}

/** The raw value for a physical value or label; throws CodecError naming the signal when it does not fit. */
export function toRaw(s: SignalDef, v: EncodeValue): bigint {
  if (typeof v === "string") {
    if (s.choices) for (const [raw, label] of s.choices) if (label === v) return BigInt(raw);
    const n = v.trim() === "" ? NaN : Number(v);
    if (Number.isNaN(n) && !/^nan$/i.test(v.trim())) {
      const labels = s.choices ? [...s.choices.values()].map((l) => JSON.stringify(l)).join(", ") : "";
      throw new CodecError(`signal ${s.name}: '${v}' is neither a number nor one of its labels${labels ? ` (${labels})` : ""}`);
    }
    if (/^-?\d+$/.test(v.trim()) && !Number.isSafeInteger(n)) return toRaw(s, BigInt(v.trim()));
    return toRaw(s, n);
  }
  if (typeof v === "bigint") {
    checkRange(s, Number(v));
    if (s.valueType !== "integer" || s.factor !== 1 || s.offset !== 0) return toRaw(s, Number(v));
    return fitRaw(s, v, false);
  }
  if (s.valueType === "float32") {
    checkRange(s, v);
    F32[0] = (v - s.offset) / s.factor;
    return BigInt(U32[0]);
  }
  if (s.valueType === "float64") {
    checkRange(s, v);
    F64[0] = (v - s.offset) / s.factor;
    return U64[0];
  }
  if (!Number.isFinite(v)) throw new CodecError(`signal ${s.name}: ${v} is not a finite number`);
  checkRange(s, v);
  return fitRaw(s, BigInt(Math.round((v - s.offset) / s.factor)), false);
}

function checkRange(s: SignalDef, v: number): void {
  // [0|0] (and an inverted range) means "no range" in the files tools write.
  if (s.min === 0 && s.max === 0) return;
  if (s.min > s.max) return;
  // Allow the rounding of the printed limits: a value within half a step of a limit is accepted.
  const slack = Math.abs(s.factor) / 2;
  if (v < s.min - slack || v > s.max + slack) {
    throw new CodecError(`signal ${s.name}: ${v} is outside its range [${s.min}, ${s.max}]${s.unit ? ` ${s.unit}` : ""}`);
  }
}

function fitRaw(s: SignalDef, raw: bigint, wrap: boolean): bigint {
  const L = BigInt(s.length);
  const lo = s.signed ? -(1n << (L - 1n)) : 0n;
  const hi = s.signed ? (1n << (L - 1n)) - 1n : (1n << L) - 1n;
  if (raw < lo || raw > hi) {
    if (wrap) return BigInt.asUintN(s.length, raw);
    // Unscaled limits print exactly: 2^63-1 as a number would read 9223372036854776000.
    const phys = (b: bigint) => (s.factor === 1 && s.offset === 0 ? String(b) : String(Number(b) * s.factor + s.offset));
    const [a, b] = s.factor < 0 ? [phys(hi), phys(lo)] : [phys(lo), phys(hi)];
    throw new CodecError(`signal ${s.name}: raw value ${raw} does not fit in ${s.length} ${s.signed ? "signed" : "unsigned"} bits (range [${a}, ${b}])`);
  }
  return raw;
}
