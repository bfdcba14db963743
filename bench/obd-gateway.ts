/**
 * OBD-II PIDs per second read through the gateway (`node dist/bench/obd-gateway.js`, under
 * `flock /tmp/vgw-devtools.lock`): the firmware's bytecode in the DeviceScript VM, a broker (aedes, or
 * `--broker mosquitto`), the simulated ECU (host/diag/ecu-sim.ts) on the simulator's CAN wire. Two ways:
 *   vgw diag     the host's OBD-II tester over the gateway's `diag` command (host/diag/gateway-links.ts), one request
 *                at a time, 1 PID and 6 PIDs per request: each PID costs a broker round trip plus the CAN exchange
 *   poll list    the gateway polls by itself (`poll` command, 8 entries due every 10 ms) and publishes the answers
 *                on P/diag in batches: no round trip per PID
 * Both are bounded by the gateway's diagRate (at most 100 requests/s, set to 100 here). Printed beside WiCAN's
 * published 48-60 PIDs/s (its documentation; no WiCAN runs here, so a reference figure, not a same-run one).
 *
 *   node dist/bench/obd-gateway.js [--seconds 10] [--broker aedes|mosquitto]
 */
import { loadavg } from "node:os";
import { openBroker, type HilBroker } from "../host/gateway/broker";
import { connectBroker, parseBrokerUrl } from "../host/gateway/broker-url";
import { GatewayReceiver } from "../host/gateway/receiver";
import { encodeCommand, gatewayTopics, type DiagBatch, type GatewayStatus } from "../host/gateway/uplink";
import { firmwareBuildOnce, startSimulatedGateway } from "../host/simulator/gateway";
import { startEcus } from "../host/diag/bus-links";
import { loadEcuConfig } from "../host/diag/ecu-sim";
import { openGatewayObdChannels } from "../host/diag/gateway-links";
import { ObdClient } from "../host/diag/obd";
import type { BusOptions } from "../host/bus";
import type { Frame } from "../frame/frame";
import { WireTap } from "../hil/ecu";

const WICAN = "WiCAN: 48-60 PIDs/s (its documentation)";
const DEVICE = "obdbench";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}

const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");

async function main(): Promise<void> {
  const seconds = Number(arg("--seconds", "10"));
  const kind = arg("--broker", "aedes") as "aedes" | "mosquitto";
  const broker: HilBroker = await openBroker({ kind });
  const client = await connectBroker(parseBrokerUrl(broker.url));
  const receiver = await GatewayReceiver.attach(client, { device: DEVICE, expectStart: true });
  let status: GatewayStatus | undefined;
  receiver.on("status", (_d, s) => (status = s));
  const build = await firmwareBuildOnce();
  const gw = await startSimulatedGateway({
    broker: broker.url,
    device: DEVICE,
    build,
    settings: {
      canMode: "normal",
      insecure: true,
      diagAllow: [
        [0x7df, 0x7e8, 0x7e0],
        [0x7e0, 0x7e8],
      ],
      diagRate: 100,
    },
  });
  const taps = new Set<WireTap>();
  const previous = gw.server.onTransmit;
  gw.server.onTransmit = (frames: Frame[]) => {
    previous(frames);
    for (const f of frames) for (const t of taps) t.hear(f);
  };
  const put = (frame: Frame): void => void gw.bus.send(frame);
  const ecus = await startEcus(async (options: BusOptions) => new WireTap(options, put, taps), loadEcuConfig());
  const out = (line: string): void => void process.stdout.write(line + "\n");
  try {
    const t0 = Date.now();
    while (!status?.online) {
      if (Date.now() - t0 > 60_000) throw new Error("the gateway did not publish an online status within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    out(`OBD-II through the gateway: firmware in the DeviceScript VM, ${kind}, simulated ECU; ${seconds} s per mode; load average ${load()}`);

    // 1. vgw diag: the tester over the diag command, one request at a time
    const channels = await openGatewayObdChannels(`${broker.url}/${DEVICE}`, { ext: false, requestId: 0x7df, responseId: 0x7e8, flowControlId: 0x7e0 });
    const obd = new ObdClient(channels, { timeoutMs: 1000, expect: 1 });
    try {
      for (const pids of [[0x0c], [0x0c, 0x0d, 0x05, 0x04, 0x11, 0x0f]]) {
        for (let i = 0; i < 5; i++) await obd.readPids(pids);
        let requests = 0;
        let values = 0;
        const start = performance.now();
        const end = start + seconds * 1000;
        while (performance.now() < end) {
          const r = await obd.readPids(pids);
          requests++;
          values += r.answers[0]?.value.length ?? 0;
        }
        const wall = (performance.now() - start) / 1000;
        out(
          JSON.stringify({
            mode: `vgw diag, ${pids.length} PID(s)/request`,
            requests,
            pids: values,
            pidsPerSecond: Math.round(values / wall),
            requestsPerSecond: Math.round(requests / wall),
            msPerRequest: Number(((wall * 1000) / requests).toFixed(1)),
            load: load(),
            reference: WICAN,
          }),
        );
      }
    } finally {
      obd.close();
      await channels.close();
    }

    // 2. the poll list: the gateway polls, answers come on P/diag
    let answers = 0;
    let errors = 0;
    let counting = false;
    receiver.on("diag", (_d: string, b: DiagBatch) => {
      if (!counting) return;
      for (const e of b.entries) {
        if (e.data) answers++;
        else errors++;
      }
    });
    const cmd = async (c: Record<string, unknown>): Promise<void> => {
      const st = status!;
      const payload = encodeCommand({ ...(c as { op: "poll" }), id: (Date.now() + 1_000_000) >>> 0, boot: st.boot!, exp: st.up! + 25_000 });
      await client.publishAsync(gatewayTopics("vgw", DEVICE).cmd, Buffer.from(payload), { qos: 1 });
    };
    const list = [0x0c, 0x0d, 0x05, 0x04, 0x11, 0x0f, 0x10, 0x2f].map((pid) => [0x7df, 0x7e8, 10, Uint8Array.of(0x01, pid)] as [number, number, number, Uint8Array]);
    // a fresh status first: the uptime the poll command's exp is computed from
    await client.publishAsync(gatewayTopics("vgw", DEVICE).cmd, Buffer.from(encodeCommand({ op: "status" })), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    await cmd({ op: "poll", on: true, list });
    await new Promise((r) => setTimeout(r, 2000));
    counting = true;
    const start = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    counting = false;
    const wall = (performance.now() - start) / 1000;
    await cmd({ op: "poll", on: false });
    out(JSON.stringify({ mode: "poll list, 8 PIDs every 10 ms (diagRate 100)", pids: answers, errors, pidsPerSecond: Math.round(answers / wall), load: load(), reference: WICAN }));
  } finally {
    await ecus.close();
    await gw.stop();
    await receiver.detach();
    await client.endAsync();
    await broker.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`obd-gateway: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
