/**
 * Commands from `P/cmd` (docs/protocol.md, "Commands"): decode, validate, apply the downlink safety rules, run.
 * Every payload, however broken, yields exactly one result with a reason; nothing here throws to the caller, and a
 * frame is transmitted only after every check passed.
 */
import { CborError, CborWriter, decodeCbor } from "./cbor"
import { DiagClient, Exchange } from "./diag"
import { MAX_FILTERS, MAX_RULES } from "./filters"
import { checkRecord, FLAG_ERR, FLAG_FD, frameKey, lastRecordError } from "./records"
import { uptime32, wrapDiff } from "./wrap"

export const MAX_COMMAND = 512
/**
 * Transmitted command ids remembered per boot, each until its `exp` has passed (after which a replay is refused as
 * expired anyway). 8 bytes each (a hash of the id and its exp) in one buffer: 1 KB.
 */
export const RECENT_IDS = 128
export interface CommandResult {
    id: any
    op: string
    ok: boolean
    r: string
    msg: string
    /** The response bytes of a `diag` command. */
    d?: Buffer
}

/** What a command may touch; the gateway supplies it, tests supply their own. */
export interface CommandTarget {
    bootId: number
    now(): number
    /** The controller runs in normal mode (transmit possible). */
    normalMode(): boolean
    /** A CanBus server is bound. */
    bound(): boolean
    /** Why the transmit allowlist refuses this frame key and record flags, or "" when it admits them. */
    allowed(key: number, flags: number): string
    /** The controller can send CAN FD frames (CanBus `fd_supported`). */
    fdCapable(): boolean
    /** Maximum transmitted frames per second (also the burst the token bucket allows). */
    txRate: number
    /** Largest `exp - now` a tx may carry, ms: a captured command cannot be held back and replayed much later. */
    txExpMax: number
    transmit(record: Buffer): Promise<void>
    setFilters(pairs: number[][]): void
    setRules(rules: number[][]): void
    requestStatus(): void
    /** The diagnostic client (diag.ts) for `diag` and `poll`; without it they are refused as `unbound`. */
    diag?: DiagClient
}

const OPS = ["tx", "filter", "rate", "status", "diag", "poll"]
const KEYS: Record<string, string[]> = {
    tx: ["op", "id", "boot", "exp", "f"],
    filter: ["op", "id", "boot", "exp", "acc"],
    rate: ["op", "id", "boot", "exp", "rules"],
    status: ["op", "id", "boot", "exp"],
    diag: ["op", "id", "boot", "exp", "req", "res", "d"],
    poll: ["op", "id", "boot", "exp", "on", "list"],
}
/** Ops that act on the bus: they need an id, the current boot id and an expiry. */
const GUARDED = ["tx", "diag", "poll"]

function isU32(v: any): boolean {
    return typeof v === "number" && v >= 0 && v <= 0xffffffff && v === Math.floor(v)
}

/**
 * Printable ASCII only: a text from a random payload may hold bytes that are not UTF-8, and echoing them into a
 * result would make the result itself undecodable for the host.
 */
function printable(t: string): boolean {
    for (let i = 0; i < t.length; i++) {
        const c = t.charCodeAt(i)
        if (c < 0x20 || c > 0x7e) return false
    }
    return true
}

function result(id: any, op: string, r: string, msg: string): CommandResult {
    return { id, op, ok: r === "ok", r, msg }
}

/** The result of a `diag` or `poll` command from its exchange's outcome. */
function exchangeResult(id: any, op: string, x: Exchange): CommandResult {
    const res = result(id, op, x.r, x.msg)
    if (x.data) res.d = x.data
    return res
}

/** A list of `[u32, u32, ...]` tuples of exactly `width` items, at most `max` of them; null when ill-formed. */
function tuples(v: any, width: number, max: number): number[][] {
    if (!Array.isArray(v) || v.length > max) return null
    const out: number[][] = []
    for (const t of v) {
        if (!Array.isArray(t) || t.length !== width) return null
        for (const x of t) if (!isU32(x)) return null
        out.push(t)
    }
    return out
}

/** FNV-1a of an id (uint or text), for the table of recent ids: a collision refuses a command, never admits one. */
function idHash(id: any): number {
    const s = typeof id === "string" ? "s" + id : "n" + id
    let h = 0x811c9dc5
    for (let i = 0; i < s.length; i++) {
        h ^= s.charCodeAt(i)
        h = Math.imul(h, 0x01000193)
    }
    return h >>> 0
}

export class CommandHandler {
    /**
     * The rate limit as a token bucket: `txRate` tokens, refilled at `txRate` per second, one per frame. Two numbers
     * instead of a timestamp per frame sent in the last second (up to 1,000 of them).
     */
    private tokens = -1
    private refilled = 0
    /** Recent tx ids: u32 hash, u32 exp (uptime32) per entry; an entry with exp in the past is free. */
    private readonly recent = Buffer.alloc(RECENT_IDS * 8)
    private recentUsed = 0
    /** Totals by reason code, for the status. */
    readonly counts: Record<string, number> = {}
    /** Frames transmitted on command. */
    transmitted = 0

    constructor(private readonly target: CommandTarget) {}

    /** A command refused before decoding (e.g. a retained PUBLISH), counted like every other result. */
    refuse(r: string, msg: string): CommandResult {
        this.counts[r] = (this.counts[r] || 0) + 1
        return result(null, null, r, msg)
    }

    /**
     * Decodes, checks and runs one command payload; never throws. With `later`, a `diag` command that passed its
     * checks runs its exchange in a fiber of its own: handle returns null and `later` gets the result when the ECU
     * has answered (diag.ts, DiagClient.begin). Without it, handle waits for the exchange.
     */
    async handle(payload: Buffer, truncated: boolean, later?: (res: CommandResult) => Promise<void>): Promise<CommandResult> {
        let res: CommandResult
        try {
            res = await this.run(payload, truncated, later)
        } catch (e) {
            // a failure of the target (e.g. the transmit itself): reported, never propagated
            res = result(null, null, "failed", "" + (e as Error).message)
        }
        if (res) this.counts[res.r] = (this.counts[res.r] || 0) + 1
        return res
    }

    private async run(payload: Buffer, truncated: boolean, later: (res: CommandResult) => Promise<void>): Promise<CommandResult> {
        if (truncated || payload.length > MAX_COMMAND)
            return result(null, null, "too-large", `command exceeds ${MAX_COMMAND} bytes`)
        let cmd: any
        try {
            cmd = decodeCbor(payload)
        } catch (e) {
            if (e instanceof CborError) return result(null, null, "malformed", e.message)
            // anything else the decoder hits (e.g. invalid UTF-8) is still a malformed payload
            return result(null, null, "malformed", "undecodable: " + (e as Error).message)
        }
        if (cmd === null || typeof cmd !== "object" || Array.isArray(cmd) || cmd instanceof Buffer)
            return result(null, null, "malformed", "not a map")
        let id: any = null
        if (cmd.id !== undefined && cmd.id !== null) {
            if (isU32(cmd.id) || (typeof cmd.id === "string" && cmd.id.length <= 32 && printable(cmd.id))) id = cmd.id
            else return result(null, null, "bad-field", "id must be a uint or a printable text of at most 32 chars")
        }
        const op = cmd.op
        if (typeof op !== "string" || OPS.indexOf(op) < 0) return result(id, null, "bad-op", "op must be one of " + OPS.join(","))
        const allowed = KEYS[op]
        const keys = Object.keys(cmd)
        for (const k of keys) {
            if (allowed.indexOf(k) < 0) {
                const name = k.length <= 32 && printable(k) ? `'${k}'` : "(not printable)"
                return result(id, op, "bad-field", `unknown field ${name}`)
            }
        }
        const t = this.target
        if (GUARDED.indexOf(op) >= 0) {
            // the id is what makes a replay recognisable (a redelivery, a second copy from a compromised client)
            if (id === null) return result(id, op, "bad-field", `id is required for ${op}`)
            if (cmd.boot === undefined) return result(id, op, "bad-field", "boot is required")
            if (cmd.exp === undefined) return result(id, op, "bad-field", "exp is required")
        }
        if (cmd.boot !== undefined) {
            if (!isU32(cmd.boot)) return result(id, op, "bad-field", "boot must be a uint")
            if (cmd.boot !== t.bootId) return result(id, op, "stale-boot", "boot id is not the current one")
        }
        if (cmd.exp !== undefined) {
            if (!isU32(cmd.exp)) return result(id, op, "bad-field", "exp must be a uint")
            // uptime and exp are modulo 2^32 (49.7 days): compared as a signed 32-bit distance, never as plain numbers
            const ahead = wrapDiff(cmd.exp, uptime32(t.now()))
            if (ahead < 0) return result(id, op, "expired", "uptime is past exp")
            if (ahead > t.txExpMax) return result(id, op, "exp-too-far", `exp is more than ${t.txExpMax} ms ahead`)
        }
        if (op === "tx") return await this.transmit(id, cmd.exp, cmd.f)
        if (op === "diag" || op === "poll") {
            if (!t.diag) return result(id, op, "unbound", "no diagnostic client")
            if (op === "diag" && later) {
                const self = this
                const refused = t.diag.begin(id, cmd.req, cmd.res, cmd.d, async (x: Exchange) => {
                    const res = exchangeResult(id, op, x)
                    self.counts[res.r] = (self.counts[res.r] || 0) + 1
                    await later(res)
                })
                return refused ? exchangeResult(id, op, refused) : null
            }
            const x = op === "diag" ? await t.diag.command(id, cmd.req, cmd.res, cmd.d) : t.diag.pollCommand(id, cmd.on, cmd.list)
            return exchangeResult(id, op, x)
        }
        if (op === "filter") {
            const pairs = tuples(cmd.acc, 2, MAX_FILTERS)
            if (!pairs) return result(id, op, "bad-field", `acc must be at most ${MAX_FILTERS} [value, mask] uint pairs`)
            t.setFilters(pairs)
            return result(id, op, "ok", "")
        }
        if (op === "rate") {
            const rules = tuples(cmd.rules, 3, MAX_RULES)
            if (!rules) return result(id, op, "bad-field", `rules must be at most ${MAX_RULES} [key, ms, onChange] uint triples`)
            for (const r of rules) if (r[2] > 1) return result(id, op, "bad-field", "onChange must be 0 or 1")
            t.setRules(rules)
            return result(id, op, "ok", "")
        }
        t.requestStatus()
        return result(id, op, "ok", "")
    }

    /** The slot of `h` among unexpired recent ids, -1 when absent. */
    private findRecent(h: number, now32: number): number {
        const r = this.recent
        for (let i = 0; i < this.recentUsed; i++) {
            if (r.getAt(i * 8, "u32") === h && wrapDiff(r.getAt(i * 8 + 4, "u32"), now32) >= 0) return i
        }
        return -1
    }

    /** A free slot (never used, or its exp has passed), -1 when every remembered id is still live. */
    private freeRecent(now32: number): number {
        if (this.recentUsed < RECENT_IDS) return this.recentUsed
        const r = this.recent
        for (let i = 0; i < RECENT_IDS; i++) if (wrapDiff(r.getAt(i * 8 + 4, "u32"), now32) < 0) return i
        return -1
    }

    /** Takes one token from the bucket; false when it is empty. */
    private takeToken(now32: number, rate: number): boolean {
        if (this.tokens < 0) {
            this.tokens = rate
            this.refilled = now32
        }
        const elapsed = wrapDiff(now32, this.refilled)
        if (elapsed > 0) {
            this.tokens = Math.min(rate, this.tokens + (elapsed * rate) / 1000)
            this.refilled = now32
        }
        if (this.tokens < 1) return false
        this.tokens -= 1
        return true
    }

    private async transmit(id: any, exp: number, f: any): Promise<CommandResult> {
        const op = "tx"
        const t = this.target
        if (!(f instanceof Buffer)) return result(id, op, "bad-field", "f must be bytes (one CanBus frame record)")
        const end = checkRecord(f, 0, f.length)
        if (end < 0) return result(id, op, "bad-field", "f: " + lastRecordError.reason)
        if (end !== f.length) return result(id, op, "bad-field", "f must hold exactly one record")
        const flags = f[4]
        if (flags & FLAG_ERR) return result(id, op, "bad-field", "error frames cannot be sent")
        if (!t.bound()) return result(id, op, "unbound", "no CAN controller")
        if (!t.normalMode()) return result(id, op, "listen-only", "the controller is not in normal mode")
        const key = frameKey(f.getAt(0, "u32"), flags)
        const why = t.allowed(key, flags)
        if (why) return result(id, op, "not-allowed", why)
        if (flags & FLAG_FD && !t.fdCapable()) return result(id, op, "no-fd", "the controller cannot send CAN FD frames")
        const now32 = uptime32(t.now())
        const h = idHash(id)
        if (this.findRecent(h, now32) >= 0) return result(id, op, "duplicate", "this id was already run in this boot")
        const slot = this.freeRecent(now32)
        if (slot < 0) return result(id, op, "rate-limited", `${RECENT_IDS} tx commands are still unexpired`)
        if (!this.takeToken(now32, t.txRate)) return result(id, op, "rate-limited", `more than ${t.txRate} frames/s`)
        // remembered before the transmit: a copy arriving while it runs is a duplicate too
        if (slot === this.recentUsed) this.recentUsed++
        this.recent.setAt(slot * 8, "u32", h)
        this.recent.setAt(slot * 8 + 4, "u32", exp)
        await t.transmit(f)
        this.transmitted++
        return result(id, op, "ok", "")
    }
}

/** The result map (docs/protocol.md), written into `w`. */
export function writeResult(w: CborWriter, res: CommandResult) {
    w.map(res.d ? 6 : 5)
    w.text("id")
    if (res.id === null || res.id === undefined) w.nil()
    else if (typeof res.id === "string") w.text(res.id)
    else w.int(res.id)
    w.text("op")
    if (res.op) w.text(res.op)
    else w.nil()
    w.text("ok")
    w.bool(res.ok)
    w.text("r")
    w.text(res.r)
    w.text("msg")
    w.text(res.msg)
    if (res.d) {
        w.text("d")
        w.bytes(res.d, 0, res.d.length)
    }
}
