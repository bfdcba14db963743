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

class Entry {
    /** sent in the current session */
    sent = false
    /** sent at least once (in any session): the `pub` counter counts an entry once */
    everSent = false
    acked = false
    constructor(
        readonly off: number,
        readonly len: number,
        readonly packetId: number,
        /** frames in the batch, for the `ack` counter */
        readonly frames: number
    ) {}
}

export class Outbox {
    private readonly ring: Buffer
    /** Entries in ring order, oldest first; acknowledged ones leave from the front. */
    private readonly entries: Entry[] = []
    /** Bytes the entries occupy (including acknowledged ones still waiting for the front to move). */
    bytes = 0

    constructor(public readonly maxBytes: number) {
        this.ring = Buffer.alloc(maxBytes)
    }

    size(): number {
        return this.entries.length
    }

    /**
     * Reserves `len` contiguous bytes for a new packet; returns their offset in `buffer()`, or -1 when the outbox is
     * full. The caller writes the packet there and then calls `commit`.
     */
    reserve(len: number): number {
        const e = this.entries
        if (e.length >= MAX_ENTRIES || len > this.maxBytes) return -1
        if (!e.length) return 0
        const head = e[0].off
        const last = e[e.length - 1]
        const tail = last.off + last.len
        if (last.off >= head) {
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
        this.entries.push(new Entry(off, len, packetId, frames))
        this.bytes += len
    }

    /** Index of the oldest entry not yet sent in this session, or -1. */
    nextUnsent(): number {
        const e = this.entries
        for (let i = 0; i < e.length; i++) if (!e[i].sent && !e[i].acked) return i
        return -1
    }

    /** A copy of entry `i`'s packet (tests; the gateway sends from the ring with offset() and length()). */
    packet(i: number): Buffer {
        const e = this.entries[i]
        return this.ring.slice(e.off, e.off + e.len)
    }

    offset(i: number): number {
        return this.entries[i].off
    }

    length(i: number): number {
        return this.entries[i].len
    }

    packetIdAt(i: number): number {
        return this.entries[i].packetId
    }

    frameCount(i: number): number {
        return this.entries[i].frames
    }

    /** Marks entry `i` sent in this session; true when it is its first send ever. */
    markSent(i: number): boolean {
        const e = this.entries[i]
        e.sent = true
        const first = !e.everSent
        e.everSent = true
        return first
    }

    /** Entries sent and waiting for their PUBACK. */
    inFlight(): number {
        let n = 0
        for (const e of this.entries) if (e.sent && !e.acked) n++
        return n
    }

    /** Acknowledges the entry with this packet id; its frame count, or -1 when none waits for it (a late duplicate). */
    ack(packetId: number): number {
        const e = this.entries
        for (let i = 0; i < e.length; i++) {
            if (e[i].packetId === packetId && e[i].sent && !e[i].acked) {
                e[i].acked = true
                const f = e[i].frames
                // free from the front: the ring space of an acknowledged entry behind an unacknowledged one waits
                while (e.length && e[0].acked) {
                    this.bytes -= e[0].len
                    e.shift()
                }
                return f
            }
        }
        return -1
    }

    /** After a reconnect: everything unacknowledged is unsent again; what had been sent goes out with DUP set. */
    resendAll() {
        for (const e of this.entries) {
            if (e.sent && !e.acked) setDup(this.ring, e.off)
            e.sent = false
        }
    }

    /** Index of the unacknowledged entry with this packet id, or -1. */
    indexOf(packetId: number): number {
        const e = this.entries
        for (let i = 0; i < e.length; i++) if (e[i].packetId === packetId && !e[i].acked) return i
        return -1
    }

    hasPacketId(packetId: number): boolean {
        for (const e of this.entries) if (e.packetId === packetId && !e.acked) return true
        return false
    }
}
