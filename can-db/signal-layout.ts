/**
 * Where a signal's bits live in the payload, as runs of contiguous bits per byte. Both the decoder generator and the
 * encoder start from these runs, so Intel/Motorola numbering is worked out in exactly one place.
 *
 * Numbering (Vector DBC): bit k of the payload is bit (k & 7) of byte (k >> 3).
 * - little_endian (Intel, `@1`): start bit = the LSB; raw bit j sits at payload bit start + j.
 * - big_endian (Motorola, `@0`): start bit = the MSB; walking towards the LSB goes down within a byte, then to bit 7
 *   of the next byte ("sawtooth" numbering).
 */
import type { SignalDef } from "./model";

export interface BitRun {
  /** Payload byte index. */
  byte: number;
  /** Lowest payload bit (0..7) of the run within that byte. */
  shift: number;
  width: number;
  /** Raw-value bit that the run's lowest bit carries. */
  rawBit: number;
}

export interface SignalLayout {
  runs: BitRun[];
  /** Bytes a frame must carry for the signal to be present: highest byte index + 1. */
  bytesNeeded: number;
}

/**
 * Runs for a signal. A run never crosses a byte or the raw bit 32 boundary, so a 64-bit value can be assembled as two
 * exact 32-bit halves. Returns undefined when a Motorola signal walks past byte 63 (no frame can carry it).
 */
export function signalLayout(s: Pick<SignalDef, "startBit" | "length" | "byteOrder">): SignalLayout | undefined {
  const bits: Array<[number, number]> = []; // [payload bit, raw bit]
  if (s.byteOrder === "little_endian") {
    for (let j = 0; j < s.length; j++) bits.push([s.startBit + j, j]);
  } else {
    let pos = s.startBit;
    for (let j = s.length - 1; j >= 0; j--) {
      bits.push([pos, j]);
      pos = (pos & 7) === 0 ? pos + 15 : pos - 1;
    }
  }
  const runs: BitRun[] = [];
  const key = (pos: number, j: number) => (pos >> 3) * 2 + (j >= 32 ? 1 : 0);
  const byKey = new Map<number, BitRun>();
  let bytesNeeded = 0;
  for (const [pos, j] of bits) {
    const byte = pos >> 3;
    if (byte > 63) return undefined;
    bytesNeeded = Math.max(bytesNeeded, byte + 1);
    const k = key(pos, j);
    const run = byKey.get(k);
    if (!run) {
      const r = { byte, shift: pos & 7, width: 1, rawBit: j };
      byKey.set(k, r);
      runs.push(r);
    } else {
      run.width++;
      run.shift = Math.min(run.shift, pos & 7);
      run.rawBit = Math.min(run.rawBit, j);
    }
  }
  runs.sort((a, b) => a.rawBit - b.rawBit);
  return { runs, bytesNeeded };
}

/** Payload bits (as byte*8+bit) a signal occupies; used by the database checks to find overlaps. */
export function occupiedBits(layout: SignalLayout): number[] {
  const out: number[] = [];
  for (const r of layout.runs) for (let b = 0; b < r.width; b++) out.push(r.byte * 8 + r.shift + b);
  return out;
}

/** The exact raw value (two's complement applied when signed) as a BigInt; used for values wider than 53 bits. */
export function readRawBig(data: Uint8Array, layout: SignalLayout, length: number, signed: boolean): bigint {
  let v = 0n;
  for (const r of layout.runs) {
    const bits = (data[r.byte] >> r.shift) & ((1 << r.width) - 1);
    v |= BigInt(bits) << BigInt(r.rawBit);
  }
  return signed ? BigInt.asIntN(length, v) : v;
}

/** Writes a raw value (any sign; taken modulo 2^length) into the payload, clearing the signal's bits first. */
export function writeRawBig(data: Uint8Array, layout: SignalLayout, length: number, raw: bigint): void {
  const v = BigInt.asUintN(length, raw);
  for (const r of layout.runs) {
    const mask = ((1 << r.width) - 1) << r.shift;
    const bits = Number((v >> BigInt(r.rawBit)) & BigInt((1 << r.width) - 1));
    data[r.byte] = (data[r.byte] & ~mask) | (bits << r.shift);
  }
}
