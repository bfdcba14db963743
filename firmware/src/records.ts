/**
 * The CanBus frame record (`firmware/services/canbus.md`): u32 id, u8 flags, u8 len, data. Used for received
 * `frames` reports and for `transmit`; this module is the only place that knows its layout.
 */

export const FLAG_EXT = 0x01
export const FLAG_RTR = 0x02
export const FLAG_FD = 0x04
export const FLAG_BRS = 0x08
export const FLAG_ESI = 0x10
export const FLAG_ERR = 0x20
export const FLAG_RESERVED = 0xc0

export const RECORD_HEAD = 6
/** A Jacdac packet payload is at most 236 bytes. */
export const MAX_PACKET = 236

/** Valid CAN FD data lengths above 8. */
function fdLengthOk(len: number) {
    return (
        len <= 8 ||
        len === 12 ||
        len === 16 ||
        len === 20 ||
        len === 24 ||
        len === 32 ||
        len === 48 ||
        len === 64
    )
}

/**
 * Checks the record at `off` of `buf` (which ends at `end`). Returns the offset after it, or -1 when the record is
 * invalid; `lastRecordError.reason` names the reason for the last -1.
 */
export function checkRecord(buf: Buffer, off: number, end: number): number {
    if (off + RECORD_HEAD > end) {
        lastRecordError.reason = "record header runs past the end"
        return -1
    }
    const id = buf.getAt(off, "u32")
    const flags = buf[off + 4]
    const len = buf[off + 5]
    if (flags & FLAG_RESERVED) {
        lastRecordError.reason = "reserved flag bits set"
        return -1
    }
    const maxId = flags & (FLAG_EXT | FLAG_ERR) ? 0x1fffffff : 0x7ff
    if (id > maxId) {
        lastRecordError.reason = "id out of range"
        return -1
    }
    let dataLen = len
    if (flags & FLAG_FD) {
        if (flags & FLAG_RTR) {
            lastRecordError.reason = "remote frame with FD flag"
            return -1
        }
        if (!fdLengthOk(len)) {
            lastRecordError.reason = "bad FD length"
            return -1
        }
    } else {
        if (flags & (FLAG_BRS | FLAG_ESI)) {
            lastRecordError.reason = "BRS/ESI without FD"
            return -1
        }
        if (len > 8) {
            lastRecordError.reason = "classic length above 8"
            return -1
        }
        if (flags & FLAG_RTR) dataLen = 0
    }
    if (off + RECORD_HEAD + dataLen > end) {
        lastRecordError.reason = "data runs past the end"
        return -1
    }
    return off + RECORD_HEAD + dataLen
}

/** Why the last checkRecord returned -1 (an object: exported `let` bindings are not live in every compiler). */
export const lastRecordError = { reason: "" }

/** Matching key of a frame: the id, with bit 31 set for 29-bit frames (docs/protocol.md). */
export function frameKey(id: number, flags: number): number {
    return flags & FLAG_EXT ? (id | 0x80000000) >>> 0 : id
}
