import { describe, expect, test } from "@devicescript/test"
import { encodePublish, publishPacketId } from "../src/mqtt/packets"
import { Outbox } from "../src/outbox"

function pkt(pid: number, size: number): Buffer {
    return encodePublish(Buffer.from("t"), Buffer.alloc(size - 7), 1, false, pid)
}

describe("outbox", () => {
    test("bounded in bytes: a packet that does not fit is refused whole", () => {
        const ob = new Outbox(300)
        expect(ob.push(pkt(1, 100), 1, 10)).toBe(true)
        expect(ob.push(pkt(2, 100), 2, 10)).toBe(true)
        expect(ob.push(pkt(3, 101), 3, 10)).toBe(false)
        expect(ob.bytes).toBe(200)
        expect(ob.push(pkt(3, 100), 3, 10)).toBe(true)
        expect(ob.bytes).toBe(300)
        expect(ob.size()).toBe(3)
    })
    test("an entry leaves only on the PUBACK of a sent packet", () => {
        const ob = new Outbox(1000)
        ob.push(pkt(1, 50), 1, 5)
        ob.push(pkt(2, 50), 2, 7)
        expect(ob.ack(1)).toBe(-1) // not sent yet
        expect(ob.nextUnsent()).toBe(0)
        expect(ob.markSent(0)).toBe(true)
        expect(ob.nextUnsent()).toBe(1)
        ob.markSent(1)
        expect(ob.inFlight()).toBe(2)
        expect(ob.ack(2)).toBe(7) // out of order is fine
        expect(ob.ack(2)).toBe(-1) // duplicate PUBACK
        expect(ob.size()).toBe(1)
        expect(ob.bytes).toBe(50)
        expect(ob.hasPacketId(1)).toBe(true)
        expect(ob.hasPacketId(2)).toBe(false)
    })
    test("after a reconnect, sent entries go again with DUP, counted once as published", () => {
        const ob = new Outbox(1000)
        ob.push(pkt(9, 50), 9, 3)
        ob.push(pkt(10, 50), 10, 4)
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
})
