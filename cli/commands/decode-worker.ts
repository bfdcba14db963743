/**
 * A worker thread of `vgw decode` (see `decodeInWorkers` in decode.ts): parses chunks of whole candump lines,
 * decodes and prints them exactly as the command's own loop does (DecodedLines), and hands back the printed bytes,
 * the counts and the bad lines (numbered from the chunk's first line; the main thread adds the offset and reports
 * them in input order).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Frame } from "../../frame/frame";
import { loadDbcFile } from "../../can-db/load";
import { Decoder } from "../../can-db/decoder";
import { SignalPrinter } from "../../can-db/annotate";
import { parseCandumpLines } from "../../host/trace/candump";
import { DecodedLines, UNDECODABLE, UNKNOWN } from "../decoded-lines";

/** What the main thread sends: the DBC, the options, the file name for error messages. */
export interface DecodeWorkerData {
  dbc: string;
  choices: boolean;
  jsonl: boolean;
  file: string;
}

/** To a worker: a chunk of whole lines, or an output buffer written and sent back. */
export interface DecodeWorkerMessage {
  chunk?: Uint8Array;
  recycle?: ArrayBuffer;
}

/** One chunk's outcome. */
export interface DecodeWorkerResult {
  out: Uint8Array;
  /** The chunk, handed back for the next one. */
  input: Uint8Array;
  lines: number;
  frames: number;
  unknown: number;
  undecodable: number;
  /** [line within the chunk (1-based), reason] */
  bad: Array<[number, string]>;
}

const data = workerData as DecodeWorkerData;
const decoder = new Decoder(loadDbcFile(data.dbc));
const printer = new SignalPrinter(decoder.db);
const lines = new DecodedLines(printer);
const options = { choices: data.choices };

/** Lines are parsed and printed in slices of about this many bytes: few frames are alive at each young-generation GC. */
const SLICE = 64 << 10;
/** Size of a fresh output buffer: a 1 MB chunk of candump lines prints 8 MB of jsonl. */
const OUTPUT = 12 << 20;

/** Output buffers the main thread has written and sent back, to print into again (fresh memory costs page faults). */
const free: ArrayBuffer[] = [];

parentPort!.on("message", (m: DecodeWorkerMessage) => {
  if (m.recycle) {
    free.push(m.recycle);
    return;
  }
  const chunk = m.chunk!;
  const bad: Array<[number, string]> = [];
  const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
  let lineBase = 0;
  const ctx = { file: data.file, stopped: false, bad: (line: number, reason: string) => void bad.push([lineBase + line, reason]) };
  lines.printInto(Buffer.from(free.pop() ?? new ArrayBuffer(OUTPUT)));
  let frameCount = 0;
  let unknown = 0;
  let undecodable = 0;
  for (let start = 0; start < input.length; ) {
    // A slice ends after a newline (or at the end of the chunk: the reader hands over whole lines only).
    let end = start + SLICE < input.length ? input.indexOf(0x0a, start + SLICE) + 1 : input.length;
    if (end <= 0) end = input.length;
    const frames: Frame[] = [];
    lineBase += parseCandumpLines(input.subarray(start, end), 1, ctx, frames);
    for (let k = 0; k < frames.length; k++) {
      const outcome = lines.decode(frames[k], decoder, options, data.jsonl);
      if (outcome & UNKNOWN) unknown++;
      if (outcome & UNDECODABLE) undecodable++;
    }
    frameCount += frames.length;
    start = end;
  }
  // The printed bytes start their buffer (the one given above, or the larger one a long output moved to): the whole
  // buffer moves to the main thread (not cloned), and the input goes back with it for the next chunk.
  const printed = lines.take();
  const out = new Uint8Array(printed.buffer, 0, printed.length);
  if (printed.byteOffset !== 0) throw new Error("decode worker: printed bytes do not start their buffer");
  const result: DecodeWorkerResult = { out, input: chunk, lines: lineBase, frames: frameCount, unknown, undecodable, bad };
  parentPort!.postMessage(result, [out.buffer as ArrayBuffer, chunk.buffer as ArrayBuffer]);
});
