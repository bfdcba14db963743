/**
 * The boot id: a u32 that differs on every boot, so receivers can tell boots apart by (boot, seq).
 * `Math.random()` alone is not enough: the simulator seeds it identically on every start. So the id also mixes in
 * timing jitter (how many yields fit in one millisecond tick, which varies from run to run on any machine)
 * and the uptime at which the program got here.
 */
import * as ds from "@devicescript/core"

/** One step of a 32-bit multiplicative hash (16-bit halves keep every product exact in doubles). */
export function mix(h: number, v: number): number {
    h = (h ^ v) >>> 0
    const lo = (h & 0xffff) * 0x85eb
    const hi = (((h >>> 16) * 0x85eb) & 0xffff) * 0x10000
    h = (lo + hi) >>> 0
    return (h ^ (h >>> 13)) >>> 0
}

export async function makeBootId(): Promise<number> {
    let h = mix(0x9e3779b9, Math.floor(Math.random() * 0x100000000))
    h = mix(h, ds.millis())
    // ds.millis() only advances at awaits: count the yields until the next tick
    for (let i = 0; i < 8; i++) {
        const t = ds.millis()
        let n = 0
        while (ds.millis() === t && n < 1000) {
            await ds.sleep(0)
            n++
        }
        h = mix(h, n)
    }
    return h === 0 ? 1 : h
}
