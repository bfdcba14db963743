/**
 * Uptimes and counters as the protocol carries them: modulo 2^32 (docs/protocol.md, "Wrap-around"). `ds.millis()`
 * passes 2^32 after 49.7 days and a busy bus's `rx` after days; both keep counting on the host's side of the wrap.
 */
const TWO32 = 4294967296

/** `ms` (or any count) modulo 2^32. */
export function uptime32(ms: number): number {
    // not `%`: DeviceScript's remainder works on 32-bit integers
    return ms < TWO32 ? ms : ms - Math.floor(ms / TWO32) * TWO32
}

/** `a - b` for two uptimes modulo 2^32, as a signed 32-bit distance: wrap-aware "how far a is after b". */
export function wrapDiff(a: number, b: number): number {
    return (a - b) | 0
}
