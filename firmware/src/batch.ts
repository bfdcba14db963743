/**
 * Frame batches: the compact lossless record coding of docs/protocol.md ("Records in f") and the batch map around it.
 *
 * This is the frame hot path (100k frames/s in the simulator): no allocation per frame, only number arrays and
 * Buffers owned by the encoder. Slots (one per id+flags pair) are found through a small open-addressing hash whose
 * entries carry a generation number, so starting a new batch clears it in O(1).
 */
import { keyHeadSize, MAJOR_BYTES, MAJOR_UINT, putKeyHead } from "./cbor"
import { FrameSelector } from "./filters"
import { checkRecord, FLAG_EXT, FLAG_FD, FLAG_RTR, RECORD_HEAD } from "./records"
import {
    KEY_ENTRY,
    KEY_FAST,
    KEY_HASH,
    KEY_ONLY,
    KEY_USED,
    MAX_SAMPLE,
    MODE_MOTOROLA,
    MODE_PAST,
    MODE_SPAN,
    MODE_X0,
    MODE_X1,
    NONE,
    ROW,
    ROW_FLAGS,
    ROW_LEFT,
    ROW_MODE,
    ROW_NEXT,
    ROW_RIGHT,
    ROW_SPAN,
    SIG_SIGNED,
    SignalSink,
    SignalTable,
} from "./signals"

/** Where addReport counts and sends what it does not encode itself. */
export interface IngestSink extends SignalSink {
    counters: { rx: number; filtered: number; downsampled: number; malformed: number }
    selector: FrameSelector
    /** Signal extraction, after the accept filters and before downsampling (signals.ts). */
    signals: SignalTable
    /** Closes the open batch (the encoder is empty afterwards). */
    closeBatch(): void
}

/** At most this many distinct (id, flags) slots per batch; a batch closes when it runs out. */
export const SLOT_MAX = 192
/** More entries than slots, so a probe always ends at a free entry. */
const HASH_SIZE = 256
const HASH_MASK = HASH_SIZE - 1
const HASH_ENTRY = 8
/** Last data of every slot (8 bytes per classic slot, 64 per FD slot); a batch closes when it runs out. */
export const ARENA_BYTES = 1536
/** Worst-case bytes of one frame's records: TIME (5) + head (2) + id (5) + flags + len + 64 data. */
export const MAX_RECORD = 78
/** Bytes of the batch map around the records: map head, v, b, s, t, n (5-byte uints), f's key and byte-string head. */
export const BATCH_OVERHEAD = 1 + 3 + 7 + 7 + 7 + 7 + 2 + 3

/** Writes an unsigned LEB128 varint (< 2^35) at `pos`; returns the position after it. */
export function putVarint(buf: Buffer, pos: number, v: number): number {
    while (v >= 0x80) {
        buf[pos++] = (v & 0x7f) | 0x80
        v = Math.floor(v / 128)
    }
    buf[pos++] = v
    return pos
}

export class BatchEncoder {
    /** The records (`f`) of the open batch. */
    readonly rec: Buffer
    recLen = 0
    /** Frames in the open batch. */
    count = 0
    /** Base time (ms) of the open batch: its first frame's arrival. */
    t0 = 0
    time = 0
    nSlots = 0
    gen = 1
    /**
     * Hash entries of HASH_ENTRY bytes: u32 id, u8 flags, u8 slot, u16 generation. Buffers, not arrays: an array
     * element costs 8 bytes in the VM, so four 512-entry arrays would take 16 KB of a 64 KB heap.
     */
    readonly table = Buffer.alloc(HASH_SIZE * HASH_ENTRY)
    /** Per slot: arena offset (u16) and last length (u8 in a separate buffer). */
    readonly sOff = Buffer.alloc(SLOT_MAX * 2)
    readonly sLen = Buffer.alloc(SLOT_MAX)
    readonly arena = Buffer.alloc(ARENA_BYTES)
    arenaUsed = 0

    /** `recBytes`: capacity of the records; the whole batch payload is at most recBytes + BATCH_OVERHEAD. */
    constructor(recBytes: number) {
        this.rec = Buffer.alloc(recBytes)
    }

    /** Starts a new, empty batch. */
    clear() {
        this.recLen = 0
        this.count = 0
        this.nSlots = 0
        this.arenaUsed = 0
        this.gen++
        if (this.gen > 0xffff) {
            // generation numbers wrapped: old entries could look current again
            this.table.fillAt(0, this.table.length, 0)
            this.gen = 1
        }
    }

    /**
     * The frame path: checks, selects and encodes every record of one CanBus `frames` report received at `now`.
     * Same output as `add` per frame, but written as one loop with no function call for an ordinary classic frame:
     * calls are by far the most expensive operation of the DeviceScript VM, and this runs 100k times a second.
     * Measured costs in the VM (docs/performance.md) shape it: the open batch's position, frame count and time are
     * locals written back once per report (or before a batch closes), and an 8-byte frame is compared with its
     * slot's last data as two 32-bit words whose XOR says which bytes changed (one byte read costs about as much as
     * one word read, and reading both sides byte by byte was the largest cost per frame).
     * The records start at `start` (after the report's `first_frame`; no copy of the report without it).
     */
    addReport(buf: Buffer, now: number, sink: IngestSink, start = 0) {
        const end = buf.length
        const sel = sink.selector
        const sig = sink.signals.active ? sink.signals : null
        const filtering = sel.hasFilters
        const ruling = sel.hasRules
        const selecting = filtering || ruling || sig !== null
        // the signal table's key hash and rows, and its open batch as locals (written back before anything else
        // reads them: closeSignals, onFrame, the end of the report)
        const sKeys = sig !== null ? sig.keys : null
        const sRows = sig !== null ? sig.rows : null
        let sRec = sig !== null ? sig.rec : null
        let sp = sig !== null ? sig.recLen : 0
        let sCount = sig !== null ? sig.count : 0
        let sTime = sig !== null ? sig.time : 0
        const sCap = sRec !== null ? sRec.length - MAX_SAMPLE : 0
        const t = now >>> 0
        const rec = this.rec
        const table = this.table
        const arena = this.arena
        const sOff = this.sOff
        const sLen = this.sLen
        const recCap = rec.length - MAX_RECORD
        let p = this.recLen
        let count = this.count
        let time = this.time
        let gen = this.gen
        // false once the slots or the arena cannot take one more new slot (they only change on a new slot)
        let roomy = this.nSlots < SLOT_MAX && this.arenaUsed + 64 <= ARENA_BYTES
        let rx = 0
        let malformed = 0
        let off = start
        while (off < end) {
            // --- check the record (checkRecord's rules; the call only for flagged frames) ---
            if (off + RECORD_HEAD > end) {
                malformed++
                break
            }
            const id = buf.getAt(off, "u32")
            const flags = buf[off + 4]
            const len = buf[off + 5]
            let dataLen = len
            if (flags === FLAG_EXT) {
                // a classic 29-bit frame (checkRecord's rules for it; most J1939 traffic): no call
                if (id > 0x1fffffff || len > 8 || off + RECORD_HEAD + len > end) {
                    malformed++
                    break
                }
            } else if (flags !== 0) {
                const nx = checkRecord(buf, off, end)
                if (nx < 0) {
                    malformed++
                    break
                }
                dataLen = nx - off - RECORD_HEAD
            } else if (id > 0x7ff || len > 8 || off + RECORD_HEAD + len > end) {
                malformed++
                break
            }
            const src = off + RECORD_HEAD
            off = src + dataLen
            rx++
            // --- select ---
            if (selecting) {
                const key = flags & FLAG_EXT ? (id | 0x80000000) >>> 0 : id
                if (filtering && !sel.accepts(key)) {
                    sink.counters.filtered++
                    continue
                }
                // --- signals: they see every accepted frame (rateRules are for the raw frames) ---
                if (sig !== null) {
                    // one probe of the key hash (SignalTable.entry's); most keys of a bus have no signals
                    let e = ((key ^ (key >>> 7) ^ (key >>> 17)) & (KEY_HASH - 1)) * KEY_ENTRY
                    let bits = sKeys[e + 5]
                    while (bits & KEY_USED) {
                        if (sKeys.getAt(e, "u32") === key) break
                        e += KEY_ENTRY
                        if (e === KEY_HASH * KEY_ENTRY) e = 0
                        bits = sKeys[e + 5]
                    }
                    // a key with no rows is a sigOnly key without signals
                    if (bits & KEY_USED && sKeys[e + 4] !== NONE) {
                        if (bits & KEY_FAST && dataLen === 8) {
                            // SignalTable.onFrame for rows without rules, inline: per signal a few byte reads and
                            // shifts (precomputed per row) and its sample record, no call per frame or sample (a
                            // call costs 2-5 simple operations in the simulator's VM, about 20 us under the GC
                            // stress of `devs run --test`; docs/performance.md). The same output as onFrame, byte
                            // for byte (firmware/test/signals.test.ts, test/firmware/signals-diff.test.ts).
                            const x0 = buf.getAt(src, "u32")
                            const x1 = buf.getAt(src + 4, "u32")
                            let i = sKeys[e + 4]
                            while (i !== NONE) {
                                const r = i * ROW
                                const mode = sRows[r + ROW_MODE]
                                let w = 0
                                if (mode === MODE_X0) w = x0
                                else if (mode === MODE_X1) w = x1
                                else if (mode === MODE_SPAN) {
                                    const sh = sRows[r + ROW_SPAN]
                                    w = (x0 >>> sh) | (x1 << (32 - sh))
                                } else if (mode === MODE_PAST) {
                                    sig.short++
                                    i = sRows[r + ROW_NEXT]
                                    continue
                                } else {
                                    // Motorola, 1 to 4 bytes big-endian from its first byte
                                    const b = src + sRows[r]
                                    if (mode === MODE_MOTOROLA) w = buf[b]
                                    else if (mode === MODE_MOTOROLA + 1) w = (buf[b] << 8) | buf[b + 1]
                                    else if (mode === MODE_MOTOROLA + 2) w = (buf[b] << 16) | (buf[b + 1] << 8) | buf[b + 2]
                                    else w = (buf[b] << 24) | (buf[b + 1] << 16) | (buf[b + 2] << 8) | buf[b + 3]
                                }
                                const signed = sRows[r + ROW_FLAGS] & SIG_SIGNED
                                // the signal's MSB to bit 31, then down to bit 0: masked, and sign-extended by >>
                                const left = sRows[r + ROW_LEFT]
                                const v = signed ? (w << left) >> sRows[r + ROW_RIGHT] : (w << left) >>> sRows[r + ROW_RIGHT]
                                // --- sample record (SignalTable.onFrame's) ---
                                if (sp > sCap) {
                                    sig.recLen = sp
                                    sig.count = sCount
                                    sig.time = sTime
                                    sink.closeSignals()
                                    sRec = sig.rec
                                    sp = sig.recLen
                                    sCount = sig.count
                                }
                                if (sCount === 0) {
                                    sig.t0 = t
                                    sTime = t
                                    sRec[sp++] = i << 1
                                } else if (t !== sTime) {
                                    sRec[sp++] = (i << 1) | 1
                                    // varints written in place (putVarint's loop; u32 values, so >>> 7 is exact)
                                    let dt = (t - sTime) >>> 0
                                    while (dt >= 0x80) {
                                        sRec[sp++] = (dt & 0x7f) | 0x80
                                        dt = dt >>> 7
                                    }
                                    sRec[sp++] = dt
                                    sTime = t
                                } else sRec[sp++] = i << 1
                                let u = signed ? ((v << 1) ^ (v >> 31)) >>> 0 : v
                                while (u >= 0x80) {
                                    sRec[sp++] = (u & 0x7f) | 0x80
                                    u = u >>> 7
                                }
                                sRec[sp++] = u
                                sCount++
                                i = sRows[r + ROW_NEXT]
                            }
                        } else {
                            // rules, or a frame of another length: the reference, one call
                            sig.recLen = sp
                            sig.count = sCount
                            sig.time = sTime
                            sig.onFrame(key, buf, src, dataLen, now, sink)
                            sRec = sig.rec
                            sp = sig.recLen
                            sCount = sig.count
                            sTime = sig.time
                            // onFrame counted a sigOnly frame itself
                            if (bits & KEY_ONLY) continue
                        }
                    }
                    if (bits & KEY_ONLY) {
                        sig.only++
                        continue
                    }
                }
                if (ruling && !sel.keeps(key, buf, src, dataLen, now)) {
                    sink.counters.downsampled++
                    continue
                }
            }
            // --- room: close the batch when the next frame might not fit ---
            if (p > recCap || !roomy) {
                this.recLen = p
                this.count = count
                sink.closeBatch()
                p = this.recLen
                count = this.count
                gen = this.gen
                roomy = this.nSlots < SLOT_MAX && this.arenaUsed + 64 <= ARENA_BYTES
            }
            if (count === 0) {
                this.t0 = now
                time = now
            } else if (now !== time) {
                const v = (now > time ? now - time : 0) * 4 + 3
                if (v < 0x80) rec[p++] = v
                else p = putVarint(rec, p, v)
                time = now
            }
            count++
            // --- slot lookup ---
            let e = ((id ^ (id >>> 9) ^ (flags << 5)) & HASH_MASK) * HASH_ENTRY
            let s = -1
            while (table.getAt(e + 6, "u16") === gen) {
                if (table.getAt(e, "u32") === id && table[e + 4] === flags) {
                    s = table[e + 5]
                    break
                }
                e = (e + HASH_ENTRY) & (HASH_SIZE * HASH_ENTRY - 1)
            }
            if (s < 0) {
                // new slot: LITERAL with id and flags
                s = this.nSlots++
                table.setAt(e, "u32", id)
                table[e + 4] = flags
                table[e + 5] = s
                table.setAt(e + 6, "u16", gen)
                const a = this.arenaUsed
                sOff.setAt(s * 2, "u16", a)
                this.arenaUsed = a + (flags & FLAG_FD ? 64 : 8)
                roomy = s + 1 < SLOT_MAX && this.arenaUsed + 64 <= ARENA_BYTES
                sLen[s] = len
                // LITERAL head s*4 (s < 192: at most 2 bytes) and the id as varints, in place (no call)
                const h = s * 4
                if (h < 0x80) rec[p++] = h
                else {
                    rec[p++] = (h & 0x7f) | 0x80
                    rec[p++] = h >> 7
                }
                let v = id
                while (v >= 0x80) {
                    rec[p++] = (v & 0x7f) | 0x80
                    v = v >>> 7
                }
                rec[p++] = v
                rec[p++] = flags
                rec[p++] = len
                if (dataLen) {
                    rec.blitAt(p, buf, src, dataLen)
                    arena.blitAt(a, buf, src, dataLen)
                    p += dataLen
                }
                continue
            }
            if (sLen[s] !== len) {
                // length changed: LITERAL without id and flags
                const h = s * 4
                if (h < 0x80) rec[p++] = h
                else {
                    rec[p++] = (h & 0x7f) | 0x80
                    rec[p++] = h >> 7
                }
                rec[p++] = len
                if (dataLen) {
                    rec.blitAt(p, buf, src, dataLen)
                    arena.blitAt(sOff.getAt(s * 2, "u16"), buf, src, dataLen)
                    p += dataLen
                }
                sLen[s] = len
                continue
            }
            const a = sOff.getAt(s * 2, "u16")
            if (dataLen === 8) {
                // --- the common frame: 8 bytes as two words; a set bit of the XOR is a changed byte ---
                const x0 = buf.getAt(src, "u32")
                const x1 = buf.getAt(src + 4, "u32")
                const d0 = x0 ^ arena.getAt(a, "u32")
                const d1 = x1 ^ arena.getAt(a + 4, "u32")
                // DELTA head (s*4+1) or REPEAT head (s*4+2): same varint size
                const h = s * 4 + (d0 === 0 && d1 === 0 ? 2 : 1)
                if (h < 0x80) rec[p++] = h
                else {
                    rec[p++] = (h & 0x7f) | 0x80
                    rec[p++] = h >> 7
                }
                if (h & 2) continue
                const maskPos = p++
                let mask = 0
                if (d0 !== 0) {
                    arena.setAt(a, "u32", x0)
                    if (d0 & 0xff) {
                        mask = 1
                        rec[p++] = x0 & 0xff
                    }
                    if (d0 & 0xff00) {
                        mask |= 2
                        rec[p++] = (x0 >> 8) & 0xff
                    }
                    if (d0 & 0xff0000) {
                        mask |= 4
                        rec[p++] = (x0 >> 16) & 0xff
                    }
                    if (d0 & 0xff000000) {
                        mask |= 8
                        rec[p++] = x0 >>> 24
                    }
                }
                if (d1 !== 0) {
                    arena.setAt(a + 4, "u32", x1)
                    if (d1 & 0xff) {
                        mask |= 16
                        rec[p++] = x1 & 0xff
                    }
                    if (d1 & 0xff00) {
                        mask |= 32
                        rec[p++] = (x1 >> 8) & 0xff
                    }
                    if (d1 & 0xff0000) {
                        mask |= 64
                        rec[p++] = (x1 >> 16) & 0xff
                    }
                    if (d1 & 0xff000000) {
                        mask |= 128
                        rec[p++] = x1 >>> 24
                    }
                }
                rec[maskPos] = mask
                continue
            }
            // --- any other length: DELTA (all mask bytes, then the changed bytes) or REPEAT ---
            const start = p
            const h = s * 4 + 1
            if (h < 0x80) rec[p++] = h
            else {
                rec[p++] = (h & 0x7f) | 0x80
                rec[p++] = h >> 7
            }
            const maskPos = p
            const maskBytes = (dataLen + 7) >> 3
            p += maskBytes
            let changed = false
            for (let j = 0; j < maskBytes; j++) {
                let mask = 0
                const base = j * 8
                const n = dataLen - base < 8 ? dataLen - base : 8
                let i = 0
                while (i < n) {
                    // unchanged 4-byte words (most of them) cost one comparison instead of four
                    if (i + 4 <= n && buf.getAt(src + base + i, "u32") === arena.getAt(a + base + i, "u32")) {
                        i += 4
                        continue
                    }
                    const v = buf[src + base + i]
                    if (arena[a + base + i] !== v) {
                        arena[a + base + i] = v
                        mask |= 1 << i
                        rec[p++] = v
                    }
                    i++
                }
                rec[maskPos + j] = mask
                if (mask) changed = true
            }
            if (!changed) {
                // REPEAT: same head size as DELTA, no mask
                p = start
                const r = s * 4 + 2
                if (r < 0x80) rec[p++] = r
                else {
                    rec[p++] = (r & 0x7f) | 0x80
                    rec[p++] = r >> 7
                }
            }
        }
        this.recLen = p
        this.count = count
        this.time = time
        if (sig !== null) {
            sig.recLen = sp
            sig.count = sCount
            sig.time = sTime
        }
        const c = sink.counters
        c.rx += rx
        c.malformed += malformed
    }

    /** Size of the batch map (CBOR payload) for the open batch with these header values. */
    payloadSize(boot: number, seq: number): number {
        return (
            1 +
            keyHeadSize(1) +
            keyHeadSize(boot) +
            keyHeadSize(seq) +
            keyHeadSize(this.t0) +
            keyHeadSize(this.count) +
            keyHeadSize(this.recLen) + this.recLen
        )
    }

    /**
     * Writes the batch map for the open batch into `out` at `pos`; returns the position after it. The keys are
     * constant bytes (no text encoding per batch): A6, "v" 1, "b", "s", "t", "n", "f".
     */
    writePayload(out: Buffer, pos: number, boot: number, seq: number): number {
        if (pos + this.payloadSize(boot, seq) > out.length) throw new RangeError("batch buffer too small")
        out[pos] = 0xa6
        let p = putKeyHead(out, pos + 1, 0x76, MAJOR_UINT, 1) // "v"
        p = putKeyHead(out, p, 0x62, MAJOR_UINT, boot) // "b"
        p = putKeyHead(out, p, 0x73, MAJOR_UINT, seq) // "s"
        p = putKeyHead(out, p, 0x74, MAJOR_UINT, this.t0) // "t"
        p = putKeyHead(out, p, 0x6e, MAJOR_UINT, this.count) // "n"
        p = putKeyHead(out, p, 0x66, MAJOR_BYTES, this.recLen) // "f"
        out.blitAt(p, this.rec, 0, this.recLen)
        return p + this.recLen
    }
}

/** True when the next frame might not fit: the caller of addFrame closes the batch first. */
export function batchFull(enc: BatchEncoder): boolean {
    return (
        enc.recLen + MAX_RECORD > enc.rec.length ||
        enc.nSlots >= SLOT_MAX ||
        enc.arenaUsed + 64 > ARENA_BYTES
    )
}

/**
 * The record coding one frame at a time, the reference addReport's output is tested against (firmware/test/
 * batch.test.ts); not a method, so the firmware's build leaves it out (a program's functions must stay below 64 KB
 * of bytecode, and the frame path never calls it). Appends one frame received at `now` (ms) to `enc`. `src[off..off+len)` is its data (`len` = requested length and no data
 * for a remote frame). The caller has checked `full()` and validated the record.
 */
export function addFrame(enc: BatchEncoder, id: number, flags: number, src: Buffer, off: number, len: number, now: number) {
    const rec = enc.rec
    let p = enc.recLen
    if (enc.count === 0) {
        enc.t0 = now
        enc.time = now
    } else if (now !== enc.time) {
        // ds.millis() never goes back; a negative step would still be clamped rather than corrupt the batch.
        const dt = now > enc.time ? now - enc.time : 0
        p = putVarint(rec, p, dt * 4 + 3)
        enc.time = now
    }
    const dataLen = flags & FLAG_RTR ? 0 : len
    const table = enc.table
    let e = ((id ^ (id >>> 9) ^ (flags << 5)) & HASH_MASK) * HASH_ENTRY
    const gen = enc.gen
    let s = -1
    while (table.getAt(e + 6, "u16") === gen) {
        if (table.getAt(e, "u32") === id && table[e + 4] === flags) {
            s = table[e + 5]
            break
        }
        e = (e + HASH_ENTRY) & (HASH_SIZE * HASH_ENTRY - 1)
    }
    const arena = enc.arena
    if (s < 0) {
        // new slot: LITERAL with id and flags
        s = enc.nSlots++
        table.setAt(e, "u32", id)
        table[e + 4] = flags
        table[e + 5] = s
        table.setAt(e + 6, "u16", gen)
        const a = enc.arenaUsed
        enc.sOff.setAt(s * 2, "u16", a)
        enc.arenaUsed = a + (flags & FLAG_FD ? 64 : 8)
        enc.sLen[s] = len
        p = putVarint(rec, p, s * 4)
        p = putVarint(rec, p, id)
        rec[p++] = flags
        rec[p++] = len
        if (dataLen) {
            rec.blitAt(p, src, off, dataLen)
            arena.blitAt(a, src, off, dataLen)
            p += dataLen
        }
    } else if (enc.sLen[s] !== len) {
        // length changed: LITERAL without id and flags
        p = putVarint(rec, p, s * 4)
        rec[p++] = len
        if (dataLen) {
            rec.blitAt(p, src, off, dataLen)
            arena.blitAt(enc.sOff.getAt(s * 2, "u16"), src, off, dataLen)
            p += dataLen
        }
        enc.sLen[s] = len
    } else {
        // DELTA (mask + changed bytes), or REPEAT when nothing changed; both heads have the same varint size.
        const start = p
        p = putVarint(rec, p, s * 4 + 1)
        const a = enc.sOff.getAt(s * 2, "u16")
        // all mask bytes first, then the changed bytes (docs/protocol.md)
        const maskPos = p
        const maskBytes = (dataLen + 7) >> 3
        p += maskBytes
        let changed = false
        for (let j = 0; j < maskBytes; j++) {
            let mask = 0
            const base = j * 8
            const n = dataLen - base < 8 ? dataLen - base : 8
            for (let i = 0; i < n; i++) {
                const v = src[off + base + i]
                if (arena[a + base + i] !== v) {
                    arena[a + base + i] = v
                    mask |= 1 << i
                    rec[p++] = v
                }
            }
            rec[maskPos + j] = mask
            if (mask) changed = true
        }
        if (!changed) p = putVarint(rec, start, s * 4 + 2)
    }
    enc.recLen = p
    enc.count++
}
