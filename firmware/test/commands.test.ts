import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { CborWriter, decodeCbor } from "../src/cbor"
import { CommandHandler, CommandResult, CommandTarget, writeResult } from "../src/commands"

const BOOT = 0x5eed1234
const REASONS = ["ok", "malformed", "too-large", "bad-op", "bad-field", "stale-boot", "expired", "exp-too-far", "listen-only", "not-allowed", "no-fd", "duplicate", "rate-limited", "unbound", "failed"]

class Target implements CommandTarget {
    bootId = BOOT
    clock = 1000
    normal = true
    isBound = true
    txRate = 2
    /** The docs' example carries exp 61000 at uptime 1000. */
    txExpMax = 60000
    sent: string[] = []
    filters: number[][] = null
    rules: number[][] = null
    statusRequests = 0
    now() {
        return this.clock
    }
    normalMode() {
        return this.normal
    }
    bound() {
        return this.isBound
    }
    allowed(key: number, _flags: number) {
        return key === 0x123 || key === 0x98fef100 ? "" : "not in the list"
    }
    fdCapable() {
        return false
    }
    async transmit(record: Buffer) {
        this.sent.push(record.toString("hex"))
    }
    setFilters(p: number[][]) {
        this.filters = p
    }
    setRules(r: number[][]) {
        this.rules = r
    }
    requestStatus() {
        this.statusRequests++
    }
}

/** A command map as cbor-x writes it (long map head B9 00 nn). */
function txCommand(id: number, boot: number, exp: number, recordHex: string): Buffer {
    const w = new CborWriter(Buffer.alloc(128))
    w.buf[0] = 0xb9
    w.buf[1] = 0
    w.buf[2] = 5
    w.pos = 3
    w.text("op")
    w.text("tx")
    w.text("id")
    w.int(id)
    w.text("boot")
    w.int(boot)
    w.text("exp")
    w.int(exp)
    w.text("f")
    const r = Buffer.from(recordHex, "hex")
    w.bytes(r, 0, r.length)
    return w.result()
}

const REC = "230100000004deadbeef"

describe("commands", () => {
    test("the tx example of docs/protocol.md is sent when every check passes", async () => {
        const t = new Target()
        const h = new CommandHandler(t)
        const doc = Buffer.from(
            "b90005626f7062747862696407646" + "26f6f741a5eed123463657870" + "19ee4861664a230100000004deadbeef",
            "hex"
        )
        const r = await h.handle(doc, false)
        expect(r.r).toBe("ok")
        expect(r.ok).toBe(true)
        expect(r.id).toBe(7)
        expect(t.sent.length).toBe(1)
        expect(t.sent[0]).toBe(REC)
    })
    test("downlink safety: each refusal has its reason and transmits nothing", async () => {
        const t = new Target()
        const h = new CommandHandler(t)
        t.normal = false
        expect((await h.handle(txCommand(1, BOOT, 5000, REC), false)).r).toBe("listen-only")
        t.normal = true
        expect((await h.handle(txCommand(2, BOOT, 5000, "240100000001aa"), false)).r).toBe("not-allowed")
        expect((await h.handle(txCommand(3, BOOT + 1, 5000, REC), false)).r).toBe("stale-boot")
        expect((await h.handle(txCommand(4, BOOT, 999, REC), false)).r).toBe("expired")
        t.isBound = false
        expect((await h.handle(txCommand(5, BOOT, 5000, REC), false)).r).toBe("unbound")
        t.isBound = true
        expect((await h.handle(txCommand(6, BOOT, 5000, "2301000020"), false)).r).toBe("bad-field")
        expect((await h.handle(txCommand(7, BOOT, 5000, REC + "00"), false)).r).toBe("bad-field")
        expect(t.sent.length).toBe(0)
        // rate: 2 per second
        expect((await h.handle(txCommand(8, BOOT, 5000, REC), false)).r).toBe("ok")
        expect((await h.handle(txCommand(9, BOOT, 5000, "00f1fe180101aa"), false)).r).toBe("ok")
        expect((await h.handle(txCommand(10, BOOT, 5000, REC), false)).r).toBe("rate-limited")
        t.clock += 1000
        expect((await h.handle(txCommand(11, BOOT, 5000, REC), false)).r).toBe("ok")
        expect(t.sent.length).toBe(3)
    })
    test("malformed, oversized, unknown op and unknown fields", async () => {
        const t = new Target()
        const h = new CommandHandler(t)
        expect((await h.handle(Buffer.from("ff00", "hex"), false)).r).toBe("malformed")
        expect((await h.handle(Buffer.from("83010203", "hex"), false)).r).toBe("malformed")
        expect((await h.handle(Buffer.alloc(513), false)).r).toBe("too-large")
        expect((await h.handle(Buffer.alloc(0), true)).r).toBe("too-large")
        // {"op":"reboot","id":"a"}
        const badOp = await h.handle(Buffer.from("a2626f70667265626f6f7462696461" + "61", "hex"), false)
        expect(badOp.r).toBe("bad-op")
        expect(badOp.id).toBe("a")
        // {"op":"status","x":1}
        expect((await h.handle(Buffer.from("a2626f706673746174757361780" + "1", "hex"), false)).r).toBe("bad-field")
        expect(t.statusRequests).toBe(0)
        // {"op":"status"}
        expect((await h.handle(Buffer.from("a1626f706673746174757" + "3", "hex"), false)).r).toBe("ok")
        expect(t.statusRequests).toBe(1)
    })
    test("filter and rate replace the selection", async () => {
        const t = new Target()
        const h = new CommandHandler(t)
        // {"op":"filter","acc":[[256,1792]]}
        const f = await h.handle(Buffer.from("a2626f706666696c7465726361636381821901001907" + "00", "hex"), false)
        expect(f.r).toBe("ok")
        expect(t.filters[0][1]).toBe(1792)
        // {"op":"rate","rules":[[291,100,1]]}
        const r = await h.handle(Buffer.from("a2626f70647261746565727" + "56c6573818319012318640" + "1", "hex"), false)
        expect(r.r).toBe("ok")
        expect(t.rules[0][0]).toBe(291)
        // onChange 2 is refused
        const bad = await h.handle(Buffer.from("a2626f70647261746565727" + "56c6573818319012318640" + "2", "hex"), false)
        expect(bad.r).toBe("bad-field")
    })
    test("the result map of docs/protocol.md", () => {
        const w = new CborWriter(Buffer.alloc(128))
        const res: CommandResult = { id: 7, op: "tx", ok: false, r: "listen-only", msg: "" }
        writeResult(w, res)
        expect(w.result().toString("hex")).toBe(
            "a5626964076" + "26f70627478626f6bf461726b6c697374656e2d6f6e6c79636d736760"
        )
    })
    test("thousands of random and mutated payloads: all refused with a reason, nothing sent, no throw", async () => {
        const t = new Target()
        t.normal = false // a mutated command may be valid; in listen-only mode none may transmit
        const h = new CommandHandler(t)
        const valid = txCommand(1, BOOT, 5000, REC)
        let refused = 0
        for (let i = 0; i < 3000; i++) {
            let p: Buffer
            if (i % 2 === 0) {
                p = Buffer.alloc(Math.floor(Math.random() * 40))
                for (let j = 0; j < p.length; j++) p[j] = Math.floor(Math.random() * 256)
            } else {
                p = valid.slice(0, valid.length)
                const n = 1 + Math.floor(Math.random() * 4)
                for (let j = 0; j < n; j++) p[Math.floor(Math.random() * p.length)] = Math.floor(Math.random() * 256)
                if (i % 7 === 0) p = p.slice(0, Math.floor(Math.random() * p.length))
            }
            const r = await h.handle(p, false)
            expect(REASONS.indexOf(r.r) >= 0).toBe(true)
            expect(typeof r.msg).toBe("string")
            if (!r.ok) refused++
            if (i % 50 === 0) await ds.sleep(0)
        }
        expect(refused >= 2990).toBe(true)
        expect(t.sent.length).toBe(0)
    })
})

describe("results stay decodable", () => {
    test("ids and field names that are not printable ASCII are never echoed", async () => {
        const t = new Target()
        const h = new CommandHandler(t)
        // {"op":"status","id":"\xff\xfe"} (not UTF-8)
        const r1 = await h.handle(Buffer.from("a2626f70667374617475736269646" + "2fffe", "hex"), false)
        expect(r1.r).toBe("bad-field")
        expect(r1.id).toBe(null)
        // {"op":"status","\x01":1}
        const r2 = await h.handle(Buffer.from("a2626f7066737461747573610101", "hex"), false)
        expect(r2.r).toBe("bad-field")
        expect(r2.msg).toBe("unknown field (not printable)")
        const w = new CborWriter(Buffer.alloc(256))
        writeResult(w, r2)
        const back = decodeCbor(w.result())
        expect(back.msg).toBe("unknown field (not printable)")
    })
})
