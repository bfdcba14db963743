/**
 * Diagnostic trouble codes in their SAE J2012 text form (`P0301`, `U0100`), as OBD-II (SAE J1979) and UDS (ISO 14229,
 * DTC format identifier 0x00/0x04: the first two of its three bytes are the J2012 code) carry them.
 *
 * Two bytes: the top two bits name the system (00 P powertrain, 01 C chassis, 10 B body, 11 U network), the next two
 * the first digit (0-3), then three hex digits. `P0301` is 0x0301, `C0035` 0x4035, `U0100` 0xC100.
 */
import { VgwError } from "../frame/errors";

const SYSTEMS = ["P", "C", "B", "U"] as const;

/** The J2012 text of a two-byte code: 0x0301 -> `P0301`. */
export function dtcText(code: number): string {
  const system = SYSTEMS[(code >> 14) & 3];
  return system + ((code >> 12) & 3).toString() + (code & 0xfff).toString(16).toUpperCase().padStart(3, "0");
}

/**
 * A UDS three-byte DTC as J2012 code and failure type byte: 0x030113 -> `P0301-13`. The failure type (ISO 15031-6 /
 * J2012-DA "FTB") says how it failed (0x13: circuit open).
 */
export function udsDtcText(dtc: number): string {
  return `${dtcText(dtc >>> 8)}-${(dtc & 0xff).toString(16).toUpperCase().padStart(2, "0")}`;
}

/** `P0301` -> 0x0301; throws naming the text when it is not a J2012 code. */
export function parseDtc(text: string): number {
  const m = /^([PCBU])([0-3])([0-9A-F]{3})$/i.exec(text.trim());
  if (!m) throw new VgwError(`'${text}' is not a trouble code like P0301, C0035, B1234 or U0100`);
  return (SYSTEMS.indexOf(m[1].toUpperCase() as (typeof SYSTEMS)[number]) << 14) | (Number(m[2]) << 12) | parseInt(m[3], 16);
}

/** `P0301-13` or `P0301` (failure type 0) or a number -> the three-byte UDS DTC. */
export function parseUdsDtc(text: string | number): number {
  if (typeof text === "number") {
    if (!Number.isInteger(text) || text < 0 || text > 0xffffff) throw new VgwError(`DTC ${text} is not a three-byte number`);
    return text;
  }
  const m = /^([PCBU][0-3][0-9A-F]{3})(?:-([0-9A-F]{2}))?$/i.exec(text.trim());
  if (m) return (parseDtc(m[1]) << 8) | (m[2] ? parseInt(m[2], 16) : 0);
  if (/^(0x)?[0-9a-f]{1,6}$/i.test(text.trim())) return parseInt(text.trim().replace(/^0x/i, ""), 16);
  throw new VgwError(`'${text}' is not a DTC like P0301-13, P0301 or 0x030113`);
}
