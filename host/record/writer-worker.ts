/**
 * The writer thread of a recording (pipeline.ts): unpacks each batch the receive thread hands over, encodes it with
 * host/trace's writer and writes it, rotating files as configured. Everything here runs one step at a time, in
 * arrival order (one promise chain), so a rotation never interleaves with a write.
 */
import { parentPort, workerData } from "node:worker_threads";
import { unpackFrames } from "../../frame/packed";
import { RotatingTraceWriter } from "./rotating-writer";
import { lowerThisThread, WRITER_NICE } from "./thread-priority";
import type { FromWriter, ToWriter, WriterConfig } from "./writer-protocol";

/** How often a quiet recording checks its time rotation. */
const ROTATION_CHECK_MS = 50;
function run(): void {
  const port = parentPort;
  if (!port) return;
  const send = (m: FromWriter) => port.postMessage(m);
  const config = workerData as WriterConfig;
  lowerThisThread(WRITER_NICE);
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    send({ type: "fail", name: e instanceof Error ? e.name : "Error", message: e instanceof Error ? e.message : String(e) });
  };
  let out: RotatingTraceWriter;
  try {
    out = new RotatingTraceWriter(config.output, config);
  } catch (e) {
    fail(e);
    return;
  }
  let chain: Promise<void> = Promise.resolve();
  const step = (work: () => Promise<void>) => {
    chain = chain.then(() => (failed ? undefined : work())).catch(fail);
  };
  const ticker = config.rotateTime !== undefined ? setInterval(() => step(() => out.rotateIfDue()), ROTATION_CHECK_MS) : undefined;
  port.on("message", (m: ToWriter) => {
    if (m.type === "frames") {
      const batch = m.batch;
      step(async () => {
        await out.write(unpackFrames(batch));
        send({ type: "written", count: batch.count });
      });
    } else {
      if (ticker) clearInterval(ticker);
      step(async () => send({ type: "closed", files: await out.close() }));
    }
  });
  send({ type: "ready" });
}

run();
