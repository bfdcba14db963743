/**
 * The OBD-II service 01 ("show current data") parameter IDs 0x00-0x60: name, unit and formula of each, to decode an
 * answer into named physical values and (for the simulated ECU) to encode values back into bytes.
 *
 * Source: SAE J1979 as tabulated in Wikipedia's "OBD-II PIDs" article (section "Service 01"; formulas in terms of the
 * data bytes A, B, C, D; enumerations from its "Enumerated PIDs" section). The article's examples are pinned in
 * test/diag/obd-pids.test.ts.
 *
 * A PID's data is described by fields. Most are linear: the unsigned (or two's complement) big-endian integer of
 * `len` bytes starting at byte `at`, optionally masked, times `scale` plus `offset`. Enumerations carry labels;
 * `hex` fields are bit sets shown as hex; `dtc` is a J2012 trouble code. The supported-PID bitmaps (0x00, 0x20, 0x40,
 * 0x60) decode to the list of PIDs they announce.
 */
import { dtcText } from "./dtc-code";

export interface PidField {
  name: string;
  unit: string;
  /** First data byte (A = 0). */
  at: number;
  /** Bytes, big-endian. */
  len: number;
  scale: number;
  offset: number;
  /** Two's complement. */
  signed?: boolean;
  /** Bits of the raw integer that belong to this field (shifted down to bit 0). */
  mask?: number;
  /** Enumerated values: raw -> label. */
  labels?: Record<number, string>;
  /** How the value is shown: a number (default), hex bits, or a trouble code. */
  kind?: "number" | "hex" | "dtc";
}

export interface PidDef {
  pid: number;
  name: string;
  /** Data bytes after the PID byte. */
  bytes: number;
  /** Supported-PID bitmap (PIDs pid+1 .. pid+32). */
  bitmap?: boolean;
  fields: PidField[];
}

/** One decoded value: a number in `unit`, or text (a label, hex bits, a trouble code). */
export interface PidValue {
  name: string;
  value: number | string;
  unit: string;
}

export interface DecodedPid {
  pid: number;
  name: string;
  values: PidValue[];
  /** For a supported-PID bitmap: the PIDs it announces. */
  supported?: number[];
}

const lin = (name: string, unit: string, at: number, len: number, scale: number, offset = 0, signed = false): PidField => ({
  name,
  unit,
  at,
  len,
  scale,
  offset,
  signed,
});
const percent = (name: string, at = 0): PidField => lin(name, "%", at, 1, 100 / 255);
const trim = (name: string, at = 0): PidField => lin(name, "%", at, 1, 100 / 128, -100);
const temp = (name: string): PidField => lin(name, "°C", 0, 1, 1, -40);
const hex = (name: string, at: number, len: number, mask?: number): PidField => ({ name, unit: "", at, len, scale: 1, offset: 0, mask, kind: "hex" });
const labelled = (name: string, at: number, labels: Record<number, string>, mask?: number): PidField => ({
  name,
  unit: "",
  at,
  len: 1,
  scale: 1,
  offset: 0,
  mask,
  labels,
});

const FUEL_SYSTEM: Record<number, string> = {
  0: "motor off",
  1: "open loop due to insufficient engine temperature",
  2: "closed loop, using oxygen sensor feedback",
  4: "open loop due to engine load or fuel cut due to deceleration",
  8: "open loop due to system failure",
  16: "closed loop, fault in the feedback system",
};
const SECONDARY_AIR: Record<number, string> = {
  1: "upstream",
  2: "downstream of catalytic converter",
  4: "from the outside atmosphere or off",
  8: "pump commanded on for diagnostics",
};
const OBD_STANDARDS: Record<number, string> = {
  1: "OBD-II as defined by the CARB",
  2: "OBD as defined by the EPA",
  3: "OBD and OBD-II",
  4: "OBD-I",
  5: "not OBD compliant",
  6: "EOBD (Europe)",
  7: "EOBD and OBD-II",
  8: "EOBD and OBD",
  9: "EOBD, OBD and OBD II",
  10: "JOBD (Japan)",
  11: "JOBD and OBD II",
  12: "JOBD and EOBD",
  13: "JOBD, EOBD, and OBD II",
  17: "Engine Manufacturer Diagnostics (EMD)",
  18: "Engine Manufacturer Diagnostics Enhanced (EMD+)",
  19: "Heavy Duty On-Board Diagnostics (Child/Partial) (HD OBD-C)",
  20: "Heavy Duty On-Board Diagnostics (HD OBD)",
  21: "World Wide Harmonized OBD (WWH OBD)",
  23: "Heavy Duty Euro OBD Stage I without NOx control (HD EOBD-I)",
  24: "Heavy Duty Euro OBD Stage I with NOx control (HD EOBD-I N)",
  25: "Heavy Duty Euro OBD Stage II without NOx control (HD EOBD-II)",
  26: "Heavy Duty Euro OBD Stage II with NOx control (HD EOBD-II N)",
  28: "Brazil OBD Phase 1 (OBDBr-1)",
  29: "Brazil OBD Phase 2 (OBDBr-2)",
  30: "Korean OBD (KOBD)",
  31: "India OBD I (IOBD I)",
  32: "India OBD II (IOBD II)",
  33: "Heavy Duty Euro OBD Stage VI (HD EOBD-IV)",
};
const FUEL_TYPES: Record<number, string> = {
  0: "not available",
  1: "gasoline",
  2: "methanol",
  3: "ethanol",
  4: "diesel",
  5: "LPG",
  6: "CNG",
  7: "propane",
  8: "electric",
  9: "bifuel running gasoline",
  10: "bifuel running methanol",
  11: "bifuel running ethanol",
  12: "bifuel running LPG",
  13: "bifuel running CNG",
  14: "bifuel running propane",
  15: "bifuel running electricity",
  16: "bifuel running electric and combustion engine",
  17: "hybrid gasoline",
  18: "hybrid ethanol",
  19: "hybrid diesel",
  20: "hybrid electric",
  21: "hybrid running electric and combustion engine",
  22: "hybrid regenerative",
  23: "bifuel running diesel",
};

const defs: PidDef[] = [];
const def = (pid: number, name: string, bytes: number, ...fields: PidField[]): void => {
  defs.push({ pid, name, bytes, fields });
};
const bitmap = (pid: number): void => {
  defs.push({ pid, name: `PIDs supported [${hex2(pid + 1)}-${hex2(pid + 0x20)}]`, bytes: 4, bitmap: true, fields: [] });
};

bitmap(0x00);
def(
  0x01,
  "Monitor status since DTCs cleared",
  4,
  labelled("MIL", 0, { 0: "off", 1: "on" }, 0x80),
  { ...lin("DTC count", "", 0, 1, 1), mask: 0x7f },
  labelled("ignition", 1, { 0: "spark", 1: "compression" }, 0x08),
  hex("tests", 1, 3),
);
def(0x02, "Freeze DTC", 2, { ...lin("DTC", "", 0, 2, 1), kind: "dtc" });
def(0x03, "Fuel system status", 2, labelled("fuel system 1", 0, FUEL_SYSTEM), labelled("fuel system 2", 1, FUEL_SYSTEM));
def(0x04, "Calculated engine load", 1, percent("Calculated engine load"));
def(0x05, "Engine coolant temperature", 1, temp("Engine coolant temperature"));
def(0x06, "Short term fuel trim - Bank 1", 1, trim("Short term fuel trim - Bank 1"));
def(0x07, "Long term fuel trim - Bank 1", 1, trim("Long term fuel trim - Bank 1"));
def(0x08, "Short term fuel trim - Bank 2", 1, trim("Short term fuel trim - Bank 2"));
def(0x09, "Long term fuel trim - Bank 2", 1, trim("Long term fuel trim - Bank 2"));
def(0x0a, "Fuel pressure (gauge)", 1, lin("Fuel pressure (gauge)", "kPa", 0, 1, 3));
def(0x0b, "Intake manifold absolute pressure", 1, lin("Intake manifold absolute pressure", "kPa", 0, 1, 1));
def(0x0c, "Engine speed", 2, lin("Engine speed", "rpm", 0, 2, 1 / 4));
def(0x0d, "Vehicle speed", 1, lin("Vehicle speed", "km/h", 0, 1, 1));
def(0x0e, "Timing advance", 1, lin("Timing advance", "° before TDC", 0, 1, 1 / 2, -64));
def(0x0f, "Intake air temperature", 1, temp("Intake air temperature"));
def(0x10, "Mass air flow sensor air flow rate", 2, lin("Mass air flow sensor air flow rate", "g/s", 0, 2, 1 / 100));
def(0x11, "Throttle position", 1, percent("Throttle position"));
def(0x12, "Commanded secondary air status", 1, labelled("Commanded secondary air status", 0, SECONDARY_AIR));
def(0x13, "Oxygen sensors present (in 2 banks)", 1, hex("bank 1 sensors 1-4", 0, 1, 0x0f), hex("bank 2 sensors 1-4", 0, 1, 0xf0));
for (let n = 1; n <= 8; n++) {
  def(0x13 + n, `Oxygen sensor ${n}`, 2, lin("voltage", "V", 0, 1, 1 / 200), trim("short term fuel trim", 1));
}
def(0x1c, "OBD standards this vehicle conforms to", 1, labelled("OBD standards this vehicle conforms to", 0, OBD_STANDARDS));
def(0x1d, "Oxygen sensors present (in 4 banks)", 1, hex("banks 1-4, sensors 1-2", 0, 1));
def(0x1e, "Auxiliary input status", 1, labelled("power take off (PTO)", 0, { 0: "inactive", 1: "active" }, 0x01));
def(0x1f, "Run time since engine start", 2, lin("Run time since engine start", "s", 0, 2, 1));
bitmap(0x20);
def(0x21, "Distance traveled with MIL on", 2, lin("Distance traveled with MIL on", "km", 0, 2, 1));
def(0x22, "Fuel rail pressure (relative to manifold vacuum)", 2, lin("Fuel rail pressure (relative to manifold vacuum)", "kPa", 0, 2, 0.079));
def(0x23, "Fuel rail gauge pressure", 2, lin("Fuel rail gauge pressure", "kPa", 0, 2, 10));
for (let n = 1; n <= 8; n++) {
  def(0x23 + n, `Oxygen sensor ${n}`, 4, lin("air-fuel equivalence ratio", "ratio", 0, 2, 2 / 65536), lin("voltage", "V", 2, 2, 8 / 65536));
}
def(0x2c, "Commanded EGR", 1, percent("Commanded EGR"));
def(0x2d, "EGR error", 1, trim("EGR error"));
def(0x2e, "Commanded evaporative purge", 1, percent("Commanded evaporative purge"));
def(0x2f, "Fuel tank level input", 1, percent("Fuel tank level input"));
def(0x30, "Warm-ups since codes cleared", 1, lin("Warm-ups since codes cleared", "", 0, 1, 1));
def(0x31, "Distance traveled since codes cleared", 2, lin("Distance traveled since codes cleared", "km", 0, 2, 1));
def(0x32, "Evap. system vapor pressure", 2, lin("Evap. system vapor pressure", "Pa", 0, 2, 1 / 4, 0, true));
def(0x33, "Absolute barometric pressure", 1, lin("Absolute barometric pressure", "kPa", 0, 1, 1));
for (let n = 1; n <= 8; n++) {
  def(0x33 + n, `Oxygen sensor ${n}`, 4, lin("air-fuel equivalence ratio", "ratio", 0, 2, 2 / 65536), lin("current", "mA", 2, 2, 1 / 256, -128));
}
def(0x3c, "Catalyst temperature: Bank 1, Sensor 1", 2, lin("Catalyst temperature: Bank 1, Sensor 1", "°C", 0, 2, 1 / 10, -40));
def(0x3d, "Catalyst temperature: Bank 2, Sensor 1", 2, lin("Catalyst temperature: Bank 2, Sensor 1", "°C", 0, 2, 1 / 10, -40));
def(0x3e, "Catalyst temperature: Bank 1, Sensor 2", 2, lin("Catalyst temperature: Bank 1, Sensor 2", "°C", 0, 2, 1 / 10, -40));
def(0x3f, "Catalyst temperature: Bank 2, Sensor 2", 2, lin("Catalyst temperature: Bank 2, Sensor 2", "°C", 0, 2, 1 / 10, -40));
bitmap(0x40);
def(0x41, "Monitor status this drive cycle", 4, hex("tests", 1, 3));
def(0x42, "Control module voltage", 2, lin("Control module voltage", "V", 0, 2, 1 / 1000));
def(0x43, "Absolute load value", 2, lin("Absolute load value", "%", 0, 2, 100 / 255));
def(0x44, "Commanded air-fuel equivalence ratio", 2, lin("Commanded air-fuel equivalence ratio", "ratio", 0, 2, 2 / 65536));
def(0x45, "Relative throttle position", 1, percent("Relative throttle position"));
def(0x46, "Ambient air temperature", 1, temp("Ambient air temperature"));
def(0x47, "Absolute throttle position B", 1, percent("Absolute throttle position B"));
def(0x48, "Absolute throttle position C", 1, percent("Absolute throttle position C"));
def(0x49, "Accelerator pedal position D", 1, percent("Accelerator pedal position D"));
def(0x4a, "Accelerator pedal position E", 1, percent("Accelerator pedal position E"));
def(0x4b, "Accelerator pedal position F", 1, percent("Accelerator pedal position F"));
def(0x4c, "Commanded throttle actuator", 1, percent("Commanded throttle actuator"));
def(0x4d, "Time run with MIL on", 2, lin("Time run with MIL on", "min", 0, 2, 1));
def(0x4e, "Time since trouble codes cleared", 2, lin("Time since trouble codes cleared", "min", 0, 2, 1));
def(
  0x4f,
  "Maximum values",
  4,
  lin("fuel-air equivalence ratio", "ratio", 0, 1, 1),
  lin("oxygen sensor voltage", "V", 1, 1, 1),
  lin("oxygen sensor current", "mA", 2, 1, 1),
  lin("intake manifold absolute pressure", "kPa", 3, 1, 10),
);
def(0x50, "Maximum value for air flow rate from mass air flow sensor", 4, lin("maximum air flow rate", "g/s", 0, 1, 10));
def(0x51, "Fuel type", 1, labelled("Fuel type", 0, FUEL_TYPES));
def(0x52, "Ethanol fuel %", 1, percent("Ethanol fuel %"));
def(0x53, "Absolute evap system vapor pressure", 2, lin("Absolute evap system vapor pressure", "kPa", 0, 2, 1 / 200));
def(0x54, "Evap system vapor pressure", 2, lin("Evap system vapor pressure", "Pa", 0, 2, 1, -32767));
def(0x55, "Short term secondary oxygen sensor trim, bank 1 and bank 3", 2, trim("bank 1"), trim("bank 3", 1));
def(0x56, "Long term secondary oxygen sensor trim, bank 1 and bank 3", 2, trim("bank 1"), trim("bank 3", 1));
def(0x57, "Short term secondary oxygen sensor trim, bank 2 and bank 4", 2, trim("bank 2"), trim("bank 4", 1));
def(0x58, "Long term secondary oxygen sensor trim, bank 2 and bank 4", 2, trim("bank 2"), trim("bank 4", 1));
def(0x59, "Fuel rail absolute pressure", 2, lin("Fuel rail absolute pressure", "kPa", 0, 2, 10));
def(0x5a, "Relative accelerator pedal position", 1, percent("Relative accelerator pedal position"));
def(0x5b, "Hybrid battery pack remaining life", 1, percent("Hybrid battery pack remaining life"));
def(0x5c, "Engine oil temperature", 1, temp("Engine oil temperature"));
def(0x5d, "Fuel injection timing", 2, lin("Fuel injection timing", "°", 0, 2, 1 / 128, -210));
def(0x5e, "Engine fuel rate", 2, lin("Engine fuel rate", "L/h", 0, 2, 1 / 20));
def(0x5f, "Emission requirements to which vehicle is designed", 1, hex("Emission requirements to which vehicle is designed", 0, 1));
bitmap(0x60);

/** Service 01 PIDs by number. */
export const OBD_PIDS: ReadonlyMap<number, PidDef> = new Map(defs.map((d) => [d.pid, d]));

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** Shown decimals of a linear field: one more than its resolution needs (0.25 -> 2, 100/255 -> 2, 1/200 -> 3). */
function decimals(f: PidField): number {
  return f.scale >= 1 && Number.isInteger(f.scale) && Number.isInteger(f.offset) ? 0 : Math.max(0, Math.ceil(-Math.log10(f.scale))) + 1;
}

function rawOf(f: PidField, data: Uint8Array): number {
  let raw = 0;
  for (let i = 0; i < f.len; i++) raw = raw * 256 + data[f.at + i];
  if (f.signed && raw >= 2 ** (8 * f.len - 1)) raw -= 2 ** (8 * f.len);
  if (f.mask !== undefined) {
    raw &= f.mask;
    let m = f.mask;
    while ((m & 1) === 0) {
      m >>>= 1;
      raw >>>= 1;
    }
  }
  return raw;
}

/** The PIDs a supported-PID bitmap (the 4 data bytes after PID `base`) announces: bit 7 of A is base+1. */
export function supportedPids(base: number, data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < 32; i++) if (data[i >> 3] & (0x80 >> (i & 7))) out.push(base + 1 + i);
  return out;
}

/** The 4-byte bitmap announcing, of the PIDs base+1..base+32, those in `pids`. */
export function supportedBitmap(base: number, pids: Iterable<number>): Uint8Array {
  const out = new Uint8Array(4);
  for (const p of pids) {
    const i = p - base - 1;
    if (i >= 0 && i < 32) out[i >> 3] |= 0x80 >> (i & 7);
  }
  return out;
}

function fieldValue(f: PidField, data: Uint8Array): number | string {
  const raw = rawOf(f, data);
  if (f.labels) return f.labels[raw] ?? `code ${raw}`;
  if (f.kind === "hex") return "0x" + raw.toString(16).toUpperCase().padStart(f.mask !== undefined ? 1 : f.len * 2, "0");
  if (f.kind === "dtc") return raw === 0 ? "none" : dtcText(raw);
  return Number((raw * f.scale + f.offset).toFixed(decimals(f)));
}

/**
 * Decodes the data bytes of a service 01 answer for `pid` (the bytes after the PID). An unknown PID, or data shorter
 * than the table says, gives the bytes as one hex value named `raw` (nothing is dropped).
 */
export function decodePid(pid: number, data: Uint8Array): DecodedPid {
  const d = OBD_PIDS.get(pid);
  const raw = (): PidValue => ({ name: "raw", value: Buffer.from(data).toString("hex").toUpperCase(), unit: "" });
  if (!d) return { pid, name: `PID 0x${hex2(pid)}`, values: [raw()] };
  if (data.length < d.bytes) return { pid, name: d.name, values: [raw()] };
  if (d.bitmap) {
    const supported = supportedPids(pid, data);
    return { pid, name: d.name, values: [{ name: "supported", value: supported.map(hex2).join(" "), unit: "" }], supported };
  }
  return { pid, name: d.name, values: d.fields.map((f) => ({ name: f.name, value: fieldValue(f, data), unit: f.unit })) };
}

/** One line of text: `0C Engine speed: 2500 rpm`, `14 Oxygen sensor 1: voltage 0.45 V, short term fuel trim 0 %`. */
export function pidText(d: DecodedPid): string {
  const v = (x: PidValue) => `${x.value}${x.unit ? ` ${x.unit}` : ""}`;
  const body = d.values.length === 1 && (d.values[0].name === d.name || d.supported) ? v(d.values[0]) : d.values.map((x) => `${x.name} ${v(x)}`).join(", ");
  return `${hex2(d.pid)} ${d.name}: ${body}`;
}

/**
 * Encodes physical values into a PID's data bytes (the simulated ECU's side): one number per field, in field order
 * (labels and hex fields take their raw number). Values beyond a field's range are clamped, as a sensor saturates.
 */
export function encodePid(pid: number, values: number[]): Uint8Array {
  const d = OBD_PIDS.get(pid);
  if (!d) throw new RangeError(`PID 0x${hex2(pid)} is not in the service 01 table: give its bytes as hex`);
  if (d.bitmap) throw new RangeError(`PID 0x${hex2(pid)} is a supported-PID bitmap: the ECU computes it`);
  if (values.length !== d.fields.length) {
    throw new RangeError(`PID 0x${hex2(pid)} (${d.name}) takes ${d.fields.length} value(s): ${d.fields.map((f) => f.name).join(", ")}`);
  }
  const out = new Uint8Array(d.bytes);
  d.fields.forEach((f, i) => {
    const plain = f.labels !== undefined || f.kind === "hex" || f.kind === "dtc";
    let raw = plain ? Math.round(values[i]) : Math.round((values[i] - f.offset) / f.scale);
    const bits = f.mask !== undefined ? f.mask : 2 ** (8 * f.len) - 1;
    let shift = 0;
    if (f.mask !== undefined) while (((f.mask >>> shift) & 1) === 0) shift++;
    const max = f.mask !== undefined ? bits >>> shift : f.signed ? 2 ** (8 * f.len - 1) - 1 : bits;
    const min = f.signed ? -(2 ** (8 * f.len - 1)) : 0;
    raw = Math.min(max, Math.max(min, raw));
    if (raw < 0) raw += 2 ** (8 * f.len);
    let word = 0;
    for (let k = 0; k < f.len; k++) word = word * 256 + out[f.at + k];
    word = f.mask !== undefined ? (word & ~f.mask) | ((raw << shift) & f.mask) : raw;
    for (let k = f.len - 1; k >= 0; k--) {
      out[f.at + k] = word & 0xff;
      word = Math.floor(word / 256);
    }
  });
  return out;
}
