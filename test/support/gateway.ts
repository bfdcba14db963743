/**
 * A running simulated gateway for end-to-end tests: the firmware's bytecode in the VM, connected to a real broker,
 * with a receiver that was listening before it booted, and helpers to send commands and wait for statuses.
 * Everything is bounded in time and stop() always cleans up (VM, devtools, MQTT client).
 */
import type { MqttClient } from "mqtt";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { firmwareBuildOnce, startSimulatedGateway, type SimulatedGateway } from "../../host/simulator/gateway";
import { GatewayReceiver } from "../../host/gateway/receiver";
import { GatewaySession } from "../../host/simulator/session";
import { encodeCommand, gatewayTopics, type CommandResult, type GatewayCommand, type GatewayStatus } from "../../host/gateway/uplink";
import { log } from "../../host/log";
import { within } from "./wait";

export interface GatewayFixture {
  gw: SimulatedGateway;
  client: MqttClient;
  receiver: GatewayReceiver;
  device: string;
  /** Firmware output so far (last 500 lines), for failure messages. */
  firmwareLines: string[];
  /** Set when the program stopped (a panic or exception): what it printed about it. */
  readonly crashed: string | undefined;
  /** A fresh delivery check over this gateway's uplink. */
  session(): GatewaySession;
  /** Publishes raw bytes on the command topic. */
  publishCommand(payload: Uint8Array): Promise<void>;
  /** Sends a command with a fresh id and resolves with its result (matched by id). */
  command(cmd: CommandWithoutId, timeoutMs?: number): Promise<CommandResult>;
  /** Asks for a status now and resolves with the first online status that satisfies `pred`. */
  status(pred?: (s: GatewayStatus) => boolean, timeoutMs?: number): Promise<GatewayStatus>;
  stop(): Promise<void>;
}

let nextId = 1;

/** A command before the fixture gives it its id (every `tx` needs one). */
type CommandWithoutId = GatewayCommand extends infer C ? (C extends GatewayCommand ? Omit<C, "id"> : never) : never;

export async function startGatewayFixture(options: { broker: string; device: string; settings?: Record<string, unknown> }): Promise<GatewayFixture> {
  const build = await firmwareBuildOnce();
  const client = await connectBroker(parseBrokerUrl(options.broker));
  const firmwareLines: string[] = [];
  let crashed: string | undefined;
  /** The running program stopped with an exception or panic (cleared when a program starts again). */
  let down = false;
  /** Called when the program stops with an exception or panic: waits in progress end at once instead of timing out. */
  const onCrash = new Set<() => void>();
  /** `p`, or a rejection once the running program has stopped with an exception or panic. */
  const unlessCrashed = async <T>(p: Promise<T>): Promise<T> => {
    let stop: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      stop = () => reject(new Error(`the firmware stopped: ${crashed}`));
      if (down) stop();
      else onCrash.add(stop);
    });
    try {
      return await Promise.race([p, stopped]);
    } finally {
      onCrash.delete(stop!);
    }
  };
  let gw: SimulatedGateway | undefined;
  try {
    const receiver = await GatewayReceiver.attach(client, { device: options.device, expectStart: true });
    const online = new Promise<void>((resolve) => receiver.on("status", (_d, s) => s.online && resolve()));
    gw = await startSimulatedGateway({
      broker: options.broker,
      device: options.device,
      settings: options.settings,
      build,
      onFirmwareLine: (line) => {
        firmwareLines.push(line);
        if (firmwareLines.length > 500) firmwareLines.shift();
        // a reboot (new settings) stops the program too, without an exception or panic just before
        if (/^stop program/.test(line)) {
          const from = firmwareLines.map((l) => /Exception|PANIC|panic/.test(l)).lastIndexOf(true);
          if (from >= 0 && from >= firmwareLines.length - 12) {
            crashed = firmwareLines.slice(from).join(" | ");
            down = true;
            for (const f of onCrash) f();
          }
        }
        if (/^(DeviceScript Simulator|start: )/.test(line)) down = false;
        log.debug(`fw: ${line}`);
      },
    });
    await within(online, 30_000, `gateway ${options.device} to publish its online status\n  fw: ${firmwareLines.slice(-10).join("\n  fw: ")}`);
    const topics = gatewayTopics("vgw", options.device);
    const started = gw;
    const fixture: GatewayFixture = {
      gw: started,
      client,
      receiver,
      device: options.device,
      firmwareLines,
      get crashed() {
        return crashed;
      },
      session: () => new GatewaySession(started.bus, receiver, options.device),
      publishCommand: async (payload) => {
        await client.publishAsync(topics.cmd, Buffer.from(payload), { qos: 1 });
      },
      command: async (cmd, timeoutMs = 5000) => {
        const id = nextId++;
        const result = new Promise<CommandResult>((resolve) => {
          const on = (dev: string, r: CommandResult): void => {
            if (dev === options.device && r.id === id) {
              receiver.removeListener("result", on);
              resolve(r);
            }
          };
          receiver.on("result", on);
        });
        await client.publishAsync(topics.cmd, Buffer.from(encodeCommand({ ...cmd, id } as GatewayCommand)), { qos: 1 });
        try {
          return await within(unlessCrashed(result), timeoutMs, `the result of command ${id} (${cmd.op})`);
        } catch (e) {
          throw crashed ? new Error(`the firmware stopped: ${crashed}`) : e;
        }
      },
      status: async (pred = () => true, timeoutMs = 5000) => {
        const got = new Promise<GatewayStatus>((resolve) => {
          const on = (dev: string, s: GatewayStatus): void => {
            if (dev === options.device && s.online && pred(s)) {
              receiver.removeListener("status", on);
              resolve(s);
            }
          };
          receiver.on("status", on);
        });
        await client.publishAsync(topics.cmd, Buffer.from(encodeCommand({ op: "status", id: nextId++ })), { qos: 1 });
        try {
          return await within(unlessCrashed(got), timeoutMs, `a status of ${options.device} that satisfies ${pred.toString()}`);
        } catch (e) {
          throw crashed ? new Error(`the firmware stopped: ${crashed}`) : e;
        }
      },
      stop: async () => {
        await started.stop();
        await receiver.detach().catch(() => undefined);
        await client.endAsync();
      },
    };
    return fixture;
  } catch (e) {
    await gw?.stop();
    await client.endAsync();
    throw e;
  }
}
