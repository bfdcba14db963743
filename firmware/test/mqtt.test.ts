import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { MAX_WRITE, MqttSession, SessionOptions } from "../src/mqtt/session"
import {
    connackProperties,
    copyPublishV5,
    encodeConnect,
    encodePingreq,
    encodePuback,
    encodePublish,
    encodeSubscribe,
    MqttPacket,
    MqttParser,
    parsePublish,
    propertyInt,
    publishPacketId,
    publishV5Size,
    putRemainingLength,
    readVarint,
    remainingLengthSize,
    setDup,
    subackCodes,
    violation,
} from "../src/mqtt/packets"

/** The one packet in `hex` (whole), through the parser. */
function parsed(hexBytes: string): MqttPacket {
    const parser = new MqttParser(1024, 8192)
    const b = Buffer.from(hexBytes, "hex")
    parser.feed(b, 0, b.length)
    return parser.next()
}

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
    test("MQTT 5 CONNECT, SUBSCRIBE, PUBLISH and PUBACK", () => {
        // mqtt-packet: properties {sessionExpiryInterval: 0, receiveMaximum: 4, maximumPacketSize: 8192}, will
        // properties {}; subscription {qos 1, nl, rap false, rh 0}; publish and puback with properties {}
        const b = encodeConnect(
            {
                clientId: "vgw-gw1",
                keepAlive: 30,
                cleanSession: true,
                willTopic: "vgw/gw1/status",
                willPayload: Buffer.from("a0", "hex"),
                willQos: 1,
                willRetain: true,
                username: "u",
                password: "p",
                maxPacket: 8192,
            },
            true
        )
        expect(b.toString("hex")).toBe(
            "103b00044d51545405ee001e0d1100000000210004270000200000077667772d67773100000e7667772f6777312f7374617475730001a0000175000170"
        )
        expect(encodeSubscribe(2, "vgw/gw1/cmd", 1, true).toString("hex")).toBe("8211000200000b7667772f6777312f636d6401")
        const p = encodePublish(Buffer.from("a/b"), Buffer.from("0102", "hex"), 1, true, 7, true)
        expect(p.toString("hex")).toBe("330a0003612f620007000102")
        expect(publishPacketId(p)).toBe(7)
        const big = encodePublish(Buffer.from("t"), Buffer.alloc(200), 1, false, 1, true)
        expect(big.slice(0, 11).toString("hex")).toBe("32ce010001740001000000")
        // the MQTT 5 PUBACK with reason code 0 is the 3.1.1 form (3.4.2.1)
        expect(encodePuback(258).toString("hex")).toBe("40020102")
    })
    test("an outbox PUBLISH (3.1.1 form) copied into its MQTT 5 form, across a remaining-length boundary", () => {
        // payload 122: remaining length 127 in 3.1.1 (1 byte), 128 in MQTT 5 (2 bytes)
        for (const n of [2, 121, 122, 200]) {
            const payload = Buffer.alloc(n)
            for (let i = 0; i < n; i++) payload[i] = i & 0xff
            const v4 = encodePublish(Buffer.from("t"), payload, 1, false, 513)
            const v5 = encodePublish(Buffer.from("t"), payload, 1, false, 513, true)
            // at an offset inside a larger buffer, like the outbox ring
            const ring = Buffer.alloc(v4.length + 10)
            ring.blitAt(7, v4, 0, v4.length)
            expect(publishV5Size(ring, 7, v4.length)).toBe(v5.length)
            const out = Buffer.alloc(v5.length)
            copyPublishV5(out, ring, 7, v4.length)
            expect(out.toString("hex")).toBe(v5.toString("hex"))
            expect(publishPacketId(ring, 7)).toBe(513)
        }
        // mqtt-packet: topic "t", 120 B payload, QoS 1, id 1
        expect(encodePublish(Buffer.from("t"), Buffer.alloc(120), 1, false, 1, true).slice(0, 11).toString("hex")).toBe(
            "327e000174000100000000"
        )
    })
    test("MQTT 5 broker packets made by mqtt-packet: accepted, their fields and properties read", () => {
        // CONNACK {topicAliasMaximum 10, receiveMaximum 20, maximumPacketSize 1000, retainAvailable false, serverKeepAlive 7}
        const ca = parsed("201300001022000a21001427000003e82500130007")
        expect(violation(ca, false, true)).toBe("")
        const seen: number[] = []
        connackProperties(ca.body, (id: number, at: number) => {
            seen.push(id)
            if (id === 0x21) expect(propertyInt(ca.body, at, 2)).toBe(20)
            if (id === 0x27) expect(propertyInt(ca.body, at, 4)).toBe(1000)
            if (id === 0x25) expect(ca.body[at]).toBe(0)
            if (id === 0x13) expect(propertyInt(ca.body, at, 2)).toBe(7)
        })
        expect(seen.length).toBe(5)
        // CONNACK reason 0x87 (not authorized) with a reason string: valid, the session refuses to go on
        const cf = parsed("20080087051f00026e6f")
        expect(violation(cf, false, true)).toBe("")
        expect(cf.body[1]).toBe(0x87)
        // a 3.1.1 broker's answer to a v5 CONNECT: return code 1, the fallback signal
        expect(violation(parsed("20020001"), false, true)).toBe("")
        // PUBLISH QoS 1 with a user property, content type and payload format indicator
        const pub = parsed("321400016300050d2600016b000176030001780101aa")
        expect(violation(pub, true, true)).toBe("")
        const pp = parsePublish(pub.flags, pub.body, true)
        expect(pp.topic).toBe("c")
        expect(pp.packetId).toBe(5)
        expect(pub.body.slice(pp.payloadOffset).toString("hex")).toBe("aa")
        // PUBACK 0x97 (quota exceeded) with a reason string; SUBACK granted QoS 1 and refused 0x87; DISCONNECT 0x93
        expect(violation(parsed("4008000997041f000171"), true, true)).toBe("")
        const sa = parsed("90090002051f00026f6b01")
        expect(violation(sa, true, true)).toBe("")
        expect(sa.body[subackCodes(sa.body)]).toBe(1)
        const sr = parsed("900400020087")
        expect(violation(sr, true, true)).toBe("")
        expect(sr.body[subackCodes(sr.body)]).toBe(0x87)
        expect(violation(parsed("e00793051f0002726d"), true, true)).toBe("")
        expect(violation(parsed("e000"), true, true)).toBe("")
    })
    test("MQTT 5 violations: property lengths, unknown or misplaced properties, reason codes", () => {
        // a property length past the packet
        expect(violation(parsed("200300000a"), false, true)).toBe("CONNACK: property length 10 past the end of the packet")
        expect(violation(parsed("3207000163000509aa"), true, true)).toBe("PUBLISH: property length 9 past the end of the packet")
        // an unknown property id (0x50) and one that is not allowed in a PUBLISH (0x23 Topic Alias: maximum 0)
        expect(violation(parsed("320a00016300050250aa01aa"), true, true)).toBe("PUBLISH: unknown property 0x50")
        expect(violation(parsed("320a000163000503230001aa"), true, true)).toBe("PUBLISH: property 0x23 not allowed here")
        // a string property whose length runs past its block; a non-minimal property length varint
        expect(violation(parsed("20060000031f0005"), false, true)).toBe("CONNACK: property 0x1f runs past its property block")
        // a property twice (Receive Maximum 3, then 512); two User Properties are allowed
        expect(violation(parsed("2009000006210003210200"), false, true)).toBe("CONNACK: property 0x21 twice")
        expect(violation(parsed("200e00000b2600016100002600000000"), false, true)).toBe("")
        expect(violation(parsed("200400008000"), false, true)).toBe("CONNACK: malformed property length")
        // bytes after the CONNACK's properties
        expect(violation(parsed("20040000000a"), false, true)).toBe("CONNACK: bytes after the properties")
        // a 3.1.1 CONNACK accepting a v5 CONNECT; reserved acknowledge flags
        expect(violation(parsed("20020000"), false, true)).toBe("a 3.1.1 CONNACK accepting an MQTT 5 CONNECT")
        expect(violation(parsed("2003020000"), false, true)).toBe("malformed CONNACK")
        // reason codes outside the lists; a DISCONNECT before CONNACK; in 3.1.1, any DISCONNECT
        expect(violation(parsed("400300090a"), true, true)).toBe("PUBACK reason code 10")
        expect(violation(parsed("900400020002"), true, true)).toBe("SUBACK return code 2")
        expect(violation(parsed("e00193"), false, true)).toBe("packet type 14 before CONNACK")
        expect(violation(parsed("e000"), true, false)).toBe("packet type 14 is sent by clients only")
        expect(violation(parsed("b00400020000"), true, true)).toBe("UNSUBACK without UNSUBSCRIBE")
        // MQTT 5 varints: shortest form only
        expect(readVarint(Buffer.from("8001", "hex"), 0, 2)).toBe(128)
        expect(readVarint(Buffer.from("8000", "hex"), 0, 2)).toBe(-1)
        expect(readVarint(Buffer.from("80", "hex"), 0, 1)).toBe(-1)
    })
})

/** A socket that records what the session writes (the session's write path, without a network). */
class RecordingSocket {
    writes: Buffer[] = []
    async send(b: Buffer) {
        this.writes.push(b)
    }
    async close() {}
}

function sessionOn(sock: RecordingSocket, refused: number[] = []): MqttSession {
    const opts: SessionOptions = {
        host: "h",
        port: 1,
        tls: true,
        clientId: "c",
        keepAlive: 30,
        rxBytes: 1024,
        maxPacket: 8192,
        rxCap: 8192,
        v5: true,
    }
    const s = new MqttSession(opts, {
        connected: async () => {},
        puback: (_pid: number) => {},
        message: async (_t: string, _p: Buffer, _l: number, _r: boolean) => {},
        subscribed: (_g: boolean) => {},
        refused: (pid: number) => {
            refused.push(pid)
        },
    })
    ;(s as any).sock = sock
    s.connected = true
    return s
}

describe("mqtt session writes", () => {
    test("a packet larger than the largest write goes out in pieces below it (ESP32 TLS: under 4096 B)", async () => {
        const sock = new RecordingSocket()
        const s = sessionOn(sock)
        const payload = Buffer.alloc(4500)
        // distinct bytes per 100-byte stretch: a piece sent twice or out of order shows
        for (let i = 0; i < 45; i++) payload.fillAt(i * 100, 100, i + 1)
        const pkt = encodePublish(Buffer.from("vgw/gw1/frames"), payload, 1, false, 3)
        const ring = Buffer.alloc(pkt.length + 100)
        ring.blitAt(50, pkt, 0, pkt.length)
        expect(await s.sendRange(ring, 50, pkt.length)).toBe(true)
        expect(sock.writes.length).toBe(2)
        let total = 0
        for (const w of sock.writes) {
            expect(w.length < 4096).toBe(true)
            expect(w.length <= MAX_WRITE).toBe(true)
            // sampled (the VM's heap holds no hex copy of 4 KB): every 50th byte and the last
            for (let i = 0; i < w.length; i += 50) expect(w[i]).toBe(pkt[total + i])
            expect(w[w.length - 1]).toBe(pkt[total + w.length - 1])
            total += w.length
        }
        expect(total).toBe(pkt.length)
        // a small packet: one write
        expect(await s.send(encodePublish(Buffer.from("t"), Buffer.alloc(10), 1, false, 4))).toBe(true)
        expect(sock.writes.length).toBe(3)
    })
    test("MQTT 5: outbox packets in MQTT 5 form, the broker's Maximum Packet Size, Receive Maximum and Retain Available", async () => {
        const sock = new RecordingSocket()
        const refused: number[] = []
        const s = sessionOn(sock, refused)
        s.v5 = true
        s.level = 5
        // CONNACK {receiveMaximum 3, maximumPacketSize 100, retainAvailable 0}
        await (s as any).dispatch(parsed("200d00000a21000327000000642500"))
        const ring = Buffer.alloc(400)
        const small = encodePublish(Buffer.from("t"), Buffer.alloc(20), 1, false, 11)
        const large = encodePublish(Buffer.from("t"), Buffer.alloc(95), 1, false, 12)
        ring.blitAt(0, small, 0, small.length)
        ring.blitAt(100, large, 0, large.length)
        expect(await s.sendRange(ring, 0, small.length)).toBe(true)
        expect(sock.writes[0].toString("hex")).toBe(encodePublish(Buffer.from("t"), Buffer.alloc(20), 1, false, 11, true).toString("hex"))
        // 103 bytes in MQTT 5 form: over the broker's 100, not sent, handed back as refused, counted
        expect(await s.sendRange(ring, 100, large.length)).toBe(true)
        expect(sock.writes.length).toBe(1)
        expect(refused.length).toBe(1)
        expect(refused[0]).toBe(12)
        expect(s.oversize).toBe(1)
        // Receive Maximum 3: one outbox packet in flight (3 less the 2 kept for status and results), then a status
        // and a result; the next QoS 1 PUBLISH is refused until a PUBACK comes
        const st = encodePublish(Buffer.from("s"), Buffer.alloc(4), 1, true, 13, true)
        expect(await s.send(st)).toBe(true)
        // Retain Available 0: the RETAIN flag is cleared
        expect(sock.writes[1][0]).toBe(0x32)
        expect(await s.send(encodePublish(Buffer.from("r"), Buffer.alloc(4), 1, false, 14, true))).toBe(true)
        expect(await s.send(encodePublish(Buffer.from("r"), Buffer.alloc(4), 1, false, 15, true))).toBe(false)
        // QoS 0 packets (PUBACK, PINGREQ) are not held
        expect(await s.send(encodePuback(1))).toBe(true)
        await (s as any).dispatch(parsed("4002000b"))
        expect(await s.send(encodePublish(Buffer.from("r"), Buffer.alloc(4), 1, false, 15, true))).toBe(true)
        // a PUBACK with a failure reason code hands the packet back as refused
        await (s as any).dispatch(parsed("4003000e97"))
        expect(refused.length).toBe(2)
        expect(refused[1]).toBe(14)
    })
})
