/**
 * Byte input and output for trace files: a path, or "-" for stdin/stdout; `.gz` is (de)compressed transparently
 * with Node's zlib. Streams keep memory constant: chunks of a bounded size in, backpressure honoured out.
 */
import * as fs from "fs";
import * as zlib from "zlib";
import { addAbortSignal, pipeline, type Readable, type Writable } from "stream";
import { fileReason, VgwError } from "../../frame/errors";
import { isGzipPath } from "./format";

/**
 * Default read size. 64 KB of text is about 1,700 frames: small batches keep few frames alive at each
 * young-generation GC, which measured faster than 1 MB. Compressed formats ask for more (TraceFormat.chunkSize).
 */
export const DEFAULT_CHUNK = 1 << 16;

/** Bytes a writer may have in flight to its file before it waits (backpressure). */
const WRITE_WINDOW = 1 << 20;

/** Fails early, with the path in the message, when a trace cannot be opened (before any parsing starts). */
export function checkReadable(path: string): void {
  if (path === "-") return;
  try {
    const st = fs.statSync(path);
    if (st.isDirectory()) throw new VgwError(`cannot read trace ${path}: it is a directory`);
    fs.accessSync(path, fs.constants.R_OK);
  } catch (e) {
    if (e instanceof VgwError) throw e;
    throw new VgwError(`cannot read trace ${path}: ${fileReason(e)}`, { cause: e });
  }
}

/**
 * Raw byte chunks of a trace, decompressed when they are gzip data: known by the gzip magic bytes, not by the name,
 * so `zcat`-able input on stdin and a compressed file without `.gz` read as well (and a `.gz` that is plain text).
 * When `signal` fires (Ctrl-C) the input is closed and the chunks end there, as at the end of the file, so what was
 * read so far is still converted.
 */
export async function* readBytes(path: string, chunkSize = DEFAULT_CHUNK, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const source: Readable = path === "-" ? process.stdin : fs.createReadStream(path, { highWaterMark: chunkSize });
  let stream = source;
  if (signal) addAbortSignal(signal, source);
  try {
    if (await startsWithGzip(source)) {
      // pipeline, not pipe: a failure or an early stop on either side ends both (no open file left behind).
      stream = pipeline(source, zlib.createGunzip({ chunkSize }), () => undefined);
    }
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    if (signal?.aborted) return;
    const code = (e as NodeJS.ErrnoException).code;
    const what = code && code.startsWith("Z_") ? "gzip data is corrupt" : fileReason(e);
    throw new VgwError(`cannot read trace ${path}: ${what}`, { cause: e });
  } finally {
    if (path !== "-") stream.destroy();
  }
}

/** Looks at the first bytes without consuming them (they are put back with unshift). */
async function startsWithGzip(stream: Readable): Promise<boolean> {
  for (;;) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      stream.unshift(chunk);
      return chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b;
    }
    if (stream.readableEnded || stream.destroyed) return false;
    await new Promise<void>((resolve) => {
      const done = () => {
        for (const event of ["readable", "end", "close", "error"]) stream.off(event, done);
        resolve();
      };
      for (const event of ["readable", "end", "close", "error"]) stream.once(event, done);
    });
  }
}

/** Where a writer's bytes go; `close` flushes and, for a plain file, can rewrite the first bytes. */
export interface ByteSink {
  write(data: Buffer | string): Promise<void> | void;
  /** True once the reader of stdout went away (EPIPE, e.g. `| head`): further writes are discarded. */
  readonly gone: boolean;
  close(headerPatch?: Buffer): Promise<void>;
}

export function openSink(path: string): ByteSink {
  if (path === "-") return streamSink(process.stdout, false, "<stdout>");
  // Opened here, synchronously, so a path that cannot be written fails before any input is read.
  let fd: number;
  try {
    fd = fs.openSync(path, "w");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "its folder does not exist" : fileReason(e);
    throw new VgwError(`cannot write trace ${path}: ${reason}`, { cause: e });
  }
  // A 1 MB window lets the writes of the last batches run while the next ones are parsed and formatted (with the
  // default 16 KB, every batch waited for its own write).
  const file = fs.createWriteStream(path, { fd, highWaterMark: WRITE_WINDOW });
  if (isGzipPath(path)) {
    const gz = zlib.createGzip();
    gz.pipe(file);
    return streamSink(gz, true, path, file);
  }
  const sink = streamSink(file, true, path);
  return {
    write: sink.write,
    get gone() {
      return sink.gone;
    },
    async close(headerPatch) {
      await sink.close();
      if (headerPatch) {
        const fh = await fs.promises.open(path, "r+");
        try {
          await fh.write(headerPatch, 0, headerPatch.length, 0);
        } finally {
          await fh.close();
        }
      }
    },
  };
}

function streamSink(stream: Writable, end: boolean, name: string, finalStream: Writable = stream): ByteSink {
  let failure: Error | undefined;
  let gone = false;
  const onError = (e: Error) => {
    // A closed pipe on stdout is the reader saying "enough" (`| head`), not a failure.
    if (!end && (e as NodeJS.ErrnoException).code === "EPIPE") gone = true;
    else failure = e;
  };
  stream.on("error", onError);
  if (finalStream !== stream) finalStream.on("error", onError);
  const problem = (e: Error) => new VgwError(`cannot write trace ${name}: ${fileReason(e)}`, { cause: e });
  const check = () => {
    if (failure) throw problem(failure);
  };
  return {
    get gone() {
      return gone;
    },
    write(data) {
      check();
      if (data.length === 0 || gone) return;
      if (!stream.write(data)) {
        return new Promise<void>((resolve, reject) => {
          const done = () => {
            stream.off("drain", done);
            stream.off("error", fail);
            resolve();
          };
          const fail = (e: Error) => {
            stream.off("drain", done);
            if (gone) resolve();
            else reject(problem(e));
          };
          stream.on("drain", done);
          stream.once("error", fail);
        });
      }
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        check();
        if (!end) {
          // stdout is not ours to end; wait until what we wrote has left.
          if (stream.writableNeedDrain && !gone) {
            stream.once("drain", () => resolve());
            stream.once("error", () => resolve());
          } else resolve();
          return;
        }
        finalStream.once("close", () => (failure ? reject(problem(failure)) : resolve()));
        finalStream.once("error", (e) => reject(problem(e)));
        stream.end();
      });
    },
  };
}
