import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { TxAllowlist } from "../src/allowlist"
import { CborWriter } from "../src/cbor"
import { CommandHandler, CommandTarget } from "../src/commands"
import {
    CONNACK,
    connackProperties,
    encodePublish,
    MqttParser,
    parsePublish,
    PUBLISH,
    SUBACK,
    subackCodes,
    violation,
} from "../src/mqtt/packets"

/**
 * The receive path under fuzz, as the session runs it: mutated MQTT packets (every packet type a broker may send,
 * with flipped bits, random bytes, cuts and junk) and mutated CBOR commands, in random chunks, through the parser,
 * the protocol check and the command handler of a gateway in normal mode with an allowlist. Nothing may throw;
 * every transmitted frame must be one the allowlist admits (checked here independently of allowlist.ts); every
 * refusal and every closed connection carries a reason.
 */

const BOOT = 0x5eed1234
const CASES = 10000
const REASONS = ["malformed", "too-large", "bad-op", "bad-field", "stale-boot", "expired", "exp-too-far", "not-allowed", "no-fd", "duplicate", "rate-limited", "unbound", "failed"]

/** xorshift32: the same stream on every run, so a failure replays. */
function rng(seed: number) {
    let x = seed
    return () => {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        return (x >>> 0) / 4294967296
    }
}

class Target implements CommandTarget {
    bootId = BOOT
    clock = 1000
    txRate = 1000
    txExpMax = 30000
    readonly allow = new TxAllowlist()
    sent: Buffer[] = []
    constructor() {
        // standard 0x123 data frames, and extended 0x18FEF100..0x18FEF1FF data or FD frames
        this.allow.set([
            [0x123, 0x7ff],
            [0x98fef100, 0x9fffff00, 0x04],
        ])
    }
    now() {
        return this.clock
    }
    normalMode() {
        return true
    }
    bound() {
        return true
    }
    allowed(key: number, flags: number) {
        return this.allow.refusal(key, flags)
    }
    fdCapable() {
        return true
    }
    async transmit(record: Buffer) {
        this.sent.push(record)
    }
    setFilters(_p: number[][]) {}
    setRules(_r: number[][]) {}
    requestStatus() {}
}

/** The allowlist above, written out: what may reach the bus. */
function admitted(rec: Buffer): boolean {
    const id = rec.getAt(0, "u32")
    const flags = rec[4]
    if (flags === 0 && id === 0x123) return true
    return (flags === 0x01 || flags === 0x05) && id >= 0x18fef100 && id <= 0x18fef1ff
}

const RECORDS = ["230100000004deadbeef", "230100000200", "2301000004080102030405060708", "00f1fe18010101", "00f1fe18050101", "00f1fe180d0101", "23d1bc1a0104deadbeef", "2401000000"]

function command(r: () => number, id: number, clock: number): Buffer {
    const w = new CborWriter(Buffer.alloc(200))
    w.map(5)
    w.text("op")
    w.text(r() < 0.9 ? "tx" : "status")
    w.text("id")
    w.int(id)
    w.text("boot")
    w.int(r() < 0.95 ? BOOT : BOOT + 1)
    w.text("exp")
    w.int(clock + Math.floor(r() * 40000))
    w.text("f")
    const rec = Buffer.from(RECORDS[Math.floor(r() * RECORDS.length)], "hex")
    w.bytes(rec, 0, rec.length)
    return w.result()
}

function mutate(r: () => number, b: Buffer, from: number): Buffer {
    const out = b.slice(0, b.length)
    const n = Math.floor(r() * 4)
    for (let i = 0; i < n; i++) {
        const at = from + Math.floor(r() * (out.length - from))
        if (r() < 0.5) out[at] = out[at] ^ (1 << Math.floor(r() * 8))
        else out[at] = Math.floor(r() * 256)
    }
    return out
}

const TOPIC = Buffer.from("vgw/gw1/cmd")

/** One packet as a broker might send it, or as a hostile one does. */
function brokerPacket(r: () => number, i: number, clock: number): Buffer {
    const k = i % 8
    if (k <= 3) {
        // a command PUBLISH: mutated in the CBOR (k 0, 1), in the MQTT header (k 2), or as sent (k 3)
        const cmd = command(r, i, clock)
        const pl = k <= 1 ? mutate(r, cmd, 0) : cmd
        const qos = r() < 0.8 ? 1 : 0
        const pkt = encodePublish(TOPIC, pl, qos, false, (i % 65535) + 1)
        return k === 2 ? mutate(r, pkt, 0) : pkt
    }
    if (k === 4) return mutate(r, Buffer.from("90030001" + (r() < 0.5 ? "01" : "80"), "hex"), 0)
    if (k === 5) return mutate(r, Buffer.from("40020001", "hex"), 0)
    if (k === 6) return mutate(r, Buffer.from("d000", "hex"), 0)
    // random bytes
    const b = Buffer.alloc(1 + Math.floor(r() * 24))
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256)
    return b
}

/** Every CONNACK property value the session reads starts inside the packet. */
function connackValuesInside(body: Buffer): boolean {
    let inside = true
    connackProperties(body, (_id: number, at: number) => {
        if (at >= body.length) inside = false
    })
    return inside
}

describe("fuzz", () => {
    test("10,000 mutated MQTT packets and CBOR commands: no throw, only allowed transmits, every refusal with a reason", async () => {
        const r = rng(0x1badf00d)
        const t = new Target()
        const h = new CommandHandler(t)
        const parser = new MqttParser(1024, 8192)
        let packets = 0
        let closed = 0
        let results = 0
        let ok = 0
        for (let i = 0; i < CASES; i++) {
            t.clock += 7
            const bytes = brokerPacket(r, i, t.clock)
            let off = 0
            while (off < bytes.length) {
                off += parser.feed(bytes, off, bytes.length - off)
                if (parser.error) {
                    // the session drops the connection; a new one starts with a fresh parser
                    expect(parser.error.length > 0).toBe(true)
                    closed++
                    parser.reset()
                    break
                }
                const p = parser.next()
                if (!p) continue
                packets++
                const why = violation(p, true)
                if (why) {
                    closed++
                    parser.reset()
                    break
                }
                if (p.type !== PUBLISH) continue
                const pub = parsePublish(p.flags, p.body)
                if (pub.topic !== "vgw/gw1/cmd") continue
                const res = await h.handle(p.truncated ? Buffer.alloc(0) : p.body.slice(pub.payloadOffset), p.truncated)
                results++
                if (res.ok) ok++
                else {
                    if (REASONS.indexOf(res.r) < 0) console.log(`unknown reason ${res.r}: ${res.msg}`)
                    expect(REASONS.indexOf(res.r) >= 0).toBe(true)
                    expect(res.msg.length > 0).toBe(true)
                }
            }
            // a broken packet left half-parsed at the end of a case is a connection that ends too
            if (i % 8 === 7) parser.reset()
            if (i % 8 === 0) await ds.sleep(0)
        }
        for (const rec of t.sent) {
            if (!admitted(rec)) console.log(`transmitted outside the allowlist: ${rec.toString("hex")}`)
            expect(admitted(rec)).toBe(true)
        }
        console.log(`fuzz: ${CASES} cases, ${packets} packets, ${closed} connections closed, ${results} commands, ${ok} ok, ${t.sent.length} sent`)
        const reasons = Object.keys(h.counts)
        console.log(`refusals by reason: ${reasons.map((k) => k + " " + h.counts[k]).join(", ")}`)
        // the fuzz reaches every layer: protocol checks, decoding, and the transmit checks behind them
        expect(closed > 500).toBe(true)
        expect(ok > 100).toBe(true)
        expect(h.counts["not-allowed"] > 100).toBe(true)
        expect(h.counts["malformed"] > 100).toBe(true)
    })
    test("5,000 mutated MQTT 5 broker packets: the MQTT 5 check accepts only what parses, no throw", async () => {
        // made by mqtt-packet (mqtt.test.ts): CONNACK with properties, PUBLISH with properties, PUBACK 0x97 with a
        // reason string, SUBACK with a reason string, DISCONNECT 0x93 with a reason string
        const seeds = [
            "201300001022000a21001427000003e82500130007",
            "321400016300050d2600016b000176030001780101aa",
            "4008000997041f000171",
            "90090002051f00026f6b01",
            "e00793051f0002726d",
        ]
        const r = rng(0x5eed0005)
        const parser = new MqttParser(1024, 8192)
        let accepted = 0
        let closed = 0
        for (let i = 0; i < 5000; i++) {
            // the VM's opcode budget: renewed only by a sleep
            if (i % 8 === 0) await ds.sleep(0)
            const seed = Buffer.from(seeds[i % seeds.length], "hex")
            // the length byte is kept (the parser's framing has its own fuzz above): the mutations hit the properties
            const bytes = mutate(r, seed, 2)
            parser.reset()
            parser.feed(bytes, 0, bytes.length)
            const p = parser.next()
            if (!p) continue
            const why = violation(p, p.type !== CONNACK, true)
            if (why) {
                expect(why.length > 0).toBe(true)
                closed++
                continue
            }
            accepted++
            // what the session then reads must be inside the packet
            if (p.type === PUBLISH) expect(parsePublish(p.flags, p.body, true).payloadOffset <= p.body.length).toBe(true)
            if (p.type === SUBACK) expect(subackCodes(p.body) < p.body.length).toBe(true)
            if (p.type === CONNACK && p.length > 2) expect(connackValuesInside(p.body)).toBe(true)
        }
        console.log(`fuzz v5: 5000 packets, ${accepted} accepted, ${closed} closed`)
        expect(closed > 1000).toBe(true)
        expect(accepted > 500).toBe(true)
    })
})
