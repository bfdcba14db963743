/**
 * On-device selection of frames (docs/protocol.md, "Matching keys"): accept filters (value/mask pairs over the frame
 * key) and downsampling rules per key (minimum interval, send-on-change). Hot path: no allocation per frame.
 */

export const MAX_FILTERS = 16
export const MAX_RULES = 32
const RULE_HASH = 64
const RULE_DATA = 64

export class FrameSelector {
    private accVal: number[] = []
    private accMask: number[] = []
    /** rule hash: index + 1 of the rule for a key, 0 = empty */
    private readonly hash: number[] = []
    private ruleKey: number[] = []
    private ruleInterval: number[] = []
    private ruleOnChange: boolean[] = []
    private ruleSeen: boolean[] = []
    private ruleLast: number[] = []
    private ruleLen: number[] = []
    /** Last forwarded data per rule; allocated with the first rules (most gateways have none: 2 KB saved). */
    private ruleData: Buffer = null
    hasFilters = false
    hasRules = false

    constructor() {
        for (let i = 0; i < RULE_HASH; i++) this.hash.push(0)
    }

    /** Replaces the accept filters; pairs are validated by the caller (settings, commands). Empty = accept all. */
    setFilters(pairs: number[][]) {
        this.accVal = []
        this.accMask = []
        for (const pair of pairs) {
            const mask = pair[1] >>> 0
            this.accMask.push(mask)
            this.accVal.push((pair[0] & mask) >>> 0)
        }
        this.hasFilters = this.accVal.length > 0
    }

    /** Replaces the downsampling rules `[key, minIntervalMs, onChange]`; a later rule for the same key wins. */
    setRules(rules: number[][]) {
        for (let i = 0; i < RULE_HASH; i++) this.hash[i] = 0
        this.ruleKey = []
        this.ruleInterval = []
        this.ruleOnChange = []
        this.ruleSeen = []
        this.ruleLast = []
        this.ruleLen = []
        for (const r of rules) {
            const key = r[0] >>> 0
            let h = this.slot(key)
            let idx = this.hash[h] - 1
            if (idx < 0) {
                idx = this.ruleKey.length
                this.ruleKey.push(key)
                this.ruleInterval.push(0)
                this.ruleOnChange.push(false)
                this.ruleSeen.push(false)
                this.ruleLast.push(0)
                this.ruleLen.push(0)
                this.hash[h] = idx + 1
            }
            this.ruleInterval[idx] = r[1]
            this.ruleOnChange[idx] = !!r[2]
        }
        this.hasRules = this.ruleKey.length > 0
        if (this.hasRules && !this.ruleData) this.ruleData = Buffer.alloc(MAX_RULES * RULE_DATA)
    }

    /** Hash position of `key`: its entry, or the empty place where it would go. */
    private slot(key: number): number {
        let h = (key ^ (key >>> 7) ^ (key >>> 29)) & (RULE_HASH - 1)
        for (;;) {
            const e = this.hash[h]
            if (e === 0 || this.ruleKey[e - 1] === key) return h
            h = (h + 1) & (RULE_HASH - 1)
        }
    }

    accepts(key: number): boolean {
        const n = this.accVal.length
        for (let i = 0; i < n; i++) if ((key & this.accMask[i]) >>> 0 === this.accVal[i]) return true
        return false
    }

    /** False when a rule drops this frame (too soon after the last forwarded one, or unchanged); records it otherwise. */
    keeps(key: number, src: Buffer, off: number, len: number, now: number): boolean {
        const e = this.hash[this.slot(key)]
        if (e === 0) return true
        const r = e - 1
        if (this.ruleSeen[r]) {
            const iv = this.ruleInterval[r]
            if (iv > 0 && now - this.ruleLast[r] < iv) return false
            if (this.ruleOnChange[r] && this.ruleLen[r] === len) {
                const d = this.ruleData
                const base = r * RULE_DATA
                let same = true
                for (let i = 0; i < len; i++) {
                    if (d[base + i] !== src[off + i]) {
                        same = false
                        break
                    }
                }
                if (same) return false
            }
        }
        this.ruleSeen[r] = true
        this.ruleLast[r] = now
        this.ruleLen[r] = len
        if (len) this.ruleData.blitAt(r * RULE_DATA, src, off, len)
        return true
    }
}
