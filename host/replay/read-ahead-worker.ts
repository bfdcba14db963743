/**
 * Worker thread of read-ahead.ts: reads and parses a trace with host/trace, packs each batch into one transferable
 * buffer (so handing it over costs the replay thread nothing), and stays at most MAX_IN_FLIGHT buffers ahead.
 * Record layout in read-ahead-format.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openTraceReader } from "../trace";
import type { Frame } from "../../frame/frame";
import { FLAG, HEADER, NO_BUS, type WorkerMessage } from "./read-ahead-format";

const MAX_IN_FLIGHT = 8;

function pack(batch: Frame[], busIndex: Map<string, number>, newBuses: string[]): ArrayBuffer {
  let size = 0;
  for (const f of batch) size += HEADER + f.data.length;
  const buffer = new ArrayBuffer(size);
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  let o = 0;
  for (const f of batch) {
    let bus = NO_BUS;
    if (f.bus !== undefined) {
      let i = busIndex.get(f.bus);
      if (i === undefined) {
        i = busIndex.size;
        busIndex.set(f.bus, i);
        newBuses.push(f.bus);
      }
      bus = i;
    }
    view.setFloat64(o, f.t ?? NaN, true);
    view.setUint32(o + 8, f.id, true);
    bytes[o + 12] = (f.ext ? FLAG.ext : 0) | (f.rtr ? FLAG.rtr : 0) | (f.fd ? FLAG.fd : 0) | (f.brs ? FLAG.brs : 0) | (f.esi ? FLAG.esi : 0) | (f.err ? FLAG.err : 0);
    bytes[o + 13] = f.data.length;
    bytes[o + 14] = f.dlc ?? 0;
    bytes[o + 15] = bus;
    bytes.set(f.data, o + HEADER);
    o += HEADER + f.data.length;
  }
  return buffer;
}

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
  const busIndex = new Map<string, number>();
  try {
    const reader = openTraceReader(path, { onError: (e) => port.postMessage({ type: "bad", message: e.message } satisfies WorkerMessage) });
    for await (const batch of reader) {
      if (batch.length === 0) continue;
      while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (wake = r));
      const newBuses: string[] = [];
      const buffer = pack(batch, busIndex, newBuses);
      inFlight++;
      port.postMessage({ type: "frames", buffer, count: batch.length, newBuses } satisfies WorkerMessage, [buffer]);
    }
    port.postMessage({ type: "end" } satisfies WorkerMessage);
  } catch (e) {
    port.postMessage({ type: "fail", message: e instanceof Error ? e.message : String(e), name: e instanceof Error ? e.name : "Error" } satisfies WorkerMessage);
  }
}

void run();
