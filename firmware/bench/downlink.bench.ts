/**
 * VM benchmark of the command downlink: MQTT PUBLISH packets on the command topic, in 1,460-byte chunks (one TCP
 * segment), through MqttParser.feed/next and CommandHandler.handle, as the session runs them (a sleep after every
 * command). Prints packets/s for the parser alone and commands/s for parse + decode + checks + result map.
 * Run: npx devs run bench/downlink.bench.ts --test --test-self-exit -T 120000
 */
import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"
import { CborWriter } from "../src/cbor"
import { CommandHandler, writeResult } from "../src/commands"
import { encodePublish, MqttParser, parsePublish } from "../src/mqtt/packets"

const SEGMENT = 1460
// {"op":"tx","id":1,"boot":0x5eed1234,"exp":60000,"f":h'230100000004deadbeef'} as cbor-x writes it
const TX = Buffer.from("b90005626f7062747862696401" + "64626f6f741a5eed1234" + "6365787019ea60" + "61664a230100000004deadbeef", "hex")

/** `n` command packets, packed into segments (a packet may span two). */
async function stream(n: number): Promise<Buffer[]> {
    const topic = Buffer.from("vgw/gw1/cmd")
    const segs: Buffer[] = []
    let seg = Buffer.alloc(SEGMENT)
    let pos = 0
    for (let i = 0; i < n; i++) {
        const pkt = encodePublish(topic, TX, 1, false, (i % 65535) + 1)
        let p = 0
        while (p < pkt.length) {
            const k = Math.min(pkt.length - p, SEGMENT - pos)
            seg.blitAt(pos, pkt, p, k)
            pos += k
            p += k
            if (pos === SEGMENT) {
                segs.push(seg)
                seg = Buffer.alloc(SEGMENT)
                pos = 0
            }
        }
        if (i % 16 === 0) await ds.sleep(0)
    }
    if (pos > 0) segs.push(seg.slice(0, pos))
    return segs
}

const target = {
    bootId: 0x5eed1234,
    txRate: 10,
    now: () => 1000,
    normalMode: () => false,
    bound: () => true,
    allowed: (_k: number) => true,
    transmit: async (_r: Buffer) => {},
    setFilters: (_p: number[][]) => {},
    setRules: (_r: number[][]) => {},
    requestStatus: () => {},
}

describe("downlink benchmark", () => {
    test("parser and command handler", async () => {
        // 200 commands (14 KB) held at once, run 5 times: the VM heap has no room for a longer stream
        const N = 200
        const ROUNDS = 5
        const segs = await stream(N)
        const parser = new MqttParser(1024)
        let got = 0
        let t0 = ds.millis()
        for (let round = 0; round < ROUNDS; round++) {
            for (const s of segs) {
                let off = 0
                while (off < s.length) {
                    off += parser.feed(s, off, s.length - off)
                    if (parser.next()) got++
                }
                await ds.sleep(0)
            }
        }
        let ms = ds.millis() - t0
        console.log(`parser: ${got} packets in ${ms} ms = ${Math.round((got * 1000) / ms)} packets/s`)
        const handler = new CommandHandler(target)
        const w = new CborWriter(Buffer.alloc(512))
        got = 0
        t0 = ds.millis()
        for (let round = 0; round < ROUNDS; round++) {
            for (const s of segs) {
                let off = 0
                while (off < s.length) {
                    off += parser.feed(s, off, s.length - off)
                    const p = parser.next()
                    if (!p) continue
                    const pub = parsePublish(p.flags, p.body)
                    const res = await handler.handle(p.body.slice(pub.payloadOffset), p.truncated)
                    w.reset()
                    writeResult(w, res)
                    got++
                    await ds.sleep(0)
                }
            }
        }
        ms = ds.millis() - t0
        console.log(`parse + command + result map: ${got} commands in ${ms} ms = ${Math.round((got * 1000) / ms)} commands/s`)
    })
})
