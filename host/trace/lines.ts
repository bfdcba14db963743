import type { Frame } from "../../frame/frame";
import type { ReadContext } from "./format";

/**
 * Regroups raw byte chunks into buffers that hold only whole lines, so text parsers can scan bytes in place
 * (no per-line strings) and still see every line complete. Memory stays bounded by the chunk size plus one line.
 */

/** A line longer than this is cut and handed on anyway: the parser then reports it as a bad line instead of us growing without bound. */
const MAX_PENDING = 16 << 20;

export async function* wholeLines(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Buffer> {
  let pending: Buffer | undefined;
  let first = true;
  for await (let chunk of chunks) {
    // A UTF-8 byte-order mark (files saved by Windows editors) is no part of the first line.
    if (first) {
      first = false;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    const last = chunk.lastIndexOf(0x0a);
    if (last < 0) {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      if (pending.length > MAX_PENDING) {
        yield pending;
        pending = undefined;
      }
      continue;
    }
    if (pending) {
      // Only the first line straddles the chunk boundary: join just that piece, not the whole chunk.
      const first = chunk.indexOf(0x0a);
      yield Buffer.concat([pending, chunk.subarray(0, first + 1)]);
      if (first < last) yield chunk.subarray(first + 1, last + 1);
    } else {
      yield chunk.subarray(0, last + 1);
    }
    pending = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined;
  }
  if (pending && pending.length > 0 && !ctx.stopped) yield pending;
}

/** Line iteration for formats whose lines are few or complex (TRC, jsonl): latin1 strings, `\r` removed. */
async function* textLines(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<string[]> {
  for await (const buf of wholeLines(chunks, ctx)) {
    const lines = buf.toString("latin1", 0, buf.length).split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      if (l.length > 0 && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
    }
    yield lines;
  }
}

/**
 * Frames from a text format read line by line, one batch per chunk. `parse` returns the line's frame, or undefined
 * for a line that holds none (header, blank, or a bad line it has reported). When `parse` throws (a strict-mode
 * stop), the frames before the bad line are still handed on first.
 */
export async function* framesFromLines(
  chunks: AsyncIterable<Buffer>,
  ctx: ReadContext,
  parse: (line: string, lineNo: number) => Frame | undefined,
): AsyncGenerator<Frame[]> {
  let lineNo = 0;
  for await (const lines of textLines(chunks, ctx)) {
    const out: Frame[] = [];
    try {
      for (const l of lines) {
        lineNo++;
        const f = parse(l, lineNo);
        if (f) out.push(f);
      }
    } catch (e) {
      if (out.length > 0) yield out;
      throw e;
    }
    if (out.length > 0) yield out;
  }
}

const HEX2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, "0"));

/** Data bytes as the Vector and PEAK text formats write them: `0A 1B 2C`. */
export function spacedHex(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i++) s += (i ? " " : "") + HEX2[data[i]];
  return s;
}

/** What scanDecimal read: the digits as an integer, how many, and how many after the point (-1: no point). */
export const decimal = { mant: 0, digits: 0, frac: -1 };

/**
 * Scans `digits[.digits]` from i (the timestamps of candump and ASC lines) into `decimal`, without making a string;
 * returns the index after it. While the digits form an exact integer (< 2^53), mant / 10^frac is the correctly
 * rounded value, i.e. exactly what parseFloat gives.
 */
export function scanDecimal(b: Buffer, i: number, e: number): number {
  let mant = 0;
  let digits = 0;
  let frac = -1;
  for (; i < e; i++) {
    const c = b[i];
    if (c >= 48 && c <= 57) {
      mant = mant * 10 + (c - 48);
      digits++;
      if (frac >= 0) frac++;
    } else if (c === 0x2e && frac < 0) frac = 0;
    else break;
  }
  decimal.mant = mant;
  decimal.digits = digits;
  decimal.frac = frac;
  return i;
}
