/**
 * ISO-TP (ISO 15765-2) protocol control information: the first byte(s) of every ISO-TP frame say what the frame is
 * (single, first, consecutive or flow control frame) and carry its lengths, sequence number or flow-control
 * parameters. This module reads and writes them, for the endpoint (isotp.ts), the reassembler and `vgw isotp dump`.
 *
 * Byte layout (after the optional address byte of extended or mixed addressing):
 *   SF  0L dd..            L = length 1..7 (frames of at most 8 bytes)
 *   SF  00 LL dd..         escape form, CAN FD frames longer than 8 bytes: LL = length
 *   FF  1H LL dd..         12-bit length HLL (8..4095)
 *   FF  10 00 LLLLLLLL dd  escape form: 32-bit length, for messages over 4095 bytes
 *   CF  2N dd..            N = sequence number, 1, 2, .. 15, 0, 1, ..
 *   FC  3S BS ST           S = flow status (0 continue, 1 wait, 2 overflow), BS = block size, ST = STmin
 */
import { VgwError } from "../../frame/errors";
import { FD_LENGTHS } from "../../frame/frame";

/** The named ways one ISO-TP message can fail; each ends that message only, and the endpoint counts it. */
export type IsoTpErrorCode =
  /** A consecutive frame with another sequence number than the next one expected. */
  | "wrong-sn"
  /** A consecutive frame while no multi-frame message was being received (counted; no message to end). */
  | "unexpected-cf"
  /** A new single or first frame arrived before the message being received was complete. */
  | "interrupted"
  /** Receiving: the announced length exceeds what this end accepts (it answers flow status OVERFLOW). Sending: the receiver answered OVERFLOW. */
  | "overflow"
  /** A length that cannot be: SF length 0 or beyond the frame, FF length that fits a SF, CF shorter than needed, FF not filling its frame. */
  | "length"
  /** A flow control frame with a reserved flow status. */
  | "bad-fc"
  /** More WAIT flow control frames in a row than the limit (N_WFTmax). */
  | "wft-overrun"
  /** A frame's padding broke the configured padding check (length or content). */
  | "padding"
  /** Sending: a frame did not leave within N_As. */
  | "timeout-as"
  /** Sending: no flow control within N_Bs after a first frame or a block. */
  | "timeout-bs"
  /** Receiving: no consecutive frame within N_Cr. */
  | "timeout-cr"
  /** A frame that is too short to hold its PCI, or has a reserved frame type. */
  | "bad-frame"
  /** receive(): no message within the time asked for (MessageLink's timeout). */
  | "timeout"
  /** The endpoint was closed while the operation waited. */
  | "closed";

/** One ISO-TP message (or frame) that failed, with the ISO 15765-2 reason as `code`. */
export class IsoTpError extends VgwError {
  constructor(
    readonly code: IsoTpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`isotp ${code}: ${message}`, options);
  }
}

/** The largest message ISO 15765-2 can announce (32-bit FF_DL). */
export const MAX_MESSAGE_LENGTH = 0xffffffff;
/** Messages up to this length use the 12-bit first frame. */
export const MAX_12BIT_LENGTH = 4095;

export const enum FlowStatus {
  ContinueToSend = 0,
  Wait = 1,
  Overflow = 2,
}

export type Pdu =
  | { type: "SF"; length: number; dataStart: number }
  | { type: "FF"; length: number; dataStart: number }
  | { type: "CF"; sn: number; dataStart: number }
  | { type: "FC"; status: number; blockSize: number; stMin: number; dataStart: number };

/**
 * Reads the PCI of a frame's data, `offset` bytes in (1 with an address byte). Returns the PDU, or an IsoTpError
 * ("bad-frame", "length") saying why the frame is not a valid ISO-TP frame. Lengths are checked against the frame
 * (an SF or FF that cannot hold what it announces); sequence and flow logic is the caller's.
 */
export function readPdu(data: Uint8Array, offset: number): Pdu | IsoTpError {
  if (data.length <= offset) return new IsoTpError("bad-frame", `a frame of ${data.length} bytes holds no PCI`);
  const pci = data[offset];
  const kind = pci >> 4;
  switch (kind) {
    case 0: {
      if (data.length <= 8) {
        const length = pci & 0x0f;
        if (length === 0 || length > data.length - offset - 1) {
          return new IsoTpError("length", `single frame length ${length} does not fit a ${data.length}-byte frame`);
        }
        return { type: "SF", length, dataStart: offset + 1 };
      }
      // CAN FD frames longer than 8 bytes only carry the escape form (ISO 15765-2:2016 9.6.2.1).
      if ((pci & 0x0f) !== 0) return new IsoTpError("length", `single frame in a ${data.length}-byte frame must use the escape length, got 0x${hex2(pci)}`);
      if (data.length < offset + 2) return new IsoTpError("bad-frame", "escape single frame without its length byte");
      const length = data[offset + 1];
      if (length === 0 || length > data.length - offset - 2) {
        return new IsoTpError("length", `single frame length ${length} does not fit a ${data.length}-byte frame`);
      }
      return { type: "SF", length, dataStart: offset + 2 };
    }
    case 1: {
      if (data.length < offset + 2) return new IsoTpError("bad-frame", "first frame without its length");
      let length = ((pci & 0x0f) << 8) | data[offset + 1];
      let dataStart = offset + 2;
      if (length === 0) {
        if (data.length < offset + 6) return new IsoTpError("bad-frame", "first frame with a 32-bit length that the frame cannot hold");
        length = ((data[offset + 2] << 24) >>> 0) + (data[offset + 3] << 16) + (data[offset + 4] << 8) + data[offset + 5];
        dataStart = offset + 6;
      }
      return { type: "FF", length, dataStart };
    }
    case 2:
      return { type: "CF", sn: pci & 0x0f, dataStart: offset + 1 };
    case 3:
      if (data.length < offset + 3) return new IsoTpError("bad-frame", `flow control frame of ${data.length} bytes (needs ${offset + 3})`);
      return { type: "FC", status: pci & 0x0f, blockSize: data[offset + 1], stMin: data[offset + 2], dataStart: offset + 3 };
    default:
      return new IsoTpError("bad-frame", `reserved frame type 0x${kind.toString(16)}`);
  }
}

/**
 * STmin as a raw byte -> microseconds between consecutive frames. 0x00-0x7F are milliseconds, 0xF1-0xF9 are 100-900
 * microseconds; the reserved values mean the longest STmin, 127 ms (ISO 15765-2:2016 9.6.5.4).
 */
export function stMinMicros(raw: number): number {
  if (raw <= 0x7f) return raw * 1000;
  if (raw >= 0xf1 && raw <= 0xf9) return (raw - 0xf0) * 100;
  return 127_000;
}

/** The data length a frame must have to carry `used` bytes: itself up to 8; the next valid CAN FD length beyond. */
export function frameLengthFor(used: number): number {
  if (used <= 8) return used;
  for (const l of FD_LENGTHS) if (l >= used) return l;
  throw new RangeError(`${used} bytes do not fit a CAN FD frame`);
}

export function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}
