/**
 * MCP2515 bit timing: the CNF1/CNF2/CNF3 values vgw uses, and a decoder that recomputes
 * bit rate and sample point from any CNF triple while checking the data sheet's rules.
 *
 * Data sheet DS20001801J section 5 (https://ww1.microchip.com/downloads/en/DeviceDoc/MCP2515-Stand-Alone-CAN-Controller-with-SPI-20001801J.pdf):
 * - TQ = 2 x (BRP + 1) / FOSC (5.3); bit time = SyncSeg (1 TQ) + PropSeg + PS1 + PS2.
 * - PropSeg 1..8 TQ, PS1 1..8 TQ, PS2 2..8 TQ (5.2.2, 5.2.3); SJW 1..4 TQ (5.2.6).
 * - PropSeg + PS1 >= PS2, PropSeg + PS1 >= TDELAY (2 TQ), PS2 > SJW (5.3 "Programming Time Segments").
 * - The sample point is at the end of PS1 (5.2.4). CNF2.BTLMODE = 1 makes PS2 come from CNF3 (5.5.2).
 *
 * Choice of values: sample point 87.5 % (the CiA 301 recommendation) wherever the time quanta allow it,
 * SJW = 1 TQ, one sample per bit (SAM = 0). With only 8 TQ per bit (16 MHz at 1 Mbit/s, 8 MHz at 500 kbit/s)
 * PS2 cannot be shorter than 2 TQ, so the sample point is 6/8 = 75 %.
 * 8 MHz at 1 Mbit/s would need 4 TQ per bit; the rules above need at least 5 (1 + 2 + 2), so that pair is
 * rejected rather than programmed out of specification.
 */

import { CNF2_BTLMODE, CNF2_SAM } from "./registers"

/** One row of the table: register values for a crystal and a bit rate. */
export interface BitTimingEntry {
    oscillatorHz: number
    bitrate: number
    cnf1: number
    cnf2: number
    cnf3: number
    /** sample point in per mille of the bit time, as documented (checked by a test against the CNF values) */
    samplePointPermille: number
}

/** Decoded CNF registers. */
export interface BitTiming {
    brp: number
    sjw: number
    propSeg: number
    phaseSeg1: number
    phaseSeg2: number
    tripleSample: boolean
    /** time quanta per bit, SyncSeg included */
    quantaPerBit: number
    /** bit/s; an exact integer for every table row */
    bitrate: number
    samplePointPermille: number
}

/** Crystals the table covers. */
export const SUPPORTED_OSCILLATORS = [8000000, 16000000]
/** Bit rates the table covers (the CanBus contract's minimum set). */
export const SUPPORTED_BITRATES = [125000, 250000, 500000, 1000000]

/**
 * The table. Segments per row (SyncSeg + PropSeg + PS1 + PS2 = TQ per bit, sample point):
 * - 16 MHz 1000k: BRP 0, TQ 125 ns, 1+2+3+2 = 8, 75.0 %
 * - 16 MHz  500k: BRP 0, TQ 125 ns, 1+5+8+2 = 16, 87.5 %
 * - 16 MHz  250k: BRP 1, TQ 250 ns, 1+5+8+2 = 16, 87.5 %
 * - 16 MHz  125k: BRP 3, TQ 500 ns, 1+5+8+2 = 16, 87.5 %
 * -  8 MHz  500k: BRP 0, TQ 250 ns, 1+2+3+2 = 8, 75.0 %
 * -  8 MHz  250k: BRP 0, TQ 250 ns, 1+5+8+2 = 16, 87.5 %
 * -  8 MHz  125k: BRP 1, TQ 500 ns, 1+5+8+2 = 16, 87.5 %
 * CNF1 = (SJW-1) << 6 | BRP; CNF2 = BTLMODE | (PS1-1) << 3 | (PropSeg-1); CNF3 = PS2-1.
 */
export const BIT_TIMING_TABLE: BitTimingEntry[] = [
    { oscillatorHz: 16000000, bitrate: 1000000, cnf1: 0x00, cnf2: 0x91, cnf3: 0x01, samplePointPermille: 750 },
    { oscillatorHz: 16000000, bitrate: 500000, cnf1: 0x00, cnf2: 0xbc, cnf3: 0x01, samplePointPermille: 875 },
    { oscillatorHz: 16000000, bitrate: 250000, cnf1: 0x01, cnf2: 0xbc, cnf3: 0x01, samplePointPermille: 875 },
    { oscillatorHz: 16000000, bitrate: 125000, cnf1: 0x03, cnf2: 0xbc, cnf3: 0x01, samplePointPermille: 875 },
    { oscillatorHz: 8000000, bitrate: 500000, cnf1: 0x00, cnf2: 0x91, cnf3: 0x01, samplePointPermille: 750 },
    { oscillatorHz: 8000000, bitrate: 250000, cnf1: 0x00, cnf2: 0xbc, cnf3: 0x01, samplePointPermille: 875 },
    { oscillatorHz: 8000000, bitrate: 125000, cnf1: 0x01, cnf2: 0xbc, cnf3: 0x01, samplePointPermille: 875 },
]

/**
 * The table row for a crystal and bit rate.
 * @throws RangeError naming what is supported when the pair is not in the table
 */
export function bitTimingFor(oscillatorHz: number, bitrate: number): BitTimingEntry {
    for (const e of BIT_TIMING_TABLE) {
        if (e.oscillatorHz === oscillatorHz && e.bitrate === bitrate) return e
    }
    if (oscillatorHz === 8000000 && bitrate === 1000000)
        throw new RangeError(
            "mcp2515: 1000000 bit/s needs a 16 MHz crystal (8 MHz gives 4 time quanta per bit; the data sheet needs at least 5)"
        )
    throw new RangeError(
        `mcp2515: no bit timing for ${bitrate} bit/s with a ${oscillatorHz} Hz crystal (supported: 125000, 250000, 500000 at 8 or 16 MHz; 1000000 at 16 MHz)`
    )
}

/**
 * Recompute bit rate and sample point from CNF1/2/3 and check the data sheet's segment rules.
 * @throws RangeError naming the violated rule
 */
export function decodeBitTiming(oscillatorHz: number, cnf1: number, cnf2: number, cnf3: number): BitTiming {
    const brp = cnf1 & 0x3f
    const sjw = ((cnf1 >> 6) & 0x03) + 1
    const propSeg = (cnf2 & 0x07) + 1
    const phaseSeg1 = ((cnf2 >> 3) & 0x07) + 1
    if (!(cnf2 & CNF2_BTLMODE))
        throw new RangeError("mcp2515: CNF2.BTLMODE must be 1 so that PS2 comes from CNF3")
    const phaseSeg2 = (cnf3 & 0x07) + 1
    if (phaseSeg2 < 2) throw new RangeError("mcp2515: PS2 must be at least 2 TQ (information processing time)")
    if (propSeg + phaseSeg1 < phaseSeg2) throw new RangeError("mcp2515: PropSeg + PS1 must be >= PS2")
    if (propSeg + phaseSeg1 < 2) throw new RangeError("mcp2515: PropSeg + PS1 must be >= TDELAY (2 TQ)")
    if (!(phaseSeg2 > sjw)) throw new RangeError("mcp2515: PS2 must be longer than SJW")
    const quantaPerBit = 1 + propSeg + phaseSeg1 + phaseSeg2
    // TQ = 2 (BRP + 1) / FOSC, so bit rate = FOSC / (2 (BRP + 1) quanta)
    const bitrate = oscillatorHz / (2 * (brp + 1) * quantaPerBit)
    const samplePointPermille = Math.round(((1 + propSeg + phaseSeg1) * 1000) / quantaPerBit)
    return {
        brp,
        sjw,
        propSeg,
        phaseSeg1,
        phaseSeg2,
        tripleSample: (cnf2 & CNF2_SAM) !== 0,
        quantaPerBit,
        bitrate,
        samplePointPermille,
    }
}
