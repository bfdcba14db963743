import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { CborWriter, decodeCbor } from "../src/cbor"
import { checkConfig } from "../src/config"
import { Gateway } from "../src/gateway"
import { BatchEncoder } from "../src/batch"
import { FrameSelector } from "../src/filters"
import { SignalTable, tableHash, tableProblem } from "../src/signals"

/** A sink that keeps each closed batch's payload. */
class Keep {
    batches: Buffer[] = []
    constructor(readonly t: SignalTable) {}
    closeSignals() {
        const out = Buffer.alloc(this.t.payloadSize(7, this.batches.length))
        this.t.writePayload(out, 0, 7, this.batches.length)
        this.batches.push(out)
        this.t.clear()
    }
}

/** The samples of records `g` (docs/protocol.md, "P/signals"), written from the document: "i@time=raw". */
function decodeSamples(g: Buffer, t: number, signed: (i: number) => boolean): string[] {
    const out: string[] = []
    let p = 0
    const varint = () => {
        let v = 0
        let mul = 1
        for (;;) {
            const b = g[p++]
            v += (b & 0x7f) * mul
            mul *= 128
            if (!(b & 0x80)) return v
        }
    }
    while (p < g.length) {
        const head = varint()
        const i = head >> 1
        if (head & 1) t += varint()
        const u = varint()
        const v = signed(i) ? (u % 2 ? -(u + 1) / 2 : u / 2) : u
        out.push(`${i}@${t}=${v}`)
    }
    return out
}

/** Bit-by-bit reference of the DBC conventions: Intel from the LSB up, Motorola from the MSB down the sawtooth. */
function reference(d: Buffer, start: number, len: number, motorola: boolean, signed: boolean): number {
    let v = 0
    if (!motorola) {
        for (let k = len - 1; k >= 0; k--) {
            const pos = start + k
            v = v * 2 + ((d[pos >> 3] >> (pos & 7)) & 1)
        }
    } else {
        let pos = start
        for (let k = 0; k < len; k++) {
            v = v * 2 + ((d[pos >> 3] >> (pos & 7)) & 1)
            pos = pos % 8 === 0 ? pos + 15 : pos - 1
        }
    }
    if (signed && v >= Math.pow(2, len - 1)) v -= Math.pow(2, len)
    return v
}

/** The last bit a Motorola signal reaches, in Intel numbering (to keep random rows inside the frame). */
function motorolaEnd(start: number, len: number): number {
    let pos = start
    for (let k = 1; k < len; k++) pos = pos % 8 === 0 ? pos + 15 : pos - 1
    return pos
}

function signedOf(kinds: number[]) {
    return (i: number) => !!(kinds[i] & 2)
}

function rnd(n: number) {
    return Math.floor(Math.random() * n)
}

/** One row with no rules. */
function row(key: number, start: number, len: number, flags: number): number[] {
    return [key, start, len, flags, 1, 1, 0, 0, 0, 0, 0]
}

/** Feeds one frame and returns its samples. */
function feed(t: SignalTable, k: Keep, key: number, data: Buffer, now: number, signed: (i: number) => boolean): string[] {
    t.onFrame(key, data, 0, data.length, now, k)
    k.closeSignals()
    const m = decodeCbor(k.batches.pop())
    return decodeSamples(m.g, m.t, signed)
}

/**
 * One table of the inline-extraction test: 40 random rows over 4 keys (every kind, 8-byte signals and ones past byte
 * 8, Motorola over 5 bytes, which only onFrame extracts, rules on one key), 12 random reports of 8-byte and other
 * frames at changing times, small signal batches (they close inside a report). The same frames go through
 * BatchEncoder.addReport on one table and through onFrame on another: their batches and counters must be equal.
 * Returns the frames compared.
 */
async function inlineRound(): Promise<number> {
    const keys = [0x100, 0x101, 0x102, 0x98fef100]
    const rows: number[][] = []
    for (let i = 0; i < 40; i++) {
        const key = keys[rnd(4)]
        const flags = rnd(4)
        // 0x101 alone gets Motorola signals over 5 bytes (onFrame's): the other keys stay on the inline path
        const len = flags & 1 && key !== 0x101 ? [1, 8, 12, 16, 25][rnd(5)] : [1, 8, 12, 16, 31, 32][rnd(6)]
        const wide = rnd(5) === 0
        let start: number
        if (flags & 1) {
            start = rnd(wide ? 128 : 64)
            while (motorolaEnd(start, len) > (wide ? 127 : 63)) start = rnd(wide ? 128 : 64)
        } else start = rnd((wide ? 129 : 65) - len)
        const r = row(key, start, len, flags)
        if (key === 0x102) {
            r[3] |= 4
            r[8] = 30
        }
        rows.push(r)
    }
    const only = [keys[rnd(4)], 0x555]
    await ds.sleep(0)
    const a = new SignalTable(128)
    const b = new SignalTable(128)
    expect(await a.compile(rows, only)).toBe("")
    expect(await b.compile(rows, only)).toBe("")
    const ka = new Keep(a)
    const kb = new Keep(b)
    const enc = new BatchEncoder(2048)
    const sink = {
        counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 },
        selector: new FrameSelector(),
        signals: a,
        closeSignals: () => ka.closeSignals(),
        closeBatch: () => enc.clear(),
    }
    let frames = 0
    for (let n = 0; n < 12; n++) {
        const recs: Buffer[] = []
        const now = 1000 + n * (rnd(3) === 0 ? 0 : 1 + rnd(300))
        for (let f = 0; f < 8; f++) {
            const key = f === 7 ? 0x555 : keys[rnd(4)]
            const len = rnd(3) === 0 ? [0, 3, 7, 12, 16][rnd(5)] : 8
            const ext = key > 0x7ff
            const r = Buffer.alloc(6 + len)
            r.setAt(0, "u32", ext ? key & 0x1fffffff : key)
            r[4] = (ext ? 1 : 0) | (len > 8 ? 4 : 0)
            r[5] = len
            for (let j = 0; j < len; j++) r[6 + j] = rnd(3) === 0 ? 0xff : rnd(256)
            recs.push(r)
            b.onFrame(key, r, 6, len, now, kb)
            frames++
        }
        enc.addReport(Buffer.concat(...recs), now, sink)
        if (enc.count > 1000) enc.clear()
        await ds.sleep(0)
    }
    ka.closeSignals()
    kb.closeSignals()
    expect(ka.batches.length).toBe(kb.batches.length)
    for (let i = 0; i < ka.batches.length; i++) expect(ka.batches[i].toString("hex")).toBe(kb.batches[i].toString("hex"))
    expect(a.short).toBe(b.short)
    expect(a.only).toBe(b.only)
    expect(a.ruled).toBe(b.ruled)
    expect(sink.counters.rx).toBe(frames)
    return frames
}

describe("signals", () => {
    test("the example of docs/protocol.md, byte for byte", async () => {
        const rows = [
            [0x123, 0, 16, 0, 1, 10, 0, 0, 0, 0, 0],
            [0x123, 23, 12, 7, 1, 4, -160, 0, 0, 0, 0],
            [0x98fef100, 8, 8, 0, 1, 1, 0, 0, 1000, 0, 0],
        ]
        const t = new SignalTable(512)
        expect(await t.compile(rows, [])).toBe("")
        expect(t.hash).toBe(0xfa79dad0)
        const k = new Keep(t)
        expect(t.onFrame(0x123, Buffer.from("e803fff000000000", "hex"), 0, 8, 1000, k)).toBe(1)
        t.onFrame(0x123, Buffer.from("e903fff000000000", "hex"), 0, 8, 1005, k)
        t.onFrame(0x98fef100, Buffer.from("0042", "hex"), 0, 2, 1005, k)
        expect(t.ruled).toBe(1)
        const out = Buffer.alloc(t.payloadSize(0x5eed1234, 0))
        expect(t.writePayload(out, 0, 0x5eed1234, 0)).toBe(out.length)
        expect(out.toString("hex")).toBe(
            "a761760161621a5eed12346173006174" + "1903e861681afa79dad0616e04616" + "74b00e80702010105e9070442"
        )
        const m = decodeCbor(out)
        expect(m.n).toBe(4)
        expect(decodeSamples(m.g, m.t, (i) => i === 1).join(" ")).toBe("0@1000=1000 1@1000=-1 0@1005=1001 2@1005=66")
    })

    test("the table hash: FNV-1a over the rows' integers as u32 little-endian", async () => {
        expect(tableHash([])).toBe(0)
        expect(tableHash([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]])).toBe(0x0ed0f6b5)
        expect(tableHash([[-1]])).toBe(0xe3160fb1)
    })

    test("extraction of every kind (Intel, Motorola, signed, unsigned, 1..32 bits) matches the bit-by-bit reference", async () => {
        const data = Buffer.alloc(64)
        let checked = 0
        for (let round = 0; round < 12; round++) {
            const rows: number[][] = []
            const kinds: number[] = []
            for (let i = 0; i < 64; i++) {
                const flags = i & 3
                const len = i < 8 ? [1, 7, 8, 9, 16, 24, 31, 32][i] : 1 + rnd(32)
                let start: number
                if (flags & 1) {
                    start = rnd(512)
                    while (motorolaEnd(start, len) > 511) start = rnd(512)
                } else start = rnd(513 - len)
                rows.push(row(0x100, start, len, flags))
                kinds.push(flags)
            }
            await ds.sleep(0)
            const t = new SignalTable(2048)
            expect(await t.compile(rows, [])).toBe("")
            await ds.sleep(0)
            const k = new Keep(t)
            for (let f = 0; f < 4; f++) {
                for (let j = 0; j < 64; j++) data[j] = f === 0 ? 0xff : f === 1 ? 0 : rnd(256)
                const got = feed(t, k, 0x100, data, 10 * f, signedOf(kinds))
                expect(got.length).toBe(64)
                for (let i = 0; i < 64; i++) {
                    const r = rows[i]
                    const want = `${i}@${10 * f}=${reference(data, r[1], r[2], !!(r[3] & 1), !!(r[3] & 2))}`
                    if (got[i] !== want) throw new Error(`row ${r.join(",")}: ${got[i]} != ${want}`)
                    checked++
                }
                await ds.sleep(0)
            }
            await ds.sleep(0)
        }
        expect(checked).toBe(12 * 4 * 64)
    })

    test("the frame path's inline extraction (BatchEncoder.addReport) writes what onFrame writes, byte for byte", async () => {
        let frames = 0
        for (let round = 0; round < 6; round++) frames += await inlineRound()
        expect(frames).toBe(6 * 12 * 8)
    })

    test("a frame shorter than the signal skips it (sshort); other signals of the frame still count", async () => {
        const t = new SignalTable(512)
        await t.compile([row(0x10, 0, 8, 0), row(0x10, 56, 8, 0), row(0x10, 7, 16, 1)], [])
        const k = new Keep(t)
        expect(feed(t, k, 0x10, Buffer.from("0102", "hex"), 5, () => false).join(" ")).toBe("0@5=1 2@5=258")
        expect(t.short).toBe(1)
        expect(t.onFrame(0x11, Buffer.from("01", "hex"), 0, 1, 5, k)).toBe(0)
    })

    test("rules: first sample, minInt, onChange with deadband and relPm, heartbeat", async () => {
        // 0: every 100 ms at most; 1: onChange, deadband 2; 2: onChange, relPm 100 (10 %), physical = raw - 100;
        // 3: onChange with heartbeat 1000; 4: signed onChange
        const rows = [
            [0x20, 0, 8, 0, 1, 1, 0, 100, 0, 0, 0],
            [0x20, 8, 8, 4, 1, 1, 0, 0, 0, 2, 0],
            [0x20, 16, 8, 4, 1, 1, -100, 0, 0, 0, 100],
            [0x20, 24, 8, 4, 1, 1, 0, 0, 1000, 0, 0],
            [0x20, 32, 8, 6, 1, 1, 0, 0, 0, 0, 0],
        ]
        const t = new SignalTable(512)
        await t.compile(rows, [])
        const k = new Keep(t)
        const f = (hex: string, now: number) =>
            feed(t, k, 0x20, Buffer.from(hex, "hex"), now, (i) => i === 4).join(" ")
        // first sample of each
        expect(f("0a0a96aaff", 0)).toBe("0@0=10 1@0=10 2@0=150 3@0=170 4@0=-1")
        // 50 ms: 0 too soon; 1 changed by 2 (not > 2); 2: |d| 4 * 1000 <= 100 * 50; 3, 4 unchanged
        expect(f("0b0c9aaaff", 50)).toBe("")
        expect(t.ruled).toBe(5)
        // 100 ms: 0 due; 1 changed by 3; 2: |156 - 150| = 6 * 1000 > 100 * 50; 4 changed
        expect(f("0b0d9caa01", 100)).toBe("0@100=11 1@100=13 2@100=156 4@100=1")
        // 1000 ms after its first sample the heartbeat publishes 3 unchanged
        expect(f("0b0d9caa01", 999)).toBe("0@999=11")
        expect(f("0b0d9caa01", 1000)).toBe("3@1000=170")
    })

    test("batches close before sigBytes and keep the time deltas", async () => {
        const t = new SignalTable(128)
        await t.compile([row(0x30, 0, 32, 0)], [])
        const k = new Keep(t)
        for (let n = 0; n < 40; n++) t.onFrame(0x30, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, 1000 + n * 200, k)
        expect(k.batches.length > 2).toBe(true)
        let total = 0
        let last = 0
        for (const b of k.batches) {
            expect(b.length <= 128).toBe(true)
            const m = decodeCbor(b)
            const s = decodeSamples(m.g, m.t, () => false)
            expect(s.length).toBe(m.n)
            for (const x of s) {
                expect(x).toBe(`0@${1000 + last * 200}=4294967295`)
                last++
            }
            total += m.n
        }
        expect(total + t.count).toBe(40)
    })

    test("bad tables are refused whole with the field named; frames still flow; the status says why", async () => {
        expect(tableProblem([[0x123, 0, 33, 0, 1, 1, 0, 0, 0, 0, 0]]).indexOf("row 0: len") >= 0).toBe(true)
        expect(tableProblem([row(1, 0, 8, 8)]).indexOf("flags") >= 0).toBe(true)
        expect(tableProblem([row(1, 0, 8, 0), [1, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0]]).indexOf("row 1: fDen") >= 0).toBe(true)
        expect(tableProblem([row(0x800, 0, 8, 0)]).indexOf("key") >= 0).toBe(true)
        expect(tableProblem([row(1, 510, 8, 0)]).indexOf("past byte 64") >= 0).toBe(true)
        expect(tableProblem([row(1, 0, 8, 0).slice(0, 10)]).indexOf("11 integers") >= 0).toBe(true)
        const many: number[][] = []
        for (let i = 0; i < 65; i++) many.push(row(1, 0, 8, 0))
        expect(tableProblem(many).indexOf("64") >= 0).toBe(true)
        expect(tableProblem("x")).toBe("an array of rows")
        const bad = checkConfig({ sigOnly: ["x"], sigTable: [row(0x123, 0, 8, 0)] })
        expect(bad.sigError.indexOf("sigOnly") >= 0).toBe(true)
        expect(bad.config.sigTable.length).toBe(0)
        expect(checkConfig({ sigTable: 5 }).sigError.indexOf("sigTable") >= 0).toBe(true)
        await ds.sleep(0)
        const r = checkConfig({ sigTable: [row(0x123, 0, 8, 0), row(0x124, 0, 40, 0)], sigOnly: [0x123] })
        expect(r.sigError).toBe("")
        await ds.sleep(0)
        const gw = new Gateway(r.config, null, 1)
        expect((await gw.loadSignals()).indexOf("row 1: len") >= 0).toBe(true)
        expect(gw.signals.active).toBe(false)
        await ds.sleep(0)
        gw.ingest(Buffer.from("230100000002aabb", "hex"), 10)
        expect(gw.enc.count).toBe(1)
        const w = new CborWriter(Buffer.alloc(512))
        gw.writeStatus(w, true)
        expect(w.overflow).toBe(false)
        const st = decodeCbor(w.result())
        expect(st.serr.indexOf("row 1: len") >= 0).toBe(true)
        expect(st.sh).toBe(0)
    })

    test("the gateway: sigOnly frames skip the frame batch, signal batches go through the outbox, the status adds up", async () => {
        const { config } = checkConfig({
            sigTable: [row(0x123, 0, 8, 0), row(0x124, 0, 8, 4)],
            sigOnly: [0x123],
            canFilters: [[0x120, 0x7f0]],
        })
        await ds.sleep(0)
        const gw = new Gateway(config, null, 1)
        expect(await gw.loadSignals()).toBe("")
        const rep = Buffer.from("23010000000101" + "24010000000105" + "24010000000105" + "25010000000100" + "77070000000100", "hex")
        gw.ingest(rep, 100)
        expect(gw.counters.rx).toBe(5)
        expect(gw.counters.filtered).toBe(1)
        expect(gw.signals.only).toBe(1)
        expect(gw.enc.count).toBe(3)
        expect(gw.signals.count).toBe(2)
        expect(gw.signals.ruled).toBe(1)
        gw.closeSignals()
        gw.closeBatch()
        expect(gw.outbox.size()).toBe(2)
        await ds.sleep(0)
        const w = new CborWriter(Buffer.alloc(512))
        gw.writeStatus(w, true)
        const st = decodeCbor(w.result())
        await ds.sleep(0)
        expect(st.sig).toBe(2)
        expect(st.sseq).toBe(1)
        expect(st.sh).toBe(tableHash(config.sigTable))
        expect(st.sonly).toBe(1)
        expect(st.drop.sig).toBe(0)
        // accounting: rx = flt + ds + sonly + frames in batches
        expect(st.rx).toBe(st.flt + st.ds + st.sonly + 3)
        // the signal batch in the outbox is a QoS 1 PUBLISH on P/signals
        const pk = gw.outbox.packet(0)
        expect(pk[0]).toBe(0x32)
        expect(pk.toString("utf-8").indexOf("vgw/gw1/signals") > 0).toBe(true)
        // a full outbox drops the signal batch and counts its samples
        for (const size of [1024, 8]) {
            while (gw.outbox.reserve(size) >= 0) gw.outbox.commit(gw.outbox.reserve(size), size, 900 + gw.outbox.size(), 0)
        }
        gw.ingest(Buffer.from("23010000000102", "hex"), 200)
        gw.closeSignals()
        expect(gw.signals.dropped).toBe(1)
    })
})
