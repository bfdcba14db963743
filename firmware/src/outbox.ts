/**
 * The outbox: complete QoS 1 PUBLISH packets of frame batches waiting to be sent or acknowledged, in ONE ring buffer
 * of `maxBytes` allocated at start. An entry leaves only on its PUBACK; after a reconnect every entry is sent again
 * with the DUP flag (MQTT 3.1.1, 4.4). Full means the caller drops the new batch and counts it.
 *
 * Why a ring and not one Buffer per batch: the VM's heap is about 60 KB and not compacted; 4 KB blocks allocated and
 * freed while the broker is away fragment it until an allocation fails (seen: OutOfMemory in a 10 s outage).
 */
import { setDup } from "./mqtt/packets"

/** At most this many packets in the outbox (their bookkeeping is heap too). */
export const MAX_ENTRIES = 64

/**
 * An entry's record in `Outbox.rec`: five u16 fields, offset, length, packet id, frames, flags. 16 bits suffice: the
 * ring is at most 32,768 bytes (`outboxBytes`) and a batch at most 8,192 bytes of at least one byte per frame.
 */
const REC = 10
const OFF = 0
const LEN = 2
const PID = 4
const FRAMES = 6
const FLAGS = 8
/** sent in the current session */
const SENT = 1
/** sent at least once (in any session): the `pub` counter counts an entry once */
const EVER_SENT = 2
const ACKED = 4

export class Outbox {
    private readonly ring: Buffer
    /**
     * The entries' records, MAX_ENTRIES of REC bytes allocated once; entry i (0 = oldest) is record
     * (head + i) % MAX_ENTRIES. Acknowledged entries leave from the front. Not one object per entry: those lived until
     * their PUBACK, up to 64 small blocks (3 KB) scattered over the heap, and with many small signal batches in the
     * outbox they left no room for the send copy of a frame batch (OutOfMemory in MqttSession.sendRange at 50k
     * frames/s with signals, bench/gateway.ts part 6).
     */
    private readonly rec = Buffer.alloc(MAX_ENTRIES * REC)
    private head = 0
    private count = 0
    /** Bytes the entries occupy (including acknowledged ones still waiting for the front to move). */
    bytes = 0

    constructor(public readonly maxBytes: number) {
        this.ring = Buffer.alloc(maxBytes)
    }

    size(): number {
        return this.count
    }

    /** Byte position of entry i's field in `rec`. */
    private at(i: number, field: number): number {
        return ((this.head + i) & (MAX_ENTRIES - 1)) * REC + field
    }

    private get(i: number, field: number): number {
        return this.rec.getAt(this.at(i, field), "u16")
    }

    private set(i: number, field: number, v: number) {
        this.rec.setAt(this.at(i, field), "u16", v)
    }

    /**
     * Reserves `len` contiguous bytes for a new packet; returns their offset in `buffer()`, or -1 when the outbox is
     * full. The caller writes the packet there and then calls `commit`.
     */
    reserve(len: number): number {
        const n = this.count
        if (n >= MAX_ENTRIES || len > this.maxBytes) return -1
        if (!n) return 0
        const head = this.get(0, OFF)
        const last = this.get(n - 1, OFF)
        const tail = last + this.get(n - 1, LEN)
        if (last >= head) {
            // used region is [head, tail): room after the tail, or at the start before the head
            if (tail + len <= this.maxBytes) return tail
            if (len <= head) return 0
            return -1
        }
        // wrapped: used regions are [head, end) and [0, tail): room between tail and head
        return tail + len <= head ? tail : -1
    }

    /** The ring; a reserved packet is written into it at its offset. */
    buffer(): Buffer {
        return this.ring
    }

    commit(off: number, len: number, packetId: number, frames: number) {
        const i = this.count++
        this.set(i, OFF, off)
        this.set(i, LEN, len)
        this.set(i, PID, packetId)
        this.set(i, FRAMES, frames)
        this.set(i, FLAGS, 0)
        this.bytes += len
    }

    /** Index of the oldest entry not yet sent in this session, or -1. */
    nextUnsent(): number {
        for (let i = 0; i < this.count; i++) if (!(this.get(i, FLAGS) & (SENT | ACKED))) return i
        return -1
    }

    /** A copy of entry `i`'s packet (tests; the gateway sends from the ring with offset() and length()). */
    packet(i: number): Buffer {
        const off = this.get(i, OFF)
        return this.ring.slice(off, off + this.get(i, LEN))
    }

    offset(i: number): number {
        return this.get(i, OFF)
    }

    length(i: number): number {
        return this.get(i, LEN)
    }

    packetIdAt(i: number): number {
        return this.get(i, PID)
    }

    frameCount(i: number): number {
        return this.get(i, FRAMES)
    }

    /** Marks entry `i` sent in this session; true when it is its first send ever. */
    markSent(i: number): boolean {
        const f = this.get(i, FLAGS)
        this.set(i, FLAGS, f | SENT | EVER_SENT)
        return !(f & EVER_SENT)
    }

    /** Entries sent and waiting for their PUBACK. */
    inFlight(): number {
        let n = 0
        for (let i = 0; i < this.count; i++) if ((this.get(i, FLAGS) & (SENT | ACKED)) === SENT) n++
        return n
    }

    /** Acknowledges the entry with this packet id; its frame count, or -1 when none waits for it (a late duplicate). */
    ack(packetId: number): number {
        const i = this.indexOf(packetId)
        if (i < 0) return -1
        const f = this.get(i, FLAGS)
        if (!(f & SENT)) return -1
        this.set(i, FLAGS, f | ACKED)
        const frames = this.get(i, FRAMES)
        // free from the front: the ring space of an acknowledged entry behind an unacknowledged one waits
        while (this.count && this.get(0, FLAGS) & ACKED) {
            this.bytes -= this.get(0, LEN)
            this.head = (this.head + 1) & (MAX_ENTRIES - 1)
            this.count--
        }
        return frames
    }

    /** After a reconnect: everything unacknowledged is unsent again; what had been sent goes out with DUP set. */
    resendAll() {
        for (let i = 0; i < this.count; i++) {
            const f = this.get(i, FLAGS)
            if ((f & (SENT | ACKED)) === SENT) setDup(this.ring, this.get(i, OFF))
            this.set(i, FLAGS, f & ~SENT)
        }
    }

    /** Index of the unacknowledged entry with this packet id, or -1. */
    indexOf(packetId: number): number {
        for (let i = 0; i < this.count; i++) if (this.get(i, PID) === packetId && !(this.get(i, FLAGS) & ACKED)) return i
        return -1
    }

    hasPacketId(packetId: number): boolean {
        return this.indexOf(packetId) >= 0
    }
}
