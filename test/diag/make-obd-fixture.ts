/**
 * Writes test/fixtures/diag/obd-session.log, the recorded trace the --isotp / --obd tests of `vgw decode` read:
 * `vgw diag obd` and `vgw diag uds` against the simulated ECUs (the `vgw diag ecu` defaults) on a `virtual:` bus, every
 * frame on the wire as candump -L writes it, then two broken conversations written by hand after them: a consecutive
 * frame with the wrong sequence number, and a message whose sender stops (N_Cr runs out before the next frame).
 *   node dist/test/diag/make-obd-fixture.js
 */
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { main } from "../../cli/main";
import { log } from "../../host/log";
import { openBus } from "../../host/bus";
import { startEcus } from "../../host/diag/bus-links";
import { loadEcuConfig } from "../../host/diag/ecu-sim";
import { formatFrame, parseFrame, type Frame } from "../../frame/frame";

const OUT = path.resolve(__dirname, "../../../test/fixtures/diag/obd-session.log");

async function record(): Promise<void> {
  const bus = "virtual:obd-fixture";
  const ecus = await startEcus(bus, loadEcuConfig());
  const spy = await openBus(bus);
  const frames: Frame[] = [];
  const reading = (async () => {
    for await (const f of spy) frames.push(f);
  })();
  log.sink = (l) => process.stderr.write(`${l}\n`);
  const write = process.stdout.write;
  process.stdout.write = ((_chunk: unknown, cb?: unknown) => {
    if (typeof cb === "function") (cb as () => void)();
    return true;
  }) as typeof process.stdout.write;
  try {
    for (const args of [
      ["obd", "read", "0C", "0D", "05"],
      ["obd", "vin"],
      ["obd", "dtc"],
      ["uds", "read-did", "F190"],
    ]) {
      process.stderr.write(`vgw diag ${args.join(" ")}\n`);
      if ((await main(["node", "vgw", "diag", "-i", bus, ...args])) !== 0) throw new Error(`vgw diag ${args.join(" ")} failed`);
    }
  } finally {
    process.stdout.write = write;
  }
  await ecus.close();
  await spy.close();
  await reading;
  const t0 = frames[0].t!;
  const lines = frames.map((f) => `(${(f.t! - t0 + 1000).toFixed(6)}) can0 ${formatFrame(f)}`);
  // Broken on purpose: a 20-byte answer whose third frame skips sequence number 2, then one that stops after its
  // first consecutive frame (the next frame of 7E8 comes 3 s later, past N_Cr), then a good single frame.
  let t = 1010;
  const at = (dt: number, frame: string) => lines.push(`(${(t += dt).toFixed(6)}) can0 ${formatFrame(parseFrame(frame))}`);
  at(0, "7E0#0322F19000000000");
  at(0.01, "7E8#101462F190574442");
  at(0.001, "7E0#3000000000000000");
  at(0.001, "7E8#2130393132333435");
  at(0.001, "7E8#2336373839303132");
  at(1, "7E0#0322F19000000000");
  at(0.01, "7E8#101462F190574442");
  at(0.001, "7E0#3000000000000000");
  at(0.001, "7E8#2130393132333435");
  at(3, "7E8#03410D3C00000000");
  writeFileSync(OUT, lines.join("\n") + "\n");
  process.stderr.write(`${OUT}: ${lines.length} frames\n`);
}

record().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
