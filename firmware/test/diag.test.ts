import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { CborWriter, decodeCbor } from "../src/cbor"
import { CommandHandler, CommandTarget } from "../src/commands"
import { DIAG_DEFAULTS, DiagClient, DiagConfig, DiagTarget, ID_WINDOW } from "../src/diag"

const BOOT = 0x5eed1234
const EXT = 0x80000000

/** A CanBus frames report body: one classic record per hex payload, on `key`. */
function report(key: number, payloads: string[]): Buffer {
    const parts: Buffer[] = []
    for (const p of payloads) {
        const d = Buffer.from(p, "hex")
        const r = Buffer.alloc(6 + d.length)
        r.setAt(0, "u32", key >= EXT ? key - EXT : key)
        r[4] = key >= EXT ? 1 : 0
        r[5] = d.length
        r.blitAt(6, d, 0, d.length)
        parts.push(r)
    }
    return Buffer.concat(...parts)
}

/**
 * A simulated ECU behind the client: answers each request single frame through `respond`, segmented as ISO-TP
 * does (consecutive frames only after the flow control), straight into the client's tap.
 */
class Bench implements DiagTarget {
    bootId = BOOT
    offset = 0
    normal = true
    isBound = true
    sent: string[] = []
    published: Buffer[] = []
    client: DiagClient = null
    resKey = 0x7e8
    pending: string[] = []
    /** Request hex -> response hex, or a function for special answers; absent: silence. */
    respond: (req: string) => string[] = null
    private cfs: string[] = []
    now() {
        return ds.millis() + this.offset
    }
    normalMode() {
        return this.normal
    }
    bound() {
        return this.isBound
    }
    async publish(p: Buffer) {
        this.published.push(p)
        return true
    }
    async transmit(rec: Buffer) {
        const hex = rec.toString("hex")
        this.sent.push(hex)
        const data = rec.slice(6, 6 + rec[5])
        if (data[0] === 0x30) {
            const cfs = this.cfs
            this.cfs = []
            this.client.tap(report(this.resKey, cfs), 0)
            return
        }
        if (!this.respond) return
        const frames = this.respond(data.slice(1, 1 + data[0]).toString("hex"))
        if (!frames || !frames.length) return
        this.client.tap(report(this.resKey, [frames[0]]), 0)
        this.cfs = frames.slice(1)
    }
}

/** ISO-TP frames of a response (hex): a single frame, or a first frame and its consecutive frames. */
function segment(hex: string): string[] {
    const d = Buffer.from(hex, "hex")
    if (d.length <= 7) return [Buffer.concat(Buffer.from([d.length]), d).toString("hex")]
    const out: string[] = []
    const ff = Buffer.alloc(8)
    ff[0] = 0x10 | (d.length >> 8)
    ff[1] = d.length & 0xff
    ff.blitAt(2, d, 0, 6)
    out.push(ff.toString("hex"))
    let sn = 1
    for (let i = 6; i < d.length; i += 7) {
        const cf = Buffer.alloc(8)
        for (let j = 0; j < 8; j++) cf[j] = 0xaa
        cf[0] = 0x20 | sn
        cf.blitAt(1, d, i, Math.min(7, d.length - i))
        out.push(cf.toString("hex"))
        sn = (sn + 1) & 15
    }
    return out
}

function config(extra: any = {}): DiagConfig {
    const c: any = {}
    for (const k of Object.keys(DIAG_DEFAULTS)) c[k] = (DIAG_DEFAULTS as any)[k]
    c.diagAllow = [
        [0x7df, 0x7e8, 0x7e0],
        [0x7e0, 0x7e8],
        [0x98da10f1 + 0, 0x98daf110],
    ]
    c.diagRate = 100
    for (const k of Object.keys(extra)) c[k] = extra[k]
    return c as DiagConfig
}

function bench(extra: any = {}): Bench {
    const b = new Bench()
    b.client = new DiagClient(config(extra), b)
    b.respond = (req: string) => {
        if (req === "010c") return segment("410c1af8")
        if (req === "0902") return segment("490201" + Buffer.from("1HGCM82633A004352").toString("hex"))
        if (req === "22f190") return segment("7f2231")
        return null
    }
    return b
}

const VIN = "4902013148474" + "34d383236333341303034333532"

describe("diag: one request, one response", () => {
    test("a single-frame answer: the request is padded to 8 bytes, the response returned", async () => {
        const b = bench()
        const x = await b.client.command(1, 0x7df, 0x7e8, Buffer.from("010c", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe("410c1af8")
        expect(b.sent.join(",")).toBe("df07000000080201" + "0ccccccccccc")
        expect(b.client.counts.req).toBe(1)
        expect(b.client.counts.ok).toBe(1)
    })
    test("a multi-frame answer: flow control to the pair's fc id, consecutive frames reassembled", async () => {
        const b = bench()
        const x = await b.client.command(1, 0x7df, 0x7e8, Buffer.from("0902", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe(VIN)
        expect(b.sent.length).toBe(2)
        expect(b.sent[1]).toBe("e0070000" + "0008" + "300000cccccccccc")
    })
    test("29-bit normal addressing", async () => {
        const b = bench()
        b.resKey = 0x98daf110
        const x = await b.client.command(1, 0x98da10f1, 0x98daf110, Buffer.from("0902", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe(VIN)
        // the request: id 0x18DA10F1, flags EXT
        expect(b.sent[0].slice(0, 12)).toBe("f110da180108")
        expect(b.sent[1].slice(0, 12)).toBe("f110da180108")
    })
    test("a negative response is passed through as data", async () => {
        const b = bench()
        const x = await b.client.command(1, 0x7e0, 0x7e8, Buffer.from("22f190", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe("7f2231")
        expect(b.client.counts.neg).toBe(1)
    })
    test("responsePending is waited out, then the answer", async () => {
        const b = bench()
        b.respond = (req: string) => {
            setTimeout(() => b.client.tap(report(0x7e8, ["04621234aa"]), 0), 1200)
            return ["037f2278"]
        }
        const x = await b.client.command(1, 0x7e0, 0x7e8, Buffer.from("221234", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe("621234aa")
    })
    test("named errors: timeout, wrong-sn, overflow", async () => {
        const b = bench()
        b.respond = null
        const t0 = ds.millis()
        expect((await b.client.command(1, 0x7df, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("timeout")
        expect(ds.millis() - t0 >= 900).toBe(true)
        b.respond = (req: string) => ["100a490201313233", "2234353637383930"]
        expect((await b.client.command(2, 0x7df, 0x7e8, Buffer.from("0902", "hex"))).r).toBe("wrong-sn")
        b.respond = (req: string) => ["1200490201313233"]
        const o = await b.client.command(3, 0x7df, 0x7e8, Buffer.from("0902", "hex"))
        expect(o.r).toBe("overflow")
        // no flow control for a response that cannot fit
        expect(b.sent.length).toBe(4)
        expect(b.client.counts.err).toBe(3)
    })
    test("answers to another service and stray consecutive frames are not taken for the response", async () => {
        const b = bench()
        // delivered at once, before the answer: another PID, a stray consecutive frame, another service's refusal
        b.respond = (req: string) => {
            b.client.tap(report(0x7e8, ["03410d20", "2101020304050607", "037f2211", "04410c1af8"]), 0)
            return null
        }
        const x = await b.client.command(1, 0x7df, 0x7e8, Buffer.from("010c", "hex"))
        expect(x.r).toBe("ok")
        expect(x.data.toString("hex")).toBe("410c1af8")
    })
})

describe("diag: safety", () => {
    test("write, session, routine and clear are refused and never reach the bus unless diagSvc lists them", async () => {
        const b = bench()
        const reqs = ["2ef19001", "1003", "310100ff", "04", "14ffffff", "0800", "2701", "1101"]
        let id = 1
        for (const r of reqs) {
            const x = await b.client.command(id++, 0x7e0, 0x7e8, Buffer.from(r, "hex"))
            expect(x.r).toBe("not-allowed")
            expect(x.msg.indexOf("not allowed") > 0).toBe(true)
        }
        expect(b.sent.length).toBe(0)
        const open = bench({ diagSvc: [0x10, 0x2e] })
        expect((await open.client.command(1, 0x7e0, 0x7e8, Buffer.from("1003", "hex"))).r).toBe("timeout")
        expect((await open.client.command(2, 0x7e0, 0x7e8, Buffer.from("04", "hex"))).r).toBe("not-allowed")
        expect(open.sent.length).toBe(1)
    })
    test("address pairs, mode, binding and fields", async () => {
        const b = bench()
        expect((await b.client.command(1, 0x7e1, 0x7e9, Buffer.from("010c", "hex"))).r).toBe("not-allowed")
        // the pair is exact: the fc id of an entry is not a request id
        expect((await b.client.command(2, 0x7df, 0x7e9, Buffer.from("010c", "hex"))).r).toBe("not-allowed")
        expect((await b.client.command(3, 0x7df + EXT, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("not-allowed")
        expect((await b.client.command(4, 0x800, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("bad-field")
        expect((await b.client.command(5, 0x7df, 0x7e8, Buffer.from("0102030405060708", "hex"))).r).toBe("bad-field")
        expect((await b.client.command(6, 0x7df, 0x7e8, Buffer.alloc(0))).r).toBe("bad-field")
        expect((await b.client.command("x", 0x7df, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("bad-field")
        b.normal = false
        expect((await b.client.command(7, 0x7df, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("listen-only")
        b.normal = true
        b.isBound = false
        expect((await b.client.command(8, 0x7df, 0x7e8, Buffer.from("010c", "hex"))).r).toBe("unbound")
        expect(b.sent.length).toBe(0)
    })
    test("ids run once: increasing, or unseen within the window below the highest", async () => {
        const b = bench()
        const q = Buffer.from("010c", "hex")
        expect((await b.client.command(100, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await b.client.command(100, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        expect((await b.client.command(105, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await b.client.command(103, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await b.client.command(103, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        expect((await b.client.command(100, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        expect((await b.client.command(105 - ID_WINDOW, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        expect((await b.client.command(105 + ID_WINDOW, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await b.client.command(105, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        expect((await b.client.command(106, 0x7df, 0x7e8, q)).r).toBe("ok")
        // serial-number order: ids wrap past 2^32
        expect((await b.client.command(0xffffffff, 0x7df, 0x7e8, q)).r).toBe("duplicate")
        const w = bench()
        expect((await w.client.command(0xfffffffe, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await w.client.command(3, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await w.client.command(0xffffffff, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect((await w.client.command(0xfffffffe, 0x7df, 0x7e8, q)).r).toBe("duplicate")
    })
    test("the rate limit holds diagRate requests per second", async () => {
        const b = bench({ diagRate: 3 })
        const q = Buffer.from("010c", "hex")
        let ok = 0
        let limited = 0
        for (let i = 1; i <= 6; i++) {
            const r = (await b.client.command(i, 0x7df, 0x7e8, q)).r
            if (r === "ok") ok++
            if (r === "rate-limited") limited++
        }
        expect(ok).toBe(3)
        expect(limited).toBe(3)
        b.offset += 1000
        expect((await b.client.command(7, 0x7df, 0x7e8, q)).r).toBe("ok")
        expect(b.sent.length).toBe(4)
    })
})

/** The command handler in front of the client, as the gateway wires it. */
class Cmd implements CommandTarget {
    bootId = BOOT
    txRate = 10
    txExpMax = 30000
    diag: DiagClient
    constructor(readonly b: Bench) {
        this.diag = b.client
    }
    now() {
        return this.b.now()
    }
    normalMode() {
        return true
    }
    bound() {
        return true
    }
    allowed(_k: number, _f: number) {
        return "never"
    }
    fdCapable() {
        return false
    }
    async transmit(_r: Buffer) {
        throw new Error("tx must not be used")
    }
    setFilters(_p: number[][]) {}
    setRules(_r: number[][]) {}
    requestStatus() {}
}

function diagCommand(id: any, exp: number, req: number, res: number, hex: string): Buffer {
    const w = new CborWriter(Buffer.alloc(128))
    w.map(7)
    w.text("op")
    w.text("diag")
    w.text("id")
    if (typeof id === "string") w.text(id)
    else w.int(id)
    w.text("boot")
    w.int(BOOT)
    w.text("exp")
    w.int(exp)
    w.text("req")
    w.int(req)
    w.text("res")
    w.int(res)
    w.text("d")
    const d = Buffer.from(hex, "hex")
    w.bytes(d, 0, d.length)
    return w.result()
}

describe("diag: through the command handler", () => {
    test("a technician's request per second with a 20 s expiry for 10 minutes is never refused", async () => {
        const b = bench({ diagRate: 2 })
        const h = new CommandHandler(new Cmd(b))
        let id = 1000
        for (let s = 0; s < 600; s++) {
            b.offset += 1000
            const r = await h.handle(diagCommand(id++, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010c"), false)
            expect(r.r).toBe("ok")
            expect(r.d.toString("hex")).toBe("410c1af8")
            if (s % 5 === 0) await ds.sleep(1)
        }
        // and a replay of any of them still is refused, within and after their expiry
        const again = await h.handle(diagCommand(1500, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010c"), false)
        expect(again.r).toBe("duplicate")
        expect(b.client.counts.ok).toBe(600)
    })
    test("id, boot and exp are required; the result carries the response bytes", async () => {
        const b = bench()
        const h = new CommandHandler(new Cmd(b))
        // {"op":"diag","req":2015,"res":2024,"d":h'010c'}: no id
        const w = new CborWriter(Buffer.alloc(64))
        w.map(4)
        w.text("op")
        w.text("diag")
        w.text("req")
        w.int(0x7df)
        w.text("res")
        w.int(0x7e8)
        w.text("d")
        w.bytes(Buffer.from("010c", "hex"), 0, 2)
        expect((await h.handle(w.result(), false)).r).toBe("bad-field")
        expect((await h.handle(diagCommand(1, 10, 0x7df, 0x7e8, "010c"), false)).r).toBe("expired")
        expect((await h.handle(diagCommand("a", (b.now() + 5000) >>> 0, 0x7df, 0x7e8, "010c"), false)).r).toBe("bad-field")
        expect(b.sent.length).toBe(0)
    })
})

function statusCommand(): Buffer {
    const w = new CborWriter(Buffer.alloc(32))
    w.map(2)
    w.text("op")
    w.text("status")
    w.text("id")
    w.int(77)
    return w.result()
}

describe("diag: the exchange runs in its own fiber", () => {
    test("a slow ECU holds neither handle() nor other commands; a second diag meanwhile is busy", async () => {
        const b = bench()
        // the ECU says nothing until the test lets it answer (below)
        b.respond = (_req: string) => null as string[]
        const h = new CommandHandler(new Cmd(b))
        const late: any[] = []
        const later = async (r: any) => {
            late.push(r)
        }
        const first = await h.handle(diagCommand(1, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010c"), false, later)
        expect(first).toBe(null)
        // the caller is free at once: another command is answered while the ECU works
        const st = await h.handle(statusCommand(), false, later)
        expect(st.r).toBe("ok")
        const second = await h.handle(diagCommand(2, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010d"), false, later)
        expect(second.r).toBe("busy")
        expect(late.length).toBe(0)
        // the answer arrives; the exchange's fiber publishes it
        await ds.sleep(20)
        b.client.tap(report(0x7e8, segment("410c1af8")), 0)
        const until = ds.millis() + 3000
        while (!late.length && ds.millis() < until) await ds.sleep(10)
        expect(late.length).toBe(1)
        expect(late[0].r).toBe("ok")
        expect(late[0].id).toBe(1)
        expect(late[0].d.toString("hex")).toBe("410c1af8")
        expect(h.counts["ok"]).toBe(2)
        expect(h.counts["busy"]).toBe(1)
        expect(b.client.counts.busy).toBe(1)
        // the channel is free again: the next command runs
        b.respond = bench().respond
        const third = await h.handle(diagCommand(3, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010c"), false, later)
        expect(third).toBe(null)
        while (late.length < 2 && ds.millis() < until + 3000) await ds.sleep(10)
        expect(late[1].r).toBe("ok")
    })
    test("a refusal is returned at once, never deferred", async () => {
        const b = bench()
        const h = new CommandHandler(new Cmd(b))
        const later = async (_r: any) => {
            throw new Error("no result may come later")
        }
        const r = await h.handle(diagCommand(1, (b.now() + 20000) >>> 0, 0x7e1, 0x7e9, "010c"), false, later)
        expect(r.r).toBe("not-allowed")
        b.normal = false
        expect((await h.handle(diagCommand(2, (b.now() + 20000) >>> 0, 0x7df, 0x7e8, "010c"), false, later)).r).toBe("listen-only")
        expect(b.sent.length).toBe(0)
    })
})

/** An answer that delivers `b.pending` at once, whatever the request. */
function deliverPending(b: Bench) {
    return (_req: string) => {
        b.client.tap(report(0x7e8, b.pending), 0)
        return null as string[]
    }
}

/** 1..12 random frames of 0..8 bytes, every other set shaped like an ISO-TP answer to service 01. */
function randomFrames(i: number): string[] {
    const frames: string[] = []
    const n = 1 + Math.floor(Math.random() * 12)
    for (let k = 0; k < n; k++) {
        const f = Buffer.alloc(Math.floor(Math.random() * 9))
        for (let j = 0; j < f.length; j++) f[j] = Math.floor(Math.random() * 256)
        const shaped = i % 2 === 1
        if (shaped && f.length > 2) {
            if (k === 0) f[0] = 0x10 | (f[0] & 1)
            f[2] = 0x41
        }
        if (i % 3 === 0 && f.length > 1) f[1] = 0x41
        frames.push(f.toString("hex"))
    }
    return frames
}

describe("diag: hostile responses", () => {
    test("random frames on the response id: named outcomes, no throw, at most one flow control per request", async () => {
        const b = bench()
        const codes = ["ok", "timeout", "wrong-sn", "overflow", "bad-frame"]
        let id = 1
        for (let i = 0; i < 150; i++) {
            b.pending = randomFrames(i)
            b.respond = deliverPending(b)
            const before = b.sent.length
            b.offset += 10000
            const x = await b.client.command(id++, 0x7df, 0x7e8, Buffer.from("010c", "hex"))
            expect(codes.indexOf(x.r) >= 0).toBe(true)
            if (x.r === "ok") expect(x.data.length <= 256).toBe(true)
            expect(b.sent.length - before <= 2).toBe(true)
        }
    })
    test("a flood of first frames gets one flow control, then the exchange ends as bad-frame", async () => {
        const b = bench()
        b.respond = (req: string) => {
            const ff: string[] = []
            for (let i = 0; i < 30; i++) ff.push("1014490201313233")
            b.client.tap(report(0x7e8, ff), 0)
            return null
        }
        const x = await b.client.command(1, 0x7df, 0x7e8, Buffer.from("0902", "hex"))
        expect(x.r).toBe("bad-frame")
        expect(b.sent.length).toBe(2)
    })
})

describe("diag: poll list", () => {
    test("due requests run, their responses are published on P/diag as one CBOR batch", async () => {
        const b = bench({ diagPoll: [[0x7df, 0x7e8, 100, "010c"], [0x7df, 0x7e8, 1000, "0902"]], diagPollOn: true })
        setTimeout(async () => await b.client.pollLoop(), 0)
        const until = ds.millis() + 10000
        while (!b.published.length && ds.millis() < until) await ds.sleep(20)
        b.client.pollCommand(1, false, undefined)
        expect(b.published.length >= 1).toBe(true)
        const m = decodeCbor(b.published[0])
        expect(m.v).toBe(1)
        expect(m.b).toBe(BOOT)
        expect(m.s).toBe(0)
        expect(m.r.length >= 5).toBe(true)
        let vin = 0
        let rpm = 0
        for (const e of m.r) {
            expect(e.length).toBe(3)
            if (e[0] === 1) vin++
            if (e[0] === 0) rpm++
            expect(e[2].toString("hex")).toBe(e[0] === 0 ? "410c1af8" : VIN)
        }
        expect(vin).toBe(1)
        expect(rpm >= 4).toBe(true)
        expect(b.client.counts.pub >= 5).toBe(true)
    })
    test("the poll command is checked like a request; errors appear in the batch", async () => {
        const b = bench()
        expect(b.client.pollCommand(1, true, [[0x7e0, 0x7e8, 100, "2ef19001"]]).r).toBe("not-allowed")
        expect(b.client.pollCommand(2, true, [[0x7e0, 0x7e8, 5, "010c"]]).r).toBe("bad-field")
        expect(b.client.pollCommand(3, "yes", undefined).r).toBe("bad-field")
        expect(b.client.pollCommand(3, true, [[0x7e0, 0x7e8, 100, Buffer.from("22f190", "hex")], [0x7e0, 0x7e8, 100, "0105"]]).r).toBe("ok")
        expect(b.client.pollCommand(3, false, undefined).r).toBe("duplicate")
        setTimeout(async () => await b.client.pollLoop(), 0)
        const until = ds.millis() + 15000
        while (!b.published.length && ds.millis() < until) await ds.sleep(20)
        b.client.pollCommand(4, false, undefined)
        const m = decodeCbor(b.published[0])
        let neg = 0
        let timeouts = 0
        for (const e of m.r) {
            if (e[0] === 0 && e[2].toString("hex") === "7f2231") neg++
            if (e[0] === 1 && e[2] === "timeout") timeouts++
        }
        expect(neg >= 1).toBe(true)
        expect(timeouts >= 1).toBe(true)
        // only the two allowed requests (and no flow control: single frames) went out
        for (const s of b.sent) expect(s === "e0070000000803" + "22f190cccccccc" || s === "e007000000080201" + "05cccccccccc").toBe(true)
    })
})
