/**
 * Frame: one CAN (or CAN FD) frame, and its one text form, the can-utils one (`lib.c` in linux-can/can-utils):
 *
 *   123#DEADBEEF          classic, 11-bit ID (3 hex digits)
 *   12345678#DEADBEEF     classic, 29-bit ID (8 hex digits)
 *   123#R  123#R3         remote frame, optional requested length
 *   123##1DEADBEEF        CAN FD: the digit after `##` is the flags nibble (1 = BRS, 2 = ESI)
 *   20000080#0000...      error frame: 8 digits with CAN_ERR_FLAG (0x20000000) set; the rest are the error class bits
 *
 * This module is the only place that parses or prints that text. Every other module builds frames through `makeFrame`,
 * which validates, so an invalid frame never travels further than the line that produced it.
 */
import { FrameError } from "./errors";
import type { TextBuffer } from "./text-buffer";

export interface Frame {
  /** 11-bit or 29-bit identifier; for an error frame, the error class bits (can-utils' CAN_ERR_MASK). */
  id: number;
  /** 29-bit identifier. */
  ext: boolean;
  /** Remote transmission request: no data, `dlc` holds the requested length. */
  rtr: boolean;
  /** CAN FD frame (up to 64 data bytes). */
  fd: boolean;
  /** CAN FD bit-rate switch. */
  brs: boolean;
  /** CAN FD error state indicator (the sender was error-passive). */
  esi: boolean;
  /** Error frame (as reported by the controller, never sent on purpose). */
  err: boolean;
  data: Uint8Array;
  /** Requested length of a remote frame (0..8); undefined for every other frame. */
  dlc?: number;
  /** Time in seconds (epoch or trace-relative, as the source gives it). */
  t?: number;
  /** Channel or interface name (`can0`, `1`). */
  bus?: string;
}

export type FrameInit = Partial<Frame> & { id: number };

export const CAN_SFF_MASK = 0x7ff;
export const CAN_EFF_MASK = 0x1fffffff;
export const CAN_ERR_FLAG = 0x20000000;
export const CANFD_BRS = 0x01;
export const CANFD_ESI = 0x02;

/** The data lengths a CAN FD frame may have; index = DLC. */
export const FD_LENGTHS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

export function isValidFdLength(len: number): boolean {
  return len <= 8 || FD_LENGTHS.includes(len);
}

/** DLC (0..15) for a data length; lengths that are not valid FD lengths round up, as a controller pads them. */
export function lengthToDlc(len: number): number {
  for (let dlc = 0; dlc < FD_LENGTHS.length; dlc++) if (FD_LENGTHS[dlc] >= len) return dlc;
  throw new FrameError(`data length ${len} exceeds 64 bytes`);
}

const EMPTY = new Uint8Array(0);

/** Builds a validated frame. Throws FrameError with the reason when the fields cannot form a frame. */
export function makeFrame(init: FrameInit): Frame {
  const frame: Frame = {
    id: init.id,
    ext: init.ext ?? false,
    rtr: init.rtr ?? false,
    fd: init.fd ?? false,
    brs: init.brs ?? false,
    esi: init.esi ?? false,
    err: init.err ?? false,
    data: init.data ?? EMPTY,
  };
  if (init.dlc !== undefined) frame.dlc = init.dlc;
  if (init.t !== undefined) frame.t = init.t;
  if (init.bus !== undefined) frame.bus = init.bus;
  validateFrame(frame);
  return frame;
}

export function validateFrame(f: Frame): void {
  const max = f.ext || f.err ? CAN_EFF_MASK : CAN_SFF_MASK;
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > max) {
    throw new FrameError(`ID 0x${hex(f.id)} out of range for a ${f.ext ? "29" : "11"}-bit frame`);
  }
  const len = f.data.length;
  if (f.fd) {
    if (f.rtr) throw new FrameError("CAN FD frames have no remote form");
    if (!isValidFdLength(len)) throw new FrameError(`CAN FD data length ${len} is not one of ${FD_LENGTHS.join(",")}`);
  } else {
    if (f.brs || f.esi) throw new FrameError("BRS/ESI flags are only valid on CAN FD frames");
    if (len > 8) throw new FrameError(`classic CAN data length ${len} exceeds 8 bytes`);
  }
  if (f.rtr) {
    if (len !== 0) throw new FrameError("a remote frame carries no data");
    if (f.dlc !== undefined && (!Number.isInteger(f.dlc) || f.dlc < 0 || f.dlc > 8)) {
      throw new FrameError(`remote frame length ${f.dlc} is not 0..8`);
    }
  } else if (f.dlc !== undefined) {
    throw new FrameError("dlc is only kept for remote frames");
  }
}

const HEX = "0123456789ABCDEF";
/** Uppercase hex of a byte array, two digits per byte (the can-utils data form). */
export function bytesToHex(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i++) s += HEX[data[i] >> 4] + HEX[data[i] & 15];
  return s;
}

function hex(n: number): string {
  return Number.isFinite(n) ? n.toString(16).toUpperCase() : String(n);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Prints a frame in can-utils text form (`123#DEADBEEF`), uppercase, as candump does. */
export function formatFrame(f: Frame): string {
  let id: string;
  if (f.err) id = (f.id | CAN_ERR_FLAG).toString(16).toUpperCase().padStart(8, "0");
  else if (f.ext) id = f.id.toString(16).toUpperCase().padStart(8, "0");
  else id = f.id.toString(16).toUpperCase().padStart(3, "0");
  if (f.rtr) return `${id}#R${f.dlc ? f.dlc : ""}`;
  if (f.fd) return `${id}##${HEX[(f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0)]}${bytesToHex(f.data)}`;
  return `${id}#${bytesToHex(f.data)}`;
}

/** `formatFrame` written into a TextBuffer, byte for byte the same text (the trace writers' and decode's hot path). */
export function writeFrameText(out: TextBuffer, f: Frame): void {
  if (f.err) out.hex(f.id | CAN_ERR_FLAG, 8);
  else out.hex(f.id, f.ext ? 8 : 3);
  out.byte(HASH);
  if (f.rtr) {
    out.byte(0x52 /* R */);
    if (f.dlc) out.decimal(f.dlc);
    return;
  }
  if (f.fd) {
    out.byte(HASH);
    out.byte(HEX.charCodeAt((f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0)));
  }
  out.hexBytes(f.data);
}

const HASH = 0x23;

/**
 * Parses can-utils frame text. Accepts what `cansend` accepts: `.` separators between data bytes, lowercase hex,
 * `R` with an optional length for remote frames. Throws FrameError naming the problem.
 */
export function parseFrame(text: string): Frame {
  const hash = text.indexOf("#");
  if (hash < 0) throw new FrameError(`'${text}' is not a frame: expected <id>#<data>`);
  const idText = text.slice(0, hash);
  if (idText.length !== 3 && idText.length !== 8) {
    throw new FrameError(`'${text}': the ID must have 3 (11-bit) or 8 (29-bit) hex digits, got ${idText.length}`);
  }
  let raw = 0;
  for (let i = 0; i < idText.length; i++) {
    const d = hexDigit(idText.charCodeAt(i));
    if (d < 0) throw new FrameError(`'${text}': '${idText}' is not a hex ID`);
    raw = raw * 16 + d;
  }
  let ext = idText.length === 8;
  let err = false;
  let id = raw;
  if (ext) {
    if (raw & CAN_ERR_FLAG) {
      err = true;
      ext = false;
      id = raw & CAN_EFF_MASK;
    } else if (raw > CAN_EFF_MASK) {
      throw new FrameError(`'${text}': 29-bit ID 0x${idText} exceeds 0x1FFFFFFF`);
    }
  } else if (raw > CAN_SFF_MASK) {
    throw new FrameError(`'${text}': 11-bit ID 0x${idText} exceeds 0x7FF`);
  }
  let rest = text.slice(hash + 1);
  let fd = false;
  let brs = false;
  let esi = false;
  if (rest.startsWith("#")) {
    fd = true;
    const flags = hexDigit(rest.charCodeAt(1));
    if (flags < 0) throw new FrameError(`'${text}': CAN FD frames need a flags digit after '##'`);
    brs = (flags & CANFD_BRS) !== 0;
    esi = (flags & CANFD_ESI) !== 0;
    rest = rest.slice(2);
  } else if (rest[0] === "R" || rest[0] === "r") {
    let dlc: number | undefined;
    if (rest.length > 1) {
      const d = hexDigit(rest.charCodeAt(1));
      if (rest.length !== 2 || d < 0 || d > 8) throw new FrameError(`'${text}': remote frame length must be one digit 0..8`);
      dlc = d;
    }
    return makeFrame({ id, ext, rtr: true, err, dlc });
  }
  const bytes: number[] = [];
  for (let i = 0; i < rest.length; ) {
    if (rest[i] === ".") {
      i++;
      continue;
    }
    const hi = hexDigit(rest.charCodeAt(i));
    const lo = hexDigit(rest.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) throw new FrameError(`'${text}': data must be pairs of hex digits`);
    bytes.push(hi * 16 + lo);
    i += 2;
  }
  return makeFrame({ id, ext, fd, brs, esi, err, data: Uint8Array.from(bytes) });
}

/** True when two frames carry the same bits on the bus (time and channel are not compared). */
export function sameFrame(a: Frame, b: Frame): boolean {
  if (a.id !== b.id || a.ext !== b.ext || a.rtr !== b.rtr || a.fd !== b.fd || a.err !== b.err) return false;
  if (a.brs !== b.brs || a.esi !== b.esi || (a.dlc ?? 0) !== (b.dlc ?? 0)) return false;
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
