import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { CborWriter, decodeCbor } from "../src/cbor"
import { checkConfig } from "../src/config"
import { Gateway } from "../src/gateway"
import { publishPacketId } from "../src/mqtt/packets"

/** A report of `n` classic frames (id 0x100 + i % 4, data changing with `k`). */
function report(n: number, k: number): Buffer {
    const b = Buffer.alloc(n * 14)
    for (let i = 0; i < n; i++) {
        const o = i * 14
        b.setAt(o, "u32", 0x100 + (i % 4))
        b[o + 5] = 8
        b[o + 6] = (k + i) & 0xff
    }
    return b
}

function gateway(settings: any): Gateway {
    const { config } = checkConfig(settings)
    // no CanBus client and no MQTT session: the frame path, outbox and status alone
    return new Gateway(config, null, 0x1234)
}

describe("gateway without a broker", () => {
    test("frames become QoS 1 batches in the outbox; the outbox bound drops whole batches, counted, seq skipped", async () => {
        const gw = gateway({ batchBytes: 256, outboxBytes: 1024 })
        for (let k = 0; k < 200; k++) {
            gw.ingest(report(16, k), 1000 + k)
            await ds.sleep(0)
        }
        gw.closeBatch()
        const c = gw.counters
        expect(c.rx).toBe(3200)
        expect(gw.outbox.bytes <= 1024).toBe(true)
        expect(c.dropOutbox > 0).toBe(true)
        expect(c.batchesDropped > 0).toBe(true)
        // every frame is in the outbox or counted dropped
        let queued = 0
        for (let i = 0; i < gw.outbox.size(); i++) queued += gw.outbox.frameCount(i)
        expect(queued + c.dropOutbox).toBe(3200)
        // queued batches keep their sequence numbers: 0, 1, 2, ... then the dropped ones are skipped
        const first = gw.outbox.packet(0)
        expect(first[0]).toBe(0x32)
        const last = gw.outbox.packet(gw.outbox.size() - 1)
        expect(publishPacketId(last) > 0).toBe(true)
        expect(gw.seq).toBe(gw.outbox.size() + c.batchesDropped)
    })
    test("PUBACKs empty the outbox and count acknowledged frames", async () => {
        const gw = gateway({})
        await ds.sleep(0)
        for (let k = 0; k < 10; k++) {
            gw.ingest(report(16, k), 5000 + k)
            await ds.sleep(0)
        }
        gw.closeBatch()
        expect(gw.outbox.size()).toBe(1)
        gw.outbox.markSent(0)
        gw.onPuback(gw.outbox.packetIdAt(0))
        expect(gw.outbox.size()).toBe(0)
        expect(gw.counters.acked).toBe(160)
        expect(gw.counters.batchesAcked).toBe(1)
        // a PUBACK nobody waits for changes nothing
        gw.onPuback(777)
        expect(gw.counters.acked).toBe(160)
    })
    test("the status map has every documented key and its accounting holds", async () => {
        const gw = gateway({ canFilters: [[0x100, 0x7fe]] })
        await ds.sleep(0)
        gw.ingest(report(16, 1), 10)
        gw.ingest(Buffer.from("2301000000" + "09", "hex"), 11) // malformed: classic length 9
        const w = new CborWriter(Buffer.alloc(512))
        gw.writeStatus(w, true)
        expect(w.overflow).toBe(false)
        const s = decodeCbor(w.result())
        const keys = ["v", "online", "dev", "fw", "b", "up", "seq", "rx", "flt", "ds", "pub", "ack", "bat", "drop", "rc", "bus", "can", "ob", "obmax", "tx", "pv", "sub", "mq", "big", "sh", "sseq", "sig", "sds", "sshort", "sonly", "diag"]
        for (const k of keys) expect(s[k] === undefined).toBe(false)
        expect(Object.keys(s).length).toBe(keys.length)
        expect(s.online).toBe(true)
        expect(s.b).toBe(0x1234)
        expect(s.rx).toBe(16)
        expect(s.flt).toBe(8) // ids 0x102 and 0x103 are outside [0x100, 0x7fe]
        expect(s.drop.malformed).toBe(1)
        expect(s.bus).toBe("unbound")
        // no session: no protocol level, nothing refused for size
        expect(s.mq).toBe(0)
        expect(s.big).toBe(0)
        expect(Object.keys(s.diag).join(",")).toBe("req,ok,neg,err,pub,drop,busy,poll")
        expect(s.diag.req).toBe(0)
        const will = decodeCbor(gw.willPayload())
        expect(will.online).toBe(false)
        expect(will.b).toBe(0x1234)
    })
})
