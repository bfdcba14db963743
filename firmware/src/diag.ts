/**
 * Diagnostics through the gateway (docs/protocol.md, "Diagnostics"): a `diag` command sends one ISO-TP request and
 * answers with the response bytes; a `poll` list sends requests periodically and publishes the responses on `P/diag`.
 * Both pass the same safety rules as `tx`: a current boot id and expiry (checked by commands.ts), normal mode, an
 * allowed request/response address pair (`diagAllow`), an allowed service (read-only unless `diagSvc` lists more)
 * and a token bucket of `diagRate` requests per second. One exchange at a time: the ISO-TP channel is shared by
 * commands and the poll list.
 */
import * as ds from "@devicescript/core"
import { readSetting } from "@devicescript/settings"
import { CborWriter } from "./cbor"
import { FC_FRAME, IsoTpReceiver, MAX_REQUEST, RX_DONE, RX_ERROR, RX_FLOW, singleFrame } from "./isotp"
import { checkRecord, FLAG_EXT, frameKey } from "./records"

/**
 * Services allowed without `diagSvc`: OBD-II modes that only read (01-03, 05-07, 09, 0A; not 04, which clears DTCs,
 * nor 08, which actuates on-board components), UDS ReadDTCInformation 0x19, ReadDataByIdentifier 0x22 and
 * TesterPresent 0x3E.
 */
export const READ_SERVICES = [0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x09, 0x0a, 0x19, 0x22, 0x3e]
/** Services whose positive answer echoes the request's second byte (PID, DID high byte, sub-function). */
const ECHO_SERVICES = [0x01, 0x02, 0x09, 0x10, 0x19, 0x22, 0x31]
export const MAX_DIAG_ALLOW = 8
export const MAX_POLL = 8
/** Client response timeout (P2 plus the path through the controller), ms. */
export const P2_MS = 1000
/** After a responsePending (NRC 0x78): the server's extended timeout P2* (ISO 14229-2), ms. */
export const P2STAR_MS = 5000
/** responsePending answers accepted in a row before the exchange ends as `timeout`. */
export const MAX_PENDING = 6
/** Between a flow control and the next consecutive frame (N_Cr), ms. */
export const NCR_MS = 1000
/** The `P/diag` batch buffer: also bounds a batch's payload (docs/firmware.md, Memory). */
export const POLL_BATCH = 320
/** A poll batch is published at most this long after its first response, ms. */
export const POLL_FLUSH_MS = 1000
/** Anti-replay window of diag ids below the highest one run (docs/protocol.md, "Diagnostics"). */
export const ID_WINDOW = 32

export interface DiagConfig {
    /** `[reqKey, resKey]` or `[reqKey, resKey, fcKey]`: the address pairs a request may use. */
    diagAllow: number[][]
    /** Services allowed beyond READ_SERVICES. */
    diagSvc: number[]
    /** Requests per second (commands and poll together), also the burst. */
    diagRate: number
    /** The poll list; `[reqKey, resKey, periodMs, request]` (request: hex text or bytes). */
    diagPoll: any[]
    /** The poll list runs from boot. */
    diagPollOn: boolean
}

export const DIAG_DEFAULTS: DiagConfig = { diagAllow: [], diagSvc: [], diagRate: 10, diagPoll: [], diagPollOn: false }

/** What the client may touch; the gateway supplies it, tests supply their own. */
export interface DiagTarget {
    now(): number
    normalMode(): boolean
    bound(): boolean
    transmit(record: Buffer): Promise<void>
    /** Publishes one `P/diag` payload; false when it could not be sent. */
    publish(payload: Buffer): Promise<boolean>
    bootId: number
}

/** The outcome of one exchange: `r` "ok" with the response in `data`, or an error code. */
export interface Exchange {
    r: string
    msg: string
    data: Buffer
}

export interface PollEntry {
    req: number
    res: number
    period: number
    request: Buffer
    due: number
}

function isUint(v: any, max: number) {
    return typeof v === "number" && v >= 0 && v <= max && v === Math.floor(v)
}

/** A key (id, bit 31 = extended) that names a valid 11- or 29-bit identifier. */
function isKey(v: any) {
    if (!isUint(v, 0xffffffff)) return false
    return v >= 0x80000000 ? v - 0x80000000 <= 0x1fffffff : v <= 0x7ff
}

/** Hex text ("010C") or bytes as a request of 1..7 bytes; null when it is neither. */
export function requestBytes(v: any): Buffer {
    if (v instanceof Buffer) return v.length >= 1 && v.length <= MAX_REQUEST ? v : null
    if (typeof v !== "string" || v.length < 2 || v.length > 2 * MAX_REQUEST || v.length & 1) return null
    for (let i = 0; i < v.length; i++) if ("0123456789abcdefABCDEF".indexOf(v[i]) < 0) return null
    return Buffer.from(v, "hex")
}

/** Why `v` is not a valid value of the diag setting `key`, or "" when it is. */
export function checkDiagSetting(key: string, v: any): string {
    if (key === "diagAllow") {
        const why = `at most ${MAX_DIAG_ALLOW} [reqKey, resKey] or [reqKey, resKey, fcKey] entries (key: id, + 0x80000000 for 29-bit)`
        if (!Array.isArray(v) || v.length > MAX_DIAG_ALLOW) return why
        for (const e of v) {
            if (!Array.isArray(e) || e.length < 2 || e.length > 3) return why
            for (const k of e) if (!isKey(k)) return why
        }
        return ""
    }
    if (key === "diagSvc") {
        if (!Array.isArray(v) || v.length > 32) return "at most 32 service ids 0..255"
        for (const s of v) if (!isUint(s, 255)) return "at most 32 service ids 0..255"
        return ""
    }
    if (key === "diagRate") return isUint(v, 100) ? "" : "requests/s 0..100"
    if (key === "diagPollOn") return typeof v === "boolean" ? "" : "true or false"
    if (key === "diagPoll") return pollListError(v)
    return "unknown setting"
}

/** Why a poll list is ill-formed (before the safety checks), or "". */
export function pollListError(v: any): string {
    const why = `at most ${MAX_POLL} [reqKey, resKey, periodMs (10..3600000), request (1..7 bytes or hex)] entries`
    if (!Array.isArray(v) || v.length > MAX_POLL) return why
    for (const e of v) {
        if (!Array.isArray(e) || e.length !== 4 || !isKey(e[0]) || !isKey(e[1])) return why
        if (!isUint(e[2], 3600000) || e[2] < 10 || !requestBytes(e[3])) return why
    }
    return ""
}

/** Reads the diag settings; a bad value is reported and replaced by its default (config.ts does the same). */
export async function loadDiagConfig(): Promise<{ config: DiagConfig; errors: string[] }> {
    const config: any = {}
    const errors: string[] = []
    for (const k of Object.keys(DIAG_DEFAULTS)) {
        const v = await readSetting(k, undefined)
        const d = (DIAG_DEFAULTS as any)[k]
        if (v === undefined || v === null) config[k] = d
        else {
            const why = checkDiagSetting(k, v)
            if (why) errors.push(`setting ${k}: expected ${why}; using the default`)
            config[k] = why ? d : v
        }
    }
    return { config: config as DiagConfig, errors }
}

/** The record of a classic data frame with this key and 8 data bytes (filled by the caller). */
function putHead(rec: Buffer, key: number) {
    const ext = key >= 0x80000000
    rec.setAt(0, "u32", ext ? key - 0x80000000 : key)
    rec[4] = ext ? FLAG_EXT : 0
    rec[5] = 8
}

export class DiagClient {
    private readonly rx = new IsoTpReceiver()
    /** The request and the flow control, as CanBus records (6 + 8 bytes each). */
    private readonly reqRec = Buffer.alloc(14)
    private readonly fcRec = Buffer.alloc(14)
    private readonly batch = new CborWriter(Buffer.alloc(POLL_BATCH))
    /** The response key of the exchange under way, -1 when none. */
    private listenKey = -1
    private expectSid = 0
    /** The PID or first DID byte a positive answer echoes (services ECHO_SERVICES), -1 when none. */
    private expectEcho = -1
    private state = 0
    private fcDue = false
    private fcSent = false
    private pending = 0
    private readonly wake = ds.emitter<boolean>()
    private busy = false
    /** A `diag` command's fiber runs (begin): the poll loop waits, a second command is refused. */
    private commandRunning = false
    private tokens = -1
    private refilled = 0
    /** Anti-replay: the highest diag id run in this boot and a bitmap of the ID_WINDOW ids below it. */
    private hiId = -1
    private seen = 0
    private poll: PollEntry[] = []
    pollOn = false
    private pollSeq = 0
    private batchCount = 0
    private batchCountPos = 0
    private batchT0 = 0
    /** Totals for the status `diag` map. */
    readonly counts = { req: 0, ok: 0, neg: 0, err: 0, pub: 0, drop: 0, busy: 0 }

    constructor(
        readonly config: DiagConfig,
        private readonly target: DiagTarget
    ) {
        const list = this.checkedPoll(config.diagPoll)
        if (typeof list === "string") console.warn("setting diagPoll: " + list + "; poll list empty")
        else {
            this.poll = list
            this.pollOn = config.diagPollOn && list.length > 0
        }
    }

    /** Why a request may not be sent (address pair, service), or "" with `fcKey` set. */
    refusal(req: number, res: number, request: Buffer): string {
        let pair: number[] = null
        for (const e of this.config.diagAllow) if (e[0] === req && e[1] === res) pair = e
        if (!pair) return "the request/response pair is not in diagAllow"
        const sid = request[0]
        if (READ_SERVICES.indexOf(sid) < 0 && this.config.diagSvc.indexOf(sid) < 0)
            return `service 0x${Buffer.from([sid]).toString("hex")} is not allowed (read-only services unless diagSvc lists it)`
        return ""
    }

    private fcKeyOf(req: number, res: number): number {
        for (const e of this.config.diagAllow) if (e[0] === req && e[1] === res) return e.length > 2 ? e[2] : req
        return req
    }

    /**
     * Anti-replay for diag and poll command ids: a uint id runs only when it is above the highest one run in this
     * boot, or within the ID_WINDOW below it and not yet seen (serial-number comparison, so the ids may wrap).
     * Constant memory, so a technician sending a request per second for hours is never refused for "too many ids".
     */
    checkId(id: any): string {
        if (!isUint(id, 0xffffffff)) return "diag and poll ids must be uints, increasing within a boot"
        if (this.hiId < 0) return ""
        const d = (id - this.hiId) | 0
        if (d > 0) return ""
        if (-d >= ID_WINDOW) return `id is more than ${ID_WINDOW} below the highest diag id run in this boot`
        if (d === 0 || this.seen & (1 << (-d - 1))) return "this id was already run in this boot"
        return ""
    }

    markId(id: number) {
        if (this.hiId < 0) {
            this.hiId = id
            return
        }
        const d = (id - this.hiId) | 0
        if (d > 0) {
            // bit k stands for id hi - (k + 1): the old bits move up by d, the old highest becomes bit d - 1
            if (d > ID_WINDOW) this.seen = 0
            else if (d === ID_WINDOW) this.seen = 0x80000000
            else this.seen = ((this.seen << d) | (1 << (d - 1))) >>> 0
            this.hiId = id
        } else this.seen = (this.seen | (1 << (-d - 1))) >>> 0
    }

    /** Takes one request token; false when the bucket is empty. */
    takeToken(): boolean {
        const rate = this.config.diagRate
        const now = this.target.now()
        if (this.tokens < 0) {
            this.tokens = rate
            this.refilled = now
        }
        const elapsed = now - this.refilled
        if (elapsed > 0) {
            this.tokens = Math.min(rate, this.tokens + (elapsed * rate) / 1000)
            this.refilled = now
        }
        if (this.tokens < 1) return false
        this.tokens -= 1
        return true
    }

    /** Preconditions shared by a command and the poll loop: null, or [reason code, message]. */
    private linkRefusal(): string[] {
        if (!this.target.bound()) return ["unbound", "no CAN controller"]
        if (!this.target.normalMode()) return ["listen-only", "the controller is not in normal mode"]
        return null
    }

    /**
     * The `diag` command, after commands.ts checked id presence, boot and exp, run to its end in the caller's fiber
     * (tests, and callers that have nothing else to do meanwhile). The gateway uses begin().
     */
    async command(id: any, req: any, res: any, d: any): Promise<Exchange> {
        const refused = this.admit(id, req, res, d)
        if (refused) return refused
        try {
            return await this.commandExchange(req, res, d)
        } finally {
            this.commandRunning = false
        }
    }

    /**
     * Checks a `diag` command and, when it passes, starts its exchange in a fiber of its own and returns null; `done`
     * gets the outcome there. The caller (the MQTT session's read fiber) is not held while the ECU thinks (up to
     * P2* per responsePending): it goes on reading status requests, other commands and PUBACKs. A refusal is returned
     * at once. One command exchange at a time: a second `diag` while one runs is refused `busy`.
     */
    begin(id: any, req: any, res: any, d: any, done: (x: Exchange) => Promise<void>): Exchange {
        const refused = this.admit(id, req, res, d)
        if (refused) return refused
        const self = this
        const run = async () => {
            let x: Exchange
            try {
                x = await self.commandExchange(req, res, d)
            } catch (e) {
                self.counts.err++
                x = fail("failed", "" + (e as Error).message)
            }
            // before `done`: its result may make the host send the next request at once
            self.commandRunning = false
            try {
                await done(x)
            } catch (e) {
                // an exception in a started fiber would stop the program; the result is lost (the gateway counts it)
                console.warn("diag: result not delivered: " + (e as Error).message)
            }
        }
        run.start()
        return null
    }

    /** The checks of a `diag` command; when it passes: the channel taken for it (commandRunning), its id spent. */
    private admit(id: any, req: any, res: any, d: any): Exchange {
        if (!isKey(req)) return fail("bad-field", "req must be a CAN id key (bit 31 = 29-bit)")
        if (!isKey(res)) return fail("bad-field", "res must be a CAN id key (bit 31 = 29-bit)")
        const request = d instanceof Buffer && d.length >= 1 && d.length <= MAX_REQUEST ? d : null
        if (!request) return fail("bad-field", `d must be 1..${MAX_REQUEST} bytes (one ISO-TP single frame)`)
        const idWhy = this.checkId(id)
        if (idWhy) return fail(idWhy.indexOf("uints") >= 0 ? "bad-field" : "duplicate", idWhy)
        const link = this.linkRefusal()
        if (link) return fail(link[0], link[1])
        const why = this.refusal(req, res, request)
        if (why) return fail("not-allowed", why)
        if (this.commandRunning) {
            this.counts.busy++
            return fail("busy", "another diagnostic command is still under way")
        }
        if (!this.takeToken()) return fail("rate-limited", `more than ${this.config.diagRate} requests/s`)
        // remembered before the exchange: a copy arriving while it runs is a duplicate
        this.markId(id)
        this.commandRunning = true
        return null
    }

    private async commandExchange(req: number, res: number, request: Buffer): Promise<Exchange> {
        if (this.busy) {
            // the poll loop's exchange is under way (it starts no new one while a command waits): it ends within its
            // timeouts
            const until = this.target.now() + P2STAR_MS * 2
            while (this.busy && this.target.now() < until) await ds.sleep(5)
            if (this.busy) {
                this.counts.busy++
                return fail("busy", "another diagnostic exchange is still under way")
            }
        }
        return await this.exchange(req, res, request)
    }

    /** One request and its response; the caller checked the safety rules and took a token. Never throws. */
    async exchange(req: number, res: number, request: Buffer): Promise<Exchange> {
        this.busy = true
        try {
            return await this.run(req, res, request)
        } catch (e) {
            this.counts.err++
            return fail("failed", "" + (e as Error).message)
        } finally {
            this.listenKey = -1
            this.busy = false
        }
    }

    private async run(req: number, res: number, request: Buffer): Promise<Exchange> {
        const t = this.target
        this.rx.reset()
        this.state = 0
        this.fcDue = false
        this.fcSent = false
        this.pending = 0
        this.expectSid = request[0]
        // a late answer to an earlier request of the same service (another PID) must not be taken for this one
        this.expectEcho = request.length > 1 && ECHO_SERVICES.indexOf(request[0]) >= 0 ? request[1] & (request[0] === 0x10 || request[0] === 0x31 || request[0] === 0x19 ? 0x7f : 0xff) : -1
        putHead(this.reqRec, req)
        singleFrame(request, this.reqRec, 6)
        putHead(this.fcRec, this.fcKeyOf(req, res))
        for (let i = 0; i < 8; i++) this.fcRec[6 + i] = FC_FRAME[i]
        this.listenKey = res
        this.counts.req++
        await t.transmit(this.reqRec)
        // TesterPresent with suppressPosRspMsgIndicationBit: no response comes
        if (request[0] === 0x3e && request.length > 1 && request[1] & 0x80) {
            this.counts.ok++
            return { r: "ok", msg: "", data: Buffer.alloc(0) }
        }
        let deadline = t.now() + P2_MS
        for (;;) {
            if (this.fcDue) {
                this.fcDue = false
                await t.transmit(this.fcRec)
                deadline = t.now() + NCR_MS
            }
            if (this.state === RX_DONE) {
                const n = this.rx.total
                const data = this.rx.data.slice(0, n)
                if (n >= 3 && data[0] === 0x7f && data[2] === 0x78) {
                    // responsePending: the server works on it; wait up to P2* for the answer
                    if (++this.pending > MAX_PENDING) return this.error("timeout", `more than ${MAX_PENDING} responsePending answers`)
                    this.state = 0
                    this.rx.reset()
                    deadline = t.now() + P2STAR_MS
                    continue
                }
                if (data[0] === 0x7f) this.counts.neg++
                this.counts.ok++
                return { r: "ok", msg: data[0] === 0x7f ? "negative response" : "", data }
            }
            if (this.state === RX_ERROR) return this.error(this.rx.error, this.errorText(this.rx.error))
            const left = deadline - t.now()
            if (left <= 0) return this.error("timeout", this.pending ? "no response within P2* after responsePending" : "no response within P2")
            await ds.wait(this.wake, Math.min(left, 50))
        }
    }

    private errorText(code: string): string {
        if (code === "wrong-sn") return "consecutive frame out of sequence"
        if (code === "overflow") return "the response is longer than 256 bytes"
        return "a response frame of the wrong shape (length, PCI or a second first frame)"
    }

    private error(code: string, msg: string): Exchange {
        this.counts.err++
        return fail(code, msg)
    }

    /**
     * Every record of a `frames` report from `start` on, called synchronously from the report handler before
     * filtering: the response id is heard whatever the accept filters select. Cheap when no exchange runs.
     */
    tap(buf: Buffer, start: number) {
        const key = this.listenKey
        if (key < 0 || this.state === RX_DONE || this.state === RX_ERROR) return
        let off = start
        const end = buf.length
        while (off < end) {
            const next = checkRecord(buf, off, end)
            if (next < 0) return
            const flags = buf[off + 4]
            if (!(flags & ~FLAG_EXT) && frameKey(buf.getAt(off, "u32"), flags) === key) this.onResponseFrame(buf, off + 6, buf[off + 5])
            if (this.state === RX_DONE || this.state === RX_ERROR) break
            off = next
        }
    }

    private onResponseFrame(buf: Buffer, off: number, len: number) {
        if (len < 2) return
        const pci = buf[off]
        const type = pci >> 4
        // the service byte of a single frame or a first frame: answers to other requests are not ours
        const pos = this.expectSid + 0x40
        if (type === 0) {
            const sid = buf[off + 1]
            if (sid === pos) {
                if (this.expectEcho >= 0 && (len < 3 || (pci & 0x0f) < 2 || buf[off + 2] !== this.expectEcho)) return
            } else if (!(sid === 0x7f && len >= 3 && buf[off + 2] === this.expectSid)) return
        } else if (type === 1) {
            if (len < 3 || buf[off + 2] !== pos) return
            if (this.expectEcho >= 0 && len >= 4 && buf[off + 3] !== this.expectEcho) return
        } else if (type !== 2) return
        if (type === 1 && this.fcSent) {
            // a second first frame in one exchange: answering it would let a flooding sender make the gateway
            // transmit without bound
            this.state = RX_ERROR
            this.rx.error = "bad-frame"
            this.wake.emit(true)
            return
        }
        const r = this.rx.onFrame(buf, off, len)
        if (r === RX_FLOW) {
            this.fcSent = true
            this.fcDue = true
        } else if (r === RX_DONE || r === RX_ERROR) this.state = r
        else return
        this.wake.emit(true)
    }

    /** Checks and converts a poll list; an error text when any entry is ill-formed or refused. */
    checkedPoll(v: any): PollEntry[] | string {
        const bad = pollListError(v)
        if (bad) return bad
        const out: PollEntry[] = []
        for (let i = 0; i < v.length; i++) {
            const e = v[i]
            const request = requestBytes(e[3])
            const why = this.refusal(e[0], e[1], request)
            if (why) return `entry ${i}: ${why}`
            out.push({ req: e[0], res: e[1], period: e[2], request, due: 0 })
        }
        return out
    }

    /** The `poll` command: `list` replaces the list (when given), `on` switches it. */
    pollCommand(id: any, on: any, list: any): Exchange {
        if (on !== undefined && typeof on !== "boolean") return fail("bad-field", "on must be true or false")
        if (on === undefined && list === undefined) return fail("bad-field", "on or list is required")
        const idWhy = this.checkId(id)
        if (idWhy) return fail(idWhy.indexOf("uints") >= 0 ? "bad-field" : "duplicate", idWhy)
        let entries: PollEntry[] = null
        if (list !== undefined) {
            const r = this.checkedPoll(list)
            if (typeof r === "string") return fail(r.indexOf("entry") === 0 ? "not-allowed" : "bad-field", "list: " + r)
            entries = r
        }
        if (on === true) {
            const link = this.linkRefusal()
            if (link) return fail(link[0], link[1])
        }
        this.markId(id)
        if (entries) this.poll = entries
        if (on !== undefined) this.pollOn = on
        for (const e of this.poll) e.due = 0
        return { r: "ok", msg: "", data: null }
    }

    /** The poll fiber: runs due entries in turn, within the shared rate limit, and publishes the responses. */
    async pollLoop() {
        const t = this.target
        for (;;) {
            if (this.batchCount && (!this.pollOn || t.now() - this.batchT0 >= POLL_FLUSH_MS)) await this.flush()
            const e = this.pollOn && !this.busy && !this.commandRunning && !this.linkRefusal() ? this.nextDue() : null
            if (!e || !this.takeToken()) {
                await ds.sleep(e ? 20 : 10)
                continue
            }
            const i = this.poll.indexOf(e)
            // next due one period on, or one period from now when the loop fell behind (no burst to catch up)
            const now = t.now()
            e.due = e.due + e.period > now ? e.due + e.period : now + e.period
            const x = await this.exchange(e.req, e.res, e.request)
            // the list may have been replaced while the exchange ran: its index no longer names this entry
            if (this.poll[i] === e) await this.append(i, x)
        }
    }

    private nextDue(): PollEntry {
        const now = this.target.now()
        let best: PollEntry = null
        for (const e of this.poll) if (e.due <= now && (!best || e.due < best.due)) best = e
        return best
    }

    /** One `[index, time, response or error code]` in the open `P/diag` batch. */
    private async append(i: number, x: Exchange) {
        const w = this.batch
        const need = 16 + (x.r === "ok" ? x.data.length : x.r.length)
        if (this.batchCount && w.pos + need > w.buf.length) await this.flush()
        if (!this.batchCount) {
            w.reset()
            w.map(4)
            w.text("v")
            w.int(1)
            w.text("b")
            w.int(this.target.bootId)
            w.text("s")
            w.int(this.pollSeq)
            w.text("r")
            // a two-byte array count, filled in at flush
            this.batchCountPos = w.pos
            w.raw(Buffer.from([0x99, 0, 0]), 0, 3)
            this.batchT0 = this.target.now()
        }
        w.array(3)
        w.int(i)
        w.int(this.target.now() >>> 0)
        if (x.r === "ok") w.bytes(x.data, 0, x.data.length)
        else w.text(x.r)
        this.batchCount++
    }

    /** Publishes the open batch; a batch that cannot be sent is counted (status `diag.drop`) and dropped. */
    async flush() {
        const w = this.batch
        const n = this.batchCount
        if (!n) return
        this.batchCount = 0
        this.pollSeq++
        w.buf[this.batchCountPos + 1] = n >> 8
        w.buf[this.batchCountPos + 2] = n & 0xff
        if (!w.overflow && (await this.target.publish(w.result()))) this.counts.pub += n
        else this.counts.drop += n
    }

    /** The status `diag` map (docs/protocol.md, Status). */
    writeStatus(w: CborWriter) {
        const c = this.counts
        w.map(8)
        w.count("req", c.req)
        w.count("ok", c.ok)
        w.count("neg", c.neg)
        w.count("err", c.err)
        w.count("pub", c.pub)
        w.count("drop", c.drop)
        w.count("busy", c.busy)
        w.count("poll", this.pollOn ? this.poll.length : 0)
    }
}

function fail(r: string, msg: string): Exchange {
    return { r, msg, data: null }
}
