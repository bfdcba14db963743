/**
 * Registers every bus kind with the registry in bus.ts. Import this module (not the implementations) to open buses:
 *   import { openBus } from "./";   ->   await openBus("vcan0") / openBus("virtual:test")
 * A bare interface name goes to SocketCAN.
 *
 * Each kind's module is loaded when a bus of that kind is first opened: the simulated-gateway and MQTT buses pull
 * in jacdac-ts and mqtt, which take seconds to load on a slow machine (measured in the test VM) and that
 * `vgw dump -i can0` never needs.
 */
import { registerBus, type BusOptions } from "./bus";
import { openVirtualBus } from "./virtual";

registerBus("virtual:", openVirtualBus);
registerBus("sim", async (spec: string, options: BusOptions) => (await import("./sim")).openSimBus(spec, options));
registerBus("mqtt://", async (spec: string, options: BusOptions) => (await import("./mqtt")).openMqttBus(spec, options));
registerBus("mqtts://", async (spec: string, options: BusOptions) => (await import("./mqtt")).openMqttBus(spec, options));
registerBus("", async (spec: string, options: BusOptions) => (await import("./socketcan")).openSocketCanBus(spec, options));

export { openBus, type Bus, type BusOptions, type BusFilter } from "./bus";
