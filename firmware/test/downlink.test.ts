import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { CommandHandler, CommandTarget } from "../src/commands"
import { encodePuback, encodePublish, MqttParser, parsePublish, PUBLISH } from "../src/mqtt/packets"

/**
 * The downlink as the session runs it, without a socket: a stream of PUBLISH packets (random, mutated, truncated
 * and oversized command payloads, with PUBACKs between) cut into chunks of random sizes, parsed one packet at a
 * time and every command handed to the command handler. Every packet must come out whole and in order, however
 * the chunks fall: framing lost once (as zero bytes padded into the stream did) loses every command after it.
 */

const BOOT = 0x5eed1234
const RX_BYTES = 1024
const REASONS = ["malformed", "too-large", "bad-op", "bad-field", "stale-boot", "expired", "exp-too-far", "listen-only", "not-allowed", "no-fd", "duplicate", "rate-limited", "unbound", "failed"]

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

class ListenOnlyTarget implements CommandTarget {
    bootId = BOOT
    txRate = 10
    txExpMax = 30000
    transmitted = 0
    now() {
        return 1000
    }
    normalMode() {
        return false
    }
    bound() {
        return true
    }
    allowed(_key: number, _flags: number) {
        return ""
    }
    fdCapable() {
        return true
    }
    async transmit(_record: Buffer) {
        this.transmitted++
    }
    setFilters(_p: number[][]) {}
    setRules(_r: number[][]) {}
    requestStatus() {}
}

// {"op":"tx","id":1,"boot":BOOT,"exp":60000,"f":h'230100000004deadbeef'} with cbor-x's long map head
const VALID = Buffer.from(
    "b90005626f7062747862696401" + "64626f6f741a5eed1234" + "6365787019ea60" + "61664a230100000004deadbeef",
    "hex"
)

function payload(r: () => number, i: number): Buffer {
    const k = i % 5
    if (k === 0) {
        const b = Buffer.alloc(1 + Math.floor(r() * 40))
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256)
        return b
    }
    if (k === 1) {
        const b = Buffer.alloc(VALID.length)
        b.blitAt(0, VALID, 0, VALID.length)
        for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
            const at = Math.floor(r() * b.length)
            b[at] = b[at] ^ (1 << Math.floor(r() * 8))
        }
        return b
    }
    if (k === 2) return VALID.slice(0, Math.floor(r() * VALID.length))
    // valid with junk after it; k === 4 makes some packets larger than the receive buffer
    const b = Buffer.alloc(VALID.length + 1 + Math.floor(r() * (k === 3 ? 600 : 1500)))
    b.blitAt(0, VALID, 0, VALID.length)
    for (let j = VALID.length; j < b.length; j++) b[j] = Math.floor(r() * 256)
    return b
}

describe("downlink stream", () => {
    test("2,000 random commands in random chunks: every packet in order, every command one refusal", async () => {
        const r = rng(7)
        const topic = Buffer.from("vgw/gw1/cmd")
        const target = new ListenOnlyTarget()
        const handler = new CommandHandler(target)
        const parser = new MqttParser(RX_BYTES)
        const COUNT = 2000
        let sent = 0
        let received = 0
        let pubacks = 0
        let truncated = 0
        let refused = 0
        // the stream is made and fed in pieces, like a socket delivers it: never held whole
        while (sent < COUNT) {
            const pl = payload(r, sent)
            const pkt = encodePublish(topic, pl, 1, false, (sent % 65535) + 1)
            sent++
            // a PUBACK after some commands, as the broker's acknowledgements of results interleave
            const ack = sent % 3 === 0 ? encodePuback(sent & 0xffff) : null
            const chunk = Buffer.alloc(pkt.length + (ack ? ack.length : 0))
            chunk.blitAt(0, pkt, 0, pkt.length)
            if (ack) chunk.blitAt(pkt.length, ack, 0, ack.length)
            // cut into 1..700-byte pieces
            let off = 0
            while (off < chunk.length) {
                const n = Math.min(chunk.length - off, 1 + Math.floor(r() * 700))
                let p = off
                while (p < off + n) {
                    p += parser.feed(chunk, p, off + n - p)
                    expect(parser.error).toBe("")
                    const got = parser.next()
                    if (!got) continue
                    if (got.type !== PUBLISH) {
                        expect(got.type).toBe(4)
                        pubacks++
                        continue
                    }
                    const pub = parsePublish(got.flags, got.body)
                    expect(pub.topic).toBe("vgw/gw1/cmd")
                    expect(pub.packetId).toBe((received % 65535) + 1)
                    received++
                    if (got.truncated) truncated++
                    const res = await handler.handle(got.truncated ? Buffer.alloc(0) : got.body.slice(pub.payloadOffset), got.truncated)
                    expect(res.ok).toBe(false)
                    expect(REASONS.indexOf(res.r) >= 0).toBe(true)
                    refused++
                    // the VM's opcode budget: a sleep renews it
                    await ds.sleep(0)
                }
                off += n
            }
        }
        expect(received).toBe(COUNT)
        expect(refused).toBe(COUNT)
        expect(pubacks).toBe(Math.floor(COUNT / 3))
        expect(truncated > 0).toBe(true)
        expect(target.transmitted).toBe(0)
        // mutated valid commands reach the checks behind decoding, not only the decoder
        const reasons = Object.keys(handler.counts)
        expect(reasons.length >= 4).toBe(true)
        console.log(`refusals by reason: ${reasons.map((k) => k + " " + handler.counts[k]).join(", ")}`)
    })
})
