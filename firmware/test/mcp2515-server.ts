/**
 * The CanBus service served from the MCP2515 driver, with the register-level model as the chip.
 * Runs in the DeviceScript VM:  devs run test/mcp2515-server.ts --test --test-self-exit   (from firmware/)
 *
 * The first suite goes through the generated client `ds.CanBus` and the VM's Jacdac stack (binding, `frames`
 * reports, `transmit` commands). Register values are checked on the server object itself: the client caches
 * register reads and does not wait for a write to be handled, so reading back through it would test the cache.
 */
import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { startServer } from "@devicescript/server"
import { Mcp2515CanBusServer } from "../src/mcp2515/server"
import { Mcp2515Model, RX_NOT_LISTENING } from "./mcp2515-model"

const TX_FAILED = 3

/** The server with its outgoing packets captured instead of sent on the Jacdac bus. */
class CapturingServer extends Mcp2515CanBusServer {
    readonly sent: ds.Packet[] = []
    override async _send(pkt: ds.Packet) {
        this.sent.push(pkt)
    }
}

async function until(cond: () => boolean, ms: number) {
    for (let i = 0; i < ms / 5 && !cond(); i++) await ds.sleep(5)
}

function newServer(model: Mcp2515Model, rxQueueBytes?: number) {
    return new Mcp2515CanBusServer(
        { spi: model, interrupt: model.interruptLine, oscillatorHz: 16000000, bitrate: 500000 },
        { rxQueueBytes }
    )
}

const model = new Mcp2515Model()
// every SPI transfer yields, as on the board: the loop, the reporter and command handlers interleave
model.transferDelayMs = 0
const server = newServer(model)
startServer(server)
// as the gateway program creates it: no role name, so it binds to whichever CanBus server is there
const can = new ds.CanBus()
const reports: Buffer[] = []
can.report().subscribe((pkt: ds.Packet) => {
    if (pkt.serviceCommand === 0x90) reports.push(pkt.payload)
})

function reportedHex(from: number) {
    const parts: string[] = []
    for (let i = from; i < reports.length; i++) parts.push(reports[i].toString("hex"))
    return parts.join("|")
}

describe("mcp2515 CanBus server through the client", () => {
    test("binds; starts stopped and listen-only; joins the bus when the client enables it", async () => {
        await until(() => can.isBound, 2000)
        expect(can.isBound).toBe(true)
        expect(server.busState()).toBe(ds.CanBusBusState.Stopped)
        expect(server.mode()).toBe(ds.CanBusMode.ListenOnly)
        expect(model.receiveFromBus(0x1, false, false, [1])).toBe(RX_NOT_LISTENING)
        await can.enabled.write(true)
        await until(() => server.enabled(), 1000)
        expect(server.enabled()).toBe(true)
        expect(server.busState()).toBe(ds.CanBusBusState.ErrorActive)
        expect(model.opmode()).toBe(0x60)
        expect(server.fdSupported()).toBe(false)
    })
    test("received frames arrive as packed records in frames reports", async () => {
        const from = reports.length
        model.receiveFromBus(0x123, false, false, [0xde, 0xad, 0xbe, 0xef])
        await until(() => reports.length >= from + 1, 500)
        model.receiveFromBus(0x12345678, true, true, [], 2)
        await until(() => reports.length >= from + 2, 500)
        // canbus.md's own example: 123#DEADBEEF and 12345678#R2, numbered 0 and 1 from `enabled`
        expect(reportedHex(from)).toBe("00000000230100000004deadbeef|01000000785634120302")
    })
    test("40 frames arrive complete and in order, in reports of whole records of at most 236 bytes", async () => {
        const from = reports.length
        for (let i = 0; i < 40; i++) {
            model.receiveFromBus(0x200 + i, false, false, [i, i, i, i, i, i, i, i])
            // the next frame once the chip has a free buffer: on a loaded test machine a fixed pace would lose
            // frames to the chip's two-buffer limit, which is not what this test is about
            await until(() => (model.regs[0x2c] & 3) !== 3, 200)
        }
        await until(() => {
            let n = 0
            for (let i = from; i < reports.length; i++) n += reports[i].length - 4
            return n >= 40 * 14
        }, 1000)
        let total = 0
        let next = 0x200
        // the two frames of the test before were numbered 0 and 1
        let number = 2
        for (let i = from; i < reports.length; i++) {
            const r = reports[i]
            expect(r.length <= 236).toBe(true)
            expect((r.length - 4) % 14).toBe(0)
            expect(r.getAt(0, "u32")).toBe(number)
            number += (r.length - 4) / 14
            for (let off = 4; off < r.length; off += 14) expect(r.getAt(off, "u32")).toBe(next++)
            total += r.length - 4
        }
        expect(total).toBe(40 * 14)
        expect(server.counters()[2]).toBe(0)
    })
    test("transmit commands are refused and counted in listen-only mode", async () => {
        const failed = server.counters()[TX_FAILED]
        await can.transmit(Buffer.from(hex`2301000000 02 cafe`))
        await until(() => server.counters()[TX_FAILED] > failed, 500)
        expect(server.counters()[TX_FAILED] - failed).toBe(1)
        expect(model.sent.length).toBe(0)
    })
    test("in normal mode packed records reach the bus in order and are counted", async () => {
        await can.mode.write(ds.CanBusMode.Normal)
        await until(() => model.opmode() === 0x00, 500)
        expect(model.opmode()).toBe(0x00)
        const c0 = server.counters()
        // three records: 123#CAFE, 1ABCDEF0#01, 7FF#R3
        await can.transmit(Buffer.from(hex`2301000000 02 cafe f0debc1a01 01 01 ff07000002 03`))
        await until(() => model.sent.length >= 3, 500)
        expect(model.sent.length).toBe(3)
        expect(model.sent[0].id).toBe(0x123)
        expect(model.sent[0].data[1]).toBe(0xfe)
        expect(model.sent[1].id).toBe(0x1abcdef0)
        expect(model.sent[1].ext).toBe(true)
        expect(model.sent[2].rtr).toBe(true)
        expect(model.sent[2].dlc).toBe(3)
        await until(() => server.counters()[1] - c0[1] >= 3, 500)
        expect(server.counters()[1] - c0[1]).toBe(3)
        expect(server.counters()[TX_FAILED] - c0[TX_FAILED]).toBe(0)
    })
})

describe("mcp2515 CanBus server registers and counters", () => {
    test("30 transmit commands while the loop services the chip: each frame sent once, in order", async () => {
        const before = model.sent.length
        const c0 = server.counters()
        const rec = Buffer.from(hex`0000000000 02 5a5a`)
        for (let i = 0; i < 30; i++) {
            rec.setAt(0, "u32", 0x700 + i)
            await server.transmit(rec)
        }
        await until(() => model.sent.length - before >= 30 && server.driver.txInFlight() === 0, 2000)
        expect(model.sent.length - before).toBe(30)
        for (let i = 0; i < 30; i++) expect(model.sent[before + i].id).toBe(0x700 + i)
        expect(server.counters()[TX_FAILED] - c0[TX_FAILED]).toBe(0)
    })
    test("a malformed record is counted and stops its packet; FD is refused", async () => {
        const before = model.sent.length
        const failed = server.counters()[TX_FAILED]
        // the 2nd record claims 9 data bytes (classic maximum is 8)
        await server.transmit(Buffer.from(hex`0100000000 01 aa 0200000000 09 000102030405060708`))
        // an FD record (flags bit 2) on a classic controller
        await server.transmit(Buffer.from(hex`0300000004 01 bb`))
        // a record cut short
        await server.transmit(Buffer.from(hex`04000000 00`))
        await until(() => model.sent.length > before, 200)
        expect(model.sent.length - before).toBe(1)
        expect(model.sent[before].id).toBe(1)
        expect(server.counters()[TX_FAILED] - failed).toBe(3)
    })
    test("bit rate: supported values reprogram CNF, others are ignored", async () => {
        await server.set_bitrate(250000)
        expect(server.bitrate()).toBe(250000)
        expect(model.regs[0x2a]).toBe(0x01)
        await server.set_bitrate(123456)
        expect(server.bitrate()).toBe(250000)
        expect(server.dataBitrate()).toBe(0)
        // still on the bus in normal mode after the reconfiguration
        expect(model.opmode()).toBe(0x00)
    })
    test("a frame lost by the chip is counted in rx_overflow", async () => {
        const o0 = server.counters()[2]
        // three frames before the loop can run: the third finds both buffers full
        model.receiveFromBus(0x301, false, false, [1])
        model.receiveFromBus(0x302, false, false, [2])
        model.receiveFromBus(0x303, false, false, [3])
        await until(() => server.counters()[2] > o0, 200)
        expect(server.counters()[2] - o0).toBe(1)
    })
    test("bus-off shows in bus_state and the counters; recovery returns to error-active", async () => {
        model.setErrorCounters(256, 5)
        await until(() => server.busState() === ds.CanBusBusState.BusOff, 200)
        expect(server.busState()).toBe(ds.CanBusBusState.BusOff)
        const c = server.counters()
        expect(c[5]).toBe(255)
        expect(c[6]).toBe(5)
        const failed = c[TX_FAILED]
        await server.transmit(Buffer.from(hex`0500000000 00`))
        expect(server.counters()[TX_FAILED] - failed).toBe(1)
        model.recoverFromBusOff()
        await until(() => server.busState() === ds.CanBusBusState.ErrorActive, 200)
        expect(server.busState()).toBe(ds.CanBusBusState.ErrorActive)
    })
    test("disabling leaves the bus", async () => {
        await server.set_enabled(false)
        expect(server.busState()).toBe(ds.CanBusBusState.Stopped)
        expect(model.opmode()).toBe(0x80)
        expect(model.receiveFromBus(0x1, false, false, [1])).toBe(RX_NOT_LISTENING)
        // a new bit rate while disabled is programmed but does not put the controller back on the bus
        await server.set_bitrate(125000)
        expect(model.opmode()).toBe(0x80)
        expect(model.regs[0x2a]).toBe(0x03)
        expect(server.busState()).toBe(ds.CanBusBusState.Stopped)
    })
    test("enabling again rejoins in the mode last set", async () => {
        await server.set_enabled(true)
        expect(server.busState()).toBe(ds.CanBusBusState.ErrorActive)
        expect(model.opmode()).toBe(0x00)
        const before = server.counters()[0]
        const from = reports.length
        model.receiveFromBus(0x2, false, false, [2])
        await until(() => server.counters()[0] > before, 500)
        expect(server.counters()[0] - before).toBe(1)
        // the report numbering restarts with `enabled`: the first report after it says 0
        await until(() => reports.length > from, 500)
        expect(reports[from].getAt(0, "u32")).toBe(0)
        await server.set_enabled(false)
    })
    test("a full report queue drops and counts frames instead of growing", async () => {
        // a server that is never serviced by its loop: the driver is polled by hand, nothing is reported
        const m = new Mcp2515Model()
        const s = newServer(m, 64)
        await s.driver.init()
        for (let i = 0; i < 10; i++) {
            m.receiveFromBus(0x400 + i, false, false, [1, 2, 3, 4, 5, 6, 7, 8])
            await s.driver.poll()
        }
        // 64 bytes hold 4 records of 14 bytes; the other 6 are counted
        expect(s.counters()[0]).toBe(10)
        expect(s.counters()[2]).toBe(6)
    })
    test("40 queued frames are flushed as reports of whole records, at most 236 bytes, in order", async () => {
        const m = new Mcp2515Model()
        const s = new CapturingServer(
            { spi: m, interrupt: m.interruptLine, oscillatorHz: 16000000, bitrate: 500000 },
            {}
        )
        await s.driver.init()
        for (let i = 0; i < 40; i++) {
            m.receiveFromBus(0x500 + i, i % 2 === 1, false, [i, 1, 2, 3, 4, 5, 6, i])
            await s.driver.poll()
        }
        await s.flushReports()
        // 16 records of 14 bytes fit in 4 + 224 <= 236: 16 + 16 + 8, numbered 0, 16, 32
        expect(s.sent.length).toBe(3)
        let next = 0
        for (const p of s.sent) {
            expect(p.serviceCommand).toBe(0x90)
            expect(p.isReport).toBe(true)
            const b = p.payload
            expect(b.length <= 236).toBe(true)
            expect(b.getAt(0, "u32")).toBe(next)
            for (let off = 4; off < b.length; off += 14) {
                expect(b.getAt(off, "u32")).toBe(0x500 + next)
                expect(b[off + 4]).toBe(next % 2)
                expect(b[off + 5]).toBe(8)
                expect(b[off + 13]).toBe(next)
                next++
            }
        }
        expect(next).toBe(40)
    })
    test("enabling without a chip leaves the server stopped and says why", async () => {
        const dead = {
            transfer: async (tx: Buffer) => {
                const r = Buffer.alloc(tx.length)
                r.fillAt(0, tx.length, 0xff)
                return r
            },
        }
        const s = new Mcp2515CanBusServer({ spi: dead, oscillatorHz: 8000000 })
        await s.set_enabled(true)
        expect(s.enabled()).toBe(false)
        expect(s.busState()).toBe(ds.CanBusBusState.Stopped)
        expect(s.lastError.indexOf("no controller answered on SPI") >= 0).toBe(true)
    })
    test("an SPI failure during a register write is kept in lastError, never thrown to the Jacdac handler", async () => {
        const m = new Mcp2515Model()
        let broken = false
        const spi = {
            transfer: async (tx: Buffer) => {
                if (broken) throw new Error("spi: bus fault")
                return await m.transfer(tx)
            },
        }
        const s = new Mcp2515CanBusServer({ spi, oscillatorHz: 16000000 })
        await s.set_enabled(true)
        expect(s.enabled()).toBe(true)
        broken = true
        await s.set_mode(ds.CanBusMode.Normal)
        expect(s.lastError).toBe("spi: bus fault")
        await s.set_bitrate(250000)
        // the register keeps the value the chip really has
        expect(s.bitrate()).toBe(500000)
        await s.set_enabled(false)
        expect(s.busState()).toBe(ds.CanBusBusState.Stopped)
    })
})
