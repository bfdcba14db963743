/**
 * CBOR (RFC 8949) for the gateway: a writer into a caller-owned Buffer (status, results, batch headers) and a
 * bounded reader for command payloads. Written here because DeviceScript has no CBOR library and no DataView;
 * the subset is documented in docs/protocol.md.
 */
import { uptime32 } from "./wrap"

export const MAJOR_UINT = 0
export const MAJOR_NEG = 1
export const MAJOR_BYTES = 2
export const MAJOR_TEXT = 3
export const MAJOR_ARRAY = 4
export const MAJOR_MAP = 5

/** Size in bytes of a CBOR head (major type + argument) in its shortest form. */
export function headSize(n: number): number {
    if (n < 24) return 1
    if (n < 0x100) return 2
    if (n < 0x10000) return 3
    return 5
}

/** Writes a shortest-form head at `pos`; returns the position after it. The caller checks room (headSize). */
export function putHead(buf: Buffer, pos: number, major: number, n: number): number {
    const m = major << 5
    if (n < 24) {
        buf[pos] = m | n
        return pos + 1
    }
    if (n < 0x100) {
        buf[pos] = m | 24
        buf[pos + 1] = n
        return pos + 2
    }
    if (n < 0x10000) {
        buf[pos] = m | 25
        buf[pos + 1] = n >> 8
        buf[pos + 2] = n & 0xff
        return pos + 3
    }
    buf[pos] = m | 26
    buf[pos + 1] = (n >>> 24) & 0xff
    buf[pos + 2] = (n >>> 16) & 0xff
    buf[pos + 3] = (n >>> 8) & 0xff
    buf[pos + 4] = n & 0xff
    return pos + 5
}

/**
 * Writes a one-letter text key (`key`: its ASCII code) and a head at `pos`, the form of every key of the batch maps
 * (frames and signals): constant bytes, no text encoding per batch. Returns the position after them.
 */
export function putKeyHead(buf: Buffer, pos: number, key: number, major: number, n: number): number {
    buf[pos] = 0x61
    buf[pos + 1] = key
    return putHead(buf, pos + 2, major, n)
}

/** Bytes putKeyHead writes for `n`. */
export function keyHeadSize(n: number): number {
    return 2 + headSize(n)
}

/**
 * Sequential writer into a fixed Buffer. It never throws on overflow: it sets `overflow` and stops writing, so a
 * caller sizes the buffer once and checks one flag at the end.
 */
export class CborWriter {
    pos = 0
    overflow = false
    constructor(public buf: Buffer) {}

    reset() {
        this.pos = 0
        this.overflow = false
    }

    private room(n: number) {
        if (this.overflow || this.pos + n > this.buf.length) {
            this.overflow = true
            return false
        }
        return true
    }

    head(major: number, n: number) {
        if (this.room(headSize(n))) this.pos = putHead(this.buf, this.pos, major, n)
    }

    /** Integers only (|n| < 2^32); a non-integer is written as 0 and flagged, because the protocol has no floats. */
    int(n: number) {
        if (n !== Math.floor(n) || n >= 4294967296 || n < -4294967296) {
            this.overflow = true
            return
        }
        if (n >= 0) this.head(MAJOR_UINT, n)
        else this.head(MAJOR_NEG, -1 - n)
    }

    /**
     * A text key and an unsigned integer value modulo 2^32, as the protocol carries counters and the uptime (small
     * values such as the version, sizes and the boot id pass unchanged): one call per status field (the status map
     * has some 30 of them, and each call site costs bytecode under the firmware's 64 KB limit).
     */
    count(key: string, n: number) {
        this.text(key)
        this.int(uptime32(n))
    }

    text(s: string) {
        const b = Buffer.from(s)
        this.head(MAJOR_TEXT, b.length)
        this.raw(b, 0, b.length)
    }

    bytes(b: Buffer, off: number, len: number) {
        this.head(MAJOR_BYTES, len)
        this.raw(b, off, len)
    }

    raw(b: Buffer, off: number, len: number) {
        if (this.room(len)) {
            this.buf.blitAt(this.pos, b, off, len)
            this.pos += len
        }
    }

    map(pairs: number) {
        this.head(MAJOR_MAP, pairs)
    }

    array(items: number) {
        this.head(MAJOR_ARRAY, items)
    }

    bool(v: boolean) {
        if (this.room(1)) this.buf[this.pos++] = v ? 0xf5 : 0xf4
    }

    nil() {
        if (this.room(1)) this.buf[this.pos++] = 0xf6
    }

    /** A copy of what was written. */
    result(): Buffer {
        return this.buf.slice(0, this.pos)
    }
}

/** A decoding failure with the reason; the command layer turns it into a `malformed` result. */
export class CborError extends Error {
    constructor(msg: string) {
        super(msg)
        this.name = "CborError"
    }
}

export const MAX_DEPTH = 4
/**
 * Most items one payload may decode to: every item is a value the VM allocates (8 bytes an array element, more a map
 * entry), so this bounds what one command costs. The largest valid command, `rate` with 32 rules, is 141 items.
 */
export const MAX_ITEMS = 160

/** Big-endian float bytes reversed for Buffer.getAt (little-endian only); one buffer for every float read. */
const floatScratch = Buffer.alloc(8)

/**
 * Decodes exactly one CBOR item filling `buf`. Accepts what cbor-x writes (non-shortest lengths, tag 64 on byte
 * strings, floats); rejects indefinite lengths, other tags, non-text map keys, duplicate keys, nesting deeper than
 * MAX_DEPTH, more than MAX_ITEMS items and trailing bytes. Throws CborError only.
 */
export function decodeCbor(buf: Buffer): any {
    const r = new CborReader(buf)
    const v = r.item(0)
    if (r.pos !== buf.length) throw new CborError(`${buf.length - r.pos} trailing bytes`)
    return v
}

class CborReader {
    pos = 0
    private items = 0
    constructor(public buf: Buffer) {}

    private need(n: number) {
        if (this.pos + n > this.buf.length) throw new CborError(`truncated at byte ${this.pos}`)
    }

    private u8() {
        this.need(1)
        return this.buf[this.pos++]
    }

    private beUint(n: number) {
        this.need(n)
        let v = 0
        for (let i = 0; i < n; i++) v = v * 256 + this.buf[this.pos + i]
        this.pos += n
        return v
    }

    private arg(ai: number) {
        if (ai < 24) return ai
        if (ai === 24) return this.beUint(1)
        if (ai === 25) return this.beUint(2)
        if (ai === 26) return this.beUint(4)
        if (ai === 27) return this.beUint(8)
        if (ai === 31) throw new CborError(`indefinite length at byte ${this.pos - 1}`)
        throw new CborError(`reserved additional info ${ai} at byte ${this.pos - 1}`)
    }

    private float(ai: number) {
        if (ai === 25) {
            const h = this.beUint(2)
            const e = (h >> 10) & 0x1f
            const f = h & 0x3ff
            let v: number
            if (e === 0) v = f * Math.pow(2, -24)
            else if (e === 31) v = f ? NaN : Infinity
            else v = (f + 1024) * Math.pow(2, e - 25)
            return h & 0x8000 ? -v : v
        }
        const n = ai === 26 ? 4 : 8
        this.need(n)
        // Buffer.getAt has only little-endian float formats: reverse the bytes first.
        const le = floatScratch
        for (let i = 0; i < n; i++) le[i] = this.buf[this.pos + n - 1 - i]
        this.pos += n
        return n === 4 ? le.getAt(0, "f32") : le.getAt(0, "f64")
    }

    item(depth: number): any {
        const start = this.pos
        if (++this.items > MAX_ITEMS) throw new CborError(`more than ${MAX_ITEMS} items at byte ${start}`)
        const ib = this.u8()
        const major = ib >> 5
        const ai = ib & 31
        if (major === 7) {
            if (ai === 20) return false
            if (ai === 21) return true
            if (ai === 22) return null
            if (ai >= 25 && ai <= 27) return this.float(ai)
            throw new CborError(`unsupported simple value ${ai} at byte ${start}`)
        }
        const n = this.arg(ai)
        if (major === MAJOR_UINT) return n
        if (major === MAJOR_NEG) return -1 - n
        if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
            this.need(n)
            const b = this.buf.slice(this.pos, this.pos + n)
            this.pos += n
            if (major === MAJOR_BYTES) return b
            return b.toString("utf-8")
        }
        if (major === 6) {
            if (n !== 64) throw new CborError(`unsupported tag ${n} at byte ${start}`)
            const save = this.pos
            if (this.pos >= this.buf.length || this.buf[this.pos] >> 5 !== MAJOR_BYTES)
                throw new CborError(`tag 64 without a byte string at byte ${save}`)
            return this.item(depth)
        }
        if (depth >= MAX_DEPTH) throw new CborError(`nesting deeper than ${MAX_DEPTH} at byte ${start}`)
        // Every item takes at least one byte: a count above the bytes left is a lie, refused before allocating.
        if (n > this.buf.length - this.pos)
            throw new CborError(`count ${n} exceeds the payload at byte ${start}`)
        if (major === MAJOR_ARRAY) {
            const a: any[] = []
            for (let i = 0; i < n; i++) a.push(this.item(depth + 1))
            return a
        }
        // major 5: map with text keys
        const o: any = {}
        for (let i = 0; i < n; i++) {
            const kpos = this.pos
            const k = this.item(depth + 1)
            if (typeof k !== "string") throw new CborError(`map key at byte ${kpos} is not text`)
            // the key itself is not echoed: it may not be printable
            if (o[k] !== undefined) throw new CborError(`duplicate key at byte ${kpos}`)
            o[k] = this.item(depth + 1)
        }
        return o
    }
}
