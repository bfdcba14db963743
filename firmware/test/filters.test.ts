import { describe, expect, test } from "@devicescript/test"
import { FrameSelector } from "../src/filters"
import { frameKey, FLAG_EXT } from "../src/records"

describe("accept filters", () => {
    test("value/mask pairs over the frame key; empty accepts all", () => {
        const s = new FrameSelector()
        expect(s.hasFilters).toBe(false)
        s.setFilters([[0x100, 0x700], [0x7df, 0x7ff]])
        expect(s.hasFilters).toBe(true)
        expect(s.accepts(0x100)).toBe(true)
        expect(s.accepts(0x1ff)).toBe(true)
        expect(s.accepts(0x200)).toBe(false)
        expect(s.accepts(0x7df)).toBe(true)
        expect(s.accepts(0x7de)).toBe(false)
        s.setFilters([])
        expect(s.hasFilters).toBe(false)
    })
    test("extended frames are told apart by bit 31 of the key", () => {
        const s = new FrameSelector()
        // J1939 PGN 0xFEF1 from any source, extended only
        s.setFilters([[0x8000000 + 0x80000000 + 0xfef100, 0x80ffff00]])
        expect(frameKey(0x18fef100, FLAG_EXT)).toBe(0x98fef100)
        expect(s.accepts(frameKey(0x18fef1aa, FLAG_EXT))).toBe(true)
        expect(s.accepts(frameKey(0x18fef0aa, FLAG_EXT))).toBe(false)
        // same numeric bits as a standard frame: not admitted
        expect(s.accepts(frameKey(0x100, 0))).toBe(false)
    })
})

describe("downsampling", () => {
    test("minimum interval per key", () => {
        const s = new FrameSelector()
        s.setRules([[0x123, 100, 0]])
        const d = Buffer.from("01", "hex")
        expect(s.keeps(0x123, d, 0, 1, 1000)).toBe(true)
        expect(s.keeps(0x123, d, 0, 1, 1050)).toBe(false)
        expect(s.keeps(0x123, d, 0, 1, 1099)).toBe(false)
        expect(s.keeps(0x123, d, 0, 1, 1100)).toBe(true)
        // other keys are not affected
        expect(s.keeps(0x124, d, 0, 1, 1101)).toBe(true)
        expect(s.keeps(0x124, d, 0, 1, 1102)).toBe(true)
    })
    test("send on change compares data and length", () => {
        const s = new FrameSelector()
        s.setRules([[0x10, 0, 1]])
        const a = Buffer.from("0102", "hex")
        const b = Buffer.from("0103", "hex")
        expect(s.keeps(0x10, a, 0, 2, 0)).toBe(true)
        expect(s.keeps(0x10, a, 0, 2, 1)).toBe(false)
        expect(s.keeps(0x10, b, 0, 2, 2)).toBe(true)
        expect(s.keeps(0x10, b, 0, 1, 3)).toBe(true)
        expect(s.keeps(0x10, b, 0, 1, 4)).toBe(false)
    })
    test("32 rules with colliding hashes all apply; replacing rules resets state", () => {
        const s = new FrameSelector()
        const rules: number[][] = []
        for (let i = 0; i < 32; i++) rules.push([i * 64, 10, 0])
        s.setRules(rules)
        const d = Buffer.alloc(1)
        for (let i = 0; i < 32; i++) expect(s.keeps(i * 64, d, 0, 1, 0)).toBe(true)
        for (let i = 0; i < 32; i++) expect(s.keeps(i * 64, d, 0, 1, 5)).toBe(false)
        s.setRules([[0, 10, 0]])
        expect(s.keeps(0, d, 0, 1, 6)).toBe(true)
        expect(s.keeps(64, d, 0, 1, 6)).toBe(true)
        expect(s.keeps(64, d, 0, 1, 7)).toBe(true)
    })
})
