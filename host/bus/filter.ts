/**
 * Acceptance filters in candump's notation, shared by every command that takes `--filter`:
 *
 *   123:7FF            accept when (id & 7FF) == (123 & 7FF): 11-bit and 29-bit frames alike, exactly as the kernel does
 *   12345678:9FFFFFFF  the EFF flag (0x80000000) in the mask restricts to one frame kind: 29-bit here, because an ID
 *                      written with 8 digits (or with the flag) is a 29-bit one; `123:800007FF` accepts 11-bit only
 *   123~7FF            inverted: accept everything the filter would not
 *
 * Several filters (comma-separated) accept a frame when any one accepts it (the kernel's CAN_RAW_FILTER rule).
 * Error frames are not subject to ID filters, as in the kernel (they have their own error mask).
 */
import type { Frame } from "../../frame/frame";
import { UsageError } from "../../frame/errors";
import { CAN_EFF_MASK } from "../../frame/frame";
import type { BusFilter } from "./bus";

const HEX = /^[0-9a-fA-F]{1,8}$/;
/** Flag bits of a kernel can_id (linux/can.h), as candump accepts them in filters. */
export const CAN_EFF_FLAG = 0x80000000;
export const CAN_RTR_FLAG = 0x40000000;

/** Parses `123:7FF,100~700`; throws UsageError naming the bad item. */
export function parseFilters(text: string): BusFilter[] {
  const filters: BusFilter[] = [];
  for (const item of text.split(",")) {
    const m = /^([^:~]*)([:~])(.*)$/.exec(item.trim());
    if (!m || !HEX.test(m[1]) || !HEX.test(m[3])) {
      throw new UsageError(`bad filter '${item}': expected <id>:<mask> or <id>~<mask> in hex, e.g. 123:7FF`);
    }
    const id = parseInt(m[1], 16);
    const mask = parseInt(m[3], 16);
    if ((id | mask) & CAN_RTR_FLAG) throw new UsageError(`bad filter '${item}': filtering on the RTR flag is not supported`);
    const filter: BusFilter = { id: id & CAN_EFF_MASK, mask: mask & CAN_EFF_MASK };
    if (mask & CAN_EFF_FLAG) filter.ext = m[1].length === 8 || (id & CAN_EFF_FLAG) !== 0;
    if (m[2] === "~") filter.invert = true;
    filters.push(filter);
  }
  return filters;
}

/** True when one filter accepts the frame; no filters accept everything. */
export function acceptFrame(filters: readonly BusFilter[] | undefined, frame: Frame): boolean {
  if (!filters || filters.length === 0 || frame.err) return true;
  for (const f of filters) {
    const hit = (frame.id & f.mask) === (f.id & f.mask) && (f.ext === undefined || f.ext === frame.ext);
    if (hit !== (f.invert ?? false)) return true;
  }
  return false;
}
