/**
 * MQTT 3.1.1 control packets (OASIS mqtt-v3.1.1-os, section 2 and 3): encoders for what a client sends and a
 * streaming parser for what a broker sends. Only the subset the gateway uses; no packet is ever traced as bytes
 * (CONNECT carries the password).
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
}

export function encodeConnect(o: ConnectOptions): Buffer {
    const cid = Buffer.from(o.clientId)
    const user = o.username ? Buffer.from(o.username) : null
    const pass = o.password ? Buffer.from(o.password) : null
    const wt = o.willTopic ? Buffer.from(o.willTopic) : null
    const wp = o.willPayload || Buffer.alloc(0)
    let flags = o.cleanSession === false ? 0 : 0x02
    let len = 10 + 2 + cid.length
    if (wt) {
        flags |= 0x04 | ((o.willQos || 0) << 3) | (o.willRetain ? 0x20 : 0)
        len += 2 + wt.length + 2 + wp.length
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
    buf[p++] = 4 // protocol level 3.1.1
    buf[p++] = flags
    p = putU16(buf, p, o.keepAlive)
    p = putStr(buf, p, cid)
    if (wt) {
        p = putStr(buf, p, wt)
        p = putStr(buf, p, wp)
    }
    if (user) p = putStr(buf, p, user)
    if (user && pass) p = putStr(buf, p, pass)
    return buf
}

/** Bytes of a PUBLISH packet's fixed and variable header (everything before the payload). */
export function publishHeaderSize(topicLen: number, qos: number, payloadLen: number): number {
    const rem = 2 + topicLen + (qos ? 2 : 0) + payloadLen
    return 1 + remainingLengthSize(rem) + 2 + topicLen + (qos ? 2 : 0)
}

/** Writes a PUBLISH header at `pos`; the payload goes at the returned position. */
export function putPublishHeader(
    buf: Buffer,
    pos: number,
    topic: Buffer,
    qos: number,
    retain: boolean,
    packetId: number,
    payloadLen: number
): number {
    const rem = 2 + topic.length + (qos ? 2 : 0) + payloadLen
    buf[pos] = (PUBLISH << 4) | (qos << 1) | (retain ? 1 : 0)
    let p = putRemainingLength(buf, pos + 1, rem)
    p = putStr(buf, p, topic)
    if (qos) p = putU16(buf, p, packetId)
    return p
}

export function encodePublish(topic: Buffer, payload: Buffer, qos: number, retain: boolean, packetId: number): Buffer {
    const buf = Buffer.alloc(publishHeaderSize(topic.length, qos, payload.length) + payload.length)
    const p = putPublishHeader(buf, 0, topic, qos, retain, packetId, payload.length)
    buf.blitAt(p, payload, 0, payload.length)
    return buf
}

/** Marks a stored PUBLISH (at `pos` of `buf`) as a resend (DUP flag, 3.3.1.1). */
export function setDup(buf: Buffer, pos: number) {
    buf[pos] = buf[pos] | 0x08
}

/** Offset of the packet id in a QoS>0 PUBLISH built by putPublishHeader. */
export function publishPacketId(pkt: Buffer): number {
    let p = 1
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

export function encodeSubscribe(packetId: number, topic: string, qos: number): Buffer {
    const t = Buffer.from(topic)
    const len = 2 + 2 + t.length + 1
    const buf = Buffer.alloc(1 + remainingLengthSize(len) + len)
    buf[0] = (SUBSCRIBE << 4) | 0x02 // reserved bits 0010 (3.8.1)
    let p = putRemainingLength(buf, 1, len)
    p = putU16(buf, p, packetId)
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

/** Reads the topic (and packet id, when QoS > 0) of a PUBLISH body. Returns null when the body is too short. */
export function parsePublish(
    flags: number,
    body: Buffer
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
    return { topic, qos, packetId, payloadOffset: p }
}

function hasWildcard(topic: string): boolean {
    return topic.indexOf("+") >= 0 || topic.indexOf("#") >= 0
}

/**
 * Why a packet from the broker breaks MQTT 3.1.1 (or what this client subscribed to), or "" when it does not.
 * A violation closes the connection (4.8: "the receiver MUST close the Network Connection"): nothing in a packet
 * that the client cannot interpret is acted upon. `afterConnack`: a CONNACK was already received on this connection.
 */
export function violation(p: MqttPacket, afterConnack: boolean): string {
    const t = p.type
    if (t === 0 || t === 15) return `reserved packet type ${t}`
    if (t === CONNECT || t === SUBSCRIBE || t === UNSUBSCRIBE || t === PINGREQ || t === DISCONNECT)
        return `packet type ${t} is sent by clients only`
    if (!afterConnack && t !== CONNACK) return `packet type ${t} before CONNACK`
    const body = p.body
    if (t === CONNACK) {
        if (afterConnack) return "a second CONNACK"
        if (p.flags !== 0 || p.length !== 2) return "malformed CONNACK"
        return ""
    }
    if (t === PUBLISH) {
        const qos = (p.flags >> 1) & 3
        if (qos === 3) return "PUBLISH with QoS 3"
        // our only subscription is QoS 1: a broker never forwards at a higher QoS than granted (3.8.4)
        if (qos === 2) return "PUBLISH with QoS 2 (subscribed with QoS 1)"
        if (qos === 0 && p.flags & 0x08) return "DUP set on a QoS 0 PUBLISH"
        const pub = parsePublish(p.flags, body)
        if (!pub) return "malformed PUBLISH"
        if (pub.topic.length === 0) return "PUBLISH with a zero-length topic"
        if (hasWildcard(pub.topic)) return "wildcard in a PUBLISH topic"
        if (qos && pub.packetId === 0) return "PUBLISH with packet id 0"
        return ""
    }
    if (t === PUBACK || t === UNSUBACK) {
        if (p.flags !== 0 || p.length !== 2) return `malformed packet type ${t}`
        return ""
    }
    // this client never sends QoS 2, so the QoS 2 handshake packets have nothing to belong to
    if (t === PUBREC || t === PUBREL || t === PUBCOMP) return `packet type ${t} without a QoS 2 PUBLISH`
    if (t === SUBACK) {
        if (p.flags !== 0 || p.length < 3 || p.truncated) return "malformed SUBACK"
        for (let i = 2; i < body.length; i++) {
            const rc = body[i]
            if (rc !== 0 && rc !== 1 && rc !== 0x80) return `SUBACK return code ${rc}`
        }
        return ""
    }
    if (t === PINGRESP) {
        if (p.flags !== 0 || p.length !== 0) return "malformed PINGRESP"
        return ""
    }
    return `unexpected packet type ${t}`
}
