/**
 * The `sim` bus spec, `sim[?broker=mqtt://host:port&device=gw1&prefix=vgw]`: starts a simulated gateway (build, devtools,
 * VM, deploy with those settings) and attaches to its CAN side (host/simulator/sim-bus.ts); close() stops it.
 */
import { BusError } from "../../frame/errors";
import type { Bus, BusOptions } from "./bus";

export async function openSimBus(spec: string, options: BusOptions): Promise<Bus> {
  void options;
  const query = new URLSearchParams(spec.includes("?") ? spec.slice(spec.indexOf("?") + 1) : "");
  if (spec !== "sim" && !spec.startsWith("sim?")) throw new BusError(`'${spec}' is not a sim bus spec`, "use sim or sim?broker=mqtt://host:port&device=gw1");
  // Loaded here, not at the top: opening any other bus must not pull in jacdac-ts and the DeviceScript tooling.
  const { startSimulatedGateway } = await import("../simulator/gateway");
  const { SimBus } = await import("../simulator/sim-bus");
  const gw = await startSimulatedGateway({
    broker: query.get("broker") ?? undefined,
    device: query.get("device") ?? undefined,
    prefix: query.get("prefix") ?? undefined,
  });
  return new SimBus(gw.server, spec, () => gw.stop());
}
