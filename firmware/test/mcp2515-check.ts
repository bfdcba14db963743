/**
 * The bring-up check against the register model: passes on a working chip, names the fault on broken ones.
 *   devs run test/mcp2515-check.ts --test --test-self-exit   (from firmware/)
 */
import { describe, test, expect } from "@devicescript/test"
import { checkMcp2515 } from "../src/mcp2515/check"
import { SpiTransport } from "../src/mcp2515/driver"
import { Mcp2515Model } from "./mcp2515-model"

describe("mcp2515 bring-up check", () => {
    test("a working chip passes every step and is left stopped", async () => {
        const model = new Mcp2515Model()
        const r = await checkMcp2515({ spi: model, oscillatorHz: 8000000 })
        expect(r.ok).toBe(true)
        expect(r.steps.length).toBe(4)
        expect(r.steps[1]).toBe("ok   loopback frame 5A5#0123456789abcdef")
        expect(r.steps[2]).toBe("ok   loopback frame 1A5A5A5A#fedcba")
        expect(model.opmode()).toBe(0x80)
        // loopback: nothing went out on the bus
        expect(model.sent.length).toBe(0)
    })
    test("no chip: the first step fails with the register values read", async () => {
        const dead: SpiTransport = {
            transfer: async (tx: Buffer) => Buffer.alloc(tx.length),
        }
        const r = await checkMcp2515({ spi: dead, oscillatorHz: 8000000 })
        expect(r.ok).toBe(false)
        expect(r.steps[0].indexOf("CANSTAT=0x00") >= 0).toBe(true)
    })
    test("a data line that drops bit 0 on the way to the chip fails the loopback step", async () => {
        const model = new Mcp2515Model()
        // MOSI bit 0 stuck low, but only for frame bodies: the chip still answers and changes mode
        const faulty: SpiTransport = {
            transfer: async (tx: Buffer) => {
                if ((tx[0] & 0xf8) === 0x40) {
                    const t = Buffer.alloc(tx.length)
                    t.blitAt(0, tx, 0, tx.length)
                    for (let i = 6; i < t.length; i++) t[i] = t[i] & 0xfe
                    return await model.transfer(t)
                }
                return await model.transfer(tx)
            },
        }
        const r = await checkMcp2515({ spi: faulty, oscillatorHz: 16000000 })
        expect(r.ok).toBe(false)
        expect(r.steps[1].indexOf("FAIL loopback frame") === 0).toBe(true)
    })
})
