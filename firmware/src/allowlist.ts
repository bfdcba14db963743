/**
 * The transmit allowlist (setting `txAllow`, docs/protocol.md "Transmit allowlist"): which frames a `tx` command may
 * put on the bus. An entry is `[value, mask]` or `[value, mask, kinds]` over the frame key (docs/protocol.md
 * "Matching keys"). Two rules make it fail closed where the accept filters are permissive:
 * - the ID kind is always part of the match: bit 31 (EXT) is added to every mask, so an entry written for standard
 *   IDs (`[0x123, 0x7ff]`) never admits an extended ID whose low bits happen to match (`1ABCD123`);
 * - the frame kind is named: `kinds` holds the record flag bits (RTR 0x02, FD 0x04, BRS 0x08) the entry admits;
 *   without it an entry admits classic data frames only.
 */
import { FLAG_BRS, FLAG_FD, FLAG_RTR } from "./records"

export const KEY_EXT = 0x80000000
/** The flag bits an allowlist entry must name to admit them. */
export const KIND_FLAGS = FLAG_RTR | FLAG_FD | FLAG_BRS
export const MAX_ALLOW = 16

export class TxAllowlist {
    private vals: number[] = []
    private masks: number[] = []
    private kinds: number[] = []

    /** Replaces the entries; they are validated by the caller (config.ts checkSetting). */
    set(entries: number[][]) {
        this.vals = []
        this.masks = []
        this.kinds = []
        for (const e of entries) {
            const mask = (e[1] | KEY_EXT) >>> 0
            this.masks.push(mask)
            this.vals.push((e[0] & mask) >>> 0)
            this.kinds.push(e.length > 2 ? e[2] & KIND_FLAGS : 0)
        }
    }

    /** Why a frame of this key and record flags may not be sent, or "" when an entry admits it. */
    refusal(key: number, flags: number): string {
        const kind = flags & KIND_FLAGS
        let idMatched = false
        for (let i = 0; i < this.vals.length; i++) {
            if ((key & this.masks[i]) >>> 0 !== this.vals[i]) continue
            if ((kind & ~this.kinds[i]) === 0) return ""
            idMatched = true
        }
        if (idMatched) return "the allowlist admits this id but not this frame kind (RTR/FD/BRS)"
        return "the id is not in the transmit allowlist"
    }
}
