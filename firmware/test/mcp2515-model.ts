/**
 * Register-level model of the MCP2515, for the driver's VM tests. Test code only.
 *
 * It answers the SPI instruction set byte for byte (RESET, READ, WRITE, BIT MODIFY, READ STATUS, RX STATUS,
 * READ RX BUFFER, LOAD TX BUFFER, RTS) on a 128-byte register file, and models what the driver depends on:
 * operation modes (with the CANSTAT change one transfer late, as a real mode change waits for bus idle),
 * configuration-mode-only registers, read-only bits, acceptance masks/filters for standard and extended frames,
 * RXB0 -> RXB1 rollover, RX0OVR/RX1OVR, transmit priority, abort, loopback, interrupt flags and the INT line,
 * TEC/REC with EFLG and bus-off. Section numbers refer to Microchip DS20001801J.
 *
 * Frames enter "from the bus" through `receiveFromBus`; frames the chip puts on the bus are captured in `sent`.
 */
import * as ds from "@devicescript/core"
import * as R from "../src/mcp2515/registers"
import { BIT_MODIFY_REGISTERS, REG_RXF, REG_TXB_CTRL } from "../src/mcp2515/registers"

export interface ModelFrame {
    id: number
    ext: boolean
    rtr: boolean
    /** DLC as on the wire (0..15) */
    dlc: number
    data: number[]
}

/** Where `receiveFromBus` put a frame. */
export const RX_TO_BUFFER0 = 0
export const RX_TO_BUFFER1 = 1
/** no filter accepted it */
export const RX_REJECTED = -1
/** accepted, but the buffer was full: RXnOVR set, frame lost */
export const RX_OVERFLOW = -2
/** the chip was not listening (configuration, sleep or loopback mode) */
export const RX_NOT_LISTENING = -3

/** Registers writable only in configuration mode (section 5.5, 4.5): CNF1..3, filters, masks. */
function configOnly(addr: number) {
    if (addr >= 0x00 && addr <= 0x0b) return true
    if (addr >= 0x10 && addr <= 0x1b) return true
    if (addr >= 0x20 && addr <= 0x2a) return true
    return false
}

/** The INT pin of a model, read like a `ds.InputPin`: `value` follows the interrupt flags after every change. */
export class ModelInterruptLine {
    value = 1
}

export class Mcp2515Model {
    readonly regs = Buffer.alloc(128)
    /** frames the chip transmitted on the bus (normal mode), oldest first */
    readonly sent: ModelFrame[] = []
    /** writes the chip ignored because the register is locked outside configuration mode */
    ignoredWrites = 0
    unknownInstructions = 0
    transfers = 0
    /** true: the bus is busy and pending transmissions wait (to observe priority); see `releaseTransmissions` */
    holdTransmissions = false
    /**
     * true: nobody on the bus acknowledges (the gateway alone on a bench bus). Each transfer then makes one failed
     * attempt: TXERR and MERRF set, TEC + 8 up to 128 (an error-passive transmitter does not count ACK errors further,
     * ISO 11898-1), the frame stays pending, as the chip retries for ever.
     */
    ackMissing = false
    /** REQOP written but not yet reflected in CANSTAT: applied at the start of the next transfer */
    private pendingMode = -1

    constructor() {
        this.reset()
    }

    // ------------------------------------------------------------ state helpers

    opmode() {
        return this.regs[R.REG_CANSTAT] & R.CANSTAT_OPMOD_MASK
    }

    /** INT pin level: low (0) while any enabled interrupt flag is set (section 7). */
    intLevel() {
        return this.regs[R.REG_CANINTF] & this.regs[R.REG_CANINTE] ? 0 : 1
    }

    /** An object shaped like an input pin, for the driver's `interrupt` option. */
    readonly interruptLine = new ModelInterruptLine()

    reset() {
        this.regs.fillAt(0, 128, 0)
        this.regs[R.REG_CANSTAT] = R.CANSTAT_AFTER_RESET
        this.regs[R.REG_CANCTRL] = R.CANCTRL_AFTER_RESET
        this.pendingMode = -1
        this.updateIcod()
    }

    /** CANSTAT/CANCTRL are mirrored at every xEh/xFh address. */
    private canonical(addr: number) {
        addr &= 0x7f
        const low = addr & 0x0f
        if (low === 0x0e) return R.REG_CANSTAT
        if (low === 0x0f) return R.REG_CANCTRL
        return addr
    }

    private readReg(addr: number) {
        return this.regs[this.canonical(addr)]
    }

    /** A register write as the SPI WRITE instruction performs it: locks and read-only bits applied. */
    private writeReg(address: number, v: number) {
        const addr = this.canonical(address)
        const old = this.regs[addr]
        if (configOnly(addr) && this.opmode() !== R.OPMODE_CONFIG) {
            this.ignoredWrites++
            return
        }
        if (addr === R.REG_CANSTAT || addr === R.REG_TEC || addr === R.REG_REC) return
        if (addr >= 0x61 && addr <= 0x6d) return
        if (addr >= 0x71 && addr <= 0x7d) return
        if (addr === R.REG_CANCTRL) {
            this.regs[addr] = v
            const req = v & R.CANCTRL_REQOP_MASK
            if (req !== this.opmode()) this.pendingMode = req
            if (v & R.CANCTRL_ABAT) this.abortAll()
            return
        }
        if (addr === R.REG_EFLG) {
            // only RX1OVR/RX0OVR are writable (register 6-3), and only to clear them in practice
            this.regs[addr] = (old & 0x3f) | (v & 0xc0)
            return
        }
        if (addr === R.REG_RXB0CTRL) {
            this.regs[addr] = (old & ~0x64) | (v & 0x64)
            // BUKT1 is a read-only copy of BUKT
            this.regs[addr] = (this.regs[addr] & ~R.RXB0CTRL_BUKT1) | (v & R.RXB0CTRL_BUKT ? R.RXB0CTRL_BUKT1 : 0)
            return
        }
        if (addr === R.REG_RXB1CTRL) {
            this.regs[addr] = (old & ~0x60) | (v & 0x60)
            return
        }
        for (let n = 0; n < 3; n++) {
            const ctrl = REG_TXB_CTRL[n]
            if (addr === ctrl) {
                // ABTF, MLOA, TXERR are read-only; TXREQ set requests, clear aborts
                this.regs[addr] = (old & 0x70) | (v & 0x0b)
                if (v & R.TXBCTRL_TXREQ && this.regs[R.REG_CANCTRL] & R.CANCTRL_ABAT) this.abortAll()
                return
            }
            if (addr > ctrl && addr <= ctrl + R.BUFFER_BODY_LENGTH) {
                // the buffer body is locked while its TXREQ is set (section 3.1)
                if (this.regs[ctrl] & R.TXBCTRL_TXREQ) {
                    this.ignoredWrites++
                    return
                }
            }
        }
        this.regs[addr] = v
    }

    private isBitModifiable(addr: number) {
        return BIT_MODIFY_REGISTERS.indexOf(addr) >= 0
    }

    // ------------------------------------------------------------ SPI

    /**
     * < 0: a transfer completes without yielding. >= 0: each transfer sleeps this many ms first, so other fibers run
     * in between, as they do around a real SPI transfer on the board.
     */
    transferDelayMs = -1

    /** One chip-select cycle: `tx` in on MOSI, the returned buffer out on MISO. */
    async transfer(tx: Buffer): Promise<Buffer> {
        if (this.transferDelayMs >= 0) await ds.sleep(this.transferDelayMs)
        return this.transferSync(tx)
    }

    transferSync(tx: Buffer): Buffer {
        this.transfers++
        if (this.pendingMode >= 0) {
            // the requested mode took effect between two transfers
            this.regs[R.REG_CANSTAT] = (this.regs[R.REG_CANSTAT] & ~R.CANSTAT_OPMOD_MASK) | this.pendingMode
            this.pendingMode = -1
        }
        const rx = Buffer.alloc(tx.length)
        if (tx.length === 0) return rx
        const op = tx[0]
        if (op === R.INSTR_RESET) {
            this.reset()
        } else if (op === R.INSTR_READ) {
            const a = tx[1]
            for (let i = 2; i < tx.length; i++) rx[i] = this.readReg((a + i - 2) & 0x7f)
        } else if (op === R.INSTR_WRITE) {
            const a = tx[1]
            for (let i = 2; i < tx.length; i++) this.writeReg((a + i - 2) & 0x7f, tx[i])
        } else if (op === R.INSTR_BIT_MODIFY) {
            if (tx.length >= 4) {
                const a = this.canonical(tx[1])
                const mask = this.isBitModifiable(a) ? tx[2] : 0xff
                this.writeReg(a, (this.regs[a] & ~mask) | (tx[3] & mask))
            }
        } else if (op === R.INSTR_READ_STATUS) {
            const s = this.readStatus()
            for (let i = 1; i < tx.length; i++) rx[i] = s
        } else if (op === R.INSTR_RX_STATUS) {
            const s = this.rxStatus()
            for (let i = 1; i < tx.length; i++) rx[i] = s
        } else if ((op & 0xf9) === R.INSTR_READ_RX_BUFFER) {
            const n = (op >> 2) & 1
            const start = (n ? R.REG_RXB1CTRL : R.REG_RXB0CTRL) + 1 + (op & 0x02 ? 5 : 0)
            for (let i = 1; i < tx.length; i++) rx[i] = this.readReg((start + i - 1) & 0x7f)
            // RXnIF clears when CS rises at the end of this instruction (section 12.4)
            this.regs[R.REG_CANINTF] &= ~(n ? R.INT_RX1 : R.INT_RX0)
        } else if ((op & 0xf8) === R.INSTR_LOAD_TX_BUFFER && (op & 7) <= 5) {
            const abc = op & 7
            const start = REG_TXB_CTRL[abc >> 1] + 1 + (abc & 1 ? 5 : 0)
            for (let i = 1; i < tx.length; i++) this.writeReg((start + i - 1) & 0x7f, tx[i])
        } else if ((op & 0xf8) === R.INSTR_RTS) {
            for (let n = 0; n < 3; n++) {
                if (op & (1 << n)) this.writeReg(REG_TXB_CTRL[n], this.regs[REG_TXB_CTRL[n]] | R.TXBCTRL_TXREQ)
            }
        } else {
            this.unknownInstructions++
        }
        this.transmitPending()
        this.updateIcod()
        return rx
    }

    private readStatus() {
        const f = this.regs[R.REG_CANINTF]
        let s = f & (R.INT_RX0 | R.INT_RX1)
        for (let n = 0; n < 3; n++) {
            if (this.regs[REG_TXB_CTRL[n]] & R.TXBCTRL_TXREQ) s |= R.STATUS_TX0REQ << (2 * n)
            if (f & (R.INT_TX0 << n)) s |= R.STATUS_TX0IF << (2 * n)
        }
        return s
    }

    /** RX STATUS (figure 12-9): which buffers hold a message, its type, and the filter that matched. */
    private rxStatus() {
        const f = this.regs[R.REG_CANINTF]
        let s = (f & R.INT_RX0 ? 0x40 : 0) | (f & R.INT_RX1 ? 0x80 : 0)
        if (!(f & (R.INT_RX0 | R.INT_RX1))) return s
        // message type and filter of the buffer reported first (RXB0 when both are full)
        const base = f & R.INT_RX0 ? R.REG_RXB0CTRL : R.REG_RXB1CTRL
        const sidl = this.regs[base + 2]
        const ext = (sidl & R.SIDL_EXIDE) !== 0
        const rtr = ext ? (this.regs[base + 5] & R.DLC_RTR) !== 0 : (sidl & R.SIDL_SRR) !== 0
        s |= (ext ? 0x10 : 0) | (rtr ? 0x08 : 0)
        if (base === R.REG_RXB0CTRL) s |= this.regs[base] & R.RXB0CTRL_FILHIT0
        else {
            const hit = this.regs[base] & R.RXB1CTRL_FILHIT_MASK
            // rollover hits of RXF0/RXF1 are reported as 110/111
            s |= hit < 2 ? 6 + hit : hit
        }
        return s
    }

    private updateIcod() {
        // ICOD: highest-priority pending enabled interrupt (table 10-? in CANSTAT): ERR > WAK > TX0 > TX1 > TX2 > RX0 > RX1
        const f = this.regs[R.REG_CANINTF] & this.regs[R.REG_CANINTE]
        let icod = 0
        if (f & R.INT_ERR) icod = 1
        else if (f & R.INT_WAK) icod = 2
        else if (f & R.INT_TX0) icod = 3
        else if (f & R.INT_TX1) icod = 4
        else if (f & R.INT_TX2) icod = 5
        else if (f & R.INT_RX0) icod = 6
        else if (f & R.INT_RX1) icod = 7
        this.regs[R.REG_CANSTAT] = (this.regs[R.REG_CANSTAT] & ~R.CANSTAT_ICOD_MASK) | (icod << 1)
        this.interruptLine.value = this.intLevel()
    }

    // ------------------------------------------------------------ transmit

    private abortAll() {
        for (let n = 0; n < 3; n++) {
            const c = REG_TXB_CTRL[n]
            if (this.regs[c] & R.TXBCTRL_TXREQ) this.regs[c] = (this.regs[c] & ~R.TXBCTRL_TXREQ) | R.TXBCTRL_ABTF
        }
    }

    /** Let a held bus go: transmit every pending buffer in priority order. */
    releaseTransmissions() {
        const hold = this.holdTransmissions
        this.holdTransmissions = false
        this.transmitPending()
        this.holdTransmissions = hold
        this.updateIcod()
    }

    /** Highest TXP first; equal TXP: highest buffer number first (section 3.2). */
    private nextPendingBuffer() {
        let best = -1
        let bestPrio = -1
        for (let n = 2; n >= 0; n--) {
            const c = this.regs[REG_TXB_CTRL[n]]
            if (c & R.TXBCTRL_TXREQ && (c & R.TXBCTRL_TXP_MASK) > bestPrio) {
                best = n
                bestPrio = c & R.TXBCTRL_TXP_MASK
            }
        }
        return best
    }

    private transmitPending() {
        const mode = this.opmode()
        if (this.holdTransmissions) return
        if (mode !== R.OPMODE_NORMAL && mode !== R.OPMODE_LOOPBACK) return
        if (this.regs[R.REG_EFLG] & R.EFLG_TXBO) return
        if (this.ackMissing && mode === R.OPMODE_NORMAL) {
            const n = this.nextPendingBuffer()
            if (n < 0) return
            this.regs[REG_TXB_CTRL[n]] |= R.TXBCTRL_TXERR
            this.regs[R.REG_CANINTF] |= R.INT_MERR
            const tec = this.regs[R.REG_TEC]
            if (tec < 128) this.setErrorCounters(tec + 8 > 128 ? 128 : tec + 8, this.regs[R.REG_REC])
            return
        }
        for (;;) {
            const n = this.nextPendingBuffer()
            if (n < 0) return
            const c = REG_TXB_CTRL[n]
            const frame = this.bufferFrame(c + 1)
            this.regs[c] &= ~(R.TXBCTRL_TXREQ | R.TXBCTRL_ABTF | R.TXBCTRL_MLOA | R.TXBCTRL_TXERR)
            this.regs[R.REG_CANINTF] |= R.INT_TX0 << n
            if (mode === R.OPMODE_LOOPBACK) this.accept(frame)
            else this.sent.push(frame)
        }
    }

    /** The frame held in an SIDH..D7 register block. */
    private bufferFrame(at: number): ModelFrame {
        const sidh = this.regs[at]
        const sidl = this.regs[at + 1]
        const ext = (sidl & R.SIDL_EXIDE) !== 0
        const id = ext
            ? ((sidh << 21) | ((sidl >> 5) << 18) | ((sidl & 3) << 16) | (this.regs[at + 2] << 8) | this.regs[at + 3]) >>> 0
            : (sidh << 3) | (sidl >> 5)
        const dlc = this.regs[at + 4] & R.DLC_MASK
        const rtr = (this.regs[at + 4] & R.DLC_RTR) !== 0
        const data: number[] = []
        const n = rtr ? 0 : dlc > 8 ? 8 : dlc
        for (let i = 0; i < n; i++) data.push(this.regs[at + 5 + i])
        return { id, ext, rtr, dlc, data }
    }

    // ------------------------------------------------------------ receive

    /**
     * A frame arrives from the bus. Returns RX_TO_BUFFER0/1, RX_REJECTED, RX_OVERFLOW or RX_NOT_LISTENING.
     * @param data data bytes (ignored for remote frames); `dlc` defaults to data.length
     */
    receiveFromBus(id: number, ext: boolean, rtr: boolean, data: number[], dlc?: number): number {
        const mode = this.opmode()
        if (mode !== R.OPMODE_NORMAL && mode !== R.OPMODE_LISTEN_ONLY) return RX_NOT_LISTENING
        const r = this.accept({ id, ext, rtr, dlc: dlc === undefined ? data.length : dlc, data })
        this.updateIcod()
        return r
    }

    /** Does filter n (with its mask) accept the frame? (section 4.5, figure 4-?) */
    private filterMatches(n: number, f: ModelFrame) {
        const fa = REG_RXF[n]
        const ma = n < 2 ? R.REG_RXM0 : R.REG_RXM1
        const fext = (this.regs[fa + 1] & R.SIDL_EXIDE) !== 0
        if (fext !== f.ext) return false
        // compare SID bits, then EID bits (extended) or the first two data bytes (standard, section 4.5.1)
        const maskSid = (this.regs[ma] << 3) | (this.regs[ma + 1] >> 5)
        const filtSid = (this.regs[fa] << 3) | (this.regs[fa + 1] >> 5)
        const maskEid = ((this.regs[ma + 1] & 3) << 16) | (this.regs[ma + 2] << 8) | this.regs[ma + 3]
        const filtEid = ((this.regs[fa + 1] & 3) << 16) | (this.regs[fa + 2] << 8) | this.regs[fa + 3]
        if (f.ext) {
            const sid = f.id >> 18
            const eid = f.id & 0x3ffff
            return (sid & maskSid) === (filtSid & maskSid) && (eid & maskEid) === (filtEid & maskEid)
        }
        if ((f.id & maskSid) !== (filtSid & maskSid)) return false
        const m16 = maskEid & 0xffff
        if (!m16) return true
        const d0 = f.data.length > 0 ? f.data[0] : 0
        const d1 = f.data.length > 1 ? f.data[1] : 0
        return (((d0 << 8) | d1) & m16) === (filtEid & m16)
    }

    /** First filter of a buffer that accepts the frame, or -1; RXM = 11 accepts anything as filter "any". */
    private matchBuffer(b: number, f: ModelFrame) {
        const ctrl = this.regs[b ? R.REG_RXB1CTRL : R.REG_RXB0CTRL]
        if ((ctrl & 0x60) === R.RXBCTRL_RXM_ANY) return b ? 2 : 0
        const from = b ? 2 : 0
        const to = b ? 6 : 2
        for (let n = from; n < to; n++) if (this.filterMatches(n, f)) return n
        return -1
    }

    /** Acceptance and buffer choice (figure 4-2 / 4-3): RXB0 first, rollover when BUKT, else RXB1. */
    private accept(f: ModelFrame): number {
        const intf = this.regs[R.REG_CANINTF]
        const hit0 = this.matchBuffer(0, f)
        if (hit0 >= 0) {
            if (!(intf & R.INT_RX0)) {
                this.store(0, f, hit0)
                return RX_TO_BUFFER0
            }
            if (this.regs[R.REG_RXB0CTRL] & R.RXB0CTRL_BUKT) {
                if (!(intf & R.INT_RX1)) {
                    this.store(1, f, hit0)
                    return RX_TO_BUFFER1
                }
                this.setEflg(R.EFLG_RX1OVR)
                return RX_OVERFLOW
            }
            this.setEflg(R.EFLG_RX0OVR)
            return RX_OVERFLOW
        }
        const hit1 = this.matchBuffer(1, f)
        if (hit1 < 0) return RX_REJECTED
        if (intf & R.INT_RX1) {
            this.setEflg(R.EFLG_RX1OVR)
            return RX_OVERFLOW
        }
        this.store(1, f, hit1)
        return RX_TO_BUFFER1
    }

    private store(b: number, f: ModelFrame, filterHit: number) {
        const base = b ? R.REG_RXB1CTRL : R.REG_RXB0CTRL
        const body = base + 1
        if (f.ext) {
            this.regs[body] = (f.id >> 21) & 0xff
            this.regs[body + 1] = (((f.id >> 18) & 7) << 5) | R.SIDL_EXIDE | ((f.id >> 16) & 3)
            this.regs[body + 2] = (f.id >> 8) & 0xff
            this.regs[body + 3] = f.id & 0xff
            this.regs[body + 4] = (f.rtr ? R.DLC_RTR : 0) | (f.dlc & 15)
        } else {
            this.regs[body] = (f.id >> 3) & 0xff
            this.regs[body + 1] = ((f.id & 7) << 5) | (f.rtr ? R.SIDL_SRR : 0)
            this.regs[body + 2] = 0
            this.regs[body + 3] = 0
            this.regs[body + 4] = f.dlc & 15
        }
        for (let i = 0; i < 8; i++) this.regs[body + 5 + i] = !f.rtr && i < f.data.length ? f.data[i] : 0
        let ctrl = this.regs[base]
        ctrl = f.rtr ? ctrl | R.RXBCTRL_RXRTR : ctrl & ~R.RXBCTRL_RXRTR
        if (b === 0) ctrl = (ctrl & ~R.RXB0CTRL_FILHIT0) | (filterHit & 1)
        else ctrl = (ctrl & ~R.RXB1CTRL_FILHIT_MASK) | filterHit
        this.regs[base] = ctrl
        this.regs[R.REG_CANINTF] |= b ? R.INT_RX1 : R.INT_RX0
    }

    // ------------------------------------------------------------ errors

    /** Set EFLG bits; a change of any bit raises ERRIF (register 7-2). */
    private setEflg(bits: number) {
        const old = this.regs[R.REG_EFLG]
        this.regs[R.REG_EFLG] = old | bits
        if (this.regs[R.REG_EFLG] !== old) this.regs[R.REG_CANINTF] |= R.INT_ERR
    }

    /**
     * Put the error counters at given values, as a run of bus errors would (section 6.5 / figure 6-1).
     * tec > 255 means bus-off: TEC reads 255 (TEC saturates in the register), TXBO is set.
     */
    setErrorCounters(tec: number, rec: number) {
        const busOff = tec > 255
        const t = busOff ? 255 : tec
        this.regs[R.REG_TEC] = t
        this.regs[R.REG_REC] = rec > 255 ? 255 : rec
        let e = this.regs[R.REG_EFLG] & 0xc0
        if (t >= 96 || rec >= 96) e |= R.EFLG_EWARN
        if (rec >= 96) e |= R.EFLG_RXWAR
        if (t >= 96) e |= R.EFLG_TXWAR
        if (rec >= 128) e |= R.EFLG_RXEP
        if (t >= 128 && !busOff) e |= R.EFLG_TXEP
        if (busOff) e |= R.EFLG_TXBO
        const old = this.regs[R.REG_EFLG]
        this.regs[R.REG_EFLG] = e
        if (e !== old) this.regs[R.REG_CANINTF] |= R.INT_ERR
        this.updateIcod()
    }

    /** The controller saw 128 x 11 recessive bits while bus-off: back to error-active, counters zero (section 6.6). */
    recoverFromBusOff() {
        this.setErrorCounters(0, 0)
        this.transmitPending()
        this.updateIcod()
    }

    /** An error frame during a message: MERRF (register 7-2). */
    injectMessageError() {
        this.regs[R.REG_CANINTF] |= R.INT_MERR
        this.updateIcod()
    }
}
