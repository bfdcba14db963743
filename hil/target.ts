/**
 * Targets: the gateway under test, seen from the harness as its CAN wire (a Bus: send = frames the gateway receives,
 * iterate = frames it transmits), plus the few things the harness may do to it.
 *
 *   sim    the real firmware bytecode in the DeviceScript VM (host/simulator/gateway.ts), the CanBus service served by
 *          this process. The harness controls everything: settings, power (stop/start), controller faults.
 *   board  a gateway somewhere else, wired to a CAN interface this machine drives (`--can can0`, through the Bus
 *          registry, i.e. SocketCAN), connected to a broker both can reach. The harness only has the wire and the
 *          broker: settings it cannot deploy must be on the board already; power and controller faults are not
 *          available and a scenario that needs them stops with a clear error.
 */
import { BusError } from "../frame/errors";
import type { Frame } from "../frame/frame";
import { log } from "../host/log";
import { openBus, type Bus } from "../host/bus";
import { CanBusState } from "../host/simulator/canbus-server";
import type { SimulatedGateway } from "../host/simulator/gateway";
import type { CanFault, ScenarioGateway } from "./scenario";

export interface GatewayTarget {
  readonly kind: "sim" | "board";
  /** What the report calls it, e.g. `sim (firmware in the DeviceScript VM)` or `board on can0`. */
  readonly label: string;
  readonly device: string;
  readonly prefix: string;
  /**
   * Puts a frame on the gateway's CAN wire, in order; frames sent in one tick travel together. Returns why the
   * gateway will never see it (an injected controller fault), or undefined. Failures surface in `flush()`.
   */
  send(frame: Frame): string | undefined;
  /** Resolves when everything sent so far was handed over; rejects with the first failure. */
  flush(): Promise<void>;
  /** Called for every frame the gateway transmits onto the wire. */
  onTransmit: (frame: Frame) => void;
  /** Brings the gateway up (or, for a board, attaches to it). */
  start(): Promise<void>;
  /** The gateway vanishes (power cut): its broker connection dies without a DISCONNECT. */
  powerOff(): Promise<void>;
  powerOn(): Promise<void>;
  /** Controller fault; returns a description for the report. */
  fault(kind: CanFault, frames: number): Promise<string>;
  close(): Promise<void>;
}

export interface TargetOptions {
  /** The broker URL the gateway must use (for sim: the fault proxy in front of the harness's broker). */
  gatewayBroker: string;
  device: string;
  prefix: string;
  gateway: ScenarioGateway;
  /** board: the CAN interface (a Bus spec: can0, vcan0, virtual:name). */
  can?: string;
  onFirmwareLine?: (line: string) => void;
}

/**
 * The settings the simulated gateway is started with (docs/firmware.md names them): the scenario's other settings,
 * and its transmit allowlist, which the firmware takes from its settings only. Filters and rate rules travel as
 * commands instead (runner.ts), the same way for every target.
 */
export function firmwareSettings(g: ScenarioGateway): Record<string, unknown> {
  const s: Record<string, unknown> = { ...g.extra };
  const { txAllow, txRate } = g.settings;
  if (txAllow.length) {
    s.canMode ??= "normal";
    s.txAllow ??= txAllow;
    if (txRate > 0) s.txRate ??= txRate;
  }
  return s;
}

export async function openTarget(kind: "sim" | "board", o: TargetOptions): Promise<GatewayTarget> {
  return kind === "sim" ? new SimTarget(o) : BoardTarget.open(o);
}

/** The simulated controller reports what it received at most this long ago, or once it has this many frames. */
const PACKET_WINDOW_MS = 2;
const PACKET_FRAMES = 64;

class SimTarget implements GatewayTarget {
  readonly kind = "sim" as const;
  readonly label = "sim (gateway firmware in the DeviceScript VM)";
  onTransmit: (frame: Frame) => void = () => {};
  private gw: SimulatedGateway | undefined;
  /** Frames still to be lost to an injected overflow or report loss, and whether the controller is bus-off. */
  private overflowLeft = 0;
  private reportLossLeft = 0;
  private busOff = false;
  private transmitReader: Promise<void> | undefined;
  private inFlight: Promise<void> | undefined;
  private failure: Error | undefined;
  private pending: Frame[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: TargetOptions) {}

  get device(): string {
    return this.o.device;
  }

  get prefix(): string {
    return this.o.prefix;
  }

  async start(): Promise<void> {
    // Loaded here: the board target must not pull in jacdac-ts and the DeviceScript tooling.
    const { startSimulatedGateway } = await import("../host/simulator/gateway");
    this.gw = await startSimulatedGateway({
      broker: this.o.gatewayBroker,
      device: this.o.device,
      prefix: this.o.prefix,
      // the simulator's broker is a local plain-TCP one: transmit over it needs the firmware's explicit `insecure`
      settings: { insecure: true, ...firmwareSettings(this.o.gateway) },
      onFirmwareLine: this.o.onFirmwareLine,
    });
    const bus = this.gw.bus;
    this.transmitReader = (async () => {
      for await (const f of bus) this.onTransmit(f);
    })();
  }

  private get server() {
    if (!this.gw) throw new BusError("the simulated gateway is not running");
    return this.gw.server;
  }

  send(frame: Frame): string | undefined {
    if (!this.gw) {
      this.failure ??= new BusError("the simulated gateway is not running (powered off?)");
      return "gateway powered off";
    }
    if (this.busOff) return "controller bus-off"; // a bus-off controller takes no part in the bus
    if (this.overflowLeft > 0) {
      this.overflowLeft--;
      this.server.counters.rxOverflow++;
      this.publishCounters();
      return "controller receive overflow";
    }
    if (this.reportLossLeft > 0) {
      // Reported by the controller, lost on the way to the firmware: the frames before it go first (numbering order).
      this.handOver();
      if (this.server.loseReports([frame])) {
        this.reportLossLeft--;
        return "report lost between the controller and the firmware";
      }
    }
    // Frames are handed over in packets collected for up to PACKET_WINDOW_MS: one Jacdac report per frame at
    // thousands of frames/s piles up in the VM (canbus.md, pacing), while a real controller's server reports in
    // packets too. The window bounds the added delay; the harness's own timestamps are taken before it.
    this.pending.push(frame);
    if (this.pending.length >= PACKET_FRAMES) this.handOver();
    else this.timer ??= setTimeout(() => this.handOver(), PACKET_WINDOW_MS);
    return undefined;
  }

  private handOver(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0 || !this.gw) return;
    const p = this.gw.bus.sendMany(batch);
    this.inFlight = p;
    p.catch((e: unknown) => (this.failure ??= e as Error));
  }

  async flush(): Promise<void> {
    this.handOver();
    await this.inFlight?.catch(() => undefined);
    if (this.failure) throw this.failure;
  }

  async fault(kind: CanFault, frames: number): Promise<string> {
    const s = this.server;
    switch (kind) {
      case "overflow":
        this.overflowLeft += frames;
        return `the controller's receive buffer overflows: the next ${frames} frames on the wire are lost (rx_overflow)`;
      case "report-loss":
        this.reportLossLeft += frames;
        return `the reports carrying the next ${frames} frames are lost between the controller and the firmware (drop.report)`;
      case "bus-off":
        this.busOff = true;
        // Bus-off follows a burst of errors: TEC above 255 (ISO 11898-1).
        s.counters.busErrors += 32;
        s.busState.setValues([CanBusState.BusOff]);
        this.publishCounters(255);
        return "the controller goes bus-off: frames on the wire are not received until recovery";
      case "recover":
        this.busOff = false;
        this.overflowLeft = 0;
        s.busState.setValues([this.server.isEnabled ? CanBusState.ErrorActive : CanBusState.Stopped]);
        this.publishCounters(0);
        return "the controller recovers (error-active)";
    }
  }

  /** Mirrors the counters into the service register, with the transmit error counter a fault implies. */
  private publishCounters(tec = 0): void {
    const c = this.server.counters;
    this.server.countersReg.setValues([c.rxFrames >>> 0, c.txFrames >>> 0, c.rxOverflow >>> 0, c.txFailed >>> 0, c.busErrors >>> 0, tec, 0], true);
  }

  async powerOff(): Promise<void> {
    const gw = this.gw;
    this.gw = undefined;
    // Closing the bus stops the simulator too (its close hook) and ends the transmit reader.
    await gw?.bus.close();
    await gw?.stop();
    await this.transmitReader;
  }

  async powerOn(): Promise<void> {
    if (!this.gw) await this.start();
  }

  async close(): Promise<void> {
    await this.powerOff();
  }
}

class BoardTarget implements GatewayTarget {
  readonly kind = "board" as const;
  onTransmit: (frame: Frame) => void = () => {};
  private reader: Promise<void> | undefined;
  private queue: Frame[] = [];
  private draining: Promise<void> | undefined;
  private failure: Error | undefined;

  private constructor(
    private readonly o: TargetOptions,
    private readonly bus: Bus,
  ) {}

  static async open(o: TargetOptions): Promise<BoardTarget> {
    if (!o.can) throw new BusError("the board target needs the CAN interface the board is wired to", "vgw hil run --target board --can can0 --broker mqtt://...");
    return new BoardTarget(o, await openBus(o.can));
  }

  get label(): string {
    return `board on ${this.o.can}`;
  }

  get device(): string {
    return this.o.device;
  }

  get prefix(): string {
    return this.o.prefix;
  }

  async start(): Promise<void> {
    const bus = this.bus;
    this.reader = (async () => {
      try {
        for await (const f of bus) this.onTransmit(f);
      } catch (e) {
        log.warn(`hil: reading ${bus.name} failed: ${(e as Error).message}`);
      }
    })();
  }

  send(frame: Frame): undefined {
    this.queue.push(frame);
    this.draining ??= this.drain();
    return undefined;
  }

  /** One loop sends queued frames in order: one awaited send per frame, no promise chain growing with the queue. */
  private async drain(): Promise<void> {
    try {
      for (let i = 0; i < this.queue.length; i++) await this.bus.send(this.queue[i]);
    } catch (e) {
      this.failure ??= e as Error;
    } finally {
      this.queue = [];
      this.draining = undefined;
    }
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining;
    if (this.failure) throw this.failure;
  }

  async fault(kind: CanFault): Promise<string> {
    throw new BusError(`'can: ${kind}' needs control of the gateway's CAN controller, which the board target does not have`, "run this scenario with --target sim");
  }

  async powerOff(): Promise<void> {
    throw new BusError("'gateway: stop' needs control of the gateway's power, which the board target does not have", "run this scenario with --target sim");
  }

  async powerOn(): Promise<void> {
    await this.powerOff();
  }

  async close(): Promise<void> {
    await this.bus.close();
    await this.reader;
  }
}
