/**
 * Trace frames for the replay scheduler, read and parsed on a worker thread. Parsing a trace chunk takes milliseconds
 * (measured: up to 11 ms per batch of ~800 candump lines, file I/O included), and on the replay thread that time would
 * land on the frames due meanwhile. Here the replay thread only unpacks small slices of ready buffers (64 frames at a
 * time, tens of microseconds), so its waits stay sub-millisecond.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import type { Frame } from "../../frame/frame";
import { UsageError, VgwError } from "../../frame/errors";
import { unpackSlices, type PackedBatch } from "../../frame/packed";

const SLICE = 64;

/** What the read-ahead worker (read-ahead-worker.ts) posts: packed batches (frame/packed.ts layout), bad lines, the end. */
export type WorkerMessage =
  | { type: "frames"; batch: PackedBatch }
  | { type: "bad"; message: string }
  | { type: "end" }
  | { type: "fail"; message: string; name: string };

export interface ReadAheadOptions {
  /** Each bad line the reader skipped (message as TraceParseError would print it). */
  onBadLine?: (message: string) => void;
}

export function readAhead(file: string, options: ReadAheadOptions = {}): AsyncIterable<Frame[]> {
  return {
    async *[Symbol.asyncIterator]() {
      const worker = new Worker(path.join(__dirname, "read-ahead-worker.js"), { workerData: { path: file } });
      const inbox: WorkerMessage[] = [];
      let wake: (() => void) | undefined;
      let exited: Error | undefined;
      worker.on("message", (m: WorkerMessage) => {
        if (m.type === "bad") options.onBadLine?.(m.message);
        else inbox.push(m);
        wake?.();
      });
      worker.on("error", (e) => {
        exited = e;
        wake?.();
      });
      try {
        for (;;) {
          while (inbox.length === 0) {
            if (exited) throw exited;
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
          const m = inbox.shift() as WorkerMessage;
          if (m.type === "end") return;
          if (m.type === "fail") {
            if (m.name === "UsageError") throw new UsageError(m.message);
            if (m.name === "TraceParseError" || m.name === "BusError") throw new VgwError(m.message);
            throw new VgwError(`reading ${file}: ${m.message}`);
          }
          if (m.type !== "frames") continue;
          worker.postMessage("ack");
          yield* unpackSlices(m.batch, SLICE);
        }
      } finally {
        await worker.terminate();
      }
    },
  };
}
