/**
 * Trace files: open a reader or a writer by path; the format comes from the extension (registry in `format.ts`,
 * one module per format), `.gz` of any format is transparent, and "-" means candump text on stdin/stdout.
 *
 *   const reader = openTraceReader("drive.asc", { onError: (e) => ... });
 *   for await (const batch of reader) for (const frame of batch) ...     // or: for await (const f of eachFrame(reader))
 *   reader.skipped                                                        // bad lines reported and skipped
 *
 * Readers stream in constant memory and yield frames in batches (one per chunk of input) because per-frame
 * async iteration costs more than parsing a line. Bad input never crashes a reader: each bad line or record becomes
 * a TraceParseError naming file and line (binary formats: object index), handed to `onError` and counted in
 * `skipped`, or thrown when `strict` is set.
 *
 * A frame's `data` may be a view into a buffer its batch shares (no allocation per frame on the hot path): copy it
 * before mutating it or transferring its `buffer`.
 */
import type { Frame } from "../../frame/frame";
import { TraceParseError, UsageError } from "../../frame/errors";
import { log } from "../log";
import { findFormat, isGzipPath, listFormats, type CopiedLines, type ReadContext, type TraceFormat } from "./format";
import { checkReadable, openSink, readBytes } from "./io";
import { wholeLines } from "./lines";

// Each format module registers itself; the import order is the order `listFormats()` reports.
import "./candump";
import "./asc";
import "./blf";
import "./trc";
import "./jsonl";
import "./mf4";

export { listFormats, findFormat, registerFormat, type TraceFormat } from "./format";

export interface TraceReaderOptions {
  /** Stop at the first bad line: the iteration throws the TraceParseError. */
  strict?: boolean;
  /** Called for each bad line that was skipped (not in strict mode). Default: a warning on stderr (see MAX_REPORTED). */
  onError?: (e: TraceParseError) => void;
  /** Format name or extension, overriding the path's extension (`asc`, `.blf`). */
  format?: string;
  /** Stops reading when it fires (Ctrl-C): the frames end there, as at the end of the file. */
  signal?: AbortSignal;
}

export interface TraceReader extends AsyncIterable<Frame[]> {
  readonly path: string;
  readonly format: TraceFormat;
  /** Frames yielded so far. */
  readonly framesRead: number;
  /** Bad lines/records skipped so far. */
  readonly skipped: number;
  /**
   * For a conversion into the same format, when the format can copy lines unchanged (TraceFormat.readForCopy):
   * batches of frames, and runs of lines to hand to `TraceWriter.writeCopied` as they are. Undefined otherwise.
   */
  readonly forCopy?: AsyncIterable<Frame[] | CopiedLines>;
  /**
   * For a text format parsed elsewhere (`vgw decode`'s worker threads): the input's whole lines as byte chunks of
   * about `size` bytes (gunzipped, without a byte-order mark), instead of frames. Their bad lines go to `bad`.
   */
  lineChunks(size: number): AsyncIterable<Buffer>;
  /** Reports a bad line found in `lineChunks`' bytes, counted and printed as the reader's own (throws with strict). */
  bad(line: number, reason: string): void;
}

export interface TraceWriterOptions {
  /** Format name or extension, overriding the path's extension. */
  format?: string;
}

export interface TraceWriter {
  readonly path: string;
  readonly format: TraceFormat;
  write(frames: Frame[]): Promise<void> | void;
  /** Flushes and closes the file; must be awaited. */
  close(): Promise<void>;
  readonly framesWritten: number;
  /** Frames the format cannot represent (e.g. error frames in TRC 2.1 with no room for their class bits); counted, not silent. */
  readonly framesDropped: number;
  /** Writes lines copied from a trace of the same format (TraceReader.forCopy); undefined when the format cannot. */
  readonly writeCopied?: (lines: CopiedLines) => Promise<void> | void;
  /** True when the output was stdout and its reader went away (`| head`): stop producing. */
  readonly outputGone: boolean;
}

/**
 * Read size when lines are copied (TraceReader.forCopy): no frame objects are made for copied lines, so the reason
 * for small reads (few frames alive at each young-generation GC) does not apply, and 1 MB reads cost fewer turns.
 */
const COPY_CHUNK = 1 << 20;

/** The default reporter prints this many bad lines per reader, then only counts (the count is always reported by the caller). */
export const MAX_REPORTED = 20;

/** The format for a path ("-" is candump text) or an override; a UsageError naming the known extensions if none. */
export function resolveFormat(path: string, override?: string): TraceFormat {
  const format = override ? findFormat(override) : path === "-" ? findFormat("candump") : findFormat(path);
  if (!format) {
    const known = listFormats()
      .flatMap((f) => f.extensions)
      .join(", ");
    const what = override ? `format '${override}'` : `the extension of '${path}'`;
    throw new UsageError(`unknown trace format: ${what} (known: ${known}, each optionally .gz)`);
  }
  return format;
}

export function openTraceReader(path: string, options: TraceReaderOptions = {}): TraceReader {
  const format = resolveFormat(path, options.format);
  checkReadable(path);
  const file = path === "-" ? "<stdin>" : path;
  let framesRead = 0;
  let skipped = 0;
  let reported = 0;
  const onError =
    options.onError ??
    ((e: TraceParseError) => {
      if (reported++ < MAX_REPORTED) log.warn(`warning: ${e.message} (skipped)`);
      else if (reported === MAX_REPORTED + 1) log.warn(`warning: ${file}: more bad lines; only counting them from here`);
    });
  const ctx: ReadContext = {
    file,
    source: path === "-" ? undefined : path,
    get stopped() {
      return options.signal?.aborted ?? false;
    },
    bad(line, reason) {
      const e = new TraceParseError(reason, file, line);
      if (options.strict) throw e;
      skipped++;
      onError(e);
    },
  };
  return {
    path,
    format,
    get framesRead() {
      return framesRead;
    },
    get skipped() {
      return skipped;
    },
    async *[Symbol.asyncIterator]() {
      for await (const batch of format.read(readBytes(path, format.chunkSize, options.signal), ctx)) {
        framesRead += batch.length;
        yield batch;
      }
    },
    lineChunks: (size) => wholeLines(readBytes(path, size, options.signal), ctx),
    bad: (line, reason) => ctx.bad(line, reason),
    forCopy: format.readForCopy && {
      async *[Symbol.asyncIterator]() {
        for await (const batch of format.readForCopy!(readBytes(path, COPY_CHUNK, options.signal), ctx)) {
          framesRead += Array.isArray(batch) ? batch.length : batch.frames;
          yield batch;
        }
      },
    },
  };
}

export function openTraceWriter(path: string, options: TraceWriterOptions = {}): TraceWriter {
  const format = resolveFormat(path, options.format);
  if (path === "-" && format.binary && process.stdout.isTTY) {
    throw new UsageError(`${format.name} is a binary format and stdout is a terminal: give an output file, or pipe it`);
  }
  if (format.seekable && (path === "-" || isGzipPath(path))) {
    throw new UsageError(`${format.name} files link their blocks by file offset and are finished at the end: give a plain output file (not stdout, not .gz)`);
  }
  const sink = openSink(path);
  const encoder = format.createWriter();
  let framesWritten = 0;
  let begun = false;
  const begin = () => {
    if (begun) return;
    begun = true;
    const head = encoder.begin();
    if (head.length > 0) return sink.write(head);
  };
  return {
    path,
    format,
    get framesWritten() {
      return framesWritten - (encoder.dropped ?? 0);
    },
    get framesDropped() {
      return encoder.dropped ?? 0;
    },
    get outputGone() {
      return sink.gone;
    },
    write(frames) {
      const started = begin();
      const body = encoder.encode(frames);
      framesWritten += frames.length;
      if (started || typeof body === "object" && "then" in body) {
        return (async () => {
          await started;
          await sink.write(await body);
        })();
      }
      return sink.write(body);
    },
    writeCopied:
      encoder.copy &&
      ((lines) => {
        const started = begin();
        const body = encoder.copy!(lines);
        framesWritten += lines.frames;
        return started ? started.then(() => sink.write(body)) : sink.write(body);
      }),
    async close() {
      await begin();
      const { tail, headerPatch } = await encoder.finish();
      await sink.write(tail);
      await sink.close(headerPatch);
    },
  };
}

/** One frame at a time, for callers that do not need batches. */
export async function* eachFrame(reader: AsyncIterable<Frame[]>): AsyncGenerator<Frame> {
  for await (const batch of reader) yield* batch;
}

/** Reads a whole (small) trace into memory: for tests and tools that need random access, not for streams. */
export async function readAllFrames(path: string, options?: TraceReaderOptions): Promise<Frame[]> {
  const all: Frame[] = [];
  for await (const batch of openTraceReader(path, options)) for (const f of batch) all.push(f);
  return all;
}
