/**
 * OBD-II PIDs per second: vgw's tester polling the simulated ECU over ISO-TP, printed beside WiCAN's published
 * figure (48-60 PIDs/s through its gateway, from its documentation; no WiCAN can run here, so it is a reference
 * figure, not a same-run measurement).
 *
 *   node dist/bench/obd.js [--seconds 5] [--bus virtual:obd-bench] [--external]
 *
 * Without --external the ECU runs in this process on the bus (a `virtual:` bus only works so); with --external it
 * must already run in another process (`vgw diag ecu -i vcan0`, as the VM benchmark does). Three ways of polling:
 *   functional, 1 PID per request, waiting for the first answer (an ELM327's "010C1")
 *   physical (0x7E0), 1 PID per request
 *   physical, 6 PIDs per request (ISO 15765-4's maximum; a multi-frame answer)
 * Prints one JSON line per mode: requests, PIDs, PIDs/s, and the process's CPU time per PID.
 */
import { openObdChannels, startEcus, type RunningEcus } from "../host/diag/bus-links";
import { loadEcuConfig } from "../host/diag/ecu-sim";
import { ObdClient } from "../host/diag/obd";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}

const WICAN = "WiCAN: 48-60 PIDs/s through its gateway (its documentation)";

async function poll(bus: string, mode: string, seconds: number): Promise<Record<string, unknown>> {
  const physical = mode !== "functional";
  const channels = await openObdChannels(bus, { ext: false, physical: physical ? 0x7e0 : undefined, responseIds: physical ? undefined : [0x7e8] });
  const obd = new ObdClient(channels, { timeoutMs: 1000, expect: 1 });
  const pids = mode === "physical-6" ? [0x0c, 0x0d, 0x05, 0x04, 0x11, 0x0f] : [0x0c];
  try {
    // Warm-up: the first requests pay for lazy compilation.
    for (let i = 0; i < 20; i++) await obd.readPids(pids);
    let requests = 0;
    let values = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      const r = await obd.readPids(pids);
      requests++;
      values += r.answers[0]?.value.length ?? 0;
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    if (values !== requests * pids.length) throw new Error(`${mode}: ${values} values for ${requests} requests of ${pids.length} PIDs`);
    return {
      mode,
      bus,
      requests,
      pids: values,
      pidsPerSecond: Math.round(values / wall),
      requestsPerSecond: Math.round(requests / wall),
      cpuMsPerRequest: Number(((cpuS / requests) * 1000).toFixed(3)),
      late: obd.counters.late,
      reference: WICAN,
    };
  } finally {
    obd.close();
    await channels.close();
  }
}

async function main(): Promise<void> {
  const seconds = Number(arg("--seconds", "5"));
  const bus = arg("--bus", "virtual:obd-bench");
  const external = process.argv.includes("--external");
  let ecus: RunningEcus | undefined;
  if (!external) ecus = await startEcus(bus, loadEcuConfig());
  try {
    for (const mode of ["functional", "physical", "physical-6"]) {
      process.stdout.write(JSON.stringify(await poll(bus, mode, seconds)) + "\n");
    }
  } finally {
    await ecus?.close();
  }
}

main().catch((e) => {
  process.stderr.write(`bench/obd: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});
