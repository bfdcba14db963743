/**
 * Hardware filters made from the gateway's `[value, mask]` key filters must accept exactly the frames the key
 * filters accept. Differential test in the DeviceScript VM: the key rule computed directly vs the register model's
 * acceptance with the translated masks and filters, over pseudo-random frames.
 *   devs run test/mcp2515-keyfilters.ts --test --test-self-exit   (from firmware/)
 */
import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { Mcp2515 } from "../src/mcp2515/driver"
import { keyFiltersToHardware } from "../src/mcp2515/keyfilters"
import { Mcp2515Model, RX_REJECTED } from "./mcp2515-model"

/** The gateway's rule (docs/firmware.md `canFilters`): key = id, bit 31 set for extended; empty = all. */
function keyAccepts(pairs: number[][], id: number, ext: boolean) {
    if (pairs.length === 0) return true
    const key = (ext ? id | 0x80000000 : id) >>> 0
    for (const p of pairs) if ((key & p[1]) >>> 0 === (p[0] & p[1]) >>> 0) return true
    return false
}

/** A small deterministic generator (xorshift32), so a failure can be replayed. */
class Rng {
    constructor(private s: number) {}
    next() {
        let x = this.s
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        this.s = x >>> 0
        return this.s
    }
    below(n: number) {
        // scaled, not `%`: the VM's `%` on values above 2^31 is not to be trusted
        return Math.floor((this.next() / 4294967296) * n)
    }
}

async function compare(pairs: number[][], seed: number, frames: number) {
    const model = new Mcp2515Model()
    const drv = new Mcp2515({ spi: model, oscillatorHz: 16000000, filters: keyFiltersToHardware(pairs) })
    await drv.init()
    const rng = new Rng(seed)
    let accepted = 0
    for (let i = 0; i < frames; i++) {
        const ext = rng.below(2) === 1
        const limit = ext ? 0x1fffffff : 0x7ff
        let id: number
        if (pairs.length > 0 && rng.below(3) > 0) {
            // near a filter value, so that matches are common: flip a few low bits
            const p = pairs[rng.below(pairs.length)]
            id = ((p[0] & limit) ^ rng.below(16)) >>> 0
        } else id = rng.next() & limit
        id = id & limit
        const want = keyAccepts(pairs, id, ext)
        const got = model.receiveFromBus(id, ext, false, [rng.below(256), rng.below(256)]) !== RX_REJECTED
        if (want !== got) console.log(`seed ${seed} frame ${i}: id ${id} ext ${ext}: key filters ${want}, chip ${got}`)
        expect(got).toBe(want)
        if (got) accepted++
        await drv.poll()
        // the VM allows 128K opcodes between two suspensions; the model never suspends
        if (i % 16 === 15) await ds.sleep(0)
    }
    // the cases below are built so that both outcomes occur
    expect(accepted > 0).toBe(true)
    expect(accepted < frames || pairs.length === 0).toBe(true)
}

describe("mcp2515 hardware filters from key filters", () => {
    test("standard only (mask bit 31 set, value bit 31 clear)", async () => {
        await compare([[0x100, 0x800007f0]], 1, 300)
    })
    test("extended only, J1939 PGN-style mask", async () => {
        await compare([[0x98fef100, 0xffffff00]], 2, 300)
    })
    test("either kind (mask bit 31 clear) becomes a standard and an extended filter", async () => {
        expect(keyFiltersToHardware([[0x123, 0x7ff]]).length).toBe(2)
        await compare([[0x123, 0x7ff]], 3, 300)
    })
    test("two groups: standard exact IDs and extended ranges", async () => {
        await compare(
            [
                [0x7e8, 0x800007ff],
                [0x7e9, 0x800007ff],
                [0x98da00f1, 0xffff00ff],
                [0x98db00f1, 0xffff00ff],
            ],
            4,
            400
        )
    })
    test("no filters: everything passes", async () => {
        await compare([], 5, 100)
    })
    test("filter sets the chip cannot hold, or that match nothing, are refused", () => {
        let msg = ""
        try {
            keyFiltersToHardware([
                [0x100, 0x800007ff],
                [0x200, 0x800007f0],
                [0x80000300, 0xffffff00],
            ])
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg.indexOf("distinct masks") >= 0).toBe(true)
        msg = ""
        try {
            // an extended key with bit 30 set: no 29-bit identifier has it
            keyFiltersToHardware([[0xc0000000, 0xc0000000]])
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg.indexOf("match no frame") >= 0).toBe(true)
    })
})
