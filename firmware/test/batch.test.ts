import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { addFrame, batchFull, BatchEncoder, BATCH_OVERHEAD } from "../src/batch"
import { decodeCbor } from "../src/cbor"
import { FrameSelector } from "../src/filters"
import { SignalTable } from "../src/signals"
import { FLAG_EXT, FLAG_FD, FLAG_RTR, FLAG_BRS } from "../src/records"

/** Reference decoder of docs/protocol.md's records, written from the document, to check the encoder against. */
function decodeRecords(f: Buffer, t: number): string[] {
    const out: string[] = []
    const ids: number[] = []
    const fl: number[] = []
    const last: Buffer[] = []
    const lens: number[] = []
    let p = 0
    let time = t
    const varint = () => {
        let v = 0
        let mul = 1
        for (;;) {
            const b = f[p++]
            v += (b & 0x7f) * mul
            mul *= 128
            if (!(b & 0x80)) return v
        }
    }
    while (p < f.length) {
        const head = varint()
        const mode = head & 3
        const x = Math.floor(head / 4)
        if (mode === 3) {
            time += x
            continue
        }
        if (mode === 0) {
            if (x === ids.length) {
                ids.push(varint())
                fl.push(f[p++])
                last.push(Buffer.alloc(64))
                lens.push(0)
            }
            const len = f[p++]
            lens[x] = len
            const dl = fl[x] & FLAG_RTR ? 0 : len
            last[x].blitAt(0, f, p, dl)
            p += dl
        } else if (mode === 1) {
            const dl = fl[x] & FLAG_RTR ? 0 : lens[x]
            const mb = (dl + 7) >> 3
            const m0 = p
            p += mb
            for (let i = 0; i < dl; i++) if (f[m0 + (i >> 3)] & (1 << (i & 7))) last[x][i] = f[p++]
        }
        const dl = fl[x] & FLAG_RTR ? 0 : lens[x]
        out.push(`${time} ${ids[x]} ${fl[x]} ${lens[x]} ${last[x].slice(0, dl).toString("hex")}`)
    }
    return out
}

function payload(enc: BatchEncoder, boot: number, seq: number): Buffer {
    const out = Buffer.alloc(enc.payloadSize(boot, seq))
    const end = enc.writePayload(out, 0, boot, seq)
    expect(end).toBe(out.length)
    return out
}

describe("frame batch", () => {
    test("the example of docs/protocol.md, byte for byte", () => {
        const enc = new BatchEncoder(256)
        const d = Buffer.from("deadbeef", "hex")
        addFrame(enc, 0x123, 0, d, 0, 4, 1000)
        addFrame(enc, 0x123, 0, d, 0, 4, 1000)
        addFrame(enc, 0x123, 0, Buffer.from("deadbfef", "hex"), 0, 4, 1002)
        addFrame(enc, 0x12345678, FLAG_EXT | FLAG_RTR, d, 0, 2, 1002)
        const p = payload(enc, 0x5eed1234, 7)
        expect(p.toString("hex")).toBe(
            "a661760161621a5eed12346173076174190" + "3e8616e0461665600a3020004deadbeef020b0104bf04f8acd19101" + "0302"
        )
        const m = decodeCbor(p)
        expect(m.n).toBe(4)
        expect(m.t).toBe(1000)
    })
    test("round trip of classic, extended, remote, FD and length changes", async () => {
        const enc = new BatchEncoder(2048)
        const expected: string[] = []
        const data = Buffer.alloc(64)
        let now = 5000
        for (let i = 0; i < 300; i++) {
            const kind = i % 5
            let id = (i * 37) % 0x7ff
            let flags = 0
            let len = 8
            if (kind === 1) { id = (i * 7919) % 0x1fffffff; flags = FLAG_EXT }
            if (kind === 2) { flags = FLAG_RTR; len = i % 9 }
            if (kind === 3) { flags = FLAG_FD | FLAG_BRS; len = [12, 16, 64, 0, 5][i % 5] }
            if (kind === 4) { id = 0x100 + (i % 3); len = i % 9 }
            for (let j = 0; j < 64; j++) data[j] = (i * 13 + j * (i % 4)) & 0xff
            if (i % 7 === 0) now += i % 11
            if (batchFull(enc)) break
            // stay under the VM's opcode budget between two awaits
            if (i % 20 === 0) await ds.sleep(0)
            addFrame(enc, id, flags, data, 0, len, now)
            const dl = flags & FLAG_RTR ? 0 : len
            expected.push(`${now} ${id} ${flags} ${len} ${data.slice(0, dl).toString("hex")}`)
        }
        const m = decodeCbor(payload(enc, 1, 2))
        expect(m.n).toBe(expected.length)
        await ds.sleep(0)
        const got = decodeRecords(m.f, m.t)
        await ds.sleep(0)
        expect(got.length).toBe(expected.length)
        for (let i = 0; i < got.length; i++) expect(got[i]).toBe(expected[i])
    })
    test("repeats and one-byte changes cost 1 and 3 bytes", () => {
        const enc = new BatchEncoder(512)
        const d = Buffer.from("0102030405060708", "hex")
        addFrame(enc, 0x10, 0, d, 0, 8, 1)
        const a = enc.recLen
        addFrame(enc, 0x10, 0, d, 0, 8, 1)
        expect(enc.recLen - a).toBe(1)
        d[3] = 0x99
        const b = enc.recLen
        addFrame(enc, 0x10, 0, d, 0, 8, 1)
        expect(enc.recLen - b).toBe(3)
    })
    test("full() keeps every batch within its byte bound and slot limit", async () => {
        const enc = new BatchEncoder(4096 - BATCH_OVERHEAD)
        const d = Buffer.alloc(8)
        let n = 0
        while (!batchFull(enc)) {
            d[0] = n & 0xff
            addFrame(enc, n % 300, 0, d, 0, 8, n)
            n++
            if (n % 50 === 0) await ds.sleep(0)
        }
        expect(enc.recLen <= 4096 - BATCH_OVERHEAD).toBe(true)
        expect(enc.payloadSize(0xffffffff, 0xffffffff) <= 4096).toBe(true)
        expect(n > 100).toBe(true)
        enc.clear()
        expect(enc.count).toBe(0)
        expect(batchFull(enc)).toBe(false)
        addFrame(enc, 5, 0, d, 0, 8, 99999)
        const m = decodeCbor(payload(enc, 3, 4))
        expect(decodeRecords(m.f, m.t)[0]).toBe("99999 5 0 8 " + d.toString("hex"))
    })
})

describe("frame path (addReport)", () => {
    test("encodes exactly as add() does, frame by frame, with malformed tails counted", async () => {
        const a = new BatchEncoder(8192)
        const b = new BatchEncoder(8192)
        const sink = {
            counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 },
            selector: new FrameSelector(),
            signals: new SignalTable(512),
            closeSignals: () => {},
            closeBatch: () => {},
        }
        const data = Buffer.alloc(64)
        let now = 100
        for (let k = 0; k < 40; k++) {
            // a report of up to 8 records of every kind
            const recs: Buffer[] = []
            for (let i = 0; i < 8; i++) {
                const kind = i % 4
                // ids repeat across reports (k % 5) so slots see DELTA, REPEAT and length changes
                let id = ((k % 5) * 31 + i * 17) % 0x7ff
                let flags = 0
                let len = (k + i) % 9
                if (kind === 1) { id = ((k % 5) * 7919 + i) % 0x1fffffff; flags = FLAG_EXT }
                if (kind === 2) { flags = FLAG_RTR; len = i % 9 }
                if (kind === 3) { flags = FLAG_FD | FLAG_BRS; len = [12, 16, 64, 8][k % 4] }
                for (let j = 0; j < 64; j++) data[j] = (k % 3 === 0 ? j : (k >> 1) * j + i) & 0xff
                const dl = flags & FLAG_RTR ? 0 : len
                const r = Buffer.alloc(6 + dl)
                r.setAt(0, "u32", id)
                r[4] = flags
                r[5] = len
                r.blitAt(6, data, 0, dl)
                recs.push(r)
                addFrame(a, id, flags, data, 0, len, now)
            }
            b.addReport(Buffer.concat(...recs), now, sink)
            if (k % 5 === 0) now += k
            await ds.sleep(0)
        }
        expect(b.count).toBe(a.count)
        expect(b.rec.slice(0, b.recLen).toString("hex")).toBe(a.rec.slice(0, a.recLen).toString("hex"))
        expect(sink.counters.rx).toBe(320)
        // a report whose second record is cut short: one frame in, one malformed
        b.addReport(Buffer.from("2301000000020102" + "24010000000801", "hex"), now, sink)
        expect(sink.counters.rx).toBe(321)
        expect(sink.counters.malformed).toBe(1)
        // an 11-bit frame with an id above 0x7FF is malformed too
        b.addReport(Buffer.from("0008000000000", "hex"), now, sink)
        expect(sink.counters.malformed).toBe(2)
    })
    test("8-byte frames (the word-compare path): every change mask, REPEATs, slots above 31, batch closes", async () => {
        // two encoders fed the same frames, one through addReport(), one through add() (closing on full());
        // each batch addReport closes waits (as hex) until add() closes its own, then both must be equal
        const a = new BatchEncoder(2000)
        const b = new BatchEncoder(2000)
        const waiting: string[] = []
        let closed = 0
        let mismatches = 0
        const sink = {
            counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 },
            selector: new FrameSelector(),
            signals: new SignalTable(512),
            closeSignals: () => {},
            closeBatch: () => {
                waiting.push(payload(b, 1, 0).toString("hex"))
                b.clear()
            },
        }
        const last: Buffer[] = []
        for (let i = 0; i < 40; i++) last.push(Buffer.alloc(8))
        const rep = Buffer.alloc(16 * 14)
        let now = 1000
        let seed = 7
        for (let k = 0; k < 160; k++) {
            for (let i = 0; i < 16; i++) {
                const slot = (k * 16 + i) % 40
                // every one of the 256 change masks occurs (k * 16 + i covers 0..2559); mask 0 is a REPEAT
                const m = (k * 16 + i) & 0xff
                const d = last[slot]
                for (let j = 0; j < 8; j++) {
                    if (m & (1 << j)) {
                        seed = (seed * 1103515245 + 12345) & 0x7fffffff
                        // changed bytes, bit 7 set in some (word values above 2^31)
                        d[j] = (d[j] + 1 + ((seed >> 8) % 255)) & 0xff
                    }
                }
                const o = i * 14
                rep.setAt(o, "u32", 0x100 + slot * 5)
                rep[o + 4] = 0
                rep[o + 5] = 8
                rep.blitAt(o + 6, d, 0, 8)
            }
            b.addReport(rep, now, sink)
            for (let i = 0; i < 16; i++) {
                const o = i * 14
                if (batchFull(a)) {
                    if (waiting.shift() !== payload(a, 1, 0).toString("hex")) mismatches++
                    closed++
                    a.clear()
                }
                addFrame(a, rep.getAt(o, "u32"), 0, rep, o + 6, 8, now)
            }
            if (k % 3 === 0) now += 1 + (k % 7)
            await ds.sleep(0)
        }
        expect(mismatches).toBe(0)
        expect(closed > 4).toBe(true)
        expect(waiting.length).toBe(0)
        expect(b.count).toBe(a.count)
        expect(b.rec.slice(0, b.recLen).toString("hex")).toBe(a.rec.slice(0, a.recLen).toString("hex"))
        expect(sink.counters.rx).toBe(160 * 16)
    })
    test("filters and downsampling count what they drop", () => {
        const enc = new BatchEncoder(1024)
        const sel = new FrameSelector()
        sel.setFilters([[0x100, 0x700]])
        sel.setRules([[0x101, 0, 1]])
        const sink = { counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 }, selector: sel, signals: new SignalTable(512), closeSignals: () => {}, closeBatch: () => {} }
        // 0x101 twice with the same data (second: downsampled), 0x200 (filtered), 0x102
        const rep = Buffer.from("010100000001aa" + "010100000001aa" + "000200000001aa" + "020100000001aa", "hex")
        enc.addReport(rep, 5, sink)
        expect(sink.counters.rx).toBe(4)
        expect(sink.counters.filtered).toBe(1)
        expect(sink.counters.downsampled).toBe(1)
        expect(enc.count).toBe(2)
    })
})
