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
        const got: MqttPacket[] = []
        const parser = new MqttParser(32, (p: MqttPacket) => {
            got.push(p)
        })
        // CONNACK, PUBACK 258, PUBLISH qos1 topic "c" id 5 payload 0xAA, PINGRESP
        const stream = Buffer.from("20020000" + "40020102" + "3206000163" + "0005aa" + "d000", "hex")
        for (let i = 0; i < stream.length; i += 3) parser.push(stream.slice(i, Math.min(i + 3, stream.length)))
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
        // a 100-byte PUBLISH into a 32-byte parser: delivered truncated, then the stream continues
        while (got.length) got.pop()
        const big = encodePublish(Buffer.from("c"), Buffer.alloc(90), 1, false, 9)
        parser.push(big)
        parser.push(Buffer.from("d000", "hex"))
        expect(got.length).toBe(2)
        expect(got[0].truncated).toBe(true)
        expect(parsePublish(got[0].flags, got[0].body).packetId).toBe(9)
        expect(got[1].type).toBe(13)
        parser.push(Buffer.from("30ffffffff01", "hex"))
        expect(parser.error.length > 0).toBe(true)
    })
    test("a chunk of 300 PUBACKs is parsed in one push (no quadratic moves)", () => {
        let n = 0
        let lastId = 0
        const parser = new MqttParser(1024, (p: MqttPacket) => {
            n++
            lastId = (p.body[0] << 8) | p.body[1]
        })
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
        parser.push(chunk)
        expect(n).toBe(300)
        expect(lastId).toBe(300)
        parser.push(Buffer.from("000174", "hex"))
        expect(n).toBe(301)
        expect(parser.error).toBe("")
    })
})
