/**
 * One MQTT 3.1.1 session over the single `@devicescript/net` socket: connect (TCP or TLS), CONNACK, keep-alive
 * PINGREQ, reconnect with exponential backoff and jitter. It knows nothing about what is published: the gateway gives
 * it callbacks for connect, PUBACK and incoming PUBLISH. It never logs packet bytes (CONNECT carries the password).
 */
import * as ds from "@devicescript/core"
import { connect, Socket } from "@devicescript/net"
import {
    CONNACK,
    ConnectOptions,
    encodeConnect,
    encodePingreq,
    encodePuback,
    MqttPacket,
    MqttParser,
    parsePublish,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
} from "./packets"

export interface SessionOptions extends ConnectOptions {
    host: string
    port: number
    tls: boolean
    /** Receive buffer: the largest packet taken whole (a larger one arrives truncated). */
    rxBytes: number
}

export interface SessionHandlers {
    /** After CONNACK: subscribe, publish the status, queue resends. A throw drops the connection. */
    connected(): Promise<void>
    puback(packetId: number): void
    /** An incoming PUBLISH (already acknowledged when QoS 1). `payload` is null when the packet was truncated. */
    message(topic: string, payload: Buffer, length: number): Promise<void>
}

const CONNECT_TIMEOUT = 10000
/** Piece size for sendRange: 4 writes for a 4 KB batch (256 made publishing too slow for 100k frames/s). */
const SCRATCH_BYTES = 1024
/** Bytes of a received chunk parsed between two awaits. */
const RX_SLICE = 256
const BACKOFF_MIN = 500
/** Short enough that a broker back after a 10 s outage is found within about 8 s more. */
const BACKOFF_MAX = 8000

export class MqttSession {
    connected = false
    /** Successful CONNACKs. */
    connects = 0
    /** Why the last session ended (no secrets: socket and protocol errors only). */
    lastError = ""
    private sock: Socket = null
    private readonly parser: MqttParser
    private lastSend = 0
    private lastRecv = 0
    private connack = -1
    private readonly inbox: MqttPacket[]
    private readonly scratch = Buffer.alloc(SCRATCH_BYTES)
    /** A packet is being written in pieces: other sends wait. */
    private piecewise = false

    constructor(
        private readonly opts: SessionOptions,
        private readonly handlers: SessionHandlers
    ) {
        // the parser's body slices are copies, so packets can be queued past the callback
        const inbox: MqttPacket[] = []
        this.inbox = inbox
        this.parser = new MqttParser(opts.rxBytes, (p: MqttPacket) => {
            inbox.push(p)
        })
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

    /** Sends one whole packet; false when there is no session or the socket failed (the session then ends). */
    async send(pkt: Buffer): Promise<boolean> {
        // a packet never goes out in the middle of another one's pieces
        while (this.piecewise) await ds.sleep(1)
        const s = this.sock
        if (!s || !this.connected) return false
        return await this.write(s, pkt)
    }

    /**
     * Sends bytes [off, off+len) of `buf` (one whole packet, e.g. in the outbox ring) in pieces through a small
     * scratch buffer: a copy of a 4 KB batch for the socket is an allocation the nearly full VM heap may not have.
     * The socket copies what it is given (the simulator's sockWrite slices the heap), so the scratch is reused.
     */
    async sendRange(buf: Buffer, off: number, len: number): Promise<boolean> {
        while (this.piecewise) await ds.sleep(1)
        const s = this.sock
        if (!s || !this.connected) return false
        this.piecewise = true
        try {
            let p = 0
            while (p < len) {
                const n = len - p < SCRATCH_BYTES ? len - p : SCRATCH_BYTES
                // the last, shorter piece needs a Buffer of its own length (small)
                const piece = n === SCRATCH_BYTES ? this.scratch : Buffer.alloc(n)
                piece.blitAt(0, buf, off + p, n)
                if (!(await this.write(s, piece))) return false
                p += n
            }
            return true
        } finally {
            this.piecewise = false
        }
    }

    private async write(s: Socket, pkt: Buffer): Promise<boolean> {
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
        // never `array.length = 0`: it corrupts the VM heap (block corruption, abort)
        while (this.inbox.length) this.inbox.pop()
        this.connack = -1
        this.sock = await connect({ host: o.host, port: o.port, proto: o.tls ? "tls" : "tcp", timeout: CONNECT_TIMEOUT })
        this.lastRecv = ds.millis()
        if (!(await this.write(this.sock, encodeConnect(o)))) throw new Error("CONNECT not sent: " + this.lastError)
        const deadline = ds.millis() + CONNECT_TIMEOUT
        while (this.connack < 0) {
            const left = deadline - ds.millis()
            if (left <= 0) throw new Error("no CONNACK")
            await this.receive(left)
        }
        if (this.connack !== 0) throw new Error(`connection refused, return code ${this.connack}`)
        this.connected = true
        this.connects++
    }

    /** Reads until the connection ends; keeps it alive with PINGREQ. */
    private async serve() {
        const ka = this.opts.keepAlive * 1000
        for (;;) {
            await this.receive(ka > 0 ? ka / 4 : 1000)
            if (!this.connected) throw new Error(this.lastError || "connection lost")
            const now = ds.millis()
            if (ka > 0) {
                // 3.1.2.10: the broker drops us after 1.5 x keep-alive of silence; we give up on it likewise
                if (now - this.lastRecv > ka * 1.5) throw new Error("keep-alive timeout")
                if (now - this.lastSend >= ka / 2) await this.send(encodePingreq())
            }
        }
    }

    /** Waits up to `timeout` ms for bytes, parses them and handles every complete packet. */
    private async receive(timeout: number) {
        const s = this.sock
        if (!s) throw new Error("no socket")
        const b = await s.recv(timeout)
        if (b === null) {
            this.connected = false
            throw new Error("closed by broker")
        }
        if (b === undefined) return
        this.lastRecv = ds.millis()
        // A chunk can hold hundreds of packets (a burst of commands): parse it in slices and handle each slice's
        // packets before the next, so neither the VM's opcode budget between awaits nor the inbox grows with it.
        for (let off = 0; off < b.length; off += RX_SLICE) {
            this.parser.push(b.length <= RX_SLICE ? b : b.slice(off, off + RX_SLICE))
            if (this.parser.error) throw new Error(this.parser.error)
            while (this.inbox.length) {
                const p = this.inbox.shift()
                await this.dispatch(p)
            }
            await ds.sleep(0)
        }
    }

    private async dispatch(p: MqttPacket) {
        if (p.type === CONNACK) {
            this.connack = p.body.length >= 2 ? p.body[1] : 255
        } else if (p.type === PUBACK) {
            if (p.body.length >= 2) this.handlers.puback((p.body[0] << 8) | p.body[1])
        } else if (p.type === PUBLISH) {
            const pub = parsePublish(p.flags, p.body)
            if (!pub) throw new Error("malformed PUBLISH")
            if (pub.qos === 1) await this.send(encodePuback(pub.packetId))
            // QoS 2 is never requested by our subscription; a broker sending it anyway gets no PUBREC
            const payload = p.truncated ? null : p.body.slice(pub.payloadOffset)
            await this.handlers.message(pub.topic, payload, p.length - pub.payloadOffset)
        } else if (p.type === SUBACK || p.type === PINGRESP) {
            // nothing to do: any packet already refreshed lastRecv
        }
    }

    private async drop() {
        this.connected = false
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
