/**
 * The CanBus service (firmware/services/canbus.md) served from an MCP2515.
 *
 * The gateway program only ever uses the CanBus client; on a board with an MCP2515 this server sits behind it:
 *
 * ```ts
 * const can = new ds.CanBus(await startMcp2515CanBusFromSettings())
 * ```
 *
 * Received frames are packed as contract records (u32 id, u8 flags, u8 len, data) into a bounded byte queue and
 * sent as `frames` reports (`first_frame`, the running number of the first record since `enabled`, then at most
 * 232 bytes of records) as soon as the controller has been serviced. Transmit commands are
 * validated record by record and queued (bounded, in bytes) until a controller transmit buffer is free.
 * Every frame that cannot be reported or sent is counted (`rx_overflow`, `tx_failed`).
 */
import * as ds from "@devicescript/core"
import { Server, ServerOptions, startServer } from "@devicescript/server"
import { readSetting } from "@devicescript/settings"
import { SUPPORTED_BITRATES, bitTimingFor } from "./bittiming"
import {
    AcceptanceFilter,
    FRAME_EXT,
    FRAME_RTR,
    Mcp2515,
    Mcp2515BusState,
    Mcp2515Mode,
    Mcp2515Options,
} from "./driver"
import { keyFiltersToHardware } from "./keyfilters"
import { mcp2515Interrupt, mcp2515Spi } from "./transport"

/** Largest Jacdac payload (PLATFORM-NOTES): one `frames` report. */
export const MAX_REPORT_BYTES = 236
/** A `frames` report's `first_frame: u32` before its records. */
export const REPORT_HEADER = 4
/** Bytes of received records waiting to be reported: ~146 classic 8-byte frames, a few ms of a busy 500 kbit/s bus. */
export const RX_QUEUE_BYTES = 2048
/** Bytes of records waiting for a transmit buffer: 36 classic 8-byte frames. */
export const TX_QUEUE_BYTES = 512
const RECORD_HEADER = 6
/** flags bits other than EXT and RTR: FD, BRS, ESI, ERR and reserved. The MCP2515 is classic CAN only. */
const FLAGS_NOT_CLASSIC = 0xfc

export interface Mcp2515ServerOptions extends ServerOptions {
    /** bounded queues, bytes */
    rxQueueBytes?: number
    txQueueBytes?: number
}

/**
 * A bounded FIFO of contract records in one preallocated buffer: no allocation per frame.
 * Records never wrap: when the tail has no room for a record, the buffer is compacted first.
 */
class RecordQueue {
    readonly buf: Buffer
    head = 0
    tail = 0
    constructor(size: number) {
        this.buf = Buffer.alloc(size)
    }
    used() {
        return this.tail - this.head
    }
    /** Reserve n bytes at the tail; -1 when the queue cannot hold them. */
    reserve(n: number): number {
        if (this.tail + n > this.buf.length) {
            if (this.used() + n > this.buf.length) return -1
            this.buf.blitAt(0, this.buf, this.head, this.used())
            this.tail -= this.head
            this.head = 0
        }
        const at = this.tail
        this.tail += n
        return at
    }
    /** Length of the record at the head, 0 when empty. */
    headRecordLength() {
        if (this.head >= this.tail) return 0
        const flags = this.buf[this.head + 4]
        const len = this.buf[this.head + 5]
        return RECORD_HEADER + (flags & FRAME_RTR ? 0 : len)
    }
    drop(n: number) {
        this.head += n
        if (this.head >= this.tail) {
            this.head = 0
            this.tail = 0
        }
    }
}

export class Mcp2515CanBusServer extends Server implements ds.CanBusServerSpec {
    readonly driver: Mcp2515
    private _enabled = false
    private _mode: Mcp2515Mode
    private _bitrate: number
    private readonly filters: AcceptanceFilter[]
    private readonly rxQueue: RecordQueue
    private readonly txQueue: RecordQueue
    private initialised = false
    /** frames the server could not queue for a report */
    private rxDropped = 0
    private txFailed = 0
    private reporting = false
    /** `first_frame` of the next report: frames reported since `enabled` last went from false to true */
    private nextReportFrame = 0
    private pumping = false
    private readonly txScratch = Buffer.alloc(RECORD_HEADER + 8)
    /** why the last `enabled = true` failed, until one succeeds */
    lastError: string = undefined
    private reporterQueued = false

    constructor(driverOptions: Mcp2515Options, options?: Mcp2515ServerOptions) {
        super(ds.CanBus.spec, options)
        this._mode = Mcp2515Mode.ListenOnly
        this._bitrate = driverOptions.bitrate || 500000
        this.filters = driverOptions.filters || []
        this.rxQueue = new RecordQueue((options && options.rxQueueBytes) || RX_QUEUE_BYTES)
        this.txQueue = new RecordQueue((options && options.txQueueBytes) || TX_QUEUE_BYTES)
        const self = this
        const o: Mcp2515Options = {
            spi: driverOptions.spi,
            oscillatorHz: driverOptions.oscillatorHz,
            bitrate: this._bitrate,
            // the contract starts listen-only; the driver is only put on the bus by `enabled`
            mode: Mcp2515Mode.ListenOnly,
            filters: this.filters,
            rollover: driverOptions.rollover,
            interrupt: driverOptions.interrupt,
            pollIntervalMs: driverOptions.pollIntervalMs,
            busOffRestartMs: driverOptions.busOffRestartMs,
            txTimeoutMs: driverOptions.txTimeoutMs,
            now: driverOptions.now,
            onFrame: (id, flags, len, data, off) => self.queueReceived(id, flags, len, data, off),
            onServiced: async () => {
                await self.afterService()
            },
        }
        this.driver = new Mcp2515(o)
    }

    // ---------------------------------------------------------------- registers

    enabled() {
        return this._enabled
    }

    async set_enabled(value: boolean) {
        if (!!value === this._enabled) return
        if (value) {
            try {
                if (!this.initialised) {
                    await this.driver.init()
                    this.initialised = true
                }
                await this.driver.setMode(this._mode)
            } catch (e) {
                // no chip, bad wiring: stay off the bus (bus_state reads `stopped`) and say why once
                this.failed(e)
                return
            }
            this.lastError = undefined
            this.nextReportFrame = 0
            this._enabled = true
            this.driver.startServiceLoop()
        } else {
            this._enabled = false
            const queued = this.countQueuedTx()
            this.txFailed += queued
            this.txQueue.drop(this.txQueue.used())
            try {
                await this.driver.stop()
            } catch (e) {
                this.failed(e)
            }
        }
    }

    /**
     * A register write the chip did not carry out (SPI failure, mode not confirmed). Jacdac handlers must not throw:
     * an unhandled exception restarts the whole program. The reason is kept in `lastError` and printed once.
     */
    private failed(e: any) {
        this.lastError = (e as Error).message
        console.warn(this.lastError)
    }

    mode(): ds.CanBusMode {
        return this._mode as number as ds.CanBusMode
    }

    async set_mode(mode: ds.CanBusMode) {
        const value = mode as number as Mcp2515Mode
        if (value !== Mcp2515Mode.ListenOnly && value !== Mcp2515Mode.Normal && value !== Mcp2515Mode.Loopback) return
        this._mode = value
        if (!this._enabled) return
        try {
            await this.driver.setMode(value)
        } catch (e) {
            this.failed(e)
        }
    }

    bitrate() {
        return this._bitrate
    }

    /** Unsupported values are ignored, as the contract says: the register keeps its value. */
    async set_bitrate(value: number) {
        if (SUPPORTED_BITRATES.indexOf(value) < 0) return
        try {
            // the crystal may rule out a listed rate (8 MHz at 1 Mbit/s)
            bitTimingFor(this.driver.oscillatorHz, value)
        } catch (e) {
            return
        }
        if (!this.initialised) {
            this._bitrate = value
            this.driver.bitrate = value
            return
        }
        try {
            await this.driver.configure(value, this.filters)
            this._bitrate = value
        } catch (e) {
            this.failed(e)
        }
    }

    dataBitrate() {
        return 0
    }

    set_dataBitrate(value: number) {
        // classic CAN only: the register stays 0
    }

    busState(): ds.CanBusBusState {
        if (!this._enabled) return ds.CanBusBusState.Stopped
        // the driver numbers its states as the service does
        return this.driver.busState as number as ds.CanBusBusState
    }

    counters(): [number, number, number, number, number, number, number] {
        const c = this.driver.counters
        return [
            c.rxFrames >>> 0,
            c.txFrames >>> 0,
            (c.rxOverflow + this.rxDropped) >>> 0,
            (this.txFailed + c.txAborted) >>> 0,
            c.busErrors >>> 0,
            this.driver.tec,
            this.driver.rec,
        ]
    }

    fdSupported() {
        return false
    }

    // ---------------------------------------------------------------- transmit

    /**
     * Validate each record (canbus.md "Frame record") and queue it. Stops at the first invalid record and counts it
     * and everything after it in `tx_failed`, as the contract says for a malformed packet.
     */
    async transmit(packed: Buffer) {
        // DeviceScript hands a single-field command over as a one-element array
        const buf: Buffer = Array.isArray(packed) ? (packed as any)[0] : packed
        if (!buf) return
        let off = 0
        const canSend = this._enabled && (this._mode === Mcp2515Mode.Normal || this._mode === Mcp2515Mode.Loopback)
        while (off < buf.length) {
            if (off + RECORD_HEADER > buf.length) {
                this.txFailed++
                break
            }
            const id = buf.getAt(off, "u32")
            const flags = buf[off + 4]
            const len = buf[off + 5]
            const rtr = (flags & FRAME_RTR) !== 0
            const size = RECORD_HEADER + (rtr ? 0 : len)
            const valid =
                !(flags & FLAGS_NOT_CLASSIC) &&
                len <= 8 &&
                id <= (flags & FRAME_EXT ? 0x1fffffff : 0x7ff) &&
                off + size <= buf.length
            if (!valid) {
                // the rest of the packet cannot be parsed reliably: count what remains as at least one record
                this.txFailed++
                break
            }
            if (!canSend) this.txFailed++
            else {
                const at = this.txQueue.reserve(size)
                if (at < 0) this.txFailed++
                else this.txQueue.buf.blitAt(at, buf, off, size)
            }
            off += size
        }
        await this.pumpTransmit()
    }

    private countQueuedTx() {
        let n = 0
        let at = this.txQueue.head
        while (at < this.txQueue.tail) {
            const flags = this.txQueue.buf[at + 4]
            at += RECORD_HEADER + (flags & FRAME_RTR ? 0 : this.txQueue.buf[at + 5])
            n++
        }
        return n
    }

    /** Move queued records into free controller buffers, oldest first, all at priority 0 (so they keep their order). */
    private async pumpTransmit() {
        // one pumper at a time: two would load the same head record into two chip buffers (sent twice)
        if (this.pumping) return
        this.pumping = true
        try {
            for (;;) {
                const n = this.txQueue.headRecordLength()
                if (!n) return
                // copy the record out: a transmit command may compact the queue while the driver awaits SPI
                const r = this.txScratch
                r.blitAt(0, this.txQueue.buf, this.txQueue.head, n)
                let ok = false
                try {
                    ok = await this.driver.transmit(r.getAt(0, "u32"), r[4], r, RECORD_HEADER, r[5], 0)
                } catch (e) {
                    // mode changed under us (listen-only): the frame cannot go out
                    this.txFailed++
                    ok = true
                }
                if (!ok) {
                    if (this.driver.busState === Mcp2515BusState.BusOff) {
                        // frames queued during bus-off are stale: fail them rather than send them late
                        this.txFailed += this.countQueuedTx()
                        this.txQueue.drop(this.txQueue.used())
                    }
                    return
                }
                this.txQueue.drop(n)
            }
        } finally {
            this.pumping = false
        }
    }

    // ---------------------------------------------------------------- receive

    private queueReceived(id: number, flags: number, len: number, data: Buffer, off: number) {
        const size = RECORD_HEADER + (flags & FRAME_RTR ? 0 : len)
        const at = this.rxQueue.reserve(size)
        if (at < 0) {
            this.rxDropped++
            return
        }
        const q = this.rxQueue.buf
        q.setAt(at, "u32", id)
        q[at + 4] = flags
        q[at + 5] = len
        if (size > RECORD_HEADER) q.blitAt(at + RECORD_HEADER, data, off, len)
    }

    /**
     * After each service round: refill the transmit buffers and make sure a reporter is running.
     * Reports go out from their own fiber: sending a packet can take a scheduler tick, and the service loop must
     * not wait for it while the chip's two receive buffers fill up.
     */
    private async afterService() {
        await this.pumpTransmit()
        if (!this.reporterQueued && !this.reporting && this.rxQueue.used() > 0) {
            this.reporterQueued = true
            const self = this
            setTimeout(async () => {
                self.reporterQueued = false
                await self.flushReports()
            }, 0)
        }
    }

    /** Send the queued records as `frames` reports of whole records, at most 236 bytes each, until none is left. */
    async flushReports() {
        // one reporter at a time, or two could send the same records
        if (this.reporting) return
        this.reporting = true
        try {
            const spec = ds.CanBus.spec.lookup("frames")
            while (this.rxQueue.used() > 0) {
                let n = 0
                let frames = 0
                for (;;) {
                    const at = this.rxQueue.head + n
                    if (at >= this.rxQueue.tail) break
                    const flags = this.rxQueue.buf[at + 4]
                    const size = RECORD_HEADER + (flags & FRAME_RTR ? 0 : this.rxQueue.buf[at + 5])
                    if (REPORT_HEADER + n + size > MAX_REPORT_BYTES) break
                    n += size
                    frames++
                }
                const payload = this.rxQueue.buf.slice(this.rxQueue.head, this.rxQueue.head + n)
                this.rxQueue.drop(n)
                const first = this.nextReportFrame
                this.nextReportFrame = (first + frames) >>> 0
                await this._send(spec.encode([first, payload]))
            }
        } finally {
            this.reporting = false
        }
    }
}

/**
 * Start the CanBus server on an MCP2515 and return the role binding for `new ds.CanBus(...)`.
 * Data sheet: https://ww1.microchip.com/downloads/en/DeviceDoc/MCP2515-Stand-Alone-CAN-Controller-with-SPI-20001801J.pdf
 */
export function startMcp2515CanBus(driverOptions: Mcp2515Options, options?: Mcp2515ServerOptions) {
    return startServer(new Mcp2515CanBusServer(driverOptions, options), options)
}

/**
 * Settings keys (`.env.defaults`, at most 13 characters) for a board with an MCP2515; see docs/mcp2515.md.
 * Pins are GPIO numbers of the board.
 */
export const MCP2515_SETTINGS = {
    sck: "mcpSck",
    mosi: "mcpMosi",
    miso: "mcpMiso",
    cs: "mcpCs",
    int: "mcpInt",
    oscillatorHz: "mcpOscHz",
    spiHz: "mcpSpiHz",
    /** hardware pre-filter, `[[value, mask], ...]` over the frame key as `canFilters`; empty: accept all */
    filters: "mcpFilters",
}

async function pinSetting(key: string): Promise<number> {
    const v = await readSetting<number>(key, -1)
    if (typeof v !== "number" || v < 0 || v !== Math.floor(v))
        throw new RangeError(`mcp2515: setting ${key} must be a GPIO number (docs/mcp2515.md)`)
    return v
}

/** The board's pin for a GPIO number, or an error that names the setting (`ds.gpio` throws without it). */
function boardPin(key: string, gpio: number) {
    let p
    try {
        p = ds.gpio(gpio)
    } catch (e) {
        p = undefined
    }
    if (!p) throw new RangeError(`mcp2515: setting ${key}=${gpio}: this board does not expose that GPIO`)
    return p
}

/**
 * Driver options from settings: pins (SPI opened, INT configured), crystal, hardware filters.
 * `mcpInt` may be -1 (not wired): the driver then polls the chip over SPI.
 * @throws RangeError naming the setting when a pin is missing or the filters do not fit the chip
 */
export async function readMcp2515Settings(): Promise<Mcp2515Options> {
    const sck = await pinSetting(MCP2515_SETTINGS.sck)
    const mosi = await pinSetting(MCP2515_SETTINGS.mosi)
    const miso = await pinSetting(MCP2515_SETTINGS.miso)
    const cs = await pinSetting(MCP2515_SETTINGS.cs)
    const intPin = await readSetting<number>(MCP2515_SETTINGS.int, -1)
    const oscillatorHz = await readSetting<number>(MCP2515_SETTINGS.oscillatorHz, 8000000)
    const spiHz = await readSetting<number>(MCP2515_SETTINGS.spiHz, 0)
    const keyFilters = await readSetting<number[][]>(MCP2515_SETTINGS.filters, [])
    // checked before any pin is touched; a filter set the chip cannot hold is an error, not a silent accept-all
    const filters = keyFiltersToHardware(Array.isArray(keyFilters) ? keyFilters : [keyFilters as any])
    const pins = {
        sck: boardPin(MCP2515_SETTINGS.sck, sck),
        mosi: boardPin(MCP2515_SETTINGS.mosi, mosi),
        miso: boardPin(MCP2515_SETTINGS.miso, miso),
        cs: boardPin(MCP2515_SETTINGS.cs, cs),
    }
    const intLine = intPin >= 0 ? boardPin(MCP2515_SETTINGS.int, intPin) : undefined
    const spi = mcp2515Spi(pins, spiHz)
    return {
        spi,
        interrupt: intLine ? mcp2515Interrupt(intLine) : undefined,
        oscillatorHz,
        filters,
    }
}

/** Read the board's settings and start the CanBus server on its MCP2515; returns the role for `new ds.CanBus(...)`. */
export async function startMcp2515CanBusFromSettings(bitrate?: number, options?: Mcp2515ServerOptions) {
    const o = await readMcp2515Settings()
    o.bitrate = bitrate || 500000
    return startMcp2515CanBus(o, options)
}
