/**
 * The outbox: complete QoS 1 PUBLISH packets (frame batches and command results) waiting to be sent or to be
 * acknowledged, bounded in BYTES. An entry leaves only on its PUBACK; after a reconnect every entry is sent again
 * with the DUP flag (MQTT 3.1.1, 4.4). Full means the caller drops the new entry and counts it.
 */
import { setDup } from "./mqtt/packets"

export class Outbox {
    private readonly pkts: Buffer[] = []
    private readonly pids: number[] = []
    /** Frames in each entry (0 for a command result), for the `ack` counter. */
    private readonly frames: number[] = []
    private readonly sent: boolean[] = []
    /** Bytes of all entries. */
    bytes = 0

    constructor(public readonly maxBytes: number) {}

    get length() {
        return this.pkts.length
    }

    /** Queues a packet; false (and nothing queued) when it does not fit in the bound. */
    push(pkt: Buffer, packetId: number, frames: number): boolean {
        if (this.bytes + pkt.length > this.maxBytes) return false
        this.pkts.push(pkt)
        this.pids.push(packetId)
        this.frames.push(frames)
        this.sent.push(false)
        this.bytes += pkt.length
        return true
    }

    /** Index of the oldest entry not yet sent in this session, or -1. */
    nextUnsent(): number {
        for (let i = 0; i < this.sent.length; i++) if (!this.sent[i]) return i
        return -1
    }

    packet(i: number): Buffer {
        return this.pkts[i]
    }

    markSent(i: number) {
        this.sent[i] = true
    }

    /** Number of entries sent and waiting for their PUBACK. */
    inFlight(): number {
        let n = 0
        for (let i = 0; i < this.sent.length; i++) if (this.sent[i]) n++
        return n
    }

    /** Removes the entry with this packet id; returns its frame count, or -1 when no entry has it (a late duplicate PUBACK). */
    ack(packetId: number): number {
        for (let i = 0; i < this.pids.length; i++) {
            if (this.pids[i] === packetId && this.sent[i]) {
                const f = this.frames[i]
                this.bytes -= this.pkts[i].length
                this.pkts.splice(i, 1)
                this.pids.splice(i, 1)
                this.frames.splice(i, 1)
                this.sent.splice(i, 1)
                return f
            }
        }
        return -1
    }

    /** After a reconnect: everything is unsent again; what had been sent goes out with DUP set. */
    resendAll() {
        for (let i = 0; i < this.sent.length; i++) {
            if (this.sent[i]) setDup(this.pkts[i])
            this.sent[i] = false
        }
    }

    hasPacketId(packetId: number): boolean {
        return this.pids.indexOf(packetId) >= 0
    }
}
