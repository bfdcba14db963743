/**
 * Board bring-up check for an MCP2515: does the chip answer, does it hold what is written, and does a frame make
 * the round trip through the controller (loopback mode: nothing reaches the bus, so it is safe on a vehicle).
 * Each step names what to inspect when it fails.
 */
import * as ds from "@devicescript/core"
import { FRAME_EXT, Mcp2515, Mcp2515Mode, Mcp2515Options } from "./driver"

export interface Mcp2515CheckResult {
    ok: boolean
    /** one line per step: "ok ..." or "FAIL ..." */
    steps: string[]
}

/** Frames sent in loopback: one standard, one extended, data chosen so that swapped or shifted bytes show. */
const PROBES = [
    { id: 0x5a5, flags: 0, data: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef] },
    { id: 0x1a5a5a5a, flags: FRAME_EXT, data: [0xfe, 0xdc, 0xba] },
]

/** A frame in the can-utils text form (`5A5#0123`, `1A5A5A5A#fedcba`); DeviceScript has no number.toString(16). */
function frameText(id: number, flags: number, data: Buffer) {
    const digits = "0123456789ABCDEF"
    const n = flags & FRAME_EXT ? 8 : 3
    const out: string[] = []
    for (let i = n - 1; i >= 0; i--) out.push(digits[(id >> (4 * i)) & 15])
    return out.join("") + "#" + data.toString("hex")
}

/**
 * Run the check on a chip that nothing else is using. Leaves it stopped (configuration mode).
 * Only `spi` and `oscillatorHz` of the options are used.
 */
export async function checkMcp2515(options: Mcp2515Options): Promise<Mcp2515CheckResult> {
    const steps: string[] = []
    const got: string[] = []
    const drv = new Mcp2515({
        spi: options.spi,
        oscillatorHz: options.oscillatorHz,
        bitrate: 125000,
        mode: Mcp2515Mode.Loopback,
        onFrame: (id, flags, len, data, off) => {
            got.push(frameText(id, flags, data.slice(off, off + len)))
        },
    })
    try {
        await drv.init()
        steps.push("ok   chip answers on SPI and enters loopback mode")
    } catch (e) {
        steps.push(`FAIL ${(e as Error).message}`)
        return { ok: false, steps }
    }
    for (const p of PROBES) {
        const d = Buffer.from(p.data)
        const want = frameText(p.id, p.flags, d)
        const before = got.length
        await drv.transmit(p.id, p.flags, d, 0, d.length)
        for (let i = 0; i < 50 && got.length === before; i++) {
            await drv.poll()
            if (got.length === before) await ds.sleep(2)
        }
        if (got.length > before && got[before] === want) steps.push(`ok   loopback frame ${want}`)
        else {
            steps.push(
                `FAIL loopback frame ${want}: got ${got.length > before ? got[before] : "nothing"} (check MISO/MOSI, SPI mode and clock, the crystal)`
            )
            await drv.stop()
            return { ok: false, steps }
        }
    }
    await drv.stop()
    steps.push("ok   controller stopped (configuration mode)")
    return { ok: true, steps }
}
