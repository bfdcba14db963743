/**
 * The gateway: CAN frames in (CanBus `frames` reports), selected, batched and published over MQTT QoS 1; commands
 * in, results out; a retained status. Every frame the controller reports ends up in exactly one counter
 * (docs/protocol.md, "Accounting").
 */
import * as ds from "@devicescript/core"
import { BATCH_OVERHEAD, BatchEncoder } from "./batch"
import { CborWriter } from "./cbor"
import { TxAllowlist } from "./allowlist"
import { CommandHandler, CommandResult, writeResult } from "./commands"
import { GatewayConfig } from "./config"
import { DIAG_DEFAULTS, DiagClient, DiagConfig } from "./diag"
import { FrameSelector } from "./filters"
import { encodePublish, encodeSubscribe, publishHeaderSize, putPublishHeader } from "./mqtt/packets"
import { MqttSession } from "./mqtt/session"
import { Outbox } from "./outbox"
import { SignalTable } from "./signals"
import { uptime32 } from "./wrap"

export const VERSION = "0.1.0"
/** Service command of the CanBus `frames` report (firmware/services/canbus.md). */
export const FRAMES_REPORT = 0x90
/** Largest incoming packet kept whole: a 512-byte command plus its topic and headers. */
export const RX_BYTES = 1024
/**
 * Received bytes still queued in the socket above which a command is shed (acknowledged, counted in `drop.cmd`, no
 * result): a burst of commands must not hold the heap longer than it takes to parse it.
 */
export const CMD_BACKLOG = 4096
/**
 * Hard cap on received bytes waiting to be parsed: past it the session drops the connection (freeing them) and
 * counts it in `drop.flood` (docs/firmware.md, Memory).
 */
export const RX_CAP = 6144
/**
 * Largest incoming packet accepted: commands are at most 512 B, so anything past this is a flood, not a command.
 * Below RX_CAP, so a packet the gateway announces it takes (MQTT 5 Maximum Packet Size) always fits under the cap.
 */
export const MAX_PACKET = 4096
/** Status, result and last-will maps are written into a buffer of this size. */
export const SMALL_PAYLOAD = 512

export class Counters {
    rx = 0
    filtered = 0
    downsampled = 0
    published = 0
    acked = 0
    batchesAcked = 0
    dropOutbox = 0
    batchesDropped = 0
    malformed = 0
    /** Commands that got no result (`drop.cmd`): results not published, and commands shed in a burst. */
    dropCmd = 0
    /** Frames in CanBus reports that never arrived (`drop.report`, from the reports' numbering; main.ts counts). */
    dropReport = 0
}

export class Gateway {
    readonly counters = new Counters()
    readonly bootId: number
    readonly enc: BatchEncoder
    readonly selector = new FrameSelector()
    readonly outbox: Outbox
    readonly commands: CommandHandler
    /** Decoded signals (`sigTable`), published on `P/signals`. */
    readonly signals: SignalTable
    /** Diagnostic requests and the poll list (diag.ts). */
    readonly diag: DiagClient
    session: MqttSession = null
    seq = 0
    /** The CanBus client, once bound. */
    bound = false
    /** The controller's last `counters` register and `bus_state`, read for the status. */
    canCounters: number[] = []
    busState = "unbound"
    private nextPid = 1
    private readonly topicFrames: Buffer
    private readonly topicSignals: Buffer
    private readonly topicStatus: Buffer
    private readonly topicResult: Buffer
    private readonly topicDiag: Buffer
    readonly topicCmd: string
    private readonly small = new CborWriter(Buffer.alloc(SMALL_PAYLOAD))
    private readonly kick = ds.emitter<boolean>()
    private statusWanted = false
    /** A register read for the status is under way. */
    private reading = false
    private readonly allow = new TxAllowlist()
    /** The controller's `fd_supported` register, read on bind (false until read: FD refused). */
    fdCapable = false
    /** The command subscription: "pending" until its SUBACK, then "ok" or "refused" (status `sub`). */
    subscription = "pending"
    /** Publishes the result of a `diag` command from its exchange's fiber (commands.ts, handle with `later`). */
    private readonly lateResult: (res: CommandResult) => Promise<void>
    /** Added to ds.millis() for the uptime: tests inject a clock near the 2^32 wrap with it. */
    clockOffset = 0

    constructor(
        readonly config: GatewayConfig,
        private readonly can: ds.CanBus,
        bootId: number,
        diagConfig: DiagConfig = DIAG_DEFAULTS
    ) {
        this.bootId = bootId
        this.enc = new BatchEncoder(config.batchBytes - BATCH_OVERHEAD)
        this.outbox = new Outbox(config.outboxBytes)
        this.selector.setFilters(config.canFilters)
        this.selector.setRules(config.rateRules)
        this.allow.set(config.txAllow)
        this.signals = new SignalTable(config.sigBytes)
        const p = config.topicPrefix + "/" + config.deviceId + "/"
        this.topicFrames = Buffer.from(p + "frames")
        this.topicSignals = Buffer.from(p + "signals")
        this.topicStatus = Buffer.from(p + "status")
        this.topicResult = Buffer.from(p + "result")
        this.topicDiag = Buffer.from(p + "diag")
        this.topicCmd = p + "cmd"
        const self = this
        this.diag = new DiagClient(diagConfig, {
            bootId: this.bootId,
            now: () => self.uptime(),
            normalMode: () => self.config.canMode === "normal",
            bound: () => self.bound,
            transmit: async (record: Buffer) => {
                await self.can.transmit(record)
            },
            publish: async (payload: Buffer) => {
                const s = self.session
                return !!s && s.connected && (await s.send(encodePublish(self.topicDiag, payload, 1, false, self.allocPid())))
            },
        })
        this.lateResult = async (res: CommandResult) => {
            await self.publishResult(res)
        }
        this.commands = new CommandHandler({
            bootId: this.bootId,
            now: () => self.uptime(),
            normalMode: () => self.config.canMode === "normal",
            bound: () => self.bound,
            allowed: (key: number, flags: number) => self.allow.refusal(key, flags),
            fdCapable: () => self.fdCapable,
            txRate: config.txRate,
            txExpMax: config.txExpMax,
            transmit: async (record: Buffer) => {
                await self.can.transmit(record)
            },
            setFilters: (pairs: number[][]) => self.selector.setFilters(pairs),
            setRules: (rules: number[][]) => self.selector.setRules(rules),
            requestStatus: () => {
                self.statusWanted = true
            },
            diag: this.diag,
        })
    }

    /** Compiles the signal table of the settings (before the first frame); a refusal leaves no signals. */
    async loadSignals(): Promise<string> {
        return await this.signals.compile(this.config.sigTable, this.config.sigOnly)
    }

    /** The frame path: every record of one `frames` report from `start` on, received at `now` (BatchEncoder.addReport). */
    ingest(buf: Buffer, now: number, start = 0) {
        // before the filters: a diagnostic response is heard whatever they select
        this.diag.tap(buf, start)
        this.enc.addReport(buf, now, this, start)
    }

    /** Closes the open batch into a PUBLISH packet in the outbox (or counts it dropped when the outbox is full). */
    closeBatch() {
        const enc = this.enc
        if (enc.count === 0) return
        const seq = this.seq++
        const size = enc.payloadSize(this.bootId, seq)
        const topic = this.topicFrames
        const hdr = publishHeaderSize(topic.length, 1, size)
        const ob = this.outbox
        const off = ob.reserve(hdr + size)
        if (off < 0) {
            this.counters.dropOutbox += enc.count
            this.counters.batchesDropped++
        } else {
            const pid = this.allocPid()
            const ring = ob.buffer()
            const p = putPublishHeader(ring, off, topic, 1, false, pid, size)
            enc.writePayload(ring, p, this.bootId, seq)
            ob.commit(off, hdr + size, pid, enc.count)
        }
        enc.clear()
        this.kick.emit(true)
    }

    /**
     * Closes the open signal batch into a PUBLISH packet on `P/signals` in the outbox, like a frame batch (its
     * entry carries no frames: `pub`/`ack` stay frame counts); a batch that does not fit is counted in `drop.sig`.
     */
    closeSignals() {
        const sig = this.signals
        if (sig.count === 0) return
        const seq = sig.seq++
        const size = sig.payloadSize(this.bootId, seq)
        const topic = this.topicSignals
        const hdr = publishHeaderSize(topic.length, 1, size)
        const ob = this.outbox
        const off = ob.reserve(hdr + size)
        if (off < 0) sig.dropped += sig.count
        else {
            const pid = this.allocPid()
            const ring = ob.buffer()
            const p = putPublishHeader(ring, off, topic, 1, false, pid, size)
            sig.writePayload(ring, p, this.bootId, seq)
            ob.commit(off, hdr + size, pid, 0)
            sig.published += sig.count
        }
        sig.clear()
        this.kick.emit(true)
    }

    /** A packet id not used by any outbox entry (MQTT 3.1.1, 2.3.1). */
    private allocPid(): number {
        for (;;) {
            const pid = this.nextPid
            this.nextPid = pid >= 0xffff ? 1 : pid + 1
            if (!this.outbox.hasPacketId(pid)) return pid
        }
    }

    /** Batches are due when their window has passed; the loop wakes on every closed batch and every 5 ms. */
    async publishLoop() {
        const enc = this.enc
        const ob = this.outbox
        for (;;) {
            const s = this.session
            // While disconnected the open batch keeps filling up to batchBytes instead of closing every window:
            // fuller batches code more frames per byte, so the outbox holds more of the outage.
            if (enc.count && s && s.connected && ds.millis() - enc.t0 >= this.config.batchWindow) this.closeBatch()
            const sig = this.signals
            if (sig.count && s && s.connected && ((ds.millis() >>> 0) - sig.t0) >>> 0 >= this.config.batchWindow)
                this.closeSignals()
            if (s && s.connected) {
                for (;;) {
                    const i = ob.nextUnsent()
                    if (i < 0) break
                    // marked before the send: its PUBACK may arrive while the send is still awaiting, and a
                    // failed send ends the session, after which resendAll() marks everything unsent again
                    if (ob.markSent(i)) this.counters.published += ob.frameCount(i)
                    if (!(await s.sendRange(ob.buffer(), ob.offset(i), ob.length(i)))) break
                }
            }
            await ds.wait(this.kick, 5)
        }
    }

    /** PUBACK: the batch leaves the outbox. */
    onPuback(pid: number) {
        const frames = this.outbox.ack(pid)
        if (frames > 0) {
            this.counters.acked += frames
            this.counters.batchesAcked++
        }
        if (frames >= 0) this.kick.emit(true)
    }

    /** A batch the broker will never acknowledge (too large for it, or refused): its frames count as dropped. */
    onRefused(pid: number) {
        const frames = this.outbox.ack(pid)
        if (frames > 0) {
            this.counters.dropOutbox += frames
            this.counters.batchesDropped++
        }
        if (frames >= 0) this.kick.emit(true)
    }

    /** Uptime in ms, not yet reduced modulo 2^32. */
    uptime(): number {
        return ds.millis() + this.clockOffset
    }

    async onConnected() {
        const s = this.session
        this.subscription = "pending"
        this.outbox.resendAll()
        await s.send(encodeSubscribe(this.allocPid(), this.topicCmd, 1, s.v5))
        await this.publishStatus(true)
        this.kick.emit(true)
    }

    async onMessage(topic: string, payload: Buffer, _length: number, retain: boolean) {
        if (topic !== this.topicCmd) return
        if (this.session && this.session.backlog() > CMD_BACKLOG) {
            this.counters.dropCmd++
            return
        }
        // a retained command is delivered again on every subscribe: stored state, never a fresh order
        const res = retain
            ? this.commands.refuse("retained", "retained commands are refused")
            : await this.commands.handle(payload === null ? Buffer.alloc(0) : payload, payload === null, this.lateResult)
        // null: a diag exchange runs in its own fiber and publishes its result through lateResult
        if (res) await this.publishResult(res)
    }



    /** SUBACK of the command subscription: a refusal leaves no command channel, which the status must show. */
    onSubscribed(granted: boolean) {
        this.subscription = granted ? "ok" : "refused"
        if (!granted) console.error(`mqtt: the broker refused the subscription to ${this.topicCmd}: no commands can arrive`)
    }

    private async publishResult(res: CommandResult) {
        const w = this.small
        w.reset()
        writeResult(w, res)
        const s = this.session
        if (w.overflow || !s || !(await s.send(encodePublish(this.topicResult, w.result(), 1, false, this.allocPid(), s.v5))))
            this.counters.dropCmd++
    }

    async statusLoop() {
        for (;;) {
            await this.refreshController()
            await this.publishStatus(true)
            const until = ds.millis() + this.config.statusPeriod
            while (!this.statusWanted && ds.millis() < until) await ds.sleep(20)
            this.statusWanted = false
        }
    }

    /**
     * Reads the controller's counters and bus state for the status (only when a server is bound). The reads run in
     * their own fiber and the status waits at most 1 s for them: a server that stops answering must not stop the
     * status (it then shows the last values read).
     */
    async refreshController() {
        if (!this.bound) {
            this.busState = "unbound"
            return
        }
        if (this.reading) return
        this.reading = true
        const self = this
        setTimeout(async () => {
            try {
                const c = await self.can.counters.read()
                if (c) self.canCounters = c
                const st = await self.can.busState.read()
                self.busState = ["error-active", "error-passive", "bus-off", "stopped"][st] || "unknown"
            } finally {
                self.reading = false
            }
        }, 0)
        const until = ds.millis() + 1000
        while (this.reading && ds.millis() < until) await ds.sleep(10)
    }

    async publishStatus(online: boolean) {
        const s = this.session
        if (!s || !s.connected) return
        const w = this.small
        w.reset()
        this.writeStatus(w, online)
        if (w.overflow) return
        await s.send(encodePublish(this.topicStatus, w.result(), 1, true, this.allocPid(), s.v5))
    }

    /** The status map (docs/protocol.md, "Status"). */
    writeStatus(w: CborWriter, online: boolean) {
        const c = this.counters
        const s = this.session
        // counters and uptime are reported modulo 2^32 (docs/protocol.md, "Wrap-around"; CborWriter.count): a CBOR
        // uint the host reads as u32, never a value the writer cannot encode (which silently dropped the whole status)
        const sig = this.signals
        w.map(sig.error ? 32 : 31)
        w.count("v", 1)
        w.text("online")
        w.bool(online)
        w.text("dev")
        w.text(this.config.deviceId)
        w.text("fw")
        w.text(VERSION)
        w.count("b", this.bootId)
        w.count("up", this.uptime())
        w.count("seq", this.seq)
        w.count("rx", c.rx)
        w.count("flt", c.filtered)
        w.count("ds", c.downsampled)
        w.count("pub", c.published)
        w.count("ack", c.acked)
        w.count("bat", c.batchesAcked)
        w.text("drop")
        w.map(7)
        w.count("outbox", c.dropOutbox)
        w.count("malformed", c.malformed)
        w.count("ctrl", this.canCounters.length > 2 ? this.canCounters[2] : 0)
        w.count("cmd", c.dropCmd)
        w.count("report", c.dropReport)
        w.count("flood", s ? s.floods : 0)
        w.count("sig", sig.dropped)
        w.count("rc", s && s.connects > 0 ? s.connects - 1 : 0)
        w.text("bus")
        w.text(this.busState)
        w.text("can")
        w.array(this.canCounters.length)
        for (const v of this.canCounters) w.int(uptime32(v))
        w.count("ob", this.outbox.bytes)
        w.count("obmax", this.outbox.maxBytes)
        w.count("tx", this.commands.transmitted)
        w.count("pv", s ? s.violations : 0)
        w.text("sub")
        w.text(this.subscription)
        w.count("sh", sig.hash)
        w.count("sseq", sig.seq)
        w.count("sig", sig.published)
        w.count("sds", sig.ruled)
        w.count("sshort", sig.short)
        w.count("sonly", sig.only)
        if (sig.error) {
            w.text("serr")
            w.text(sig.error.length > 120 ? sig.error.slice(0, 120) : sig.error)
        }
        w.count("mq", s ? s.level : 0)
        w.count("big", s ? s.oversize : 0)
        w.text("diag")
        this.diag.writeStatus(w)
    }

    /** The last will: `{v, online: false, dev, b}`, retained. */
    willPayload(): Buffer {
        const w = new CborWriter(Buffer.alloc(128))
        w.map(4)
        w.text("v")
        w.int(1)
        w.text("online")
        w.bool(false)
        w.text("dev")
        w.text(this.config.deviceId)
        w.text("b")
        w.int(this.bootId)
        return w.result()
    }

    statusTopic(): string {
        return this.topicStatus.toString("utf-8")
    }
}
