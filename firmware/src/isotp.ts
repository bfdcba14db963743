/**
 * ISO-TP (ISO 15765-2) for the gateway's diagnostic requests: a request is one single frame (at most 7 bytes, classic
 * CAN, normal addressing); the response is reassembled from a single frame, or a first frame and consecutive frames
 * after the flow control the caller sends. Only what a tester needs, with every byte from the bus treated as hostile:
 * a wrong sequence number, a length past MAX_RESPONSE or a frame of the wrong shape ends the exchange with a named
 * error, never with an exception or a write past the buffer.
 */

/** Largest response reassembled, bytes (the response buffer: docs/firmware.md, Memory). */
export const MAX_RESPONSE = 256
/** Largest request: one classic single frame. */
export const MAX_REQUEST = 7

/** What a received frame did to the exchange. */
export const RX_IGNORED = 0
export const RX_MORE = 1
/** A first frame arrived: the caller sends the flow control (FC_FRAME) now. */
export const RX_FLOW = 2
export const RX_DONE = 3
export const RX_ERROR = 4

/** Flow control: continue to send, no block limit, no separation time; padded to 8 bytes. */
export const FC_FRAME = [0x30, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]
export const PAD = 0xcc

/** The single frame of a request: PCI (0x0L), the bytes, padding to 8 (a DLC-8 frame, as OBD-II requires). */
export function singleFrame(req: Buffer, out: Buffer, off: number) {
    out[off] = req.length
    for (let i = 0; i < 7; i++) out[off + 1 + i] = i < req.length ? req[i] : PAD
}

export class IsoTpReceiver {
    readonly data = Buffer.alloc(MAX_RESPONSE)
    /** Announced length of the message under reassembly; bytes received so far. */
    total = 0
    got = 0
    private sn = 0
    /** True between a first frame and its last consecutive frame. */
    segmented = false
    /** The reason of the last RX_ERROR: "wrong-sn", "overflow", "bad-frame". */
    error = ""

    reset() {
        this.total = 0
        this.got = 0
        this.sn = 0
        this.segmented = false
        this.error = ""
    }

    private fail(why: string): number {
        this.error = why
        this.segmented = false
        return RX_ERROR
    }

    /** One frame from the response id: `len` data bytes at `off` of `buf`. */
    onFrame(buf: Buffer, off: number, len: number): number {
        if (len < 1) return RX_IGNORED
        const pci = buf[off]
        const type = pci >> 4
        if (type === 0) {
            // a single frame; during a segmented message it aborts it and starts over (ISO 15765-2, 9.8.3)
            const n = pci & 0x0f
            if (n === 0 || n > 7 || n > len - 1) return this.fail("bad-frame")
            for (let i = 0; i < n; i++) this.data[i] = buf[off + 1 + i]
            this.total = n
            this.got = n
            this.segmented = false
            return RX_DONE
        }
        if (type === 1) {
            if (len < 8) return this.fail("bad-frame")
            const n = ((pci & 0x0f) << 8) | buf[off + 1]
            // an escape length of 0 (a 32-bit length, ISO 15765-2:2016) is larger than MAX_RESPONSE anyway
            if (n > MAX_RESPONSE || n === 0) return this.fail("overflow")
            if (n <= 7) return this.fail("bad-frame")
            for (let i = 0; i < 6; i++) this.data[i] = buf[off + 2 + i]
            this.total = n
            this.got = 6
            this.sn = 1
            this.segmented = true
            return RX_FLOW
        }
        if (type === 2) {
            // a consecutive frame outside a segmented message is not ours (another tester's exchange): ignored
            if (!this.segmented) return RX_IGNORED
            if ((pci & 0x0f) !== this.sn) return this.fail("wrong-sn")
            const want = Math.min(7, this.total - this.got)
            if (len - 1 < want) return this.fail("bad-frame")
            for (let i = 0; i < want; i++) this.data[this.got + i] = buf[off + 1 + i]
            this.got += want
            this.sn = (this.sn + 1) & 0x0f
            if (this.got >= this.total) {
                this.segmented = false
                return RX_DONE
            }
            return RX_MORE
        }
        // flow control frames (type 3) from the response id, and reserved types: not part of a response
        return RX_IGNORED
    }
}
