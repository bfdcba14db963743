/**
 * The recording pipeline: the receiving thread only hands packed batches (frame/packed.ts) to a writer thread
 * (writer-worker.ts), which encodes, writes and rotates the trace files. A SocketCAN bus delivers its frames packed
 * already (`addPacked`); other buses' frames are packed here (`add`). Why a writer thread: encoding a batch on the
 * receiving thread held it up long enough for the buses' buffers to fill.
 *
 *   const out = await TraceWriterThread.start({ output: "drive.log" });   // the first file is open, or this threw
 *   out.add(frame) ...                                                     // cheap: a few stores into a buffer
 *   const files = await out.close();                                      // everything written and closed
 *
 * Nothing is dropped silently: frames beyond MAX_IN_FLIGHT waiting for the writer are counted in `dropped`. A failure
 * of the writer thread (disk full, folder gone) stops it, is passed to `onFail`, and is thrown by `close()`.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import type { Frame } from "../../frame/frame";
import { fileReason, UsageError, VgwError } from "../../frame/errors";
import { FramePacker, type PackedBatch } from "../../frame/packed";
import type { FileSummary } from "./rotating-writer";
import type { FromWriter, ToWriter, WriterConfig } from "./writer-protocol";

/**
 * A batch is handed over once it has this many frames (or on `flush()`, which the caller's timer calls for a quiet
 * bus). One hand-over costs a message; at 256 frames that is noise next to packing them.
 */
export const BATCH_FRAMES = 256;
/** Frames handed over but not yet written that the receive thread keeps before it drops (about 24-80 MB). */
export const MAX_IN_FLIGHT = 1 << 20;

export class TraceWriterThread {
  private readonly packer = new FramePacker();
  /** The writer thread has opened the first file. */
  private ready = false;
  /** Frames handed over and not yet written. */
  private inFlight = 0;
  /** Frames the writer thread has encoded and written (acknowledged). */
  private written = 0;
  private failure: Error | undefined;
  private closedFiles: FileSummary[] | undefined;
  private settle: (() => void) | undefined;
  /** Frames dropped because the writer thread was MAX_IN_FLIGHT frames behind (or had failed). */
  dropped = 0;
  /** Called once when the writer thread fails (the caller stops receiving). */
  onFail: (e: Error) => void = () => undefined;
  /** Called once when the output is stdout and its reader went away (`| head`): the caller stops receiving. */
  onOutputGone: () => void = () => undefined;
  /** True once stdout's reader went away; what the writer writes after that is discarded. */
  outputGone = false;
  /**
   * A worker's stdout is a stream into this thread's process.stdout, so a closed pipe (EPIPE) surfaces here, not in
   * the writer thread: it means "enough", as for candump | head; any other error is a write failure.
   */
  private readonly onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") {
      if (!this.outputGone) {
        this.outputGone = true;
        this.settle?.();
        this.onOutputGone();
      }
    } else this.fail(new VgwError(`cannot write trace <stdout>: ${fileReason(e)}`, { cause: e }));
  };

  private constructor(
    private readonly worker: Worker,
    toStdout: boolean,
  ) {
    if (toStdout) process.stdout.on("error", this.onStdoutError);
    worker.on("message", (m: FromWriter) => {
      if (m.type === "ready") this.ready = true;
      else if (m.type === "written") {
        this.inFlight -= m.count;
        this.written += m.count;
      } else if (m.type === "closed") this.closedFiles = m.files;
      else if (m.type === "fail") this.fail(m.name === "UsageError" ? new UsageError(m.message) : new VgwError(m.message));
      this.settle?.();
    });
    worker.on("error", (e) => this.fail(new VgwError(`the trace writer thread failed: ${e.message}`, { cause: e })));
    worker.on("exit", (code) => this.fail(new VgwError(`the trace writer thread stopped unexpectedly (exit code ${code})`)));
  }

  /** Starts the writer thread and waits until it has opened the first file (a bad path fails here, before capture). */
  static async start(config: WriterConfig): Promise<TraceWriterThread> {
    const t = new TraceWriterThread(new Worker(path.join(__dirname, "writer-worker.js"), { workerData: config }), config.output === "-");
    await t.until(() => t.ready);
    return t;
  }

  private fail(e: Error): void {
    if (this.failure || this.closedFiles) return;
    this.failure = e;
    this.settle?.();
    this.onFail(e);
  }

  /** Resolves when `done()` holds (checked at each message of the writer); rejects with the writer's failure. */
  private async until(done: () => boolean): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (done()) return;
      await new Promise<void>((resolve) => {
        this.settle = () => {
          this.settle = undefined;
          resolve();
        };
      });
    }
  }

  /** Packs one frame for the writer; counts it in `dropped` when the writer is too far behind or has failed. */
  add(frame: Frame): void {
    if (this.failure || this.inFlight + this.packer.count >= MAX_IN_FLIGHT) {
      this.dropped++;
      return;
    }
    this.packer.add(frame);
    if (this.packer.count >= BATCH_FRAMES) this.flush();
  }

  /**
   * Hands over a batch packed elsewhere (a SocketCAN bus's received chunk) as it is, after what `add` packed so far,
   * so frames stay in arrival order. Counts the whole batch in `dropped` when the writer is too far behind or failed.
   */
  addPacked(batch: PackedBatch): void {
    if (this.failure || this.inFlight + this.packer.count + batch.count > MAX_IN_FLIGHT) {
      this.dropped += batch.count;
      return;
    }
    this.flush();
    this.inFlight += batch.count;
    this.worker.postMessage({ type: "frames", batch } satisfies ToWriter, [batch.buffer]);
  }

  /** Hands over what is packed so far. */
  flush(): void {
    if (this.packer.count === 0 || this.failure) return;
    const batch = this.packer.take();
    this.inFlight += batch.count;
    this.worker.postMessage({ type: "frames", batch } satisfies ToWriter, [batch.buffer]);
  }

  /** Hands over the rest, waits until every file is written and closed, and ends the thread. Throws its failure. */
  async close(): Promise<FileSummary[]> {
    try {
      this.flush();
      if (!this.failure) this.worker.postMessage({ type: "close" } satisfies ToWriter);
      // Once stdout's reader is gone the writer may wait forever for the pipe to drain: it is ended, not awaited.
      await this.until(() => this.closedFiles !== undefined || this.outputGone);
      return this.closedFiles ?? [{ path: "-", frames: this.written, dropped: 0 }];
    } finally {
      this.worker.removeAllListeners("exit");
      await this.worker.terminate();
      // The stdout error handler stays: the writer's last output may still be on its way to a reader that goes
      // away (`| head`), and an unhandled EPIPE would end the process before the summary.
    }
  }
}
