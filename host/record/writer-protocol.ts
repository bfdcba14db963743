/** Messages between the receive thread (pipeline.ts) and the writer thread (writer-worker.ts). */
import type { PackedBatch } from "../../frame/packed";
import type { FileSummary, RotationOptions } from "./rotating-writer";

/** workerData of the writer thread. */
export interface WriterConfig extends RotationOptions {
  output: string;
}

export type ToWriter = { type: "frames"; batch: PackedBatch } | { type: "close" };

export type FromWriter =
  /** The first file is open: capture may start. */
  | { type: "ready" }
  /** A batch of this many frames was handed to the trace writer (the receive thread's in-flight count goes down). */
  | { type: "written"; count: number }
  /** Every file is closed. */
  | { type: "closed"; files: FileSummary[] }
  /** Opening, writing or closing failed; the writer thread does nothing more. `name` is the error's class. */
  | { type: "fail"; name: string; message: string };
