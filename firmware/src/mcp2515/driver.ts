/**
 * MCP2515 stand-alone CAN controller driver (SPI + INT pin).
 *
 * Data sheet: Microchip DS20001801J,
 * https://ww1.microchip.com/downloads/en/DeviceDoc/MCP2515-Stand-Alone-CAN-Controller-with-SPI-20001801J.pdf
 *
 * The driver owns the controller's registers; it knows nothing about Jacdac. The CanBus server
 * (./server.ts) puts the service contract on top. The SPI transport is a parameter so that the same code runs
 * against the chip (./transport.ts) and against the register-level model in the VM tests.
 *
 * Receive path per interrupt: one READ of CANINTF+EFLG, then READ RX BUFFER for each full buffer (that
 * instruction clears RXnIF itself, section 12.4), so a frame costs two SPI transfers.
 */
import * as ds from "@devicescript/core"
import * as R from "./registers"
import { REG_RXF, REG_TXB_CTRL } from "./registers"
import { bitTimingFor } from "./bittiming"

/** Full-duplex SPI with chip select held for the whole buffer (the MCP2515 acts on CS rising edges). */
export interface SpiTransport {
    transfer(tx: Buffer): Promise<Buffer>
}

/** The MCP2515 INT output: active low. A `ds.InputPin` in input mode fits; so does the test model's line. */
export interface InterruptLine {
    readonly value: number
}

/** Operating modes, numbered as the CanBus service's `mode` register. */
export enum Mcp2515Mode {
    ListenOnly = 0,
    Normal = 1,
    Loopback = 2,
}

/** Fault-confinement state, numbered as the CanBus service's `bus_state` register. */
export enum Mcp2515BusState {
    ErrorActive = 0,
    ErrorPassive = 1,
    BusOff = 2,
    Stopped = 3,
}

/** Frame flags, the bits of the CanBus frame record's `flags` byte. */
export const FRAME_EXT = 0x01
export const FRAME_RTR = 0x02
/** Flags the MCP2515 cannot send (FD, BRS, ESI, ERR) or that are reserved. */
const FRAME_UNSUPPORTED = 0xfc

/** One acceptance filter: a frame passes when (frameId & mask) === (id & mask) and its ID kind matches `ext`. */
export interface AcceptanceFilter {
    id: number
    mask: number
    ext: boolean
}

/**
 * Called for each received frame. For a remote frame `len` is the requested length and no data is given.
 * `data` is only valid during the call (the driver reuses nothing, but callers should copy what they keep).
 */
export type FrameHandler = (id: number, flags: number, len: number, data: Buffer, dataOffset: number) => void

export interface Mcp2515Options {
    spi: SpiTransport
    /** crystal on the board, Hz; 8 MHz on most ready-made modules (default 8000000) */
    oscillatorHz?: number
    /** bit/s (default 500000) */
    bitrate?: number
    /** default listen-only: never acknowledge or transmit until asked */
    mode?: Mcp2515Mode
    /** empty or absent: accept every frame */
    filters?: AcceptanceFilter[]
    /** let RXB0 roll over into RXB1 when full (BUKT, section 4.2.1); default true */
    rollover?: boolean
    /** INT pin; without it the driver polls the controller over SPI */
    interrupt?: InterruptLine
    /** service loop period while idle, ms (default 1) */
    pollIntervalMs?: number
    /**
     * The MCP2515 leaves bus-off by itself after 128 x 11 recessive bits (section 6.6). If it is still bus-off after
     * this many ms (a bus stuck dominant, a missing terminator) the driver resets and re-initialises it. Default 1000.
     */
    busOffRestartMs?: number
    /**
     * A frame still unsent after this many ms is aborted and counted in `txAborted` (default 1000). The MCP2515 retries
     * for ever: alone on a bus (nobody acknowledges) a frame would otherwise hold its buffer until power-off.
     */
    txTimeoutMs?: number
    /** clock in ms, injectable for tests (default ds.millis) */
    now?: () => number
    onFrame?: FrameHandler
    /** called by the service loop after each `poll()` that ran (the CanBus server reports frames here) */
    onServiced?: () => Promise<void>
}

/** Running totals; they only grow (a driver restart keeps them). */
export interface Mcp2515Counters {
    rxFrames: number
    txFrames: number
    /** frames lost because both receive buffers were full (RX0OVR/RX1OVR, one count per flag seen) */
    rxOverflow: number
    /** pending transmissions aborted (bus-off, mode change, restart, `txTimeoutMs`) */
    txAborted: number
    /** of those, frames aborted because they were not sent within `txTimeoutMs` */
    txTimeouts: number
    /** message error interrupts (MERRF): an error frame during a reception or transmission */
    busErrors: number
    busOffEvents: number
    /** bus-off left by the controller's own recovery */
    busOffRecoveries: number
    /** bus-off left by the driver's reset after busOffRestartMs */
    busOffRestarts: number
    /** SPI failures inside the service loop */
    serviceErrors: number
}

/** Thrown when the controller does not answer as the data sheet says it must. */
export class Mcp2515Error extends Error {
    constructor(message: string) {
        super(message)
        this.name = "Mcp2515Error"
    }
}

/** REQOP value of each `Mcp2515Mode` (indexed by the mode's number) */
const MODE_TO_OPMODE = [R.OPMODE_LISTEN_ONLY, R.OPMODE_NORMAL, R.OPMODE_LOOPBACK]

function opmodeName(opmode: number) {
    if (opmode === R.OPMODE_NORMAL) return "normal"
    if (opmode === R.OPMODE_LISTEN_ONLY) return "listen-only"
    if (opmode === R.OPMODE_LOOPBACK) return "loopback"
    if (opmode === R.OPMODE_CONFIG) return "configuration"
    return "sleep"
}
/** CANSTAT polls allowed for a mode change; the switch waits for the bus to be idle (section 10.0). */
const MODE_CHANGE_POLLS = 20
/** Interrupt sources the driver handles. WAKIF stays off: the driver never puts the chip to sleep. */
const INTERRUPTS_ENABLED = R.INT_RX0 | R.INT_RX1 | R.INT_TX0 | R.INT_TX1 | R.INT_TX2 | R.INT_ERR | R.INT_MERR
/** Rounds of the poll loop per call: bounds the time one call can hold the SPI bus. */
const MAX_POLL_ROUNDS = 8

function hex2(v: number) {
    const digits = "0123456789abcdef"
    return "0x" + digits[(v >> 4) & 15] + digits[v & 15]
}

/**
 * The four identifier registers (SIDH SIDL EID8 EID0) for an ID, written into `out` at `offset`.
 * Registers 3-3..3-6: SIDH = SID10..3, SIDL = SID2..0 | EXIDE | EID17..16, EID8 = EID15..8, EID0 = EID7..0.
 */
export function encodeIdentifier(out: Buffer, offset: number, id: number, ext: boolean) {
    if (ext) {
        out[offset] = (id >> 21) & 0xff
        out[offset + 1] = (((id >> 18) & 0x07) << 5) | R.SIDL_EXIDE | ((id >> 16) & 0x03)
        out[offset + 2] = (id >> 8) & 0xff
        out[offset + 3] = id & 0xff
    } else {
        out[offset] = (id >> 3) & 0xff
        out[offset + 1] = (id & 0x07) << 5
        out[offset + 2] = 0
        out[offset + 3] = 0
    }
}

/** The ID held by SIDH SIDL EID8 EID0 at `offset`; extended when SIDL.IDE is set. */
export function decodeIdentifier(buf: Buffer, offset: number): number {
    const sidh = buf[offset]
    const sidl = buf[offset + 1]
    if (sidl & R.SIDL_EXIDE)
        return ((sidh << 21) | ((sidl >> 5) << 18) | ((sidl & 0x03) << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0
    return (sidh << 3) | (sidl >> 5)
}

/** How `AcceptanceFilter`s map onto the two masks and six filters; see `planFilters`. */
export interface FilterPlan {
    acceptAll: boolean
    /** RXM0, RXM1 as [id-style mask, ext] */
    masks: AcceptanceFilter[]
    /** RXF0..RXF5 */
    filters: AcceptanceFilter[]
}

/**
 * Map filters onto the hardware: RXB0 has mask RXM0 shared by RXF0..1, RXB1 has RXM1 shared by RXF2..5 (section 4.5).
 * Filters must therefore come in at most two groups of equal (mask, ext): one of at most 2 and one of at most 4.
 * Standard and extended filters never share a mask, because for standard frames the mask's EID bits would
 * filter the first two data bytes (section 4.5.1). Unused slots repeat a used filter of their group, so they accept
 * nothing new. Throws a RangeError describing the hardware's shape when the filters do not fit.
 */
export function planFilters(filters: AcceptanceFilter[]): FilterPlan {
    if (!filters || filters.length === 0) return { acceptAll: true, masks: [], filters: [] }
    const groups: AcceptanceFilter[][] = []
    for (const f of filters) {
        const limit = f.ext ? 0x1fffffff : 0x7ff
        if (f.id < 0 || f.id > limit || f.mask < 0 || f.mask > limit)
            throw new RangeError(`mcp2515: filter id/mask out of range for a ${f.ext ? "29" : "11"}-bit identifier`)
        let placed = false
        for (const g of groups) {
            if (g[0].mask === f.mask && g[0].ext === f.ext) {
                g.push(f)
                placed = true
                break
            }
        }
        if (!placed) groups.push([f])
    }
    const shape =
        "the MCP2515 has two masks: at most 2 filters may share mask 0 and at most 4 mask 1, and standard and extended filters need separate masks"
    if (groups.length > 2) throw new RangeError(`mcp2515: ${groups.length} distinct masks requested; ${shape}`)
    let g0 = groups[0]
    let g1 = groups.length > 1 ? groups[1] : groups[0]
    if (groups.length === 1) {
        // one group: up to 2 in RXB0, the rest (or repeats) in RXB1
        if (g0.length > 6) throw new RangeError(`mcp2515: ${g0.length} filters on one mask; ${shape}`)
        g1 = g0.length > 2 ? g0.slice(2) : g0
        g0 = g0.slice(0, 2)
    } else {
        if (g0.length > g1.length) {
            const t = g0
            g0 = g1
            g1 = t
        }
        if (g0.length > 2 || g1.length > 4)
            throw new RangeError(`mcp2515: filter groups of ${g0.length} and ${g1.length}; ${shape}`)
    }
    const out: AcceptanceFilter[] = []
    for (let i = 0; i < 2; i++) out.push(g0[i < g0.length ? i : 0])
    for (let i = 0; i < 4; i++) out.push(g1[i < g1.length ? i : 0])
    return { acceptAll: false, masks: [g0[0], g1[0]], filters: out }
}

/**
 * A started MCP2515. Create it with `startMcp2515`, or construct it and call `init()` to drive `poll()` yourself.
 */
export class Mcp2515 {
    readonly counters: Mcp2515Counters = {
        rxFrames: 0,
        txFrames: 0,
        rxOverflow: 0,
        txAborted: 0,
        txTimeouts: 0,
        busErrors: 0,
        busOffEvents: 0,
        busOffRecoveries: 0,
        busOffRestarts: 0,
        serviceErrors: 0,
    }
    /** transmit error counter, as last read */
    tec = 0
    /** receive error counter, as last read */
    rec = 0
    busState = Mcp2515BusState.Stopped
    mode: Mcp2515Mode
    bitrate: number
    /** message of the last failure inside the service loop */
    lastError: string = undefined
    onFrame: FrameHandler
    onServiced: () => Promise<void>

    private readonly spi: SpiTransport
    readonly oscillatorHz: number
    private filters: AcceptanceFilter[]
    private readonly rollover: boolean
    private readonly interrupt: InterruptLine
    private readonly pollIntervalMs: number
    private readonly busOffRestartMs: number
    private readonly txTimeoutMs: number
    /** when each buffer was loaded (clock ms) */
    private readonly txLoadedAt = [0, 0, 0]
    private readonly now: () => number
    /** bit n set: TXBn holds a frame not yet sent */
    private txPending = 0
    /** TXP of each pending buffer */
    private readonly txPriority = [0, 0, 0]
    private busOffSince = 0
    /** the service loop runs while its generation is current; stop() and a restart start a new one */
    private loopGeneration = 0
    private loopRunning = false
    /** held by one public operation at a time: their SPI sequences must not interleave */
    private spiBusy = false
    private readonly rxCommand = Buffer.alloc(1 + R.BUFFER_BODY_LENGTH)
    /** READ CANINTF, EFLG */
    private readonly flagsCommand = Buffer.alloc(4)
    private readonly txLoad = Buffer.alloc(1 + R.BUFFER_BODY_LENGTH)

    constructor(options: Mcp2515Options) {
        if (!options || !options.spi) throw new TypeError("mcp2515: options.spi (the SPI transport) is required")
        this.spi = options.spi
        this.oscillatorHz = options.oscillatorHz || 8000000
        this.bitrate = options.bitrate || 500000
        this.mode = options.mode === undefined ? Mcp2515Mode.ListenOnly : options.mode
        this.filters = options.filters || []
        this.rollover = options.rollover !== false
        this.interrupt = options.interrupt
        this.pollIntervalMs = options.pollIntervalMs || 1
        this.busOffRestartMs = options.busOffRestartMs || 1000
        this.txTimeoutMs = options.txTimeoutMs || 1000
        this.now = options.now || ds.millis
        this.onFrame = options.onFrame
        this.onServiced = options.onServiced
        this.flagsCommand[0] = R.INSTR_READ
        this.flagsCommand[1] = R.REG_CANINTF
        // check the configuration before touching the chip
        bitTimingFor(this.oscillatorHz, this.bitrate)
        planFilters(this.filters)
        if (MODE_TO_OPMODE[this.mode] === undefined) throw new RangeError(`mcp2515: unknown mode ${this.mode}`)
    }

    // ---------------------------------------------------------------- SPI primitives (section 12)

    /**
     * Take the driver for one operation. A transmit and a poll interleaved at their awaits could clear a TXnIF
     * the other just caused; one holder at a time rules that out. Released by `this.spiBusy = false`.
     */
    private async exclusive() {
        while (this.spiBusy) await ds.sleep(1)
        this.spiBusy = true
    }

    private async readRegisters(address: number, count: number): Promise<Buffer> {
        const tx = Buffer.alloc(2 + count)
        tx[0] = R.INSTR_READ
        tx[1] = address
        const rx = await this.spi.transfer(tx)
        return rx.slice(2)
    }

    private async writeRegisters(address: number, values: number[]) {
        const tx = Buffer.alloc(2 + values.length)
        tx[0] = R.INSTR_WRITE
        tx[1] = address
        for (let i = 0; i < values.length; i++) tx[2 + i] = values[i]
        await this.spi.transfer(tx)
    }

    private async bitModify(address: number, mask: number, value: number) {
        const tx = Buffer.alloc(4)
        tx[0] = R.INSTR_BIT_MODIFY
        tx[1] = address
        tx[2] = mask
        tx[3] = value
        await this.spi.transfer(tx)
    }

    private async instruction(code: number) {
        const tx = Buffer.alloc(1)
        tx[0] = code
        await this.spi.transfer(tx)
    }

    // ---------------------------------------------------------------- configuration

    /**
     * RESET, check the chip answers, program bit timing, filters, buffers and interrupts, then enter `mode`.
     * Section 10.1 (configuration mode), 5.5 (CNF), 4.5 (filters), 7 (interrupts).
     */
    async init() {
        await this.exclusive()
        try {
            await this.initUnlocked()
        } finally {
            this.spiBusy = false
        }
    }

    private async initUnlocked() {
        this.txPending = 0
        await this.instruction(R.INSTR_RESET)
        // the oscillator start-up timer holds the chip for 128 OSC1 clocks after reset (section 8.1); 2 ms is ample
        await ds.sleep(2)
        const r = await this.readRegisters(R.REG_CANSTAT, 2)
        if ((r[0] & R.CANSTAT_OPMOD_MASK) !== R.OPMODE_CONFIG || r[1] !== R.CANCTRL_AFTER_RESET)
            throw new Mcp2515Error(
                `mcp2515: no controller answered on SPI (after RESET CANSTAT=${hex2(r[0])} CANCTRL=${hex2(r[1])}, expected 0x80 0x87); check CS, MISO, MOSI, SCK and the crystal`
            )
        await this.writeConfiguration()
        await this.enterOpmode(MODE_TO_OPMODE[this.mode])
        await this.readErrorCountersUnlocked()
    }

    /** Everything that may only be written in configuration mode, plus interrupt enables. */
    private async writeConfiguration() {
        const t = bitTimingFor(this.oscillatorHz, this.bitrate)
        // CNF3, CNF2, CNF1, CANINTE, CANINTF are consecutive (0x28..0x2C): one WRITE
        await this.writeRegisters(R.REG_CNF3, [t.cnf3, t.cnf2, t.cnf1, INTERRUPTS_ENABLED, 0])
        await this.bitModify(R.REG_EFLG, R.EFLG_RX0OVR | R.EFLG_RX1OVR, 0)
        const plan = planFilters(this.filters)
        const rxm = plan.acceptAll ? R.RXBCTRL_RXM_ANY : R.RXBCTRL_RXM_FILTERED
        if (!plan.acceptAll) {
            const b = Buffer.alloc(4)
            for (let m = 0; m < 2; m++) {
                const mask = plan.masks[m]
                encodeIdentifier(b, 0, mask.mask, mask.ext)
                // a mask has no EXIDE bit; for standard masks the EID bits (data-byte filtering) stay 0
                await this.writeRegisters(m === 0 ? R.REG_RXM0 : R.REG_RXM1, [b[0], b[1] & ~R.SIDL_EXIDE, b[2], b[3]])
            }
            for (let i = 0; i < 6; i++) {
                const f = plan.filters[i]
                encodeIdentifier(b, 0, f.id, f.ext)
                await this.writeRegisters(REG_RXF[i], [b[0], b[1], b[2], b[3]])
            }
        }
        await this.writeRegisters(R.REG_RXB0CTRL, [rxm | (this.rollover ? R.RXB0CTRL_BUKT : 0)])
        await this.writeRegisters(R.REG_RXB1CTRL, [rxm])
        for (let n = 0; n < R.TX_BUFFER_COUNT; n++) await this.writeRegisters(REG_TXB_CTRL[n], [0])
    }

    /** Request an operation mode (an OPMODE_* value) and wait until CANSTAT.OPMOD confirms it (section 10.0). */
    private async enterOpmode(opmode: number) {
        await this.bitModify(R.REG_CANCTRL, R.CANCTRL_REQOP_MASK, opmode)
        let seen = 0
        for (let i = 0; i < MODE_CHANGE_POLLS; i++) {
            seen = (await this.readRegisters(R.REG_CANSTAT, 1))[0]
            if ((seen & R.CANSTAT_OPMOD_MASK) === opmode) {
                if (opmode !== R.OPMODE_CONFIG) this.busState = Mcp2515BusState.ErrorActive
                return
            }
            await ds.sleep(1)
        }
        throw new Mcp2515Error(`mcp2515: mode change to ${opmodeName(opmode)} not confirmed (CANSTAT=${hex2(seen)})`)
    }

    /** Switch between listen-only, normal and loopback. Pending transmissions are aborted. */
    async setMode(mode: Mcp2515Mode) {
        await this.exclusive()
        try {
            await this.setModeUnlocked(mode)
        } finally {
            this.spiBusy = false
        }
    }

    private async setModeUnlocked(mode: Mcp2515Mode) {
        if (mode !== Mcp2515Mode.ListenOnly && mode !== Mcp2515Mode.Normal && mode !== Mcp2515Mode.Loopback)
            throw new RangeError(`mcp2515: unknown mode ${mode}`)
        if (mode !== Mcp2515Mode.Normal && mode !== Mcp2515Mode.Loopback) await this.abortPending()
        await this.enterOpmode(MODE_TO_OPMODE[mode])
        this.mode = mode
    }

    /**
     * Change bit rate and/or filters: through configuration mode and back (section 10.1); a stopped driver stays stopped.
     * @throws RangeError for an unsupported crystal/bit-rate pair or filters that do not fit, before touching the chip
     */
    async configure(bitrate: number, filters: AcceptanceFilter[]) {
        bitTimingFor(this.oscillatorHz, bitrate)
        planFilters(filters)
        await this.exclusive()
        try {
            await this.configureUnlocked(bitrate, filters)
        } finally {
            this.spiBusy = false
        }
    }

    private async configureUnlocked(bitrate: number, filters: AcceptanceFilter[]) {
        await this.abortPending()
        await this.enterOpmode(R.OPMODE_CONFIG)
        this.bitrate = bitrate
        this.filters = filters || []
        await this.writeConfiguration()
        // a stopped controller stays off the bus: only setMode()/init() rejoin
        if (this.busState !== Mcp2515BusState.Stopped) await this.enterOpmode(MODE_TO_OPMODE[this.mode])
    }

    /** Leave the bus: configuration mode, nothing received or sent. `init()` or `setMode()` rejoins. */
    async stop() {
        // the running loop sees a new generation and ends; startServiceLoop() may start the next one at once
        this.loopGeneration++
        this.loopRunning = false
        await this.exclusive()
        try {
            await this.stopUnlocked()
        } finally {
            this.spiBusy = false
        }
    }

    private async stopUnlocked() {
        await this.abortPending()
        await this.enterOpmode(R.OPMODE_CONFIG)
        this.busState = Mcp2515BusState.Stopped
    }

    // ---------------------------------------------------------------- transmit (section 3)

    /**
     * Load a frame into a free transmit buffer and request its transmission.
     * Priority 0..3 goes to TXBnCTRL.TXP: among pending buffers the controller sends the highest TXP first (section 3.2).
     * Only one frame per priority level is pending at a time, so frames of equal priority leave in call order
     * (with equal TXP the controller would pick the highest buffer number, which would reorder them).
     * @returns false when no buffer may take the frame now (all busy, or one already holds this priority)
     * @throws RangeError for a frame the MCP2515 cannot send (FD, error frame, bad length or ID); Mcp2515Error in listen-only mode
     */
    async transmit(id: number, flags: number, data: Buffer, dataOffset: number, len: number, priority?: number): Promise<boolean> {
        await this.exclusive()
        try {
            return await this.transmitUnlocked(id, flags, data, dataOffset, len, priority)
        } finally {
            this.spiBusy = false
        }
    }

    private async transmitUnlocked(
        id: number,
        flags: number,
        data: Buffer,
        dataOffset: number,
        len: number,
        priority: number
    ): Promise<boolean> {
        const ext = (flags & FRAME_EXT) !== 0
        const rtr = (flags & FRAME_RTR) !== 0
        const prio = priority === undefined ? 0 : priority
        if (flags & FRAME_UNSUPPORTED) throw new RangeError("mcp2515: only classic data and remote frames can be sent")
        if (id < 0 || id > (ext ? 0x1fffffff : 0x7ff)) throw new RangeError("mcp2515: identifier out of range")
        if (len < 0 || len > 8) throw new RangeError("mcp2515: classic CAN carries 0..8 data bytes")
        if (prio < 0 || prio > 3) throw new RangeError("mcp2515: transmit priority is 0..3")
        if (this.mode === Mcp2515Mode.ListenOnly)
            throw new Mcp2515Error("mcp2515: cannot transmit in listen-only mode")
        if (this.busState === Mcp2515BusState.BusOff || this.busState === Mcp2515BusState.Stopped) return false
        let slot = -1
        for (let n = 0; n < R.TX_BUFFER_COUNT; n++) {
            if (this.txPending & (1 << n)) {
                if (this.txPriority[n] === prio) return false
            } else if (slot < 0) slot = n
        }
        if (slot < 0) return false
        // TXP lives in TXBnCTRL, which LOAD TX BUFFER does not reach: one WRITE, then the body, then RTS
        await this.writeRegisters(REG_TXB_CTRL[slot], [prio])
        const b = this.txLoad
        b.fillAt(0, b.length, 0)
        b[0] = R.INSTR_LOAD_TX_BUFFER | (slot << 1)
        encodeIdentifier(b, 1, id, ext)
        b[5] = len | (rtr ? R.DLC_RTR : 0)
        if (!rtr && len > 0) b.blitAt(6, data, dataOffset, len)
        await this.spi.transfer(b)
        this.txPending |= 1 << slot
        this.txPriority[slot] = prio
        this.txLoadedAt[slot] = this.now()
        await this.instruction(R.INSTR_RTS | (1 << slot))
        return true
    }

    /** Number of transmit buffers that hold a frame not yet sent. */
    txInFlight() {
        let n = 0
        for (let i = 0; i < R.TX_BUFFER_COUNT; i++) if (this.txPending & (1 << i)) n++
        return n
    }

    /** Abort every pending transmission (CANCTRL.ABAT, section 3.4) and count them in `txAborted`. */
    private async abortPending() {
        if (!this.txPending) return
        await this.bitModify(R.REG_CANCTRL, R.CANCTRL_ABAT, R.CANCTRL_ABAT)
        // a frame may complete before the abort takes effect: count only the buffers still requested
        const st = await this.readStatus()
        let aborted = 0
        for (let n = 0; n < R.TX_BUFFER_COUNT; n++) {
            const bit = 1 << n
            if (!(this.txPending & bit)) continue
            if (st & (R.STATUS_TX0IF << (2 * n))) this.counters.txFrames++
            else aborted++
        }
        this.counters.txAborted += aborted
        this.txPending = 0
        await this.bitModify(R.REG_CANCTRL, R.CANCTRL_ABAT, 0)
        await this.bitModify(R.REG_CANINTF, R.INT_TX_ALL, 0)
    }

    private async readStatus(): Promise<number> {
        const tx = Buffer.alloc(2)
        tx[0] = R.INSTR_READ_STATUS
        return (await this.spi.transfer(tx))[1]
    }

    // ---------------------------------------------------------------- service (sections 4, 6, 7)

    /** Read TEC and REC (section 6.5). */
    async readErrorCounters() {
        await this.exclusive()
        try {
            await this.readErrorCountersUnlocked()
        } finally {
            this.spiBusy = false
        }
    }

    private async readErrorCountersUnlocked() {
        const r = await this.readRegisters(R.REG_TEC, 2)
        this.tec = r[0]
        this.rec = r[1]
    }

    /**
     * Handle every pending interrupt source: received frames, finished transmissions, overflow, error state,
     * message errors; restart the controller when bus-off lasts longer than `busOffRestartMs`.
     * @returns the number of frames received
     */
    async poll(): Promise<number> {
        await this.exclusive()
        try {
            return await this.pollUnlocked()
        } finally {
            this.spiBusy = false
        }
    }

    private async pollUnlocked(): Promise<number> {
        let received = 0
        // with an INT pin the service loop looks at the pin again, which costs no SPI transfer
        const rounds = this.interrupt ? 1 : MAX_POLL_ROUNDS
        for (let round = 0; round < rounds; round++) {
            // CANINTF and EFLG are adjacent (0x2C, 0x2D): one READ, from a command buffer made once
            const r = await this.spi.transfer(this.flagsCommand)
            const intf = r[2]
            const eflg = r[3]
            if (intf & R.INT_RX0) received += await this.readRxBuffer(0)
            if (intf & R.INT_RX1) received += await this.readRxBuffer(1)
            let clear = 0
            if (intf & R.INT_TX_ALL) {
                for (let n = 0; n < R.TX_BUFFER_COUNT; n++) {
                    const bit = R.INT_TX0 << n
                    if (intf & bit && this.txPending & (1 << n)) {
                        this.txPending &= ~(1 << n)
                        this.counters.txFrames++
                    }
                }
                clear |= intf & R.INT_TX_ALL
            }
            if (intf & R.INT_MERR) {
                this.counters.busErrors++
                clear |= R.INT_MERR
            }
            if (intf & R.INT_ERR) clear |= R.INT_ERR
            if (intf & R.INT_WAK) clear |= R.INT_WAK
            if (clear) await this.bitModify(R.REG_CANINTF, clear, 0)
            if (eflg & (R.EFLG_RX0OVR | R.EFLG_RX1OVR)) {
                if (eflg & R.EFLG_RX0OVR) this.counters.rxOverflow++
                if (eflg & R.EFLG_RX1OVR) this.counters.rxOverflow++
                await this.bitModify(R.REG_EFLG, eflg & (R.EFLG_RX0OVR | R.EFLG_RX1OVR), 0)
            }
            await this.updateBusState(eflg, (intf & R.INT_ERR) !== 0)
            if (!(intf & (R.INT_RX0 | R.INT_RX1)) && !clear) break
        }
        await this.expireTransmissions()
        if (this.busOffRestartDue()) {
            this.counters.busOffRestarts++
            await this.initUnlocked()
        }
        return received
    }

    private busOffRestartDue() {
        return this.busState === Mcp2515BusState.BusOff && this.now() - this.busOffSince >= this.busOffRestartMs
    }

    /** A buffer pending longer than txTimeoutMs. Cheap (no SPI): the service loop asks it while INT is high. */
    private transmissionExpired() {
        if (!this.txPending) return false
        const now = this.now()
        for (let n = 0; n < R.TX_BUFFER_COUNT; n++)
            if (this.txPending & (1 << n) && now - this.txLoadedAt[n] >= this.txTimeoutMs) return true
        return false
    }

    /** Abort each buffer pending longer than txTimeoutMs by clearing its TXREQ (section 3.4). */
    private async expireTransmissions() {
        if (!this.transmissionExpired()) return
        const now = this.now()
        for (let n = 0; n < R.TX_BUFFER_COUNT; n++) {
            const bit = 1 << n
            if (!(this.txPending & bit) || now - this.txLoadedAt[n] < this.txTimeoutMs) continue
            await this.bitModify(REG_TXB_CTRL[n], R.TXBCTRL_TXREQ, 0)
            // the frame may have gone out in the meantime: then it counts as sent
            const st = await this.readStatus()
            if (st & (R.STATUS_TX0IF << (2 * n))) this.counters.txFrames++
            else {
                this.counters.txAborted++
                this.counters.txTimeouts++
            }
            this.txPending &= ~bit
            await this.bitModify(R.REG_CANINTF, R.INT_TX0 << n, 0)
        }
    }

    /** READ RX BUFFER n (0x90 / 0x94): 13 bytes, and the controller clears RXnIF when CS rises (section 12.4). */
    private async readRxBuffer(n: number): Promise<number> {
        const tx = this.rxCommand
        tx.fillAt(0, tx.length, 0)
        tx[0] = R.INSTR_READ_RX_BUFFER | (n << 2)
        const rx = await this.spi.transfer(tx)
        const sidl = rx[2]
        const ext = (sidl & R.SIDL_EXIDE) !== 0
        const dlcReg = rx[5]
        // a standard remote frame is flagged by SIDL.SRR, an extended one by DLC.RTR (registers 4-5, 4-8)
        const rtr = ext ? (dlcReg & R.DLC_RTR) !== 0 : (sidl & R.SIDL_SRR) !== 0
        let len = dlcReg & R.DLC_MASK
        // DLC 9..15 means 8 data bytes in classic CAN (section 4.1)
        if (len > 8) len = 8
        this.counters.rxFrames++
        if (this.onFrame)
            this.onFrame(decodeIdentifier(rx, 1), (ext ? FRAME_EXT : 0) | (rtr ? FRAME_RTR : 0), len, rx, 6)
        return 1
    }

    /** Derive the fault-confinement state from EFLG (section 6.5, figure 6-1). */
    private async updateBusState(eflg: number, errorInterrupt: boolean) {
        if (this.busState === Mcp2515BusState.Stopped) return
        const old = this.busState
        let state = Mcp2515BusState.ErrorActive
        if (eflg & R.EFLG_TXBO) state = Mcp2515BusState.BusOff
        else if (eflg & (R.EFLG_TXEP | R.EFLG_RXEP)) state = Mcp2515BusState.ErrorPassive
        if (errorInterrupt || state !== old) await this.readErrorCountersUnlocked()
        if (state === old) return
        this.busState = state
        if (state === Mcp2515BusState.BusOff) {
            this.counters.busOffEvents++
            this.busOffSince = this.now()
            // frames queued before bus-off are stale by the time the bus is back: drop and count them
            await this.abortPending()
        } else if (old === Mcp2515BusState.BusOff) {
            this.counters.busOffRecoveries++
        }
    }

    // ---------------------------------------------------------------- service loop

    /** Service the controller until `stop()`: on INT low, or every `pollIntervalMs` without an INT pin. */
    startServiceLoop() {
        if (this.loopRunning) return
        this.loopRunning = true
        const generation = ++this.loopGeneration
        // a timer callback is DeviceScript's way to start a fiber that runs on its own
        const self = this
        setTimeout(async () => {
            await self.serviceLoop(generation)
        }, 0)
    }

    private async serviceLoop(generation: number) {
        while (this.loopGeneration === generation) {
            // besides interrupts: bus-off that outlasts busOffRestartMs, frames that outlast txTimeoutMs
            if (!this.interrupt || this.interrupt.value === 0 || this.busOffRestartDue() || this.transmissionExpired()) {
                try {
                    await this.poll()
                    if (this.onServiced) await this.onServiced()
                } catch (e) {
                    this.counters.serviceErrors++
                    this.lastError = "" + e
                    // back off: a failing SPI bus would otherwise be hammered every millisecond
                    await ds.sleep(100)
                }
                // with INT still low there is more to do: loop at once (poll() itself awaited SPI)
                if (this.interrupt && this.interrupt.value === 0) continue
            }
            await ds.sleep(this.pollIntervalMs)
        }
    }
}

/**
 * Start an MCP2515: reset it, program bit timing, filters and interrupts, enter the requested mode (listen-only by
 * default) and service it in the background (on its INT pin when given).
 *
 * ```ts
 * const can = await startMcp2515({ spi: mcp2515Spi(pins), interrupt: intPin, oscillatorHz: 8000000, bitrate: 500000,
 *     onFrame: (id, flags, len, data, off) => { ... } })
 * ```
 * Data sheet: https://ww1.microchip.com/downloads/en/DeviceDoc/MCP2515-Stand-Alone-CAN-Controller-with-SPI-20001801J.pdf
 */
export async function startMcp2515(options: Mcp2515Options): Promise<Mcp2515> {
    const driver = new Mcp2515(options)
    await driver.init()
    driver.startServiceLoop()
    return driver
}
