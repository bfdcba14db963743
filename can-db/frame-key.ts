/**
 * The gateway's frame key (docs/protocol.md, "Matching keys"): one unsigned 32-bit number per (ID, kind), the ID for
 * standard frames and the ID plus bit 31 for extended ones. The firmware's accept filters, rate rules and transmit
 * allowlist all match on it, so everything on the host that models them (the policy compiler, the HIL harness's
 * scenarios and checks) keys by it too: an 11-bit 0x123 and a 29-bit 0x123 are two different frames.
 */

/** Bit 31 of a frame key: set for extended (29-bit) frames. */
export const EXT_BIT = 0x80000000;

export function frameKey(id: number, ext: boolean): number {
  return ext ? (id | EXT_BIT) >>> 0 : id;
}

export function isExtKey(key: number): boolean {
  return key >= EXT_BIT;
}

/** The CAN ID of a key, without the kind. */
export function keyId(key: number): number {
  return isExtKey(key) ? (key - EXT_BIT) >>> 0 : key;
}

/** `0x123` for a standard key, `0x00000123` (eight digits, as candump writes extended IDs) for an extended one. */
export function keyText(key: number): string {
  const ext = isExtKey(key);
  return "0x" + keyId(key).toString(16).toUpperCase().padStart(ext ? 8 : 3, "0");
}
