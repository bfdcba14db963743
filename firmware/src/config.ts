/**
 * Gateway settings: names, defaults and checks. Values come from `.env.defaults` / `.env.local` (JSON-parsed by
 * DeviceScript, keys at most 13 characters) through `@devicescript/settings`. A bad value is reported and replaced
 * by its default, so a typo never stops the gateway; `mqttPass` is never printed.
 */
import { readSetting } from "@devicescript/settings"
import { KIND_FLAGS, MAX_ALLOW } from "./allowlist"
import { MAX_FILTERS, MAX_RULES } from "./filters"
import { onlyProblem, tableShape } from "./signals"

export interface GatewayConfig {
    mqttHost: string
    mqttPort: number
    mqttTls: boolean
    mqttUser: string
    mqttPass: string
    /** Try MQTT 5 first, falling back to 3.1.1; false: MQTT 3.1.1 only. */
    mqttV5: boolean
    deviceId: string
    topicPrefix: string
    /** MQTT keep-alive, s. */
    keepAlive: number
    /** "bus": a CanBus server elsewhere on the Jacdac bus (the simulator); "mcp2515": the on-board controller. */
    canServer: string
    canBitrate: number
    /** "listen" (default) or "normal". */
    canMode: string
    /** Accept filters `[value, mask]` over the frame key; empty = all. */
    canFilters: number[][]
    /** Downsampling `[key, minIntervalMs, onChange]`. */
    rateRules: number[][]
    /** Transmit allowlist `[value, mask]` or `[value, mask, kinds]` (allowlist.ts); empty = nothing may be sent. */
    txAllow: number[][]
    /** Transmitted frames per second, at most. */
    txRate: number
    /** Largest `exp - uptime` of a tx command, ms. */
    txExpMax: number
    /** Allows `canMode: normal` over a broker connection without TLS (commands that move a vehicle, unencrypted). */
    insecure: boolean
    /** ms after a batch's first frame before it is closed. */
    batchWindow: number
    /** Largest batch payload, bytes. */
    batchBytes: number
    /** Outbox bound, bytes (frame batches waiting for PUBACK). */
    outboxBytes: number
    /** ms between status publications. */
    statusPeriod: number
    /** Signals extracted from frames (rows of 11 integers, signals.ts); empty = none. */
    sigTable: number[][]
    /** Frame keys whose frames go to signals only, not into frame batches. */
    sigOnly: number[]
    /** Largest `P/signals` payload, bytes. */
    sigBytes: number
}

export const DEFAULTS: GatewayConfig = {
    mqttHost: "127.0.0.1",
    mqttPort: 1883,
    mqttTls: false,
    mqttUser: "",
    mqttPass: "",
    mqttV5: true,
    deviceId: "gw1",
    topicPrefix: "vgw",
    keepAlive: 30,
    canServer: "bus",
    canBitrate: 500000,
    canMode: "listen",
    canFilters: [],
    rateRules: [],
    txAllow: [],
    txRate: 10,
    txExpMax: 30000,
    insecure: false,
    batchWindow: 100,
    batchBytes: 2560,
    outboxBytes: 12288,
    statusPeriod: 5000,
    sigTable: [],
    sigOnly: [],
    sigBytes: 512,
}

export const KEYS = Object.keys(DEFAULTS)
/** Settings whose bad value stops the broker connection instead of taking the default (config fails closed). */
const BROKER_KEYS = ["mqttHost", "mqttPort", "mqttTls", "mqttUser", "mqttPass"]
/** The largest TLS write is 4095 B (session.ts MAX_WRITE): a batch PUBLISH must stay below it, with its header. */
export const TLS_BATCH_BYTES = 3840

function isUint(v: any, min: number, max: number) {
    return typeof v === "number" && v === Math.floor(v) && v >= min && v <= max
}

function isTuples(v: any, width: number, max: number, widthMax = width) {
    if (!Array.isArray(v) || v.length > max) return false
    for (const t of v) {
        if (!Array.isArray(t) || t.length < width || t.length > widthMax) return false
        for (const x of t) if (!isUint(x, 0, 0xffffffff)) return false
    }
    return true
}

function isAllowlist(v: any) {
    if (!isTuples(v, 2, MAX_ALLOW, 3)) return false
    for (const t of v) if (t.length > 2 && t[2] & ~KIND_FLAGS) return false
    return true
}

/** Why `v` is not a valid value for `key`, or "" when it is. */
export function checkSetting(key: string, v: any): string {
    switch (key) {
        case "mqttHost":
        case "deviceId":
        case "topicPrefix":
            if (typeof v !== "string" || !v.length || v.length > 64) return "a text of 1..64 chars"
            if (key !== "mqttHost" && (v.indexOf("/") >= 0 || v.indexOf("+") >= 0 || v.indexOf("#") >= 0))
                return "no '/', '+' or '#'"
            return ""
        case "mqttUser":
        case "mqttPass":
            return typeof v === "string" && v.length <= 64 ? "" : "a text of at most 64 chars"
        case "mqttPort":
            return isUint(v, 1, 65535) ? "" : "a port 1..65535"
        case "mqttTls":
        case "mqttV5":
            return typeof v === "boolean" ? "" : "true or false"
        case "keepAlive":
            // 0 would turn keep-alive off: a dead broker connection would then never be noticed
            return isUint(v, 5, 65535) ? "" : "seconds 5..65535"
        case "canServer":
            return v === "bus" || v === "mcp2515" ? "" : '"bus" or "mcp2515"'
        case "canBitrate":
            return v === 125000 || v === 250000 || v === 500000 || v === 1000000 ? "" : "125000, 250000, 500000 or 1000000"
        case "canMode":
            // the CanBus Mode enum values (0 listen-only, 1 normal) are accepted too
            return v === "listen" || v === "normal" || v === 0 || v === 1 ? "" : '"listen" or "normal" (or 0, 1)'
        case "canFilters":
            return isTuples(v, 2, MAX_FILTERS) ? "" : `at most ${MAX_FILTERS} [value, mask] pairs`
        case "txAllow":
            return isAllowlist(v) ? "" : `at most ${MAX_ALLOW} [value, mask] or [value, mask, kinds] entries (kinds: RTR 2 | FD 4 | BRS 8)`
        case "txExpMax":
            return isUint(v, 100, 600000) ? "" : "ms 100..600000"
        case "insecure":
            return typeof v === "boolean" ? "" : "true or false"
        case "rateRules":
            return isTuples(v, 3, MAX_RULES) ? "" : `at most ${MAX_RULES} [key, ms, onChange] triples`
        case "txRate":
            return isUint(v, 0, 1000) ? "" : "frames/s 0..1000"
        case "batchWindow":
            return isUint(v, 1, 60000) ? "" : "ms 1..60000"
        case "batchBytes":
            return isUint(v, 256, 8192) ? "" : "bytes 256..8192"
        case "outboxBytes":
            return isUint(v, 1024, 32768) ? "" : "bytes 1024..32768"
        case "statusPeriod":
            return isUint(v, 500, 3600000) ? "" : "ms 500..3600000"
        case "sigTable":
            // the rows are checked by SignalTable.compile (status `serr`)
            return tableShape(v)
        case "sigOnly":
            return onlyProblem(v)
        case "sigBytes":
            return isUint(v, 128, 2048) ? "" : "bytes 128..2048"
    }
    return "unknown setting"
}

/** Settings refused as a whole with the signal table: either one bad leaves no signals (status `serr`). */
const SIGNAL_KEYS = ["sigTable", "sigOnly"]

/**
 * Checks a set of raw values; missing keys take defaults, bad ones too (with a message each). A bad broker setting
 * (host, port, TLS, user, password) is `fatal` instead: a typo must not fall back to plain TCP or to no password.
 * A bad `sigTable` or `sigOnly` empties both and says why in `sigError` (the status's `serr`).
 */
export function checkConfig(raw: Record<string, any>): {
    config: GatewayConfig
    errors: string[]
    fatal: string[]
    sigError: string
} {
    const config: any = {}
    const errors: string[] = []
    const fatal: string[] = []
    let sigError = ""
    for (const k of KEYS) {
        const v = raw[k]
        const d = (DEFAULTS as any)[k]
        if (v === undefined || v === null) {
            config[k] = d
            continue
        }
        const why = checkSetting(k, v)
        if (why && SIGNAL_KEYS.indexOf(k) >= 0) {
            sigError = `${k}: ${why}`
            errors.push(`setting ${k}: expected ${why}; no signals published`)
            config[k] = d
        } else if (why && BROKER_KEYS.indexOf(k) >= 0) {
            fatal.push(`setting ${k}: expected ${why}; not connecting to the broker`)
            config[k] = d
        } else if (why) {
            errors.push(`setting ${k}: expected ${why}; using the default`)
            config[k] = d
        } else config[k] = v
    }
    const c = config as GatewayConfig
    if ((c.canMode as any) === 0) c.canMode = "listen"
    if ((c.canMode as any) === 1) c.canMode = "normal"
    if (c.canMode === "normal" && !c.mqttTls && !c.insecure) {
        errors.push("setting canMode: normal needs mqttTls (or insecure: true); using listen")
        c.canMode = "listen"
    }
    if (c.mqttTls && c.batchBytes > TLS_BATCH_BYTES) {
        errors.push(`setting batchBytes: at most ${TLS_BATCH_BYTES} with TLS (writes stay below 4096 B); using it`)
        c.batchBytes = TLS_BATCH_BYTES
    }
    if (c.outboxBytes < c.batchBytes + 64) {
        errors.push(`setting outboxBytes: must hold one batch (batchBytes + 64); using ${c.batchBytes + 64}`)
        c.outboxBytes = c.batchBytes + 64
    }
    if (sigError) {
        c.sigTable = []
        c.sigOnly = []
    }
    if (c.outboxBytes < c.sigBytes + 64) {
        errors.push(`setting sigBytes: the outbox must hold one signal batch; using ${c.outboxBytes - 64}`)
        c.sigBytes = c.outboxBytes - 64
    }
    return { config: c, errors, fatal, sigError }
}

/** Reads every setting from the device's settings store. */
export async function loadConfig(): Promise<{ config: GatewayConfig; errors: string[]; fatal: string[]; sigError: string }> {
    const raw: Record<string, any> = {}
    for (const k of KEYS) raw[k] = await readSetting(k, undefined)
    // The password under a `$` key: the Jacdac settings service leaves `$` keys out of its listing
    // (docs/firmware.md, Threat model). The plain key still works, with a warning.
    const secret = await readSetting(SECRET_PASS, undefined)
    const r = checkConfig(raw)
    if (secret !== undefined && secret !== null) {
        const why = checkSetting("mqttPass", secret)
        if (why) r.fatal.push(`setting ${SECRET_PASS}: expected ${why}; not connecting to the broker`)
        else r.config.mqttPass = secret
    } else if (r.config.mqttPass) r.errors.push(`setting mqttPass: store the password under ${SECRET_PASS}, which the settings service does not list`)
    return r
}

export const SECRET_PASS = "$mqttPass"
