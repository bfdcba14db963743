/**
 * The trace-format contract and its registry (python-can's model: each format is one module that registers
 * `{ name, extensions, read, createWriter }`; callers pick a format by file extension, never by a switch ladder).
 *
 * A format reader turns a stream of raw byte chunks into batches of frames. It never throws on bad input itself:
 * it hands each bad line/record to `ctx.bad()`, which counts it and either throws (strict mode) or reports and goes on.
 */
import type { Frame } from "../../frame/frame";

export interface ReadContext {
  /** File name as the user gave it ("<stdin>" for "-"), used in every error message. */
  readonly file: string;
  /**
   * Reports one unreadable line (text formats: 1-based line number; binary formats: object index or byte offset,
   * as the format documents). Counts it; throws TraceParseError in strict mode.
   */
  bad(line: number, reason: string): void;
  /** True once the input was cut by a stop (Ctrl-C): its unfinished last line is no bad line, just where it stopped. */
  readonly stopped: boolean;
  /**
   * The trace's path when it is a file (not stdin), for formats that must read by offset (MF4): such a format may
   * open it itself instead of reading `chunks`. The file may be gzip-compressed: the format checks its bytes.
   */
  readonly source?: string;
}

/**
 * Lines a conversion into the same format copies unchanged, because they are already exactly what the writer would
 * print for their frames (TraceFormat.readForCopy). `frames` is how many they hold; `lastT` the time of the last one.
 */
export interface CopiedLines {
  readonly copied: Buffer;
  readonly frames: number;
  readonly lastT: number;
}

export interface FormatWriter {
  /** Bytes that start the file (header); may be a placeholder that `finish` patches. */
  begin(): Buffer | string;
  /**
   * Encodes a batch. A format that buffers (BLF containers) may return an empty buffer, or a promise when work it
   * runs off the main thread (zlib) has fallen too far behind: the caller awaits it, once per batch.
   */
  encode(frames: Frame[]): Buffer | string | Promise<Buffer | string>;
  /** Final bytes, plus a replacement for the first bytes when the output can seek (BLF header with counts). */
  finish(): WriterEnd | Promise<WriterEnd>;
  /** Frames the format could not represent and dropped (counted, reported by the writer). */
  readonly dropped?: number;
  /** Takes lines copied unchanged from a trace of the same format (TraceFormat.readForCopy): returns the bytes to write. */
  copy?(lines: CopiedLines): Buffer;
}

export interface WriterEnd {
  tail: Buffer | string;
  headerPatch?: Buffer;
}

export interface TraceFormat {
  /** Short name, usable as a `format` override (`candump`, `asc`, ...). */
  name: string;
  /** File extensions with the dot, lowercase (`.log`). `.gz` is handled for every format by the I/O layer. */
  extensions: string[];
  /** One line for `vgw convert --help` and docs. */
  description: string;
  /** Bytes, not text: never written to a terminal. */
  binary?: boolean;
  /** Bytes per read when the default (64 KB of text) would make batches too small (compressed formats). */
  chunkSize?: number;
  /** The writer patches its header at the end (`headerPatch`) and the file cannot be read without it: no stdout, no gzip. */
  seekable?: boolean;
  read(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncIterable<Frame[]>;
  /**
   * Reads for a conversion into this same format: runs of lines already in the writer's exact form come as
   * CopiedLines (not parsed into frames, not printed again), every other line as frames, in file order. Same errors
   * and counts as `read`.
   */
  readForCopy?(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncIterable<Frame[] | CopiedLines>;
  createWriter(): FormatWriter;
}

const formats: TraceFormat[] = [];

export function registerFormat(format: TraceFormat): void {
  formats.push(format);
}

export function listFormats(): readonly TraceFormat[] {
  return formats;
}

/**
 * The format for a path (by extension, after stripping `.gz`) or for an explicit override (a name or an
 * extension). Returns undefined when nothing matches; callers turn that into a usage error.
 */
export function findFormat(pathOrOverride: string): TraceFormat | undefined {
  const key = pathOrOverride.toLowerCase().replace(/\.gz$/, "");
  const byName = formats.find((f) => f.name === key);
  if (byName) return byName;
  // `--to log` names an extension without its dot; a path's extension is what follows its last dot.
  const ext = !key.includes(".") ? `.${key}` : key.startsWith(".") && !key.slice(1).includes(".") ? key : key.slice(key.lastIndexOf("."));
  return formats.find((f) => f.extensions.includes(ext));
}

export function isGzipPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gz");
}
