/**
 * The outbox: complete QoS 1 PUBLISH packets of frame batches waiting to be sent or to be acknowledged, bounded in
 * BYTES. An entry leaves only on its PUBACK; after a reconnect every entry is sent again with the DUP flag
 * (MQTT 3.1.1, 4.4). Full means the caller drops the new batch and counts it.
 */
import { setDup } from "./mqtt/packets"

class Entry {
    /** sent in the current session */
    sent = false
    /** sent at least once (in any session): the `pub` counter counts an entry once */
    everSent = false
    constructor(
        readonly pkt: Buffer,
        readonly packetId: number,
        /** frames in the batch, for the `ack` counter */
        readonly frames: number
    ) {}
}

export class Outbox {
    private readonly entries: Entry[] = []
    /** Bytes of all entries. */
    bytes = 0

    constructor(public readonly maxBytes: number) {}

    size(): number {
        return this.entries.length
    }

    /** Queues a packet; false (and nothing queued) when it does not fit in the bound. */
    push(pkt: Buffer, packetId: number, frames: number): boolean {
        if (this.bytes + pkt.length > this.maxBytes) return false
        this.entries.push(new Entry(pkt, packetId, frames))
        this.bytes += pkt.length
        return true
    }

    /** Index of the oldest entry not yet sent in this session, or -1. */
    nextUnsent(): number {
        const e = this.entries
        for (let i = 0; i < e.length; i++) if (!e[i].sent) return i
        return -1
    }

    packet(i: number): Buffer {
        return this.entries[i].pkt
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
        for (const e of this.entries) if (e.sent) n++
        return n
    }

    /** Removes the entry with this packet id; its frame count, or -1 when none has it (a late duplicate PUBACK). */
    ack(packetId: number): number {
        const e = this.entries
        for (let i = 0; i < e.length; i++) {
            if (e[i].packetId === packetId && e[i].sent) {
                const f = e[i].frames
                this.bytes -= e[i].pkt.length
                // no Array.splice in DeviceScript: shift the tail down
                for (let j = i; j < e.length - 1; j++) e[j] = e[j + 1]
                e.pop()
                return f
            }
        }
        return -1
    }

    /** After a reconnect: everything is unsent again; what had been sent goes out with DUP set. */
    resendAll() {
        for (const e of this.entries) {
            if (e.sent) setDup(e.pkt)
            e.sent = false
        }
    }

    hasPacketId(packetId: number): boolean {
        for (const e of this.entries) if (e.packetId === packetId) return true
        return false
    }
}
