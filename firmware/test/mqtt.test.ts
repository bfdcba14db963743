import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import {
    encodeConnect,
    encodePingreq,
    encodePuback,
    encodePublish,
    encodeSubscribe,
    MqttPacket,
    MqttParser,
    parsePublish,
    publishPacketId,
    putRemainingLength,
    remainingLengthSize,
    setDup,
} from "../src/mqtt/packets"

// Expected bytes below were produced by mqtt-packet (the MQTT.js encoder) for the same packets.
describe("mqtt packets", () => {
    test("CONNECT with will, user and password", () => {
        const b = encodeConnect({
            clientId: "vgw-gw1",
            keepAlive: 30,
            cleanSession: true,
            willTopic: "vgw/gw1/status",
            willPayload: Buffer.from("a0", "hex"),
            willQos: 1,
            willRetain: true,
            username: "u",
            password: "p",
        })
        expect(b.toString("hex")).toBe(
            "102c00044d51545404ee001e00077667772d677731000e7667772f6777312f7374617475730001a0000175000170"
        )
    })
    test("SUBSCRIBE, PUBLISH QoS 1 retained, PUBACK, PINGREQ", () => {
        expect(encodeSubscribe(2, "vgw/gw1/cmd", 1).toString("hex")).toBe("82100002000b7667772f6777312f636d6401")
        const p = encodePublish(Buffer.from("a/b"), Buffer.from("0102", "hex"), 1, true, 7)
        expect(p.toString("hex")).toBe("33090003612f6200070102")
        expect(publishPacketId(p)).toBe(7)
        setDup(p, 0)
        expect(p[0]).toBe(0x3b)
        expect(encodePuback(258).toString("hex")).toBe("40020102")
        expect(encodePingreq().toString("hex")).toBe("c000")
        const big = encodePublish(Buffer.from("t"), Buffer.alloc(200), 1, false, 1)
        expect(big.slice(0, 10).toString("hex")).toBe("32cd0100017400010000")
    })
    test("remaining length varint at its boundaries", () => {
        const cases = [0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455]
        const sizes = [1, 1, 2, 2, 3, 3, 4, 4]
        const hexes = ["00", "7f", "8001", "ff7f", "808001", "ffff7f", "80808001", "ffffff7f"]
        for (let i = 0; i < cases.length; i++) {
            const b = Buffer.alloc(4)
            const end = putRemainingLength(b, 0, cases[i])
            expect(end).toBe(sizes[i])
            expect(remainingLengthSize(cases[i])).toBe(sizes[i])
            expect(b.slice(0, end).toString("hex")).toBe(hexes[i])
        }
    })
    test("parser splits a stream fed in pieces, keeps big packets' heads, flags bad lengths", () => {
        const parser = new MqttParser(32)
        const got: MqttPacket[] = []
        const feedAll = (chunk: Buffer, step: number) => {
            for (let i = 0; i < chunk.length; i += step) {
                const n = Math.min(step, chunk.length - i)
                let off = i
                while (off < i + n && !parser.error) {
                    off += parser.feed(chunk, off, i + n - off)
                    const p = parser.next()
                    if (p) got.push(p)
                }
            }
        }
        // CONNACK, PUBACK 258, PUBLISH qos1 topic "c" id 5 payload 0xAA, PINGRESP
        const stream = Buffer.from("20020000" + "40020102" + "3206000163" + "0005aa" + "d000", "hex")
        feedAll(stream, 3)
        expect(got.length).toBe(4)
        expect(got[0].type).toBe(2)
        expect(got[1].type).toBe(4)
        expect(got[1].body.toString("hex")).toBe("0102")
        expect(got[2].type).toBe(3)
        const pub = parsePublish(got[2].flags, got[2].body)
        expect(pub.topic).toBe("c")
        expect(pub.qos).toBe(1)
        expect(pub.packetId).toBe(5)
        expect(got[2].body.slice(pub.payloadOffset).toString("hex")).toBe("aa")
        expect(got[3].type).toBe(13)
        expect(got[3].body.length).toBe(0)
        // a 100-byte PUBLISH into a 32-byte parser: handed out truncated, then the stream continues
        while (got.length) got.pop()
        const big = encodePublish(Buffer.from("c"), Buffer.alloc(90), 1, false, 9)
        feedAll(big, 1000)
        feedAll(Buffer.from("d000", "hex"), 1000)
        expect(got.length).toBe(2)
        expect(got[0].truncated).toBe(true)
        expect(got[0].length).toBe(95)
        expect(parsePublish(got[0].flags, got[0].body).packetId).toBe(9)
        expect(got[1].type).toBe(13)
        expect(got[1].truncated).toBe(false)
        feedAll(Buffer.from("30ffffffff01", "hex"), 1000)
        expect(parser.error.length > 0).toBe(true)
    })
    test("feed takes one packet at a time from a chunk of 300 PUBACKs, in place", async () => {
        const parser = new MqttParser(1024)
        const chunk = Buffer.alloc(300 * 4 + 2)
        for (let i = 0; i < 300; i++) {
            chunk[i * 4] = 0x40
            chunk[i * 4 + 1] = 2
            chunk[i * 4 + 2] = (i + 1) >> 8
            chunk[i * 4 + 3] = (i + 1) & 0xff
        }
        // and the first two bytes of a PUBLISH whose rest comes later
        chunk[1200] = 0x30
        chunk[1201] = 3
        let n = 0
        let off = 0
        while (off < chunk.length) {
            const took = parser.feed(chunk, off, chunk.length - off)
            off += took
            const p = parser.next()
            if (!p) continue
            // the session likewise awaits every few packets (the VM's opcode budget between awaits)
            if (++n % 32 === 0) await ds.sleep(0)
            // exactly one packet per feed: the caller handles it before the parser reads on
            expect(took).toBe(4)
            expect((p.body[0] << 8) | p.body[1]).toBe(n)
            // a packet is handed out once
            expect(parser.next()).toBe(null)
        }
        expect(n).toBe(300)
        const rest = Buffer.from("000174", "hex")
        expect(parser.feed(rest, 0, 3)).toBe(3)
        const p = parser.next()
        expect(p.type).toBe(3)
        expect(p.body.toString("hex")).toBe("000174")
        expect(parser.error).toBe("")
    })
})
