/**
 * One MQTT session over the single `@devicescript/net` socket: connect (TCP or TLS), CONNACK, keep-alive PINGREQ,
 * reconnect with exponential backoff and jitter. MQTT 5 where the broker speaks it (Receive Maximum and Maximum
 * Packet Size announced, the broker's limits honoured), else MQTT 3.1.1 (docs/protocol.md, "MQTT 5"). It knows nothing
 * about what is published: the gateway gives it callbacks for connect, PUBACK and incoming PUBLISH. It never logs
 * packet bytes (CONNECT carries the password).
 */
import * as ds from "@devicescript/core"
import { connect, Socket } from "@devicescript/net"
import {
    CONNACK,
    connackProperties,
    ConnectOptions,
    copyPublishV5,
    DISCONNECT,
    encodeConnect,
    encodePingreq,
    encodePuback,
    LEVEL_311,
    LEVEL_5,
    MqttPacket,
    MqttParser,
    parsePublish,
    PINGRESP,
    propertyInt,
    PUBACK,
    PUBLISH,
    publishPacketId,
    publishV5Size,
    SUBACK,
    subackCodes,
    violation,
} from "./packets"

export interface SessionOptions extends ConnectOptions {
    host: string
    port: number
    tls: boolean
    /** Receive buffer: the largest packet taken whole (a larger one arrives truncated). */
    rxBytes: number
    /** Largest packet accepted at all: a larger one ends the connection as soon as its length is read. */
    maxPacket: number
    /**
     * Hard cap on received bytes not yet parsed (the socket's queue plus the rest of the chunk being parsed): past
     * it the connection is dropped, which frees them (a flood must not exhaust the heap).
     */
    rxCap: number
    /** Try MQTT 5 first (setting `mqttV5`); false: MQTT 3.1.1 only. */
    v5: boolean
}

/**
 * Largest single socket write: the ESP32 runtime's TLS layer asserts on a write of 4096 bytes or more
 * (MBEDTLS_SSL_OUT_CONTENT_LEN); larger packets are written in pieces below it.
 */
export const MAX_WRITE = 4000

export interface SessionHandlers {
    /** After CONNACK: subscribe, publish the status, queue resends. A throw drops the connection. */
    connected(): Promise<void>
    puback(packetId: number): void
    /**
     * An incoming PUBLISH (acknowledged after this returns, when QoS 1). `payload` is null when the packet was
     * truncated; `retain` is its RETAIN flag (a retained message is stored state, not a fresh command).
     */
    message(topic: string, payload: Buffer, length: number, retain: boolean): Promise<void>
    /** A SUBACK: `granted` false when the broker refused the subscription (return code 0x80). */
    subscribed(granted: boolean): void
    /**
     * An outbox PUBLISH (`sendRange`) that will never be acknowledged: larger than the broker's Maximum Packet Size
     * (not sent), or refused by the broker's PUBACK (MQTT 5 reason code 0x80 or more).
     */
    refused(packetId: number): void
}

const CONNECT_TIMEOUT = 10000
/** Small packets (e.g. PUBACKs) handled between two sleeps: the VM's opcode budget between suspensions. */
const RX_BATCH = 32
const BACKOFF_MIN = 500
/** Short enough that a broker back after a 10 s outage is found within about 8 s more. */
const BACKOFF_MAX = 8000
/**
 * After a broker refused MQTT 5, this many connection attempts use MQTT 3.1.1 before MQTT 5 is tried again (a broker
 * upgraded without a gateway reboot is found; a 3.1.1 broker costs one refused CONNECT per this many reconnects).
 */
const V5_RETRY = 16
/** Of the broker's Receive Maximum, this many in-flight slots are kept free of outbox batches for status and results. */
const SEND_RESERVE = 2
const CLOSED = "closed by broker"
/** guardReceive's verdicts on a socket event. */
const ADMIT = 0
const DISCARD = 1
const OVERFLOW = 2

export class MqttSession {
    connected = false
    /** Successful CONNACKs. */
    connects = 0
    /** Why the last session ended (no secrets: socket and protocol errors only). */
    lastError = ""
    /** Connections closed because the broker broke the protocol (violation() in packets.ts). */
    violations = 0
    /** Connections dropped because received data passed `rxCap` or a packet passed `maxPacket`. */
    floods = 0
    /** Protocol level of the current (or last) connection: 4 (MQTT 3.1.1) or 5 (status `mq`). */
    level = LEVEL_311
    /** MQTT 5 is spoken on this connection: packets built for it must be in the MQTT 5 form (packets.ts `v5`). */
    v5 = false
    /** PUBLISHes not sent because they exceed the broker's Maximum Packet Size (status `big`). */
    oversize = 0
    /** Connection attempts left at MQTT 3.1.1 before MQTT 5 is tried again (after a broker refused it). */
    private v4Left = 0
    /** The broker's limits from an MQTT 5 CONNACK (3.1.1: none). */
    private peerMaxPacket = 268435460
    private peerReceiveMax = 65535
    private peerRetain = true
    /** Keep-alive in force, s: ours, or the broker's Server Keep Alive (MQTT 5: the client must use it). */
    private keepAlive = 0
    /** QoS 1 PUBLISHes sent on this connection and not yet acknowledged. */
    private inflight = 0
    private sock: Socket = null
    /** The current connection received more than `rxCap` unparsed bytes (guardReceive closed it). */
    private overflowed = false
    /** Bytes of the chunk being parsed that are not parsed yet. */
    private rest = 0
    private readonly parser: MqttParser
    private lastSend = 0
    private lastRecv = 0
    private connack = -1

    constructor(
        private readonly opts: SessionOptions,
        private readonly handlers: SessionHandlers
    ) {
        this.parser = new MqttParser(opts.rxBytes, opts.maxPacket)
    }

    /** Runs forever: connect, serve, and after any failure wait (backoff with jitter) and reconnect. */
    async run() {
        let backoff = BACKOFF_MIN
        for (;;) {
            try {
                await this.open()
                backoff = BACKOFF_MIN
                await this.handlers.connected()
                await this.serve()
            } catch (e) {
                this.lastError = (e as Error).message
            }
            await this.drop()
            // full jitter on the upper half: many gateways restarting together do not reconnect in step
            const wait = backoff / 2 + Math.random() * (backoff / 2)
            console.debug(`mqtt: disconnected (${this.lastError}); retry in ${Math.round(wait)} ms`)
            await ds.sleep(wait)
            backoff = Math.min(backoff * 2, BACKOFF_MAX)
        }
    }

    /**
     * Received bytes waiting in the runtime's socket queue, not yet read. `@devicescript/net` queues every chunk the
     * network delivers without a bound, in the program's heap; the gateway sheds commands while this is high so the
     * queue drains at parsing speed instead of at command speed.
     */
    backlog(): number {
        const s = this.sock
        // private field of Socket (net/src/sockets.ts): the only view of the queue there is
        const q: Buffer[] = s ? (s as any).buffers : null
        let n = this.rest
        if (!q) return n
        for (const b of q) n += b.length
        return n
    }

    /**
     * Bounds the runtime's socket queue where it grows: in the socket's event hook. `@devicescript/net` queues every
     * chunk the network delivers while the session's fiber is busy elsewhere (handling a command, writing). The
     * runtime has already allocated the chunk (and a fiber to run this hook) when the hook runs: the guard bounds the
     * queue, not what arrives between two turns of the VM (docs/firmware.md, Memory). Here a chunk that would take
     * the unparsed bytes past `rxCap` closes the connection at once (counted in `floods`); the chunk and every later
     * one of that connection are dropped unqueued. `connect` installs the library's hook anew each time, so this
     * wraps it once per connection.
     */
    private guardReceive(sock: Socket) {
        const hooks = ds as any
        const inner = hooks._socketOnEvent
        const self = this
        hooks._socketOnEvent = (event: string, arg?: Buffer | string) => {
            const verdict = self.admitEvent(sock, event, arg)
            if (verdict === ADMIT) inner(event, arg)
            // ends the library's Socket: recv() throws once the queue under the cap is read
            else if (verdict === OVERFLOW) inner("error", `received data over the cap of ${self.opts.rxCap} bytes`)
        }
    }

    /** guardReceive's decision on one socket event: ADMIT, DISCARD (the connection already overflowed) or OVERFLOW. */
    private admitEvent(sock: Socket, event: string, arg: Buffer | string): number {
        if (event !== "data" || sock !== this.sock) return ADMIT
        if (this.overflowed) return DISCARD
        if (this.backlog() + (arg as Buffer).length <= this.opts.rxCap) return ADMIT
        this.overflowed = true
        this.floods++
        const hooks = ds as any
        hooks._socketClose()
        return OVERFLOW
    }

    /** Ends the connection when the received backlog is past the hard cap. */
    private checkBacklog() {
        if (this.overflowed) throw new Error(`received data over the cap of ${this.opts.rxCap} bytes`)
        const n = this.backlog()
        if (n > this.opts.rxCap) {
            this.floods++
            throw new Error(`${n} received bytes waiting, over the cap of ${this.opts.rxCap}`)
        }
    }

    /**
     * Sends one whole packet, built for this connection's protocol (`v5`); false when there is no session, the
     * socket failed (the session then ends), or a QoS 1 PUBLISH finds the broker's Receive Maximum reached or exceeds
     * its Maximum Packet Size (counted in `oversize`). A PUBLISH loses its RETAIN flag when the broker has none.
     */
    async send(pkt: Buffer): Promise<boolean> {
        const s = this.sock
        if (!s || !this.connected) return false
        if (pkt[0] >> 4 === PUBLISH) {
            if (pkt.length > this.peerMaxPacket) {
                this.oversize++
                return false
            }
            // the session's own fiber calls this (results): it cannot wait for a PUBACK it would itself read
            if (pkt[0] & 0x06 && this.inflight >= this.peerReceiveMax) return false
            if (!this.peerRetain) pkt[0] = pkt[0] & 0xfe
            if (pkt[0] & 0x06) this.inflight++
        }
        return await this.write(s, pkt)
    }

    /**
     * Sends bytes [off, off+len) of `buf` (one whole packet, e.g. in the outbox ring) in ONE socket write, through a
     * copy of exactly that length (the socket takes whole Buffers, and DeviceScript has no Buffer views). One write
     * per packet matters: the socket has Nagle's algorithm on (the simulator's Node socket, lwIP on the ESP32), so a
     * second piece written while the first is unacknowledged waits for the broker's delayed ACK, about 40 ms per
     * batch. With 1 KB pieces that cost 45 ms of latency on every multi-piece batch and capped throughput at about
     * 20-39k frames/s (docs/performance.md). The copy is transient (freed when the send returns), at most
     * batchBytes + the PUBLISH header.
     */
    async sendRange(buf: Buffer, off: number, len: number): Promise<boolean> {
        const s = this.sock
        if (!s || !this.connected) return false
        const v5 = this.v5
        const size = v5 ? publishV5Size(buf, off, len) : len
        if (size > this.peerMaxPacket) {
            this.oversize++
            this.handlers.refused(publishPacketId(buf, off))
            return true
        }
        // the broker's Receive Maximum, less the slots kept for status and results: wait for PUBACKs (read by the
        // session's fiber; this is the publisher's)
        const most = this.peerReceiveMax > SEND_RESERVE ? this.peerReceiveMax - SEND_RESERVE : 1
        while (this.inflight >= most) {
            if (s !== this.sock || !this.connected) return false
            await ds.sleep(5)
        }
        const pkt = Buffer.alloc(size)
        if (v5) copyPublishV5(pkt, buf, off, len)
        else pkt.blitAt(0, buf, off, len)
        this.inflight++
        return await this.write(s, pkt)
    }

    private async write(s: Socket, pkt: Buffer): Promise<boolean> {
        if (pkt.length < MAX_WRITE) return await this.writeOnce(s, pkt)
        for (let off = 0; off < pkt.length; off += MAX_WRITE) {
            const n = pkt.length - off < MAX_WRITE ? pkt.length - off : MAX_WRITE
            if (!(await this.writeOnce(s, pkt.slice(off, off + n)))) return false
        }
        return true
    }

    private async writeOnce(s: Socket, pkt: Buffer): Promise<boolean> {
        for (let tries = 0; ; tries++) {
            try {
                await s.send(pkt)
                this.lastSend = ds.millis()
                return true
            } catch (e) {
                // Socket.send throws on a full transmit queue (-1) instead of retrying as it intends: retry here.
                const msg = (e as Error).message
                if (msg.indexOf("send error -1") >= 0 && tries < 200 && s === this.sock) {
                    await ds.sleep(5)
                    continue
                }
                this.lastError = msg
                this.connected = false
                return false
            }
        }
    }

    private async open() {
        const o = this.opts
        this.parser.reset()
        this.rest = 0
        this.connack = -1
        this.inflight = 0
        this.peerMaxPacket = 268435460
        this.peerReceiveMax = 65535
        this.peerRetain = true
        this.keepAlive = o.keepAlive
        const v5 = o.v5 && this.v4Left <= 0
        if (this.v4Left > 0) this.v4Left--
        this.level = v5 ? LEVEL_5 : LEVEL_311
        this.v5 = v5
        this.overflowed = false
        this.sock = await connect({ host: o.host, port: o.port, proto: o.tls ? "tls" : "tcp", timeout: CONNECT_TIMEOUT })
        this.guardReceive(this.sock)
        this.lastRecv = ds.millis()
        if (!(await this.write(this.sock, encodeConnect(o, v5)))) throw new Error("CONNECT not sent: " + this.lastError)
        const deadline = ds.millis() + CONNECT_TIMEOUT
        try {
            while (this.connack < 0) {
                const left = deadline - ds.millis()
                if (left <= 0) throw new Error("no CONNACK")
                await this.receive(left)
            }
        } catch (e) {
            // a broker without MQTT 5 may close the connection instead of answering (measured: aedes 1.2 answers)
            if (v5 && (e as Error).message === CLOSED) this.fallBack("closed the connection before CONNACK")
            throw e
        }
        // 3.1.1 return code 1 "unacceptable protocol level"; MQTT 5 reason code 0x84 "unsupported protocol version"
        if (v5 && (this.connack === 1 || this.connack === 0x84)) this.fallBack(`refused it (code ${this.connack})`)
        if (this.connack !== 0) throw new Error(`connection refused, return code ${this.connack}`)
        this.connected = true
        this.connects++
    }

    /** The broker refused MQTT 5: the next connections speak 3.1.1 (V5_RETRY of them). */
    private fallBack(how: string) {
        this.v4Left = V5_RETRY
        throw new Error(`the broker ${how} to an MQTT 5 CONNECT: reconnecting with MQTT 3.1.1`)
    }

    /** Reads until the connection ends; keeps it alive with PINGREQ (keepAlive is at least 5 s: config.ts). */
    private async serve() {
        // a broker's Server Keep Alive of 0 turns PINGREQ off; 5 s still bounds how long a dead link goes unnoticed
        const ka = (this.keepAlive > 0 ? this.keepAlive : 5) * 1000
        for (;;) {
            await this.receive(ka / 4)
            if (!this.connected) throw new Error(this.lastError || "connection lost")
            const now = ds.millis()
            // 3.1.2.10: the broker drops us after 1.5 x keep-alive of silence; we give up on it likewise
            if (now - this.lastRecv > ka * 1.5) throw new Error("keep-alive timeout")
            if (now - this.lastSend >= ka / 2) await this.send(encodePingreq())
        }
    }

    /** Waits up to `timeout` ms for bytes, parses them and handles every complete packet. */
    private async receive(timeout: number) {
        const s = this.sock
        if (!s) throw new Error("no socket")
        const b = await s.recv(timeout)
        if (b === null) {
            this.connected = false
            throw new Error(CLOSED)
        }
        if (b === undefined) return
        this.lastRecv = ds.millis()
        // A chunk can hold hundreds of packets (a burst of commands): they are taken and handled one at a time, read
        // in place (no copy of the chunk, no queue of parsed packets), so memory does not grow with the chunk.
        let off = 0
        let handled = 0
        this.rest = b.length
        this.checkBacklog()
        // recv returns a queued chunk without suspending, so a stream of chunks with no complete PUBLISH in them
        // (the pieces of a large packet) never renewed the VM's opcode budget: InfiniteLoop, seen under a burst
        await ds.sleep(0)
        while (off < b.length) {
            off += this.parser.feed(b, off, b.length - off)
            this.rest = b.length - off
            if (this.parser.error) {
                if (this.parser.oversize) this.floods++
                else this.violations++
                throw new Error(this.parser.error)
            }
            const p = this.parser.next()
            if (!p) continue
            const why = violation(p, this.connack >= 0, this.v5)
            if (why) {
                this.violations++
                throw new Error("protocol violation: " + why)
            }
            await this.dispatch(p)
            // the queue grows while commands are handled: a flood is caught between packets, not only per chunk
            if (p.type === PUBLISH) this.checkBacklog()
            // An await that does not suspend (a socket write) does not renew the VM's opcode budget, only a sleep
            // does: after every command (decode, checks, result) and after every few small packets (PUBACKs).
            if (p.type === PUBLISH || ++handled % RX_BATCH === 0) await ds.sleep(0)
        }
    }

    private async dispatch(p: MqttPacket) {
        const body = p.body
        if (p.type === CONNACK) {
            this.connack = body.length >= 2 ? body[1] : 255
            if (this.v5 && p.length > 2) this.brokerLimits(body)
        } else if (p.type === PUBACK) {
            if (this.inflight > 0) this.inflight--
            const pid = (body[0] << 8) | body[1]
            // MQTT 5: a reason code of 0x80 or more is the broker refusing the message (e.g. its ACL, its quota)
            if (p.length > 2 && body[2] >= 0x80) this.handlers.refused(pid)
            else this.handlers.puback(pid)
        } else if (p.type === PUBLISH) {
            // checked by violation(): QoS 0 or 1, a topic, a packet id, (MQTT 5) properties
            const pub = parsePublish(p.flags, body, this.v5)
            const payload = p.truncated ? null : body.slice(pub.payloadOffset)
            await this.handlers.message(pub.topic, payload, p.length - pub.payloadOffset, (p.flags & 1) === 1)
            // PUBACK after the command was handled: its result is then the first packet written. The socket runs
            // Nagle's algorithm, so a result written after a PUBACK that the broker had not yet acknowledged waited
            // for the broker's delayed ACK: results came about 44 ms after the transmit (measured), now a few ms.
            // Nothing runs twice for it: the session is clean, so a broker never redelivers after a reconnect.
            // The 3.1.1 form is also the MQTT 5 PUBACK with reason code 0 (3.4.2.1).
            if (pub.qos === 1) await this.send(encodePuback(pub.packetId))
        } else if (p.type === SUBACK) {
            const at = this.v5 ? subackCodes(body) : 2
            this.handlers.subscribed(body[at] < 0x80)
        } else if (p.type === DISCONNECT) {
            // MQTT 5: the broker ends the session and says why (e.g. 0x93 Receive Maximum exceeded, 0x95 packet too large)
            this.connected = false
            throw new Error(`the broker disconnected, reason code ${p.length > 0 ? body[0] : 0}`)
        } else if (p.type === PINGRESP) {
            // nothing to do: any packet already refreshed lastRecv
        }
    }

    /** The limits an MQTT 5 CONNACK sets on what this client sends (checked by violation() before). */
    private brokerLimits(body: Buffer) {
        const self = this
        connackProperties(body, (id: number, at: number) => {
            if (id === 0x27) self.peerMaxPacket = propertyInt(body, at, 4)
            else if (id === 0x21) self.peerReceiveMax = propertyInt(body, at, 2)
            else if (id === 0x25) self.peerRetain = body[at] !== 0
            else if (id === 0x13) self.keepAlive = propertyInt(body, at, 2)
            // Maximum QoS 0: every publish of the gateway is QoS 1, which such a broker cannot carry
            else if (id === 0x24 && body[at] === 0) self.connack = 0x9b
        })
    }

    private async drop() {
        this.connected = false
        this.rest = 0
        const s = this.sock
        this.sock = null
        if (s) {
            try {
                await s.close()
            } catch (e) {
                // already closed
            }
        }
    }
}
