/**
 * Worker thread of read-ahead.ts: reads and parses a trace with host/trace, packs each batch into one transferable
 * buffer (so handing it over costs the replay thread nothing), and stays at most MAX_IN_FLIGHT buffers ahead.
 * Record layout in frame/packed.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openTraceReader } from "../trace";
import { packFrames } from "../../frame/packed";
import type { WorkerMessage } from "./read-ahead";

const MAX_IN_FLIGHT = 8;

async function run(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const { path } = workerData as { path: string };
  let inFlight = 0;
  let wake: (() => void) | undefined;
  port.on("message", () => {
    inFlight--;
    wake?.();
  });
  try {
    const reader = openTraceReader(path, { onError: (e) => port.postMessage({ type: "bad", message: e.message } satisfies WorkerMessage) });
    for await (const batch of reader) {
      if (batch.length === 0) continue;
      while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (wake = r));
      const packed = packFrames(batch);
      inFlight++;
      port.postMessage({ type: "frames", batch: packed } satisfies WorkerMessage, [packed.buffer]);
    }
    port.postMessage({ type: "end" } satisfies WorkerMessage);
  } catch (e) {
    port.postMessage({ type: "fail", message: e instanceof Error ? e.message : String(e), name: e instanceof Error ? e.name : "Error" } satisfies WorkerMessage);
  }
}

void run();
