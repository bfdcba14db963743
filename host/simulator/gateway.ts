/**
 * A simulated gateway, ready to use: the firmware built and running in the DeviceScript VM, pointed at a broker,
 * with the host's CanBus server bound and the firmware's handshake (`enabled = true`) done.
 *
 *   const gw = await startSimulatedGateway({ broker: "mqtt://127.0.0.1:41883", device: "gw1" })
 *   await gw.bus.sendMany(frames)      // frames "on the CAN bus", received by the firmware
 *   ...
 *   await gw.stop()                   // VM, devtools and the bus, also on failure
 *
 * The demo, the end-to-end tests, the benchmark, the `sim` bus spec and the HIL harness all start gateways here.
 */
import { log } from "../log";
import { BusError } from "../../frame/errors";
import { SimBus } from "./sim-bus";
import { CanBusServer } from "./canbus-server";
import { buildFirmware, startSimulator, FIRMWARE_DIR, type FirmwareBuild, type Simulator } from "./simulator";
import { parseBrokerUrl } from "../gateway/broker-url";

export interface GatewayOptions {
  /** Broker the firmware connects to (`mqtt://`, or `mqtts://...?ca=FILE` for TLS); default: the firmware's own settings. */
  broker?: string;
  /** Device id (setting `deviceId`); default: the firmware's. */
  device?: string;
  /** Topic prefix (setting `topicPrefix`); default: the firmware's. */
  prefix?: string;
  /** Further firmware settings, by their setting keys (docs/firmware.md), e.g. `{ batchWindow: 50, canMode: 1 }`. */
  settings?: Record<string, unknown>;
  /** Firmware project directory; default firmware/ of this repository. */
  firmwareDir?: string;
  /** Reuse an existing build instead of running `devs build` (saves ~2 s per start in test suites). */
  build?: FirmwareBuild;
  /** Every line the firmware prints. */
  onFirmwareLine?: (line: string) => void;
  /** Bound for the whole start, default 60 s. */
  timeoutMs?: number;
}

export interface SimulatedGateway {
  readonly sim: Simulator;
  readonly server: CanBusServer;
  /** The CAN side as a Bus: send = frames received by the gateway; iterate = frames it transmitted. */
  readonly bus: SimBus;
  readonly build: FirmwareBuild;
  /** Restarts the firmware (a new boot id) with changed settings; the VM and the bus stay up. */
  reboot(settings?: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

/** Maps a broker URL to the firmware's setting keys (docs/firmware.md). */
export function brokerSettings(url: string): Record<string, unknown> {
  const b = parseBrokerUrl(url);
  const s: Record<string, unknown> = { mqttHost: b.host, mqttPort: b.port, mqttTls: b.tls };
  if (b.username !== undefined) s.mqttUser = b.username;
  if (b.password !== undefined) s.mqttPass = b.password;
  return s;
}

let cachedBuild: FirmwareBuild | undefined;

/** Builds the firmware once per process (the bytecode does not change while tests run). */
export async function firmwareBuildOnce(dir = FIRMWARE_DIR): Promise<FirmwareBuild> {
  if (!cachedBuild || cachedBuild.dir !== dir) cachedBuild = await buildFirmware(dir);
  return cachedBuild;
}

export async function startSimulatedGateway(options: GatewayOptions = {}): Promise<SimulatedGateway> {
  const build = options.build ?? (options.firmwareDir ? await buildFirmware(options.firmwareDir) : await firmwareBuildOnce());
  const settings: Record<string, unknown> = { ...(options.settings ?? {}) };
  if (options.broker) Object.assign(settings, brokerSettings(options.broker));
  if (options.device) settings.deviceId = options.device;
  if (options.prefix) settings.topicPrefix = options.prefix;
  const server = new CanBusServer(build.services);
  const timeoutMs = options.timeoutMs ?? 60_000;
  // A program that panics stops; waiting for its handshake would only end at the timeout. Watch for the VM's
  // "stop program" and fail at once with what the firmware printed.
  const printed: string[] = [];
  let fault: (reason: string) => void = () => {};
  const faulted = new Promise<never>((_, reject) => (fault = (reason) => reject(new BusError(`the firmware stopped: ${reason}\n  fw: ${printed.slice(-15).join("\n  fw: ")}`))));
  faulted.catch(() => undefined);
  // The VM's TLS sockets are Node's: a private CA (tests) is trusted through NODE_EXTRA_CA_CERTS, so the
  // firmware's TLS connection verifies the broker's certificate for real.
  const caFile = options.broker ? parseBrokerUrl(options.broker).caFile : undefined;
  const sim = await startSimulator({
    build,
    settings,
    vmEnv: caFile ? { NODE_EXTRA_CA_CERTS: caFile } : undefined,
    servers: [{ name: "canbus-sim", server }],
    onFirmwareLine: (line) => {
      printed.push(line);
      if (printed.length > 50) printed.shift();
      if (/^stop program/.test(line)) fault(printed.find((l) => /Exception|panic/i.test(l)) ?? line);
      options.onFirmwareLine?.(line);
    },
    timeoutMs,
  });
  void sim.vm.exited.then((code) => fault(`the VM exited (${code})`));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await sim.stop();
  };
  const bus = new SimBus(server, "sim", stop);
  try {
    await Promise.race([handshake(server, sim, timeoutMs), faulted]);
  } catch (e) {
    await stop();
    throw e;
  }
  log.debug("gateway: firmware bound to the CanBus server");
  return {
    sim,
    server,
    bus,
    build,
    async reboot(more) {
      server.enabled.setValues([false]);
      await sim.restartProgram({ ...settings, ...(more ?? {}) });
      await handshake(server, sim, timeoutMs);
    },
    stop,
  };
}

async function handshake(server: CanBusServer, sim: Simulator, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      server.waitEnabled(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BusError(`the firmware did not enable the CanBus controller within ${timeoutMs} ms\n  vm: ${sim.vm.recent.slice(-40).join("\n  vm: ")}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

