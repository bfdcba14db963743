import { describe, expect, test } from "@devicescript/test"
import { BatchEncoder } from "../src/batch"
import { FrameSelector } from "../src/filters"
import { SignalTable } from "../src/signals"
import { REPORT_HEADER, ReportSequence } from "../src/reports"

function sink() {
    return {
        counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 },
        selector: new FrameSelector(),
        signals: new SignalTable(512),
        closeSignals: () => {},
        closeBatch: () => {},
    }
}

describe("frames report numbering", () => {
    test("consecutive reports lose nothing; a skipped report counts its frames", () => {
        const s = new ReportSequence()
        s.restart()
        expect(s.arrived(0)).toBe(0)
        s.handled(0, 16, true)
        expect(s.arrived(16)).toBe(0)
        s.handled(16, 16, true)
        // the report numbered 32 (16 frames) and the one numbered 48 (5 frames) never arrived
        expect(s.arrived(53)).toBe(21)
        s.handled(53, 3, true)
        expect(s.arrived(56)).toBe(0)
    })
    test("reports lost before the first one that arrives after the restart are counted", () => {
        const s = new ReportSequence()
        s.restart()
        expect(s.arrived(1070)).toBe(1070)
    })
    test("before the controller is restarted nothing is known: no loss counted", () => {
        const s = new ReportSequence()
        expect(s.arrived(500)).toBe(0)
        s.handled(500, 10, true)
        expect(s.arrived(510)).toBe(0)
    })
    test("an invalid record leaves the next start unknown: the next report resynchronises", () => {
        const s = new ReportSequence()
        s.restart()
        s.handled(0, 4, false)
        expect(s.arrived(16)).toBe(0)
        s.handled(16, 16, true)
        expect(s.arrived(40)).toBe(8)
    })
    test("numbers wrap at 2^32; a number behind the expected one is a restarted server, not a loss", () => {
        const s = new ReportSequence()
        s.restart()
        s.handled(0xfffffff8, 16, true)
        expect(s.arrived(8)).toBe(0)
        expect(s.arrived(10)).toBe(2)
        s.handled(8, 16, true)
        expect(s.arrived(0)).toBe(0)
    })
    test("the records after first_frame are read in place, as the same records without it", () => {
        const records = "230100000004deadbeef" + "785634120302" + "2401000000080102030405060708"
        const a = new BatchEncoder(500)
        const sa = sink()
        a.addReport(Buffer.from(records, "hex"), 10, sa)
        const b = new BatchEncoder(500)
        const sb = sink()
        b.addReport(Buffer.from("07000000" + records, "hex"), 10, sb, REPORT_HEADER)
        expect(sb.counters.rx).toBe(3)
        expect(sb.counters.malformed).toBe(0)
        expect(b.rec.slice(0, b.recLen).toString("hex")).toBe(a.rec.slice(0, a.recLen).toString("hex"))
    })
})
