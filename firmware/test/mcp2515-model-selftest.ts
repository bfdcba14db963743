/**
 * The register-level MCP2515 model checked byte by byte against the data sheet (DS20001801J), so that the driver
 * tests rest on a model that behaves as documented. Runs in the DeviceScript VM:
 *   devs run test/mcp2515-model-selftest.ts --test --test-self-exit   (from firmware/)
 */
import { describe, test, expect } from "@devicescript/test"
import * as R from "../src/mcp2515/registers"
import { Mcp2515Model, RX_TO_BUFFER0, RX_TO_BUFFER1 } from "./mcp2515-model"

function xfer(m: Mcp2515Model, bytes: number[]): Buffer {
    return m.transferSync(Buffer.from(bytes))
}

function read(m: Mcp2515Model, addr: number): number {
    return xfer(m, [R.INSTR_READ, addr, 0])[2]
}

function toConfig(m: Mcp2515Model) {
    xfer(m, [R.INSTR_WRITE, R.REG_CANCTRL, 0x80])
    xfer(m, [R.INSTR_READ, R.REG_CANSTAT, 0])
}

function toNormal(m: Mcp2515Model) {
    xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANCTRL, 0xe0, 0x00])
    xfer(m, [R.INSTR_READ, R.REG_CANSTAT, 0])
}

describe("mcp2515 model: SPI instruction set", () => {
    test("RESET values and the CANSTAT/CANCTRL mirrors at xEh/xFh", () => {
        const m = new Mcp2515Model()
        xfer(m, [R.INSTR_RESET])
        expect(read(m, 0x0e)).toBe(0x80)
        expect(read(m, 0x0f)).toBe(0x87)
        expect(read(m, 0x3e)).toBe(0x80)
        expect(read(m, 0x7f)).toBe(0x87)
    })
    test("READ auto-increments the address", () => {
        const m = new Mcp2515Model()
        toConfig(m)
        xfer(m, [R.INSTR_WRITE, R.REG_CNF3, 0x05, 0x06, 0x07])
        const r = xfer(m, [R.INSTR_READ, R.REG_CNF3, 0, 0, 0])
        expect(r[2]).toBe(0x05)
        expect(r[3]).toBe(0x06)
        expect(r[4]).toBe(0x07)
    })
    test("configuration registers are locked outside configuration mode", () => {
        const m = new Mcp2515Model()
        toNormal(m)
        expect(m.opmode()).toBe(R.OPMODE_NORMAL)
        xfer(m, [R.INSTR_WRITE, R.REG_CNF1, 0x03])
        expect(read(m, R.REG_CNF1)).toBe(0)
        expect(m.ignoredWrites).toBe(1)
        toConfig(m)
        xfer(m, [R.INSTR_WRITE, R.REG_CNF1, 0x03])
        expect(read(m, R.REG_CNF1)).toBe(0x03)
    })
    test("a mode request shows in CANSTAT one transfer later", () => {
        const m = new Mcp2515Model()
        xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANCTRL, 0xe0, R.OPMODE_LISTEN_ONLY])
        expect(m.opmode()).toBe(R.OPMODE_CONFIG)
        expect(read(m, R.REG_CANSTAT) & 0xe0).toBe(R.OPMODE_LISTEN_ONLY)
    })
    test("BIT MODIFY masks on bit-modifiable registers and writes whole bytes elsewhere", () => {
        const m = new Mcp2515Model()
        xfer(m, [R.INSTR_WRITE, R.REG_CANINTE, 0xf0])
        xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANINTE, 0x30, 0x0f])
        expect(read(m, R.REG_CANINTE)).toBe(0xc0)
        // RXF0SIDH is not bit-modifiable: the mask acts as 0xFF (table 11-1)
        xfer(m, [R.INSTR_WRITE, 0x00, 0xff])
        xfer(m, [R.INSTR_BIT_MODIFY, 0x00, 0x01, 0x00])
        expect(read(m, 0x00)).toBe(0x00)
    })
    test("LOAD TX BUFFER at D0 and RTS; READ STATUS shows TXREQ and TXnIF", () => {
        const m = new Mcp2515Model()
        m.holdTransmissions = true
        toNormal(m)
        // TXB1: id via LOAD TX BUFFER 0x42, data via 0x43 (D0 start)
        xfer(m, [R.INSTR_LOAD_TX_BUFFER | 2, 0x24, 0x60, 0, 0, 2])
        xfer(m, [R.INSTR_LOAD_TX_BUFFER | 3, 0xaa, 0xbb])
        expect(read(m, 0x46)).toBe(0xaa)
        xfer(m, [R.INSTR_RTS | 2])
        expect(xfer(m, [R.INSTR_READ_STATUS, 0])[1]).toBe(R.STATUS_TX1REQ)
        m.releaseTransmissions()
        expect(xfer(m, [R.INSTR_READ_STATUS, 0])[1]).toBe(R.STATUS_TX1IF)
        expect(m.sent.length).toBe(1)
        expect(m.sent[0].id).toBe(0x123)
        expect(m.sent[0].data[1]).toBe(0xbb)
    })
    test("ABAT aborts pending buffers and sets ABTF", () => {
        const m = new Mcp2515Model()
        m.holdTransmissions = true
        toNormal(m)
        xfer(m, [R.INSTR_RTS | 1])
        xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANCTRL, R.CANCTRL_ABAT, R.CANCTRL_ABAT])
        const c = read(m, 0x30)
        expect(c & R.TXBCTRL_TXREQ).toBe(0)
        expect(c & R.TXBCTRL_ABTF).toBe(R.TXBCTRL_ABTF)
    })
    test("READ RX BUFFER at D0 clears only its RXnIF; RX STATUS reports type and filter", () => {
        const m = new Mcp2515Model()
        toConfig(m)
        xfer(m, [R.INSTR_WRITE, R.REG_RXB0CTRL, 0x64])
        xfer(m, [R.INSTR_WRITE, R.REG_RXB1CTRL, 0x60])
        xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANCTRL, 0xe0, R.OPMODE_LISTEN_ONLY])
        expect(read(m, R.REG_CANSTAT) & 0xe0).toBe(R.OPMODE_LISTEN_ONLY)
        expect(m.receiveFromBus(0x18fef100, true, false, [9, 8])).toBe(RX_TO_BUFFER0)
        // rolled over into RXB1; a standard remote frame
        expect(m.receiveFromBus(0x7ff, false, true, [], 1)).toBe(RX_TO_BUFFER1)
        // both full; RXB0 holds an extended data frame
        expect(xfer(m, [R.INSTR_RX_STATUS, 0])[1]).toBe(0xc0 | 0x10)
        const d = xfer(m, [R.INSTR_READ_RX_BUFFER | 2, 0, 0])
        expect(d[1]).toBe(9)
        expect(d[2]).toBe(8)
        expect(read(m, R.REG_CANINTF) & 3).toBe(R.INT_RX1)
        // now only RXB1: standard remote, reached by rollover from RXF0 (code 110)
        expect(xfer(m, [R.INSTR_RX_STATUS, 0])[1]).toBe(0x80 | 0x08 | 0x06)
        xfer(m, [R.INSTR_READ_RX_BUFFER | 4, 0, 0, 0, 0, 0])
        expect(read(m, R.REG_CANINTF) & 3).toBe(0)
    })
    test("standard filters with EID mask bits filter the first two data bytes", () => {
        const m = new Mcp2515Model()
        toConfig(m)
        // RXM0: all SID bits and all 16 data-byte bits; RXF0: id 0x100, data 0x12 0x34
        xfer(m, [R.INSTR_WRITE, R.REG_RXM0, 0xff, 0xe0, 0xff, 0xff])
        xfer(m, [R.INSTR_WRITE, 0x00, 0x20, 0x00, 0x12, 0x34, 0x20, 0x00, 0x12, 0x34])
        xfer(m, [R.INSTR_WRITE, R.REG_RXB0CTRL, 0x00])
        xfer(m, [R.INSTR_WRITE, R.REG_RXB1CTRL, 0x00])
        // RXB1 filters: extended only, so they take no standard frame
        xfer(m, [R.INSTR_WRITE, 0x08, 0x00, 0x08, 0, 0])
        xfer(m, [R.INSTR_WRITE, 0x10, 0x00, 0x08, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x08, 0, 0])
        xfer(m, [R.INSTR_WRITE, R.REG_RXM1, 0xff, 0xe3, 0xff, 0xff])
        xfer(m, [R.INSTR_BIT_MODIFY, R.REG_CANCTRL, 0xe0, R.OPMODE_LISTEN_ONLY])
        xfer(m, [R.INSTR_READ, 0, 0])
        expect(m.receiveFromBus(0x100, false, false, [0x12, 0x35])).toBe(-1)
        expect(m.receiveFromBus(0x100, false, false, [0x12, 0x34, 0x99])).toBe(RX_TO_BUFFER0)
    })
})
