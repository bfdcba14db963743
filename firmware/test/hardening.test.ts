import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { TxAllowlist } from "../src/allowlist"
import { CborWriter, decodeCbor } from "../src/cbor"
import { CommandHandler, CommandTarget, RECENT_IDS } from "../src/commands"
import { checkConfig, TLS_BATCH_BYTES } from "../src/config"
import { Gateway } from "../src/gateway"
import { encodePublish, MqttPacket, MqttParser, violation } from "../src/mqtt/packets"

/**
 * The defences of docs/firmware.md "Threat model", one by one: each test fails on a gateway without that defence.
 */

const BOOT = 0x5eed1234
const TWO32 = 4294967296

class Target implements CommandTarget {
    bootId = BOOT
    clock = 1000
    txRate = 100
    txExpMax = 30000
    fd = false
    readonly allow = new TxAllowlist()
    sent: string[] = []
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
        return this.fd
    }
    async transmit(record: Buffer) {
        this.sent.push(record.toString("hex"))
    }
    setFilters(_p: number[][]) {}
    setRules(_r: number[][]) {}
    requestStatus() {}
}

/** `{op:"tx", [id], boot, exp, f}` as a definite-length CBOR map. */
function tx(id: any, exp: number, recordHex: string, boot = BOOT): Buffer {
    const w = new CborWriter(Buffer.alloc(160))
    w.map(id === undefined ? 4 : 5)
    w.text("op")
    w.text("tx")
    if (id !== undefined) {
        w.text("id")
        if (typeof id === "string") w.text(id)
        else w.int(id)
    }
    w.text("boot")
    w.int(boot)
    w.text("exp")
    w.int(exp)
    w.text("f")
    const r = Buffer.from(recordHex, "hex")
    w.bytes(r, 0, r.length)
    return w.result()
}

/** Handles one command, then renews the VM's opcode budget (a sleep does; an await that does not suspend does not). */
async function run(h: CommandHandler, payload: Buffer, truncated: boolean) {
    const r = await h.handle(payload, truncated)
    await ds.sleep(0)
    return r
}

const STD_123 = "230100000004deadbeef"
/** Extended 0x1ABCD123: its low 11 bits are 0x123. */
const EXT_123 = "23d1bc1a0104deadbeef"
const RTR_123 = "230100000204"
const FD_123 = "230100000408" + "0102030405060708"
const FD_BRS_123 = "23010000" + "0c08" + "0102030405060708"

function packet(type: number, flags: number, bodyHex: string): MqttPacket {
    const body = Buffer.from(bodyHex, "hex")
    return { type, flags, body, length: body.length, truncated: false }
}

describe("unintended transmit", () => {
    test("tx needs an id; an id runs once per boot; the table of ids is bounded and frees expired ids", async () => {
        const t = new Target()
        t.txRate = 1000
        t.allow.set([[0x123, 0x7ff]])
        const h = new CommandHandler(t)
        const noId = await run(h, tx(undefined, 5000, STD_123), false)
        expect(noId.r).toBe("bad-field")
        expect(noId.msg).toBe("id is required for tx")
        expect((await run(h, tx(1, 5000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(1, 5000, STD_123), false)).r).toBe("duplicate")
        expect((await run(h, tx("a", 5000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx("a", 5000, STD_123), false)).r).toBe("duplicate")
        expect(t.sent.length).toBe(2)
        // fill the table with live ids: the next tx is refused, not run with a forgotten id
        for (let i = 2; i < RECENT_IDS; i++) {
            expect((await run(h, tx(i, 5000 + i, STD_123), false)).r).toBe("ok")
            await ds.sleep(0) // the VM's opcode budget
        }
        const full = await run(h, tx(9999, 5000, STD_123), false)
        expect(full.r).toBe("rate-limited")
        // once the first ids expired their places are reused, and their replays are refused as expired
        t.clock = 5003
        expect((await run(h, tx(10000, 6000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(1, 5000, STD_123), false)).r).toBe("expired")
    })
    test("exp may lie at most txExpMax ahead", async () => {
        const t = new Target()
        t.allow.set([[0x123, 0x7ff]])
        const h = new CommandHandler(t)
        expect((await run(h, tx(1, 1000 + 30001, STD_123), false)).r).toBe("exp-too-far")
        expect((await run(h, tx(2, 1000 + 30000, STD_123), false)).r).toBe("ok")
        t.txExpMax = 100
        expect((await run(h, tx(3, 1000 + 101, STD_123), false)).r).toBe("exp-too-far")
    })
    test("uptime past 2^32 (injected clock): exp compared modulo 2^32", async () => {
        const t = new Target()
        t.allow.set([[0x123, 0x7ff]])
        const h = new CommandHandler(t)
        // 49.7 days + 5 s: uptime32 is 5000
        t.clock = TWO32 + 5000
        expect((await run(h, tx(1, 9000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(2, 4000, STD_123), false)).r).toBe("expired")
        // just before the wrap, an exp just after it is 2 s ahead, not 49 days behind
        t.clock = TWO32 - 1000
        expect((await run(h, tx(3, 1000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(4, TWO32 - 2000, STD_123), false)).r).toBe("expired")
        expect(t.sent.length).toBe(2)
    })
    test("allowlist: a standard mask never admits an extended id; frame kinds must be named", async () => {
        const t = new Target()
        t.allow.set([[0x123, 0x7ff]])
        const h = new CommandHandler(t)
        const ext = await run(h, tx(1, 5000, EXT_123), false)
        expect(ext.r).toBe("not-allowed")
        expect((await run(h, tx(2, 5000, RTR_123), false)).r).toBe("not-allowed")
        t.fd = true
        expect((await run(h, tx(3, 5000, FD_123), false)).r).toBe("not-allowed")
        expect(t.sent.length).toBe(0)
        t.allow.set([[0x123, 0x7ff, 0x02 | 0x04]])
        expect((await run(h, tx(4, 5000, RTR_123), false)).r).toBe("ok")
        expect((await run(h, tx(5, 5000, FD_123), false)).r).toBe("ok")
        // BRS is a kind of its own
        expect((await run(h, tx(6, 5000, FD_BRS_123), false)).r).toBe("not-allowed")
        // an extended entry does not admit the standard id with the same low bits
        t.allow.set([[0x80000123, 0x800007ff]])
        expect((await run(h, tx(7, 5000, STD_123), false)).r).toBe("not-allowed")
        expect((await run(h, tx(8, 5000, EXT_123), false)).r).toBe("ok")
        expect(t.sent.length).toBe(3)
    })
    test("FD is refused where the controller has none", async () => {
        const t = new Target()
        t.allow.set([[0x123, 0x7ff, 0x0c]])
        const h = new CommandHandler(t)
        const r = await run(h, tx(1, 5000, FD_BRS_123), false)
        expect(r.r).toBe("no-fd")
        t.fd = true
        expect((await run(h, tx(2, 5000, FD_BRS_123), false)).r).toBe("ok")
    })
    test("the rate limit is a token bucket: txRate at once, then txRate per second", async () => {
        const t = new Target()
        t.allow.set([[0x123, 0x7ff]])
        t.txRate = 10
        const h = new CommandHandler(t)
        let id = 1
        for (let i = 0; i < 10; i++) expect((await run(h, tx(id++, 5000, STD_123), false)).r).toBe("ok")
        await ds.sleep(0)
        expect((await run(h, tx(id++, 5000, STD_123), false)).r).toBe("rate-limited")
        t.clock += 100 // one token back
        expect((await run(h, tx(id++, 5000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(id++, 5000, STD_123), false)).r).toBe("rate-limited")
        t.clock += 60000 // never more than txRate saved up
        await ds.sleep(0)
        for (let i = 0; i < 10; i++) expect((await run(h, tx(id++, 65000, STD_123), false)).r).toBe("ok")
        expect((await run(h, tx(id++, 65000, STD_123), false)).r).toBe("rate-limited")
    })
})

describe("MQTT violations", () => {
    test("every violation is named; valid packets pass", () => {
        const pub = (flags: number, topic: string) => {
            const pkt = encodePublish(Buffer.from(topic), Buffer.from("x"), (flags >> 1) & 3, !!(flags & 1), 7)
            // re-read the packet as the parser hands it out
            const parser = new MqttParser(256)
            parser.feed(pkt, 0, pkt.length)
            const p = parser.next()
            p.flags = flags
            return p
        }
        expect(violation(packet(3, 2, "0001610007"), false)).toBe("packet type 3 before CONNACK")
        expect(violation(packet(2, 0, "0000"), false)).toBe("")
        expect(violation(packet(2, 0, "0000"), true)).toBe("a second CONNACK")
        expect(violation(pub(2, "vgw/gw1/cmd"), true)).toBe("")
        expect(violation(pub(6, "vgw/gw1/cmd"), true)).toBe("PUBLISH with QoS 3")
        expect(violation(pub(4, "vgw/gw1/cmd"), true)).toBe("PUBLISH with QoS 2 (subscribed with QoS 1)")
        expect(violation(pub(8, "vgw/gw1/cmd"), true)).toBe("DUP set on a QoS 0 PUBLISH")
        expect(violation(pub(2, ""), true)).toBe("PUBLISH with a zero-length topic")
        expect(violation(pub(2, "vgw/+/cmd"), true)).toBe("wildcard in a PUBLISH topic")
        expect(violation(packet(3, 2, "000161"), true)).toBe("malformed PUBLISH")
        expect(violation(packet(5, 0, "0007"), true)).toBe("packet type 5 without a QoS 2 PUBLISH")
        expect(violation(packet(9, 0, "000100"), true)).toBe("")
        expect(violation(packet(9, 0, "000180"), true)).toBe("")
        expect(violation(packet(9, 0, "000103"), true)).toBe("SUBACK return code 3")
        expect(violation(packet(1, 0, ""), true)).toBe("packet type 1 is sent by clients only")
        expect(violation(packet(15, 0, ""), true)).toBe("reserved packet type 15")
        expect(violation(packet(13, 0, ""), true)).toBe("")
    })
    test("a remaining length over the maximum ends the stream at once; 5 length bytes too", () => {
        const p = new MqttParser(64, 8192)
        // PUBLISH announcing 268,435,455 bytes, then nothing
        const huge = Buffer.from("30ffffff7f", "hex")
        expect(p.feed(huge, 0, huge.length)).toBe(5)
        expect(p.error).toBe("packet of 268435455 bytes exceeds the maximum of 8192")
        expect(p.oversize).toBe(true)
        p.reset()
        const five = Buffer.from("30ffffffff01", "hex")
        p.feed(five, 0, five.length)
        expect(p.error).toBe("malformed remaining length")
        expect(p.oversize).toBe(false)
    })
})

function gateway(settings: any): Gateway {
    const { config } = checkConfig(settings)
    return new Gateway(config, null, 0x1234)
}

describe("wrap and retained", () => {
    test("status after 2^32 ms and with counters past 2^32: still written, values modulo 2^32", () => {
        const gw = gateway({})
        gw.clockOffset = TWO32 - ds.millis() + 777
        gw.counters.rx = TWO32 + 5
        gw.counters.dropCmd = TWO32 * 2 + 1
        const w = new CborWriter(Buffer.alloc(512))
        gw.writeStatus(w, true)
        expect(w.overflow).toBe(false)
        const s = decodeCbor(w.result())
        expect(s.up >= 777 && s.up < 5000).toBe(true)
        expect(s.rx).toBe(5)
        expect(s.drop.cmd).toBe(1)
        expect(s.sub).toBe("pending")
    })
    test("a retained command is refused with a reason and runs nothing", async () => {
        const gw = gateway({ canMode: "normal", insecure: true, txAllow: [[0x123, 0x7ff]] })
        gw.bound = true
        const before = gw.commands.transmitted
        // no session: the result cannot be published and is counted in drop.cmd, the refusal in the handler's counts
        await gw.onMessage("vgw/gw1/cmd", tx(1, 5000, STD_123), 30, true)
        expect(gw.commands.counts["retained"]).toBe(1)
        expect(gw.commands.transmitted).toBe(before)
        expect(gw.counters.dropCmd).toBe(1)
    })
})

describe("fail-closed settings", () => {
    test("bad broker settings are fatal; keepAlive 0 refused; normal mode needs TLS or insecure; TLS batches stay below 4 KB", () => {
        let r = checkConfig({ mqttTls: "yes" })
        expect(r.fatal.length).toBe(1)
        expect(r.fatal[0].indexOf("mqttTls") >= 0).toBe(true)
        let long = ""
        for (let i = 0; i < 65; i++) long = long + "x"
        r = checkConfig({ mqttPass: long })
        expect(r.fatal.length).toBe(1)
        expect(r.fatal[0].indexOf(long)).toBe(-1)
        expect(checkConfig({ mqttPass: 42 }).fatal.length).toBe(1)
        r = checkConfig({ keepAlive: 0 })
        expect(r.errors.length).toBe(1)
        expect(r.config.keepAlive).toBe(30)
        expect(checkConfig({ keepAlive: 4 }).errors.length).toBe(1)
        expect(checkConfig({ keepAlive: 5 }).errors.length).toBe(0)
        r = checkConfig({ canMode: "normal" })
        expect(r.config.canMode).toBe("listen")
        expect(r.errors.length).toBe(1)
        expect(checkConfig({ canMode: "normal", mqttTls: true }).config.canMode).toBe("normal")
        expect(checkConfig({ canMode: "normal", insecure: true }).config.canMode).toBe("normal")
        r = checkConfig({ mqttTls: true, batchBytes: 8192, outboxBytes: 16384 })
        expect(r.config.batchBytes).toBe(TLS_BATCH_BYTES)
        expect(checkConfig({ txAllow: [[0x123, 0x7ff, 0x10]] }).errors.length).toBe(1)
        expect(checkConfig({ txAllow: [[0x123, 0x7ff, 0x0e]] }).errors.length).toBe(0)
        expect(checkConfig({ txExpMax: 10 }).errors.length).toBe(1)
    })
})
