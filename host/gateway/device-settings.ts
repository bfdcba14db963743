/**
 * Settings as a gateway stores them, and back. The firmware reads each setting from its settings store
 * (firmware/src/config.ts, loadConfig), which is written one key per Jacdac settings packet: the deploy of the
 * simulator (host/simulator/simulator.ts) and `devs` deploying `.env.defaults` to a board alike. A packet carries
 * about 200 bytes of value (a 224-byte value made the simulator's VM panic in `settings_handle_packet`), so a list
 * longer than that, such as a signal table of 50 rows (1.4 KB of JSON), cannot be one key. Such a list goes into keys
 * `k`, `k2`, ... `k32`, each at most PART_BYTES of JSON, and the firmware appends the parts up to the first missing or
 * empty one. One empty part follows the last: `devs` deploys settings without clearing the old ones, so the longer
 * list of an earlier deploy could otherwise leave parts behind that the firmware would append.
 */
import { VgwError } from "../../frame/errors";

/** Keys a list setting may take: k, k2, ..., k32 (firmware/src/config.ts SETTING_PARTS). */
export const SETTING_PARTS = 32;
/** JSON bytes of one part's value, with room to spare below what one settings packet carried (measured: 198 B did, 224 B did not). */
export const PART_BYTES = 180;

/** The key of part `n` (1-based) of list setting `key`. */
function partKey(key: string, n: number): string {
  return n === 1 ? key : `${key}${n}`;
}

/** The stored form: every list split into parts of at most PART_BYTES of JSON, the last followed by an empty one. */
export function toDeviceSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (!Array.isArray(value)) {
      out[key] = value;
      continue;
    }
    const parts: unknown[][] = [[]];
    let bytes = 2;
    for (const item of value) {
      const size = JSON.stringify(item).length + 1;
      if (size + 2 > PART_BYTES) throw new VgwError(`setting ${key}: an entry of ${size - 1} bytes does not fit one settings packet (${PART_BYTES} bytes a part)`);
      if (bytes + size > PART_BYTES) {
        parts.push([]);
        bytes = 2;
      }
      parts[parts.length - 1].push(item);
      bytes += size;
    }
    if (parts.length > SETTING_PARTS) {
      throw new VgwError(`setting ${key}: ${JSON.stringify(value).length} bytes of JSON need ${parts.length} settings keys; the gateway reads ${SETTING_PARTS}`);
    }
    parts.forEach((part, i) => (out[partKey(key, i + 1)] = part));
    if (parts.length < SETTING_PARTS) out[partKey(key, parts.length + 1)] = [];
  }
  return out;
}

/**
 * The settings a gateway reads from the stored form, as the firmware does: a list setting with its parts appended
 * up to the first missing or empty one (later parts, left by an earlier deploy, are ignored as the firmware ignores
 * them); a part that is not a list stands for the whole, which the firmware then refuses. Part keys are gone.
 */
export function fromDeviceSettings(stored: Record<string, unknown>): Record<string, unknown> {
  const isPart = (key: string): boolean => {
    const m = /^(.+?)(3[0-2]|[12][0-9]|[2-9])$/.exec(key);
    return m !== null && Array.isArray(stored[m[1]]);
  };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(stored)) {
    if (isPart(key)) continue;
    if (!Array.isArray(value)) {
      out[key] = value;
      continue;
    }
    let whole: unknown = [...value];
    for (let n = 2; n <= SETTING_PARTS; n++) {
      const more = stored[partKey(key, n)];
      if (more === undefined || (Array.isArray(more) && !more.length)) break;
      if (!Array.isArray(more)) {
        whole = more;
        break;
      }
      (whole as unknown[]).push(...more);
    }
    out[key] = whole;
  }
  return out;
}
