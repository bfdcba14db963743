/**
 * Registers every bus kind with the registry in bus.ts. Import this module (not the implementations) to open buses:
 *   import { openBus } from "../bus";   ->   await openBus("vcan0") / openBus("virtual:test")
 * A bare interface name goes to SocketCAN.
 */
import { registerBus } from "./bus";
import { openSocketCanBus } from "./socketcan";
import { openVirtualBus } from "./virtual";
import { openSimBus } from "./sim";
import { openMqttBus } from "./mqtt";

registerBus("virtual:", openVirtualBus);
registerBus("sim", openSimBus);
registerBus("mqtt://", openMqttBus);
registerBus("mqtts://", openMqttBus);
registerBus("", openSocketCanBus);

export { openBus, type Bus, type BusOptions, type BusFilter } from "./bus";
