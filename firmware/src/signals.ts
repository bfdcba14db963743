/**
 * Decoded signals (docs/protocol.md, "Signals"): the gateway extracts raw signal values from CAN frames by the
 * `sigTable` rows, applies each signal's publication rules and codes the published samples into `P/signals` batches.
 *
 * Hot path, as in batch.ts: no allocation per frame. The table is compiled once into two Buffers (a Buffer byte costs
 * one byte of heap, an array element eight): ROW bytes per signal, and an open-addressing hash from frame key to the
 * key's first signal (the signals of one key are chained) and its `sigOnly` flag.
 */
import * as ds from "@devicescript/core"
import { keyHeadSize, MAJOR_BYTES, MAJOR_UINT, putKeyHead } from "./cbor"
import { putVarint } from "./batch"

/** Rows in `sigTable` at most; the row index is the signal index on the wire (one varint byte: i < 64). */
export const MAX_SIGNALS = 64
/** Keys in `sigOnly` at most. */
export const MAX_SIG_ONLY = 32
/** Integers per `sigTable` row: [key, start, len, flags, fNum, fDen, oNum, minInt, heartbeat, deadband, relPm]. */
export const ROW_WIDTH = 11
export const SIG_MOTOROLA = 1
export const SIG_SIGNED = 2
export const SIG_ON_CHANGE = 4
/** Largest frame data (CAN FD), bytes: a signal must lie within it. */
const MAX_DATA = 64
/**
 * Compiled row: u8 first byte, u8 bytes spanned, u8 right shift, u8 flags, u8 next row of the same key (NONE = end),
 * u8 length in bits, u8 published-yet, pad; i32 fNum @8, i32 oNum @12, u32 minInt @16, u32 heartbeat @20,
 * u32 deadband @24, u32 relPm @28, u32 last published raw @32, u32 its time @36; then how the frame path
 * (BatchEncoder.addReport) extracts it from an 8-byte frame without a call: u8 mode @40 (ROW_MODE), u8 left shift
 * @41 and u8 right shift @42 (the value is `(word << left) >> right`, `>>>` when unsigned), u8 word shift @43 (mode
 * MODE_SPAN).
 */
export const ROW = 48
export const ROW_NEXT = 4
export const ROW_FLAGS = 3
export const ROW_MODE = 40
export const ROW_LEFT = 41
export const ROW_RIGHT = 42
export const ROW_SPAN = 43
/**
 * Modes of an 8-byte frame's extraction (the frame read as two little-endian words x0, x1): the Intel signal lies in
 * x0, in x1, or across both (MODE_SPAN: `(x0 >>> span) | (x1 << (32 - span))`); a Motorola signal of 1 to 4 bytes is
 * read as MODE_MOTOROLA + bytes - 1 big-endian bytes from its first byte; MODE_PAST: the signal ends past byte 8 (a
 * short frame for it); MODE_SLOW: only SignalTable.onFrame extracts it (a Motorola signal over 5 bytes).
 */
export const MODE_X0 = 0
export const MODE_X1 = 1
export const MODE_SPAN = 2
export const MODE_MOTOROLA = 3
export const MODE_PAST = 7
export const MODE_SLOW = 8
export const NONE = 0xff
/** Key hash: more entries than keys (64 signal keys + 32 sigOnly keys at most), so a probe ends at a free entry. */
export const KEY_HASH = 128
/** u32 key, u8 first row (NONE: no signals), u8 bits: KEY_USED, KEY_ONLY, KEY_FAST. */
export const KEY_ENTRY = 6
export const KEY_USED = 1
/** `sigOnly`: the frame goes to signals only. */
export const KEY_ONLY = 2
/**
 * Every row of the key has no publication rules (each sample is published) and an 8-byte mode other than MODE_SLOW:
 * the frame path extracts its signals from an 8-byte frame inline, without a call per frame (docs/performance.md).
 */
export const KEY_FAST = 4
/** Largest sample record: head (1 byte, i < 64) + dt (5) + value (5). */
export const MAX_SAMPLE = 11
/** The batch map around the records: map head, v, b, s, t, h, n (5-byte uints), g's key and byte-string head. */
export const SIG_OVERHEAD = 1 + 3 + 7 + 7 + 7 + 7 + 7 + 2 + 3

/** Where the signal path counts and sends. */
export interface SignalSink {
    /** Closes the open signal batch into the outbox (the table's batch is empty afterwards). */
    closeSignals(): void
}

function isInt(v: any, min: number, max: number) {
    return typeof v === "number" && v === Math.floor(v) && v >= min && v <= max
}

/** Bytes [first, first + n) that a signal spans, and the right shift of its LSB in them (DBC conventions). */
function span(start: number, len: number, motorola: boolean): number[] {
    const first = start >> 3
    const bit = start & 7
    if (!motorola) return [first, (bit + len + 7) >> 3, bit]
    // Motorola: `start` is the MSB; bits run down to bit 0 of its byte, then from bit 7 of the next byte
    const n = len <= bit + 1 ? 1 : 1 + ((len - bit - 1 + 7) >> 3)
    return [first, n, 8 * (n - 1) + bit - len + 1]
}

/**
 * The row's 8-byte mode and its left shift and word shift (ROW_MODE): `sp` is its span() (first byte, bytes, right
 * shift). The value is then `(word << left) >> (32 - len)` (`>>>` when unsigned), the word as the mode says.
 */
function fastMode(start: number, len: number, flags: number, sp: number[]): number[] {
    if (sp[0] + sp[1] > 8) return [MODE_PAST, 0, 0]
    if (!(flags & SIG_MOTOROLA)) {
        if (start + len <= 32) return [MODE_X0, 32 - start - len, 0]
        if (start >= 32) return [MODE_X1, 64 - start - len, 0]
        return [MODE_SPAN, 32 - len, start]
    }
    // Motorola: the spanned bytes read big-endian into one word, the LSB at bit sp[2]
    if (sp[1] <= 4) return [MODE_MOTOROLA + sp[1] - 1, 32 - sp[2] - len, 0]
    return [MODE_SLOW, 0, 0]
}

/** Why `rows` is not a valid `sigTable`, or "" (the row and field named). */
export function tableProblem(rows: any): string {
    const why = tableShape(rows)
    if (why) return why
    for (let i = 0; i < rows.length; i++) {
        const p = rowProblem(rows[i], i)
        if (p) return p
    }
    return ""
}

/**
 * The cheap part of the check (settings): an array of at most 64 rows. The rows themselves are checked by
 * `SignalTable.compile`, which yields to the scheduler between rows: the VM stops a fiber that runs too long.
 */
export function tableShape(rows: any): string {
    if (!Array.isArray(rows)) return "an array of rows"
    if (rows.length > MAX_SIGNALS) return `at most ${MAX_SIGNALS} rows`
    return ""
}

/** Why row `i` is not valid, or "". */
export function rowProblem(r: any, i: number): string {
    {
        const at = `row ${i}: `
        if (!Array.isArray(r) || r.length !== ROW_WIDTH) return at + `${ROW_WIDTH} integers`
        if (!isInt(r[0], 0, 0xffffffff)) return at + "key: a u32 frame key"
        if (r[0] < 0x80000000 && r[0] > 0x7ff) return at + "key: a standard id above 0x7ff"
        if (!isInt(r[1], 0, MAX_DATA * 8 - 1)) return at + "start: a bit 0..511"
        if (!isInt(r[2], 1, 32)) return at + "len: 1..32 bits"
        if (!isInt(r[3], 0, 7)) return at + "flags: Motorola 1 | signed 2 | onChange 4"
        if (!isInt(r[4], -0x7fffffff, 0x7fffffff)) return at + "fNum: |fNum| < 2^31"
        if (!isInt(r[5], 1, 0x7fffffff)) return at + "fDen: 1..2^31-1"
        if (!isInt(r[6], -0x7fffffff, 0x7fffffff)) return at + "oNum: |oNum| < 2^31"
        if (!isInt(r[7], 0, 0xffffffff)) return at + "minInt: ms, a u32"
        if (!isInt(r[8], 0, 0xffffffff)) return at + "heartbeat: ms, a u32"
        if (!isInt(r[9], 0, 0xffffffff)) return at + "deadband: a u32"
        if (!isInt(r[10], 0, 0xffffffff)) return at + "relPm: a u32"
        const s = span(r[1], r[2], !!(r[3] & SIG_MOTOROLA))
        if (s[0] + s[1] > MAX_DATA) return at + "the signal ends past byte 64"
    }
    return ""
}

/** Why `keys` is not a valid `sigOnly`, or "". */
export function onlyProblem(keys: any): string {
    if (!Array.isArray(keys) || keys.length > MAX_SIG_ONLY) return `at most ${MAX_SIG_ONLY} frame keys`
    for (const k of keys) if (!isInt(k, 0, 0xffffffff)) return "frame keys (u32)"
    return ""
}

/**
 * The table hash `sh`: FNV-1a 32-bit over every integer of the rows in order, each as 4 bytes little-endian modulo
 * 2^32; 0 for an empty table.
 */
export function tableHash(rows: number[][]): number {
    if (!rows.length) return 0
    let h = 0x811c9dc5
    for (const r of rows) h = hashRow(h, r)
    return h
}

/** FNV-1a of one row's integers, continuing from `h`. */
function hashRow(h: number, r: number[]): number {
    {
        for (const x of r) {
            // h * 0x01000193 modulo 2^32 without Math.imul: (h << 24) + h * 0x193 stays exact in a double;
            // unrolled, as the VM's budget between awaits is counted in operations
            const v = x >>> 0
            h = (h ^ (v & 0xff)) >>> 0
            h = ((h << 24) + h * 0x193) >>> 0
            h = (h ^ ((v >>> 8) & 0xff)) >>> 0
            h = ((h << 24) + h * 0x193) >>> 0
            h = (h ^ ((v >>> 16) & 0xff)) >>> 0
            h = ((h << 24) + h * 0x193) >>> 0
            h = (h ^ (v >>> 24)) >>> 0
            h = ((h << 24) + h * 0x193) >>> 0
        }
    }
    return h
}

export class SignalTable {
    /** Signals in the table (0: none, or refused). */
    n = 0
    /** `sh`. */
    hash = 0
    /** Why the table was refused (`serr`), or "". */
    error = ""
    /** True when frames must be looked up (signals or sigOnly keys). */
    active = false
    /** Samples put into signal batches that went into the outbox (`sig`). */
    published = 0
    /** Samples dropped by the rules (`sds`). */
    ruled = 0
    /** Signals skipped because the frame was shorter than their bits (`sshort`). */
    short = 0
    /** Frames of `sigOnly` keys, kept out of the frame batches (`sonly`). */
    only = 0
    /** Samples of signal batches that did not fit in the outbox (`drop.sig`). */
    dropped = 0
    /** Next signal-batch sequence number (`sseq`). */
    seq = 0
    /** Records (`g`) of the open batch; allocated with a non-empty table. */
    rec: Buffer = null
    recLen = 0
    /** Samples in the open batch. */
    count = 0
    /** Base time of the open batch (its first sample), ms. */
    t0 = 0
    /** Time of the open batch's last sample (ms, u32): a sample at another time carries a `dt`. */
    time = 0
    /** The compiled rows (ROW bytes each) and the key hash: read in place by BatchEncoder.addReport. */
    rows: Buffer = null
    keys: Buffer = null

    /** `sigBytes`: the largest payload; the records take at most sigBytes - SIG_OVERHEAD. */
    constructor(readonly sigBytes: number) {}

    /**
     * Checks and compiles a table; a bad row refuses it whole (returns why; no signals). Yields between rows: a 64-row
     * table checked, hashed and compiled at once runs past the VM's budget for one fiber step.
     */
    async compile(table: number[][], only: number[]): Promise<string> {
        this.n = 0
        this.hash = 0
        this.active = false
        let why = tableShape(table) || onlyProblem(only)
        let h = 0x811c9dc5
        for (let i = 0; !why && i < table.length; i++) {
            why = rowProblem(table[i], i)
            h = hashRow(h, table[i])
            if (i % 4 === 3) await ds.sleep(0)
        }
        if (why) return this.refuse(why)
        if (!table.length && !only.length) return ""
        this.keys = Buffer.alloc(KEY_HASH * KEY_ENTRY)
        if (table.length) {
            this.rows = Buffer.alloc(table.length * ROW)
            this.rec = Buffer.alloc(this.sigBytes - SIG_OVERHEAD)
        }
        const rows = this.rows
        // rows are chained per key in table order: the last row of each key seen so far
        const tail: number[] = []
        for (let i = 0; i < table.length; i++) {
            const t = table[i]
            const r = i * ROW
            const s = span(t[1], t[2], !!(t[3] & SIG_MOTOROLA))
            rows[r] = s[0]
            rows[r + 1] = s[1]
            rows[r + 2] = s[2]
            rows[r + 3] = t[3]
            rows[r + 4] = NONE
            rows[r + 5] = t[2]
            rows.setAt(r + 8, "i32", t[4])
            rows.setAt(r + 12, "i32", t[6])
            for (let c = 7; c <= 10; c++) rows.setAt(r + 16 + (c - 7) * 4, "u32", t[c])
            const mode = fastMode(t[1], t[2], t[3], s)
            rows[r + ROW_MODE] = mode[0]
            rows[r + ROW_LEFT] = mode[1]
            rows[r + ROW_RIGHT] = 32 - t[2]
            rows[r + ROW_SPAN] = mode[2]
            // a key is fast while every row of it is: no rules (minInt 0, not on change) and not MODE_SLOW
            const fast = mode[0] !== MODE_SLOW && t[7] === 0 && !(t[3] & SIG_ON_CHANGE)
            const e = this.entry(t[0] >>> 0)
            const k = this.keys
            if (k[e + 4] !== NONE) {
                rows[tail[k[e + 4]] * ROW + 4] = i
                if (!fast) k[e + 5] &= ~KEY_FAST
            } else {
                k[e + 4] = i
                if (fast) k[e + 5] |= KEY_FAST
            }
            tail[k[e + 4]] = i
            if (i % 8 === 7) await ds.sleep(0)
        }
        for (const key of only) {
            const e = this.entry(key >>> 0)
            this.keys[e + 5] |= 2
        }
        this.n = table.length
        this.hash = table.length ? h : 0
        this.active = true
        return ""
    }

    /** Refuses the table: no signals (frames are still forwarded); `serr` reports why. */
    refuse(why: string): string {
        this.n = 0
        this.hash = 0
        this.active = false
        this.error = why
        console.error(`setting sigTable/sigOnly refused, no signals published: ${why}`)
        return why
    }

    /** The key's hash entry, created (no signals, not sigOnly) when missing. */
    private entry(key: number): number {
        const k = this.keys
        let e = ((key ^ (key >>> 7) ^ (key >>> 17)) & (KEY_HASH - 1)) * KEY_ENTRY
        while (k[e + 5] & 1) {
            if (k.getAt(e, "u32") === key) return e
            e = (e + KEY_ENTRY) % (KEY_HASH * KEY_ENTRY)
        }
        k.setAt(e, "u32", key)
        k[e + 4] = NONE
        k[e + 5] = 1
        return e
    }

    /**
     * One frame that passed the accept filters: every signal of its key is extracted and ruled. Returns 2 when the
     * frame is for signals only (counted in `sonly`), 1 when it has signals and goes on to the frame batches too,
     * 0 when the key is not in the table.
     */
    onFrame(key: number, buf: Buffer, src: number, dataLen: number, now: number, sink: SignalSink): number {
        const k = this.keys
        let e = ((key ^ (key >>> 7) ^ (key >>> 17)) & (KEY_HASH - 1)) * KEY_ENTRY
        for (;;) {
            if (!(k[e + 5] & 1)) return 0
            if (k.getAt(e, "u32") === key) break
            e = (e + KEY_ENTRY) % (KEY_HASH * KEY_ENTRY)
        }
        const rows = this.rows
        let i = k[e + 4]
        while (i !== NONE) {
            const r = i * ROW
            const first = rows[r]
            const n = rows[r + 1]
            const fl = rows[r + 3]
            const len = rows[r + 5]
            if (first + n > dataLen) {
                this.short++
                i = rows[r + 4]
                continue
            }
            // --- extract: the spanned bytes as one word (at most 4 bytes), then shift and mask ---
            const b = src + first
            const sh = rows[r + 2]
            let v: number
            if (fl & SIG_MOTOROLA) {
                if (n === 1) v = buf[b] >> sh
                else if (n === 2) v = ((buf[b] << 8) | buf[b + 1]) >> sh
                else if (n === 3) v = ((buf[b] << 16) | (buf[b + 1] << 8) | buf[b + 2]) >> sh
                else {
                    const w = ((buf[b + n - 4] << 24) | (buf[b + n - 3] << 16) | (buf[b + n - 2] << 8) | buf[b + n - 1]) >>> sh
                    // 5 bytes: the top byte's low bits above the word (sh >= 1 then)
                    v = n === 5 ? w | (buf[b] << (32 - sh)) : w
                }
            } else {
                if (n === 1) v = buf[b] >> sh
                else if (n === 2) v = (buf[b] | (buf[b + 1] << 8)) >> sh
                else if (n === 3) v = (buf[b] | (buf[b + 1] << 8) | (buf[b + 2] << 16)) >> sh
                else {
                    const w = buf.getAt(b, "u32") >>> sh
                    v = n === 5 ? w | (buf[b + 4] << (32 - sh)) : w
                }
            }
            if (len < 32) {
                v = v & (0xffffffff >>> (32 - len))
                if (fl & SIG_SIGNED) v = (v << (32 - len)) >> (32 - len)
            } else v = fl & SIG_SIGNED ? v | 0 : v >>> 0
            // --- rules ---
            const t = now >>> 0
            let pub = rows[r + 6] === 0
            if (!pub) {
                const age = (t - rows.getAt(r + 36, "u32")) >>> 0
                const hb = rows.getAt(r + 20, "u32")
                if (hb > 0 && age >= hb) pub = true
                else if (age >= rows.getAt(r + 16, "u32")) {
                    if (!(fl & SIG_ON_CHANGE)) pub = true
                    else {
                        const last = fl & SIG_SIGNED ? rows.getAt(r + 32, "i32") : rows.getAt(r + 32, "u32")
                        const d = v > last ? v - last : last - v
                        if (d > rows.getAt(r + 24, "u32")) {
                            const rel = rows.getAt(r + 28, "u32")
                            if (rel === 0) pub = true
                            else {
                                const f = rows.getAt(r + 8, "i32")
                                const phys = last * f + rows.getAt(r + 12, "i32")
                                pub = d * Math.abs(f) * 1000 > rel * Math.abs(phys)
                            }
                        }
                    }
                }
            }
            if (!pub) {
                this.ruled++
                i = rows[r + 4]
                continue
            }
            rows[r + 6] = 1
            rows.setAt(r + 32, "u32", v >>> 0)
            rows.setAt(r + 36, "u32", t)
            // --- sample record ---
            if (this.recLen + MAX_SAMPLE > this.rec.length) sink.closeSignals()
            const rec = this.rec
            let p = this.recLen
            if (this.count === 0) {
                this.t0 = t
                this.time = t
                rec[p++] = i << 1
            } else if (t !== this.time) {
                rec[p++] = (i << 1) | 1
                p = putVarint(rec, p, (t - this.time) >>> 0)
                this.time = t
            } else rec[p++] = i << 1
            p = putVarint(rec, p, fl & SIG_SIGNED ? ((v << 1) ^ (v >> 31)) >>> 0 : v)
            this.recLen = p
            this.count++
            i = rows[r + 4]
        }
        if (k[e + 5] & 2) {
            this.only++
            return 2
        }
        return 1
    }

    /** Starts a new, empty batch. */
    clear() {
        this.recLen = 0
        this.count = 0
    }

    /** Size of the `P/signals` map of the open batch. */
    payloadSize(boot: number, seq: number): number {
        return (
            1 +
            keyHeadSize(1) +
            keyHeadSize(boot) +
            keyHeadSize(seq) +
            keyHeadSize(this.t0) +
            keyHeadSize(this.hash) +
            keyHeadSize(this.count) +
            keyHeadSize(this.recLen) + this.recLen
        )
    }

    /** Writes the map {v, b, s, t, h, n, g} of the open batch at `pos`; returns the position after it. */
    writePayload(out: Buffer, pos: number, boot: number, seq: number): number {
        if (pos + this.payloadSize(boot, seq) > out.length) throw new RangeError("signal batch buffer too small")
        out[pos] = 0xa7
        let p = putKeyHead(out, pos + 1, 0x76, MAJOR_UINT, 1) // "v"
        p = putKeyHead(out, p, 0x62, MAJOR_UINT, boot) // "b"
        p = putKeyHead(out, p, 0x73, MAJOR_UINT, seq) // "s"
        p = putKeyHead(out, p, 0x74, MAJOR_UINT, this.t0) // "t"
        p = putKeyHead(out, p, 0x68, MAJOR_UINT, this.hash) // "h"
        p = putKeyHead(out, p, 0x6e, MAJOR_UINT, this.count) // "n"
        p = putKeyHead(out, p, 0x67, MAJOR_BYTES, this.recLen) // "g"
        out.blitAt(p, this.rec, 0, this.recLen)
        return p + this.recLen
    }
}
