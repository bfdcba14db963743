/**
 * DM1, Active Diagnostic Trouble Codes (SAE J1939-73, PGN 65226 = 0xFECA): the lamps an ECU lights and the faults it
 * has now. One frame carries the lamps and one DTC; more DTCs come as a multi-packet message (BAM, see transport.ts).
 *
 *   byte 1  lamp status, 2 bits each: MIL (bits 8-7), RSL (6-5), AWL (4-3), PL (2-1): 00 off, 01 on, 11 not available
 *   byte 2  lamp flash, same order: 00 slow (1 Hz), 01 fast (2 Hz), 11 not flashing / not available
 *   then 4 bytes per DTC:
 *     SPN (19 bits), FMI (5 bits), CM (1 bit, SPN conversion method), OC (7 bits, occurrence count; 127 = not available)
 *     CM 0 (version 4): SPN bits 0-7 in byte 3, bits 8-15 in byte 4, bits 16-18 in bits 8-6 of byte 5; FMI bits 5-1
 *     CM 1 (versions 1-3, older ECUs): the versions cannot be told apart from the data; read here as version 1, SPN
 *          most significant first (byte 3 = bits 18-11, byte 4 = bits 10-3, byte 5 bits 8-6 = bits 2-0).
 * An ECU with no active DTC sends SPN 0 FMI 0 OC 0 (bytes 00 00 00 00, then FF FF): that entry is no DTC.
 */
export const PGN_DM1 = 0xfeca;

/** Failure Mode Identifiers (J1939-73 table), by FMI. */
export const FMI_NAMES: readonly string[] = [
  "data valid but above normal operational range, most severe level",
  "data valid but below normal operational range, most severe level",
  "data erratic, intermittent or incorrect",
  "voltage above normal, or shorted to high source",
  "voltage below normal, or shorted to low source",
  "current below normal or open circuit",
  "current above normal or grounded circuit",
  "mechanical system not responding or out of adjustment",
  "abnormal frequency or pulse width or period",
  "abnormal update rate",
  "abnormal rate of change",
  "root cause not known",
  "bad intelligent device or component",
  "out of calibration",
  "special instructions",
  "data valid but above normal operating range, least severe level",
  "data valid but above normal operating range, moderately severe level",
  "data valid but below normal operating range, least severe level",
  "data valid but below normal operating range, moderately severe level",
  "received network data in error",
  "data drifted high",
  "data drifted low",
];

export function fmiName(fmi: number): string {
  if (fmi === 31) return "condition exists";
  return FMI_NAMES[fmi] ?? "reserved for SAE assignment";
}

export type LampStatus = "off" | "on" | "reserved" | "n/a";
export type LampFlash = "slow" | "fast" | "reserved" | "none";

export interface Lamp {
  status: LampStatus;
  flash: LampFlash;
}

/** The four lamps, in the order the message carries them. */
export const LAMPS = ["MIL", "RSL", "AWL", "PL"] as const;
export type LampName = (typeof LAMPS)[number];

export interface Dtc {
  spn: number;
  fmi: number;
  fmiName: string;
  /** Occurrence count; 127 = not available. */
  oc: number;
  /** SPN conversion method bit: 0 = version 4; 1 = an older version (decoded as version 1). */
  cm: 0 | 1;
}

export interface Dm1 {
  lamps: Record<LampName, Lamp>;
  dtcs: Dtc[];
  /** Bytes after the last whole DTC that are not padding (FF), if any: the message is malformed. */
  error?: string;
}

const STATUS: readonly LampStatus[] = ["off", "on", "reserved", "n/a"];
const FLASH: readonly LampFlash[] = ["slow", "fast", "reserved", "none"];

/** Decodes a DM1 payload (single frame or reassembled). Never throws: a payload too short gives `error`. */
export function decodeDm1(data: Uint8Array): Dm1 {
  const lamps = {} as Record<LampName, Lamp>;
  LAMPS.forEach((name, i) => {
    const shift = 6 - 2 * i;
    lamps[name] = { status: STATUS[((data[0] ?? 0xff) >> shift) & 3], flash: FLASH[((data[1] ?? 0xff) >> shift) & 3] };
  });
  const out: Dm1 = { lamps, dtcs: [] };
  if (data.length < 2) {
    out.error = `DM1 has ${data.length} bytes (at least 2 needed for the lamps)`;
    return out;
  }
  let at = 2;
  for (; at + 4 <= data.length; at += 4) {
    const [b3, b4, b5, b6] = data.subarray(at, at + 4);
    // Padding of a frame or of the last packet.
    if (b3 === 0xff && b4 === 0xff && b5 === 0xff && b6 === 0xff) continue;
    const cm = (b6 >> 7) as 0 | 1;
    const spn = cm === 0 ? b3 | (b4 << 8) | ((b5 >> 5) << 16) : (b3 << 11) | (b4 << 3) | (b5 >> 5);
    const fmi = b5 & 0x1f;
    const oc = b6 & 0x7f;
    // SPN 0 / FMI 0 / OC 0 is how an ECU says it has no active DTC.
    if (spn === 0 && fmi === 0 && oc === 0) continue;
    out.dtcs.push({ spn, fmi, fmiName: fmiName(fmi), oc, cm });
  }
  const rest = data.subarray(at);
  if (rest.some((b) => b !== 0xff)) out.error = `DM1 ends with ${rest.length} byte(s) that are not a whole DTC`;
  return out;
}

/** Encodes a DM1 payload (version 4 SPNs); one DTC or none fits a single frame (8 bytes, padded with FF). */
export function encodeDm1(lamps: Partial<Record<LampName, Partial<Lamp>>>, dtcs: ReadonlyArray<Pick<Dtc, "spn" | "fmi" | "oc">>): Uint8Array {
  const body = dtcs.length === 0 ? [{ spn: 0, fmi: 0, oc: 0 }] : dtcs;
  const out = new Uint8Array(Math.max(8, 2 + 4 * body.length)).fill(0xff);
  let status = 0;
  let flash = 0;
  LAMPS.forEach((name, i) => {
    const shift = 6 - 2 * i;
    status |= STATUS.indexOf(lamps[name]?.status ?? "off") << shift;
    flash |= FLASH.indexOf(lamps[name]?.flash ?? "none") << shift;
  });
  out[0] = status;
  out[1] = flash;
  body.forEach((d, i) => {
    const at = 2 + 4 * i;
    out[at] = d.spn & 0xff;
    out[at + 1] = (d.spn >> 8) & 0xff;
    out[at + 2] = (((d.spn >> 16) & 7) << 5) | (d.fmi & 0x1f);
    out[at + 3] = d.oc & 0x7f;
  });
  return out;
}

/** `MIL=off RSL=off AWL=on/slow PL=off; SPN 100 FMI 1 (data valid but below ...) OC 3; ...` */
export function dm1Text(dm1: Dm1): string {
  const lamps = LAMPS.map((name) => {
    const l = dm1.lamps[name];
    return `${name}=${l.status}${l.status === "on" && l.flash !== "none" ? `/${l.flash}` : ""}`;
  }).join(" ");
  const dtcs = dm1.dtcs.length === 0 ? "no active DTC" : dm1.dtcs.map((d) => `SPN ${d.spn} FMI ${d.fmi} (${d.fmiName}) OC ${d.oc}${d.cm ? " CM 1" : ""}`).join("; ");
  return `DM1 ${lamps}; ${dtcs}${dm1.error ? ` ! ${dm1.error}` : ""}`;
}
