/**
 * Trace frames for the replay scheduler, read and parsed on a worker thread. Parsing a trace chunk takes milliseconds
 * (measured: up to 11 ms per batch of ~800 candump lines, file I/O included), and on the replay thread that time would
 * land on the frames due meanwhile. Here the replay thread only unpacks small slices of ready buffers (64 frames at a
 * time, tens of microseconds), so its waits stay sub-millisecond.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import { makeFrame, type Frame } from "../../frame/frame";
import { UsageError, VgwError } from "../../frame/errors";
import { FLAG, HEADER, NO_BUS, type WorkerMessage } from "./read-ahead-format";

const SLICE = 64;

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
      const buses: string[] = [];
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
          buses.push(...m.newBuses);
          worker.postMessage("ack");
          const view = new DataView(m.buffer);
          const bytes = new Uint8Array(m.buffer);
          let o = 0;
          for (let done = 0; done < m.count; ) {
            const n = Math.min(SLICE, m.count - done);
            const slice: Frame[] = new Array(n);
            for (let i = 0; i < n; i++) {
              const t = view.getFloat64(o, true);
              const flags = bytes[o + 12];
              const len = bytes[o + 13];
              const rtr = (flags & FLAG.rtr) !== 0;
              slice[i] = makeFrame({
                id: view.getUint32(o + 8, true),
                ext: (flags & FLAG.ext) !== 0,
                rtr,
                fd: (flags & FLAG.fd) !== 0,
                brs: (flags & FLAG.brs) !== 0,
                esi: (flags & FLAG.esi) !== 0,
                err: (flags & FLAG.err) !== 0,
                data: bytes.slice(o + HEADER, o + HEADER + len),
                dlc: rtr ? bytes[o + 14] : undefined,
                t: Number.isNaN(t) ? undefined : t,
                bus: bytes[o + 15] === NO_BUS ? undefined : buses[bytes[o + 15]],
              });
              o += HEADER + len;
            }
            done += n;
            yield slice;
          }
        }
      } finally {
        await worker.terminate();
      }
    },
  };
}
