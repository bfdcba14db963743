/**
 * Frame batches: the compact lossless record coding of docs/protocol.md ("Records in f") and the batch map around it.
 *
 * This is the frame hot path (100k frames/s in the simulator): no allocation per frame, only number arrays and
 * Buffers owned by the encoder. Slots (one per id+flags pair) are found through a small open-addressing hash whose
 * entries carry a generation number, so starting a new batch clears it in O(1).
 */
import { CborWriter, headSize, MAJOR_BYTES, putHead } from "./cbor"
import { FLAG_FD, FLAG_RTR } from "./records"

/** At most this many distinct (id, flags) slots per batch; a batch closes when it runs out. */
export const SLOT_MAX = 256
const HASH_SIZE = 512
const HASH_MASK = HASH_SIZE - 1
/** Last data of every slot (8 bytes per classic slot, 64 per FD slot); a batch closes when it runs out. */
export const ARENA_BYTES = 2048
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
    private time = 0
    private nSlots = 0
    private gen = 1
    private readonly hGen: number[] = []
    private readonly hId: number[] = []
    private readonly hFlags: number[] = []
    private readonly hSlot: number[] = []
    private readonly sOff: number[] = []
    private readonly sLen: number[] = []
    private readonly arena = Buffer.alloc(ARENA_BYTES)
    private arenaUsed = 0

    /** `recBytes`: capacity of the records; the whole batch payload is at most recBytes + BATCH_OVERHEAD. */
    constructor(recBytes: number) {
        this.rec = Buffer.alloc(recBytes)
        for (let i = 0; i < HASH_SIZE; i++) {
            this.hGen.push(0)
            this.hId.push(0)
            this.hFlags.push(0)
            this.hSlot.push(0)
        }
        for (let i = 0; i < SLOT_MAX; i++) {
            this.sOff.push(0)
            this.sLen.push(0)
        }
    }

    /** True when the next frame might not fit: the caller closes the batch first. */
    full(): boolean {
        return (
            this.recLen + MAX_RECORD > this.rec.length ||
            this.nSlots >= SLOT_MAX ||
            this.arenaUsed + 64 > ARENA_BYTES
        )
    }

    /** Starts a new, empty batch. */
    clear() {
        this.recLen = 0
        this.count = 0
        this.nSlots = 0
        this.arenaUsed = 0
        this.gen++
    }

    /**
     * Appends one frame received at `now` (ms). `src[off..off+len)` is its data (`len` = requested length and no data
     * for a remote frame). The caller has checked `full()` and validated the record.
     */
    add(id: number, flags: number, src: Buffer, off: number, len: number, now: number) {
        const rec = this.rec
        let p = this.recLen
        if (this.count === 0) {
            this.t0 = now
            this.time = now
        } else if (now !== this.time) {
            // ds.millis() never goes back; a negative step would still be clamped rather than corrupt the batch.
            const dt = now > this.time ? now - this.time : 0
            p = putVarint(rec, p, dt * 4 + 3)
            this.time = now
        }
        const dataLen = flags & FLAG_RTR ? 0 : len
        let h = (id ^ (id >>> 9) ^ (flags << 5)) & HASH_MASK
        const gen = this.gen
        let s = -1
        while (this.hGen[h] === gen) {
            if (this.hId[h] === id && this.hFlags[h] === flags) {
                s = this.hSlot[h]
                break
            }
            h = (h + 1) & HASH_MASK
        }
        const arena = this.arena
        if (s < 0) {
            // new slot: LITERAL with id and flags
            s = this.nSlots++
            this.hGen[h] = gen
            this.hId[h] = id
            this.hFlags[h] = flags
            this.hSlot[h] = s
            const a = this.arenaUsed
            this.sOff[s] = a
            this.arenaUsed = a + (flags & FLAG_FD ? 64 : 8)
            this.sLen[s] = len
            p = putVarint(rec, p, s * 4)
            p = putVarint(rec, p, id)
            rec[p++] = flags
            rec[p++] = len
            if (dataLen) {
                rec.blitAt(p, src, off, dataLen)
                arena.blitAt(a, src, off, dataLen)
                p += dataLen
            }
        } else if (this.sLen[s] !== len) {
            // length changed: LITERAL without id and flags
            p = putVarint(rec, p, s * 4)
            rec[p++] = len
            if (dataLen) {
                rec.blitAt(p, src, off, dataLen)
                arena.blitAt(this.sOff[s], src, off, dataLen)
                p += dataLen
            }
            this.sLen[s] = len
        } else {
            // DELTA (mask + changed bytes), or REPEAT when nothing changed; both heads have the same varint size.
            const start = p
            p = putVarint(rec, p, s * 4 + 1)
            const a = this.sOff[s]
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
        this.recLen = p
        this.count++
    }

    /** Size of the batch map (CBOR payload) for the open batch with these header values. */
    payloadSize(boot: number, seq: number): number {
        return (
            1 +
            2 + headSize(1) +
            2 + headSize(boot) +
            2 + headSize(seq) +
            2 + headSize(this.t0) +
            2 + headSize(this.count) +
            2 + headSize(this.recLen) + this.recLen
        )
    }

    /** Writes the batch map for the open batch into `out` at `pos`; returns the position after it. */
    writePayload(out: Buffer, pos: number, boot: number, seq: number): number {
        const w = new CborWriter(out)
        w.pos = pos
        w.map(6)
        w.text("v")
        w.int(1)
        w.text("b")
        w.int(boot)
        w.text("s")
        w.int(seq)
        w.text("t")
        w.int(this.t0)
        w.text("n")
        w.int(this.count)
        w.text("f")
        if (w.pos + headSize(this.recLen) + this.recLen > out.length) throw new RangeError("batch buffer too small")
        let p = putHead(out, w.pos, MAJOR_BYTES, this.recLen)
        out.blitAt(p, this.rec, 0, this.recLen)
        return p + this.recLen
    }
}
