import { describe, expect, test } from "@devicescript/test"
import { encodePublish, publishPacketId } from "../src/mqtt/packets"
import { MAX_ENTRIES, Outbox } from "../src/outbox"

/** Puts a `size`-byte PUBLISH with this packet id into the outbox, as Gateway.closeBatch does; false when full. */
function push(ob: Outbox, pid: number, size: number, frames: number): boolean {
    const off = ob.reserve(size)
    if (off < 0) return false
    const pkt = encodePublish(Buffer.from("t"), Buffer.alloc(size - 7), 1, false, pid)
    ob.buffer().blitAt(off, pkt, 0, size)
    ob.commit(off, size, pid, frames)
    return true
}

describe("outbox", () => {
    test("bounded in bytes: a packet that does not fit is refused whole", () => {
        const ob = new Outbox(300)
        expect(push(ob, 1, 100, 10)).toBe(true)
        expect(push(ob, 2, 100, 10)).toBe(true)
        expect(push(ob, 3, 101, 10)).toBe(false)
        expect(ob.bytes).toBe(200)
        expect(push(ob, 3, 100, 10)).toBe(true)
        expect(ob.bytes).toBe(300)
        expect(ob.size()).toBe(3)
        expect(push(ob, 4, 8, 1)).toBe(false)
    })
    test("an entry leaves only on the PUBACK of a sent packet; space frees from the front", () => {
        const ob = new Outbox(1000)
        push(ob, 1, 50, 5)
        push(ob, 2, 50, 7)
        expect(ob.ack(1)).toBe(-1) // not sent yet
        expect(ob.nextUnsent()).toBe(0)
        expect(ob.markSent(0)).toBe(true)
        expect(ob.nextUnsent()).toBe(1)
        ob.markSent(1)
        expect(ob.inFlight()).toBe(2)
        expect(ob.ack(2)).toBe(7) // out of order is fine
        expect(ob.ack(2)).toBe(-1) // duplicate PUBACK
        expect(ob.size()).toBe(2) // its space waits for entry 1
        expect(ob.bytes).toBe(100)
        expect(ob.hasPacketId(2)).toBe(false)
        expect(ob.ack(1)).toBe(5)
        expect(ob.size()).toBe(0)
        expect(ob.bytes).toBe(0)
    })
    test("the ring wraps: space freed at the front is reused, never overlapping a live entry", () => {
        const ob = new Outbox(300)
        let pid = 1
        const live: number[] = []
        // keep about two 100-byte packets alive while 50 go through
        for (let k = 0; k < 50; k++) {
            while (!push(ob, pid, 100, 1)) {
                const i = ob.nextUnsent()
                if (i >= 0) ob.markSent(i)
                ob.markSent(0)
                expect(ob.ack(live.shift())).toBe(1)
            }
            live.push(pid++)
            expect(ob.bytes <= 300).toBe(true)
        }
        // every live packet still holds its own id
        for (let i = 0; i < ob.size(); i++) expect(publishPacketId(ob.packet(i))).toBe(live[i])
    })
    test("after a reconnect, sent entries go again with DUP, counted once as published", () => {
        const ob = new Outbox(1000)
        push(ob, 9, 50, 3)
        push(ob, 10, 50, 4)
        expect(ob.markSent(0)).toBe(true)
        ob.resendAll()
        expect(ob.nextUnsent()).toBe(0)
        expect(ob.packet(0)[0]).toBe(0x3a) // PUBLISH, DUP, QoS 1
        expect(ob.packet(1)[0]).toBe(0x32) // never sent: no DUP
        expect(publishPacketId(ob.packet(0))).toBe(9)
        expect(ob.markSent(0)).toBe(false)
        expect(ob.markSent(1)).toBe(true)
        expect(ob.ack(9)).toBe(3)
        expect(ob.ack(10)).toBe(4)
        expect(ob.bytes).toBe(0)
    })
    test("at most MAX_ENTRIES packets, whatever their size", () => {
        const ob = new Outbox(10000)
        let n = 0
        while (push(ob, n + 1, 20, 1)) n++
        expect(n).toBe(MAX_ENTRIES)
    })
})
