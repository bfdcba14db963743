/**
 * Writing data to stdout from a long-running command: waits until the pipe has taken each chunk (memory stays bounded
 * when the reader is slow) and turns EPIPE (`vgw dump ... | head`) into a quiet "stop", not a crash.
 */
import { fstatSync, write } from "node:fs";
let gone = false;
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") gone = true;
  else throw e;
});

/** Resolves false once stdout has been closed by the reader; the caller then stops producing. */
export function writeStdout(text: string | Uint8Array): Promise<boolean> {
  if (gone) return Promise.resolve(false);
  return new Promise((resolve) => process.stdout.write(text, (err) => resolve(!err && !gone)));
}

/**
 * stdout for a command that prints a lot (`vgw decode`): byte chunks, in order. When stdout is a regular file
 * (`> out.jsonl`), Node writes it synchronously on the main thread, and the kernel's copy of hundreds of MB into the
 * page cache was a fifth of `vgw decode`'s time; here the chunks go to fs.write on libuv's thread pool instead, one at
 * a time (the file offset, or O_APPEND, orders them), while the next chunk is printed. At most `ahead` bytes wait.
 * Anything else (pipe, terminal) goes through writeStdout. Chunks must not be changed after write() (TextBuffer.take's
 * views are not).
 */
export interface ChunkedStdout {
  /**
   * Queues a chunk; resolves false once stdout is gone (the caller stops). Waits while too much is queued. `written`
   * is called once the chunk is no longer needed (written, or dropped because stdout is gone), so that the caller
   * may reuse its memory.
   */
  write(chunk: Uint8Array, written?: () => void): Promise<boolean>;
  /** Resolves when every chunk is written (false if stdout is gone). */
  flush(): Promise<boolean>;
}

export function chunkedStdout(ahead = 8 << 20): ChunkedStdout {
  let regular = false;
  try {
    // Only while process.stdout.write is the stream's own: a caller that took it over (an in-process capture, as
    // the tests running main() do) must get every byte through it, not on fd 1 behind its back.
    regular = !Object.prototype.hasOwnProperty.call(process.stdout, "write") && fstatSync(1).isFile();
  } catch {
    // fd 1 closed or odd: the stream path reports what is wrong.
  }
  if (!regular) {
    return {
      write: async (chunk, written) => {
        const ok = await writeStdout(chunk);
        written?.();
        return ok;
      },
      flush: () => Promise.resolve(!gone),
    };
  }
  const queue: Uint8Array[] = [];
  const callbacks: Array<(() => void) | undefined> = [];
  let queued = 0;
  let busy = false;
  let failure: Error | undefined;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const next = (): void => {
    const chunk = queue[0];
    if (chunk === undefined || failure) {
      busy = false;
      wake();
      return;
    }
    busy = true;
    write(1, chunk, 0, chunk.length, null, (err, n) => {
      if (err) failure = err;
      else if (n < chunk.length) queue[0] = chunk.subarray(n); // a short write (disk full soon): the rest next
      else {
        queue.shift();
        queued -= chunk.length;
        callbacks.shift()?.();
      }
      if (queued <= ahead / 2) wake();
      next();
    });
  };
  const settle = (until: () => boolean): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (failure) reject(failure);
        else if (until()) resolve(true);
        else waiters.push(check);
      };
      check();
    });
  return {
    write(chunk, written) {
      if (failure) return Promise.reject(failure);
      if (chunk.length === 0) {
        written?.();
        return Promise.resolve(true);
      }
      queue.push(chunk);
      callbacks.push(written);
      queued += chunk.length;
      if (!busy) next();
      return queued <= ahead ? Promise.resolve(true) : settle(() => queued <= ahead / 2);
    },
    flush: () => settle(() => !busy && queue.length === 0),
  };
}
