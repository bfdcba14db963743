/**
 * Hardware acceptance filters from the gateway's filter notation: `[value, mask]` pairs over the frame key
 * (the identifier, bit 31 set for an extended frame; docs/firmware.md `canFilters`). A frame passes a pair when
 * (key & mask) === (value & mask).
 *
 * The translation is exact: the MCP2515 then accepts precisely the frames the pairs accept, so a hardware
 * pre-filter never hides a frame the same software filter would keep (and vice versa).
 */
import { AcceptanceFilter, planFilters } from "./driver"

const KEY_EXT = 0x80000000
const STD_BITS = 0x7ff
const EXT_BITS = 0x1fffffff

/**
 * Per pair: with mask bit 31 set, one filter of the kind bit 31 of value names; with it clear, the pair accepts both
 * kinds and becomes a standard and an extended filter. A kind whose identifier can never match (value bits set where
 * its identifiers are always 0) gets no filter at all.
 * @throws RangeError when the result does not fit the chip's two masks (see `planFilters`) or the input is malformed
 */
export function keyFiltersToHardware(pairs: number[][]): AcceptanceFilter[] {
    const out: AcceptanceFilter[] = []
    for (const p of pairs) {
        if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "number" || typeof p[1] !== "number")
            throw new RangeError("mcp2515: a key filter is a [value, mask] pair of numbers")
        const value = p[0] >>> 0
        const mask = p[1] >>> 0
        const kindFixed = (mask & KEY_EXT) !== 0
        const wantExt = (value & KEY_EXT) !== 0
        const idMask = mask & 0x7fffffff
        const idValue = value & idMask
        // standard frames: key bits 11..30 are always 0
        if ((!kindFixed || !wantExt) && (idValue & ~STD_BITS) === 0)
            out.push({ id: idValue & STD_BITS, mask: idMask & STD_BITS, ext: false })
        // extended frames: key bits 29..30 are always 0
        if ((!kindFixed || wantExt) && (idValue & ~EXT_BITS) === 0)
            out.push({ id: idValue & EXT_BITS, mask: idMask & EXT_BITS, ext: true })
    }
    if (pairs.length > 0 && out.length === 0)
        throw new RangeError("mcp2515: the key filters can match no frame at all")
    planFilters(out)
    return out
}
