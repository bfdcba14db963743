/**
 * The simulator runner: the gateway firmware's real bytecode running in the DeviceScript VM, on a devtools bus that
 * this process also joins (with jacdac-ts) to host the CanBus service for it.
 *
 *   buildFirmware()  `devs build` -> .devicescript/bin/bytecode.devs + services.json
 *   startSimulator() devtools server (fixed ports 8081-8083) -> our jacdac-ts bus -> VM process -> deploy bytecode and
 *                    settings (ours, so a test can point the firmware at its own broker port) -> program running
 *   sim.stop()       closes the bus, kills both process groups; also runs when Node exits
 *
 * Why the deploy is done here and not by `devs devtools src/main.ts`: devtools deploys only once, when it starts, and
 * only to a VM that is already connected, and it takes settings from the project's `.env.*` files. Deploying over the
 * bus ourselves removes the start-order race and lets each run choose its settings.
 */
import { readFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { canConnect } from "../tcp";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BusError } from "../../frame/errors";
import { log } from "../log";
import { startChild, type Child } from "../process";
import { jd } from "./jacdac";
import { acquireDevtoolsLock, type DevtoolsLock } from "./devtools-lock";

/** Default firmware project: `firmware/` of this repository, or the directory named by VGW_FIRMWARE_DIR. */
export const FIRMWARE_DIR = process.env.VGW_FIRMWARE_DIR ? resolve(process.env.VGW_FIRMWARE_DIR) : resolve(__dirname, "../../..", "firmware");
export const DEVTOOLS_PORTS = [8081, 8082, 8083] as const;
const DEVTOOLS_URL = "ws://127.0.0.1:8081";

export interface FirmwareBuild {
  dir: string;
  bytecode: Uint8Array;
  /** The service specifications `devs build` generated (ours included), for the jacdac-ts bus. */
  services: jdspec.ServiceSpec[];
}

function devsCli(): string {
  const pkg = require.resolve("@devicescript/cli/package.json");
  return join(pkg, "..", "built", "devicescript-cli.cjs");
}

/** Runs `devs build` in the firmware project; throws with the compiler's diagnostics when it fails. */
export async function buildFirmware(dir = FIRMWARE_DIR, entry = "src/main.ts", timeoutMs = 120_000): Promise<FirmwareBuild> {
  if (!existsSync(join(dir, entry))) throw new BusError(`no firmware at ${join(dir, entry)}`);
  const child = startChild(process.execPath, [devsCli(), "build", entry, "--quiet"], { name: "devs build", cwd: dir });
  const timer = setTimeout(() => void child.stop(), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new BusError(`firmware build failed (exit ${code}):\n  ${child.recent.slice(-20).join("\n  ")}`);
  }
  return readFirmwareBuild(dir);
}

/** Reads an existing build of the firmware project (after `devs build`). */
export function readFirmwareBuild(dir = FIRMWARE_DIR): FirmwareBuild {
  const bin = join(dir, ".devicescript", "bin", "bytecode.devs");
  const specs = join(dir, ".devicescript", "services.json");
  if (!existsSync(bin) || !existsSync(specs)) throw new BusError(`no firmware build in ${dir}`, "run: npx devs build (in firmware/)");
  return {
    dir,
    bytecode: new Uint8Array(readFileSync(bin)),
    services: JSON.parse(readFileSync(specs, "utf8")) as jdspec.ServiceSpec[],
  };
}

/**
 * The project's settings, as devs reads them: `.env.defaults`, then `.env.local` over it; `KEY=value` lines, the value
 * JSON-parsed when it parses (else the text). The deploy stores each as UTF-8 JSON text in the settings service.
 */
export function readEnvSettings(dir = FIRMWARE_DIR): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const file of [".env.defaults", ".env.local"]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
      if (/^\s*(#|$)/.test(line)) continue;
      const eq = line.indexOf("=");
      if (eq < 0) continue;
      const key = line.slice(0, eq).trim();
      const raw = line.slice(eq + 1).replace(/#.*$/, "").trim();
      if (!raw) continue;
      try {
        out[key] = JSON.parse(raw);
      } catch {
        out[key] = raw;
      }
    }
  }
  return out;
}

/** Throws a clear error when another devtools server (or anything else) holds the fixed ports. */
export async function assertDevtoolsPortsFree(): Promise<void> {
  for (const port of DEVTOOLS_PORTS) {
    await new Promise<void>((resolvePort, reject) => {
      const srv = createServer();
      srv.once("error", () =>
        reject(
          new BusError(
            `port ${port} is in use: another DeviceScript devtools server is running (ports 8081-8083 are fixed)`,
            "stop it, or run this under `flock /tmp/vgw-devtools.lock ...` so runs take turns",
          ),
        ),
      );
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolvePort()));
    });
  }
}

export interface SimulatorOptions {
  build: FirmwareBuild;
  /** Settings deployed with the program (merged over the project's `.env.defaults`/`.env.local`). */
  settings?: Record<string, unknown>;
  /** VM device id (hex, 16 digits); the firmware may derive its MQTT device id from it. */
  deviceId?: string;
  /** Jacdac servers to host on the bus before the VM starts (e.g. the CanBus server). */
  servers?: Array<{ name: string; server: InstanceType<typeof jd.JDServiceServer> }>;
  /** Every line the firmware prints (console.log in DeviceScript). */
  onFirmwareLine?: (line: string) => void;
  /** Extra environment of the VM process (e.g. NODE_EXTRA_CA_CERTS: the VM's TLS sockets are Node's). */
  vmEnv?: Record<string, string>;
  /** Upper bound for devtools start + VM start + deploy. */
  timeoutMs?: number;
  /** How long to wait for the devtools ports when a run that ignores the lock holds them; default 60 s. */
  portWaitMs?: number;
  /** How long to wait for another simulator run to finish (the devtools lock); default 15 min. */
  lockTimeoutMs?: number;
}

export interface Simulator {
  /** Our jacdac-ts bus on the devtools server. */
  readonly bus: InstanceType<typeof jd.JDBus>;
  readonly devtools: Child;
  readonly vm: Child;
  /** Redeploys settings and restarts the program (the VM keeps running). */
  restartProgram(settings?: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

async function withTimeout<T>(what: string, ms: number, p: Promise<T>, context: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BusError(`simulator: timed out after ${ms} ms waiting for ${what}${context()}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(cond: () => boolean, stepMs = 50): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, stepMs));
}

/** Takes the devtools lock, then waits (bounded) for the ports in case a run that ignores the lock holds them. */
async function takeTurn(options: SimulatorOptions): Promise<DevtoolsLock> {
  const lock = await acquireDevtoolsLock(options.lockTimeoutMs);
  try {
    const portsDeadline = Date.now() + (options.portWaitMs ?? 60_000);
    for (let attempt = 0; ; attempt++) {
      try {
        await assertDevtoolsPortsFree();
        return lock;
      } catch (e) {
        if (Date.now() > portsDeadline) throw e;
        if (attempt === 0) log.info("devtools ports 8081-8083 are busy (a run that does not take the lock?); waiting for them...");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Deploys as devtools does, but with the run's settings: program stopped, bytecode through the DeviceScript manager
 * (skipped on a restart), settings service cleared and written (each value as UTF-8 JSON text), program started.
 */
async function deployProgram(manager: InstanceType<typeof jd.JDService>, settings: Record<string, unknown>, bytecode: Uint8Array | undefined): Promise<void> {
  const running = manager.register(jd.DeviceScriptManagerReg.Running);
  const autostart = manager.register(jd.DeviceScriptManagerReg.Autostart);
  await autostart.sendSetBoolAsync(false);
  await running.sendSetBoolAsync(false);
  if (bytecode) await jd.OutPipe.sendBytes(manager, jd.DeviceScriptManagerCmd.DeployBytecode, bytecode);
  const settingsService = manager.device.services({ serviceClass: jd.SRV_SETTINGS })[0];
  if (!settingsService) throw new BusError("the VM has no settings service");
  const client = new jd.SettingsClient(settingsService);
  await client.clear();
  for (const [key, value] of Object.entries(settings)) {
    if (key.length > 13) throw new BusError(`setting '${key}' is longer than 13 characters`);
    await client.setValue(key, new TextEncoder().encode(JSON.stringify(value)));
  }
  await running.sendSetBoolAsync(true);
}

/** Starts devtools, the VM and our bus, deploys the firmware with its settings, and resolves once it runs. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  // Runs take turns (fixed ports); waiting for the lock does not count against the start timeout.
  const lock = await takeTurn(options);
  // The start's time bound begins once it is our turn.
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1000, deadline - Date.now());
  // The VM keeps its "flash" in the working directory: give it a scratch one, never the project.
  const vmDir = mkdtempSync(join(tmpdir(), "vgw-vm-"));
  const cli = devsCli();
  const devtools = startChild(process.execPath, [cli, "devtools"], { name: "devtools", cwd: options.build.dir });
  let vm: Child | undefined;
  let bus: InstanceType<typeof jd.JDBus> | undefined;
  const context = (): string =>
    `\n  devtools: ${devtools.recent.slice(-5).join("\n  devtools: ")}` +
    (vm ? `\n  vm: ${vm.recent.slice(-10).join("\n  vm: ")}` : "");
  const stop = async (): Promise<void> => {
    try {
      await bus?.disconnect();
      bus?.stop();
    } catch (e) {
      log.debug(`simulator: bus close: ${String(e)}`);
    }
    await Promise.all([vm?.stop(), devtools.stop()]);
    rmSync(vmDir, { recursive: true, force: true });
    lock.release();
  };
  try {
    await withTimeout("the devtools server", left(), until(() => !devtools.running || devtools.recent.some((l) => l.includes("tcpsocket"))), context);
    if (!devtools.running) throw new BusError(`devtools exited (${await devtools.exited})${context()}`);
    await withTimeout("the devtools websocket", left(), (async () => { while (!(await canConnect(8081))) await new Promise((r) => setTimeout(r, 100)); })(), context);

    bus = jd.createWebSocketBus({ url: DEVTOOLS_URL, busOptions: { services: options.build.services } });
    for (const s of options.servers ?? []) jd.addServer(bus, s.name, s.server);
    await bus.connect();

    // the VM receives socket data a TCP window at a time, as the board does (vm-tcp-window.ts says why)
    const vmArgs = ["--require", join(__dirname, "vm-preload.js"), cli, "vm", "--stateless"];
    if (options.deviceId) vmArgs.push("--device-id", options.deviceId);
    vm = startChild(process.execPath, vmArgs, {
      name: "vm",
      cwd: vmDir,
      env: { ...process.env, ...(options.vmEnv ?? {}) },
      onLine: (line) => {
        // The VM prints the program's console output prefixed with "> " (dmesg markers); pass those through.
        const m = /^(?:WASM|VM)?>\s?(.*)$/.exec(line);
        if (m) options.onFirmwareLine?.(m[1]);
      },
    });
    const activeBus = bus;
    const manager = await withTimeout("the VM to join the bus", left(), (async () => {
      for (;;) {
        if (!vm?.running) throw new BusError(`the VM exited (${await vm?.exited})${context()}`);
        const found = activeBus.services({ serviceClass: jd.SRV_DEVICE_SCRIPT_MANAGER, lost: false });
        if (found.length === 1) return found[0];
        if (found.length > 1) throw new BusError("more than one DeviceScript device on the devtools bus");
        await new Promise((r) => setTimeout(r, 100));
      }
    })(), context);

    const baseSettings = { ...readEnvSettings(options.build.dir), ...(options.settings ?? {}) };
    await withTimeout("the deploy", left(), deployProgram(manager, baseSettings, options.build.bytecode), context);
    log.debug(`simulator: firmware deployed (${options.build.bytecode.length} B)`);
    const startedVm = vm;
    return {
      bus: activeBus,
      devtools,
      vm: startedVm,
      async restartProgram(settings) {
        await withTimeout("the redeploy", 30_000, deployProgram(manager, { ...baseSettings, ...(settings ?? {}) }, undefined), context);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
