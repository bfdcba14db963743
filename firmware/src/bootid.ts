/**
 * The boot id: a u32 that differs on every boot, so receivers tell boots apart by (boot, seq). It comes from the
 * runtime's cryptographic random source (hardware RNG on the ESP32, Node's crypto in the simulator):
 * `Math.random()` is seeded identically on every start of the simulator, so it would repeat ids.
 */
import { randomBuffer } from "@devicescript/crypto"

export function makeBootId(): number {
    const id = randomBuffer(4).getAt(0, "u32")
    return id === 0 ? 1 : id
}
