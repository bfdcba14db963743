/**
 * MQTT 3.1.1 and MQTT 5 control packets (OASIS mqtt-v3.1.1-os and mqtt-v5.0-os, sections 2 and 3): encoders for what
 * a client sends and a streaming parser for what a broker sends. Only the subset the gateway uses; no packet is ever
 * traced as bytes (CONNECT carries the password). The framing is the same in both; MQTT 5 adds a property block
 * (a varint length, then identifier/value pairs) to CONNECT, CONNACK, PUBLISH, the acknowledgements and DISCONNECT,
 * and reason codes to the acknowledgements. The `v5` parameters choose the MQTT 5 form.
 */

export const CONNECT = 1
export const CONNACK = 2
export const PUBLISH = 3
export const PUBACK = 4
export const PUBREC = 5
export const PUBREL = 6
export const PUBCOMP = 7
export const SUBSCRIBE = 8
export const SUBACK = 9
export const UNSUBSCRIBE = 10
export const UNSUBACK = 11
export const PINGREQ = 12
export const PINGRESP = 13
export const DISCONNECT = 14

/** The protocol levels of CONNECT (3.1.2.2): MQTT 3.1.1 and MQTT 5. */
export const LEVEL_311 = 4
export const LEVEL_5 = 5
/** Receive Maximum the gateway announces in an MQTT 5 CONNECT: QoS 1 commands the broker may have unacknowledged. */
export const RECEIVE_MAXIMUM = 4

/** Bytes of the remaining-length varint for `n` (1..4; the protocol's maximum is 268,435,455). */
export function remainingLengthSize(n: number): number {
    if (n < 128) return 1
    if (n < 16384) return 2
    if (n < 2097152) return 3
    return 4
}

export function putRemainingLength(buf: Buffer, pos: number, n: number): number {
    for (;;) {
        let b = n & 0x7f
        n = n >>> 7
        if (n > 0) b |= 0x80
        buf[pos++] = b
        if (n === 0) return pos
    }
}

function putU16(buf: Buffer, pos: number, v: number): number {
    buf[pos] = (v >> 8) & 0xff
    buf[pos + 1] = v & 0xff
    return pos + 2
}

function putU32(buf: Buffer, pos: number, v: number): number {
    putU16(buf, pos, (v >>> 16) & 0xffff)
    return putU16(buf, pos + 2, v & 0xffff)
}

function putStr(buf: Buffer, pos: number, s: Buffer): number {
    pos = putU16(buf, pos, s.length)
    buf.blitAt(pos, s, 0, s.length)
    return pos + s.length
}

export interface ConnectOptions {
    clientId: string
    keepAlive: number
    username?: string
    password?: string
    willTopic?: string
    willPayload?: Buffer
    willRetain?: boolean
    /** QoS of the will message (0..2). */
    willQos?: number
    cleanSession?: boolean
    /**
     * MQTT 5 only: the Maximum Packet Size property (the largest packet the broker may send; it refuses or drops a
     * larger one itself instead of sending it). The CONNECT also carries Session Expiry 0 and Receive Maximum.
     */
    maxPacket?: number
}

/** The property block of an MQTT 5 CONNECT: Session Expiry 0, Receive Maximum, Maximum Packet Size (13 bytes). */
const CONNECT_PROPS = 13

/** CONNECT; `v5`: protocol level 5 with properties (3.1.2.11), else 3.1.1. */
export function encodeConnect(o: ConnectOptions, v5 = false): Buffer {
    const cid = Buffer.from(o.clientId)
    const user = o.username ? Buffer.from(o.username) : null
    const pass = o.password ? Buffer.from(o.password) : null
    const wt = o.willTopic ? Buffer.from(o.willTopic) : null
    const wp = o.willPayload || Buffer.alloc(0)
    let flags = o.cleanSession === false ? 0 : 0x02
    let len = 10 + 2 + cid.length + (v5 ? 1 + CONNECT_PROPS : 0)
    if (wt) {
        flags |= 0x04 | ((o.willQos || 0) << 3) | (o.willRetain ? 0x20 : 0)
        // MQTT 5: an empty will property block before the will topic
        len += 2 + wt.length + 2 + wp.length + (v5 ? 1 : 0)
    }
    if (user) {
        flags |= 0x80
        len += 2 + user.length
    }
    // a password without a user name is not allowed in 3.1.1 (3.1.2.9)
    if (user && pass) {
        flags |= 0x40
        len += 2 + pass.length
    }
    const buf = Buffer.alloc(1 + remainingLengthSize(len) + len)
    buf[0] = CONNECT << 4
    let p = putRemainingLength(buf, 1, len)
    p = putStr(buf, p, Buffer.from("MQTT"))
    buf[p++] = v5 ? LEVEL_5 : LEVEL_311
    buf[p++] = flags
    p = putU16(buf, p, o.keepAlive)
    if (v5) {
        buf[p++] = CONNECT_PROPS
        buf[p++] = 0x11 // Session Expiry Interval: 0, the session ends with the connection (as clean session)
        p = putU32(buf, p, 0)
        buf[p++] = 0x21 // Receive Maximum
        p = putU16(buf, p, RECEIVE_MAXIMUM)
        buf[p++] = 0x27 // Maximum Packet Size
        p = putU32(buf, p, o.maxPacket || 268435455)
    }
    p = putStr(buf, p, cid)
    if (wt) {
        if (v5) buf[p++] = 0
        p = putStr(buf, p, wt)
        p = putStr(buf, p, wp)
    }
    if (user) p = putStr(buf, p, user)
    if (user && pass) p = putStr(buf, p, pass)
    return buf
}

/**
 * Bytes of a PUBLISH packet's fixed and variable header (everything before the payload); `v5` adds the empty
 * property block (one byte).
 */
export function publishHeaderSize(topicLen: number, qos: number, payloadLen: number, v5 = false): number {
    const vh = 2 + topicLen + (qos ? 2 : 0) + (v5 ? 1 : 0)
    return 1 + remainingLengthSize(vh + payloadLen) + vh
}

/** Writes a PUBLISH header at `pos`; the payload goes at the returned position. */
export function putPublishHeader(
    buf: Buffer,
    pos: number,
    topic: Buffer,
    qos: number,
    retain: boolean,
    packetId: number,
    payloadLen: number,
    v5 = false
): number {
    const rem = 2 + topic.length + (qos ? 2 : 0) + (v5 ? 1 : 0) + payloadLen
    buf[pos] = (PUBLISH << 4) | (qos << 1) | (retain ? 1 : 0)
    let p = putRemainingLength(buf, pos + 1, rem)
    p = putStr(buf, p, topic)
    if (qos) p = putU16(buf, p, packetId)
    if (v5) buf[p++] = 0
    return p
}

export function encodePublish(
    topic: Buffer,
    payload: Buffer,
    qos: number,
    retain: boolean,
    packetId: number,
    v5 = false
): Buffer {
    const buf = Buffer.alloc(publishHeaderSize(topic.length, qos, payload.length, v5) + payload.length)
    const p = putPublishHeader(buf, 0, topic, qos, retain, packetId, payload.length, v5)
    buf.blitAt(p, payload, 0, payload.length)
    return buf
}

/** Marks a stored PUBLISH (at `pos` of `buf`) as a resend (DUP flag, 3.3.1.1). */
export function setDup(buf: Buffer, pos: number) {
    buf[pos] = buf[pos] | 0x08
}

/**
 * Size of the MQTT 5 form of the 3.1.1 QoS 1 PUBLISH at `off` of `buf` (`copyPublishV5`): one more byte, the empty
 * property block, and perhaps one more remaining-length byte.
 */
export function publishV5Size(buf: Buffer, off: number, len: number): number {
    let h = off + 1
    while (buf[h] & 0x80) h++
    const rem = len - (h + 1 - off) + 1
    return 1 + remainingLengthSize(rem) + rem
}

/**
 * Copies the 3.1.1 QoS 1 PUBLISH at [off, off + len) of `buf` (the outbox ring holds that form, whatever the
 * protocol of the connection it is sent on) into `out` in its MQTT 5 form (`publishV5Size` bytes): the empty property
 * block after the packet id.
 */
export function copyPublishV5(out: Buffer, buf: Buffer, off: number, len: number) {
    let h = off + 1
    while (buf[h] & 0x80) h++
    h++
    const tlen = (buf[h] << 8) | buf[h + 1]
    const vh = h + 2 + tlen + 2 // end of the packet id
    out[0] = buf[off]
    const p = putRemainingLength(out, 1, len - (h - off) + 1)
    out.blitAt(p, buf, h, vh - h)
    out[p + vh - h] = 0
    out.blitAt(p + vh - h + 1, buf, vh, off + len - vh)
}

/** Offset of the packet id in a QoS>0 PUBLISH built by putPublishHeader. */
export function publishPacketId(pkt: Buffer, off = 0): number {
    let p = off + 1
    while (pkt[p] & 0x80) p++
    p++
    const tlen = (pkt[p] << 8) | pkt[p + 1]
    p += 2 + tlen
    return (pkt[p] << 8) | pkt[p + 1]
}

function ackLike(type: number, flags: number, packetId: number): Buffer {
    const b = Buffer.alloc(4)
    b[0] = (type << 4) | flags
    b[1] = 2
    putU16(b, 2, packetId)
    return b
}

export function encodePuback(packetId: number): Buffer {
    return ackLike(PUBACK, 0, packetId)
}

/** SUBSCRIBE to one topic; `v5`: with an empty property block, the options byte being the maximum QoS alone. */
export function encodeSubscribe(packetId: number, topic: string, qos: number, v5 = false): Buffer {
    const t = Buffer.from(topic)
    const len = 2 + (v5 ? 1 : 0) + 2 + t.length + 1
    const buf = Buffer.alloc(1 + remainingLengthSize(len) + len)
    buf[0] = (SUBSCRIBE << 4) | 0x02 // reserved bits 0010 (3.8.1)
    let p = putRemainingLength(buf, 1, len)
    p = putU16(buf, p, packetId)
    if (v5) buf[p++] = 0
    p = putStr(buf, p, t)
    buf[p] = qos
    return buf
}

export function encodePingreq(): Buffer {
    return Buffer.from([PINGREQ << 4, 0])
}

// No encoder for DISCONNECT on purpose: a clean DISCONNECT tells the broker to discard the last will, and the gateway
// never ends a session it wants unannounced. Every close (reconnect, protocol violation, flood) leaves the will armed,
// so the retained status says offline whenever the gateway is not connected.

/** A received packet; `body` is its own copy (at most the parser's buffer size). */
export interface MqttPacket {
    type: number
    flags: number
    /** The variable header and payload (possibly only their first bytes when `truncated`). */
    body: Buffer
    /** Remaining length announced by the packet. */
    length: number
    /** The packet was larger than the parser's buffer: `body` holds its first bytes, the rest is skipped. */
    truncated: boolean
}

/**
 * Splits the broker's byte stream into packets, one packet at a time: `feed` takes bytes from a received chunk
 * until one packet is complete, `next` hands it out, and the caller handles it before feeding more. Memory is one
 * fixed buffer holding at most one packet, so a chunk of any size or content costs nothing more; a packet larger
 * than the buffer is handed out truncated (its topic and packet id can still be read and acknowledged) and the
 * rest of it skipped.
 *
 * Chunks are read in place by offset, never sliced: DeviceScript's `Buffer.slice` past the end pads with zero
 * bytes, and zero bytes fed to a parser are packets that were never sent (the stream loses its framing).
 */
export class MqttParser {
    private readonly buf: Buffer
    /** Bytes of the current packet held in `buf`. */
    private len = 0
    /** Size of the current packet's fixed header once its remaining length is complete, else 0. */
    private head = 0
    /** The current packet's remaining length (valid once `head` > 0). */
    private rem = 0
    /** Bytes of a truncated packet still to be discarded. */
    private skip = 0
    /** `buf` holds a complete (or truncated) packet that `next` has not handed out yet. */
    private ready = false
    /**
     * Set when the stream cannot be parsed (a 5-byte remaining length) or a packet announces more than `maxPacket`
     * bytes: the session must be dropped.
     */
    error = ""
    /** The error is an oversize packet (not a broken stream). */
    oversize = false

    /**
     * `size`: the largest packet held whole; `maxPacket`: the largest packet accepted at all (a larger one is an
     * error as soon as its remaining length is read, so a broker announcing 268,435,455 bytes and then going silent
     * does not hold the session until the keep-alive runs out).
     */
    constructor(
        size: number,
        private readonly maxPacket = 268435455
    ) {
        // the fixed header (at most 5 bytes) is always held whole
        this.buf = Buffer.alloc(size < 8 ? 8 : size)
    }

    reset() {
        this.len = 0
        this.head = 0
        this.rem = 0
        this.skip = 0
        this.ready = false
        this.error = ""
        this.oversize = false
    }

    /**
     * Takes bytes from `chunk[off, off + count)` until one packet is complete (then `next` returns it) or the bytes
     * run out; returns how many bytes it took. Takes nothing while a packet is waiting for `next`.
     */
    feed(chunk: Buffer, off: number, count: number): number {
        const buf = this.buf
        const end = off + count
        let p = off
        while (p < end && !this.ready && !this.error) {
            if (this.skip > 0) {
                const n = this.skip < end - p ? this.skip : end - p
                this.skip -= n
                p += n
                continue
            }
            if (this.head === 0) {
                // the fixed header, a byte at a time: type and flags, then 1..4 bytes of remaining length
                const b = chunk[p++]
                buf[this.len++] = b
                if (this.len < 2) continue
                if (b & 0x80) {
                    if (this.len === 5) this.error = "malformed remaining length"
                    continue
                }
                let rem = 0
                let mul = 1
                for (let i = 1; i < this.len; i++) {
                    rem += (buf[i] & 0x7f) * mul
                    mul *= 128
                }
                this.rem = rem
                this.head = this.len
                if (rem > this.maxPacket) {
                    this.error = `packet of ${rem} bytes exceeds the maximum of ${this.maxPacket}`
                    this.oversize = true
                    continue
                }
                if (rem === 0) this.ready = true
                continue
            }
            const total = this.head + this.rem
            const keep = total < buf.length ? total : buf.length
            const n = keep - this.len < end - p ? keep - this.len : end - p
            buf.blitAt(this.len, chunk, p, n)
            this.len += n
            p += n
            if (this.len === keep) {
                this.ready = true
                this.skip = total - keep
            }
        }
        return p - off
    }

    /** The packet completed by the last `feed`, or null; each packet is handed out once. */
    next(): MqttPacket {
        if (!this.ready) return null
        const buf = this.buf
        const pkt: MqttPacket = {
            type: buf[0] >> 4,
            flags: buf[0] & 15,
            body: buf.slice(this.head, this.len),
            length: this.rem,
            truncated: this.head + this.rem > this.len,
        }
        this.ready = false
        this.len = 0
        this.head = 0
        return pkt
    }
}

/**
 * MQTT 5 variable byte integer (1.5.5) at `pos`, before `end`: its value, or -1 when it runs past `end`, takes more
 * than 4 bytes or is not in its shortest form ("MUST use the minimum number of bytes"). Its size is
 * remainingLengthSize(value).
 */
export function readVarint(b: Buffer, pos: number, end: number): number {
    let v = 0
    let mul = 1
    for (let i = 0; i < 4; i++) {
        if (pos + i >= end) return -1
        const x = b[pos + i]
        v += (x & 0x7f) * mul
        mul *= 128
        if (!(x & 0x80)) return remainingLengthSize(v) === i + 1 ? v : -1
    }
    return -1
}

/**
 * Value layout of an MQTT 5 property (2.2.2.2) by identifier 0x00-0x2a: 1 a byte, 2 a two-byte integer, 4 a
 * four-byte integer, 7 a variable byte integer, 8 a length-prefixed string or binary, 9 a string pair; 0 unknown.
 * A table, not code: the firmware's function bytecode is near its 64 KB limit (docs/firmware.md).
 */
const PROPERTY_TYPES = hex`00 01 04 08 00 00 00 00 08 08 00 07 00 00 00 00 00 04 08 02 00 08 08 01 04 01 08 00 08 00 00 08 00 02 02 02 01 01 09 04 01 01 01`

function propertyType(id: number): number {
    return id < PROPERTY_TYPES.length ? PROPERTY_TYPES[id] : 0
}

/** Properties a broker may put in each packet (MQTT 5, 3.x.2.2). No Topic Alias: the gateway allows none (maximum 0). */
const CONNACK_PROPS = hex`11 21 24 25 27 12 22 1f 26 28 29 2a 13 1a 1c 15 16`
const PUBLISH_PROPS = hex`01 02 08 09 26 0b 03`
const ACK_PROPS = hex`1f 26`
const DISCONNECT_PROPS = hex`1f 26 1c`

function hexByte(x: number): string {
    const b = Buffer.alloc(1)
    b[0] = x
    return b.toString("hex")
}

/** Why the last `propertiesEnd` failed. */
let propertyError = ""

/**
 * Checks the property block (a varint length, then identifier/value pairs) at `pos` of `b`, which must end at or
 * before `end`: every identifier known and one of `allowed`, every value inside the block. Returns the position
 * after the block, or -1 (`propertyError` says why). `value(id, at)`, when given, is called for each property with
 * the position of its value.
 */
export function propertiesEnd(
    b: Buffer,
    pos: number,
    end: number,
    allowed: Buffer,
    value?: (id: number, at: number) => void
): number {
    const n = readVarint(b, pos, end)
    if (n < 0) {
        propertyError = "malformed property length"
        return -1
    }
    let p = pos + remainingLengthSize(n)
    const stop = p + n
    if (stop > end) {
        propertyError = `property length ${n} past the end of the packet`
        return -1
    }
    // Identifiers seen so far, one bit each (ids 0x01..0x2a span two 32-bit words)
    let seenLo = 0
    let seenHi = 0
    while (p < stop) {
        const id = b[p++]
        const type = propertyType(id)
        if (type === 0) {
            propertyError = `unknown property 0x${hexByte(id)}`
            return -1
        }
        if (allowed.indexOf(id) < 0) {
            propertyError = `property 0x${hexByte(id)} not allowed here`
            return -1
        }
        // MQTT 5 (2.2.2.2): a property other than User Property and Subscription Identifier appears at most once; a
        // second Receive Maximum or Maximum Packet Size must not get to override the first one the gateway checked.
        if (id !== 0x26 && id !== 0x0b) {
            const bit = 1 << (id & 31)
            if ((id < 32 ? seenLo : seenHi) & bit) {
                propertyError = `property 0x${hexByte(id)} twice`
                return -1
            }
            if (id < 32) seenLo |= bit
            else seenHi |= bit
        }
        if (value) value(id, p)
        let size = type === 7 ? 0 : type
        if (type === 7) {
            const v = readVarint(b, p, stop)
            size = v < 0 ? stop : remainingLengthSize(v)
        } else if (type >= 8 && p + 2 <= stop) {
            size = 2 + ((b[p] << 8) | b[p + 1])
            if (type === 9 && p + size + 2 <= stop) size += 2 + ((b[p + size] << 8) | b[p + size + 1])
        }
        p += size
        if (p > stop) {
            propertyError = `property 0x${hexByte(id)} runs past its property block`
            return -1
        }
    }
    return stop
}

/** Why the property block at `pos` of `body` is not exactly the rest of the body, or "". */
function propertiesCheck(body: Buffer, pos: number, allowed: Buffer): string {
    const end = propertiesEnd(body, pos, body.length, allowed)
    if (end < 0) return propertyError
    return end === body.length ? "" : "bytes after the properties"
}

/** A 2- or 4-byte integer property value at `at`. */
export function propertyInt(b: Buffer, at: number, size: number): number {
    const v = (b[at] << 8) | b[at + 1]
    return size === 2 ? v : v * 65536 + ((b[at + 2] << 8) | b[at + 3])
}

/**
 * Reads the topic (and packet id, when QoS > 0) of a PUBLISH body; `v5`: and skips its properties. Returns null when
 * the body is too short or (MQTT 5) its properties are malformed.
 */
export function parsePublish(
    flags: number,
    body: Buffer,
    v5 = false
): { topic: string; qos: number; packetId: number; payloadOffset: number } {
    if (body.length < 2) return null
    const tlen = (body[0] << 8) | body[1]
    const qos = (flags >> 1) & 3
    let p = 2 + tlen
    if (p > body.length) return null
    const topic = body.slice(2, p).toString("utf-8")
    let packetId = 0
    if (qos) {
        if (p + 2 > body.length) return null
        packetId = (body[p] << 8) | body[p + 1]
        p += 2
    }
    if (v5) {
        propertyError = "malformed PUBLISH"
        p = propertiesEnd(body, p, body.length, PUBLISH_PROPS)
        if (p < 0) return null
    }
    return { topic, qos, packetId, payloadOffset: p }
}

/** Position of the first reason code of an MQTT 5 SUBACK body (after the packet id and properties), or -1. */
export function subackCodes(body: Buffer): number {
    return propertiesEnd(body, 2, body.length, ACK_PROPS)
}

function hasWildcard(topic: string): boolean {
    return topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0
}

/** Reason codes of an MQTT 5 PUBACK (3.4.2.1) and SUBACK (3.9.3; QoS 2 is never granted: we ask for QoS 1). */
const PUBACK_CODES = hex`00 10 80 83 87 90 91 97 99`
const SUBACK_CODES = hex`00 01 80 83 87 8f 91 97 9e a1 a2`

/**
 * Why a packet from the broker breaks MQTT 3.1.1 (or, `v5`, MQTT 5), or what this client subscribed to, or "" when it
 * does not. A violation closes the connection (3.1.1 4.8, 5 4.13: "the receiver MUST close the Network Connection"):
 * nothing in a packet that the client cannot interpret is acted upon. `afterConnack`: a CONNACK was already received
 * on this connection.
 */
export function violation(p: MqttPacket, afterConnack: boolean, v5 = false): string {
    const t = p.type
    // AUTH (15 in MQTT 5) belongs to enhanced authentication, which the gateway never asks for
    if (t === 0 || t === 15) return `reserved packet type ${t}`
    if (t === CONNECT || t === SUBSCRIBE || t === UNSUBSCRIBE || t === PINGREQ || (t === DISCONNECT && !v5))
        return `packet type ${t} is sent by clients only`
    if (!afterConnack && t !== CONNACK) return `packet type ${t} before CONNACK`
    const body = p.body
    if (t === CONNACK) {
        if (afterConnack) return "a second CONNACK"
        if (p.flags !== 0) return "malformed CONNACK"
        if (!v5 || p.length === 2) {
            if (p.length !== 2) return "malformed CONNACK"
            // a broker without MQTT 5 answers an MQTT 5 CONNECT in 3.1.1 form: refused (return code 1) is the fallback
            // signal; accepted would be a broker that did not understand what it accepted
            if (v5 && body[1] === 0) return "a 3.1.1 CONNACK accepting an MQTT 5 CONNECT"
            return ""
        }
        if (p.truncated) return "CONNACK larger than the receive buffer"
        if (body[0] & 0xfe) return "malformed CONNACK"
        const why = propertiesCheck(body, 2, CONNACK_PROPS)
        return why ? "CONNACK: " + why : ""
    }
    if (t === PUBLISH) {
        const qos = (p.flags >> 1) & 3
        if (qos === 3) return "PUBLISH with QoS 3"
        // our only subscription is QoS 1: a broker never forwards at a higher QoS than granted (3.8.4)
        if (qos === 2) return "PUBLISH with QoS 2 (subscribed with QoS 1)"
        if (qos === 0 && p.flags & 0x08) return "DUP set on a QoS 0 PUBLISH"
        const pub = parsePublish(p.flags, body, v5)
        if (!pub) return v5 ? "PUBLISH: " + propertyError : "malformed PUBLISH"
        if (pub.topic.length === 0) return "PUBLISH with a zero-length topic"
        if (hasWildcard(pub.topic)) return "wildcard in a PUBLISH topic"
        if (qos && pub.packetId === 0) return "PUBLISH with packet id 0"
        return ""
    }
    if (t === PUBACK) {
        if (p.flags !== 0 || (!v5 && p.length !== 2) || p.length < 2) return `malformed packet type ${t}`
        if (p.length > 2 && PUBACK_CODES.indexOf(body[2]) < 0) return `PUBACK reason code ${body[2]}`
        const why = p.length > 3 ? propertiesCheck(body, 3, ACK_PROPS) : ""
        return why ? "PUBACK: " + why : ""
    }
    if (t === UNSUBACK) {
        // MQTT 5 UNSUBACK carries properties and reason codes: the gateway never unsubscribes, so it answers nothing
        if (v5) return "UNSUBACK without UNSUBSCRIBE"
        if (p.flags !== 0 || p.length !== 2) return `malformed packet type ${t}`
        return ""
    }
    // this client never sends QoS 2, so the QoS 2 handshake packets have nothing to belong to
    if (t === PUBREC || t === PUBREL || t === PUBCOMP) return `packet type ${t} without a QoS 2 PUBLISH`
    if (t === SUBACK) {
        if (p.flags !== 0 || p.length < 3 || p.truncated) return "malformed SUBACK"
        let i = 2
        if (v5) {
            i = subackCodes(body)
            if (i < 0) return "SUBACK: " + propertyError
            if (i >= body.length) return "SUBACK without a reason code"
        }
        for (; i < body.length; i++) {
            const rc = body[i]
            if (v5 ? SUBACK_CODES.indexOf(rc) < 0 : rc !== 0 && rc !== 1 && rc !== 0x80) return `SUBACK return code ${rc}`
        }
        return ""
    }
    if (t === PINGRESP) {
        if (p.flags !== 0 || p.length !== 0) return "malformed PINGRESP"
        return ""
    }
    if (t === DISCONNECT) {
        // MQTT 5: the broker may end the session with a reason code (and properties)
        if (p.flags !== 0 || p.truncated) return "malformed DISCONNECT"
        const why = p.length > 1 ? propertiesCheck(body, 1, DISCONNECT_PROPS) : ""
        return why ? "DISCONNECT: " + why : ""
    }
    return `unexpected packet type ${t}`
}

/** The properties of an MQTT 5 CONNACK body, each handed to `value(id, at)` (checked by violation() before). */
export function connackProperties(body: Buffer, value: (id: number, at: number) => void) {
    propertiesEnd(body, 2, body.length, CONNACK_PROPS, value)
}
