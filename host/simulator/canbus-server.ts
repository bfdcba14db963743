/**
 * The host side of the CanBus service (firmware/services/canbus.md) for the simulator: what an MCP2515 server is on
 * the board. The firmware's `ds.CanBus` client binds to it on the devtools bus.
 *
 *   host -> firmware: `receive(frames)` packs frames into `frames` reports (0x90, <= 236 B each), numbered by
 *                     `first_frame` (canbus.md v1.2) so the firmware counts reports lost on the way
 *   firmware -> host: `transmit` commands (0x80) become frames handed to `onTransmit`, if mode and enable allow it
 *
 * Controller behaviour kept from the spec: starts disabled and listen-only; `transmit` while disabled or listen-only
 * counts every record in `tx_failed` and sends nothing; loopback mode reports transmitted frames back as received.
 */
import type { Frame } from "../../frame/frame";
import { log } from "../log";
import { jd } from "./jacdac";
import { packReports, unpackRecords } from "../gateway/canbus-records";

/** The service's name in its spec (`camel: canBus`); the class identifier is taken from the spec itself. */
export const CANBUS_SPEC_NAME = "canBus";

/**
 * Makes the firmware's service specifications known to jacdac-ts (a server's registers are packed by its spec) and
 * returns the CanBus spec. `services` is what `devs build` wrote to `.devicescript/services.json`.
 */
export function loadCanBusSpec(services: jdspec.ServiceSpec[]): jdspec.ServiceSpec {
  const spec = services.find((s) => s.camelName === CANBUS_SPEC_NAME);
  if (!spec) throw new Error(`the firmware's services.json has no '${CANBUS_SPEC_NAME}' service (firmware/services/canbus.md)`);
  jd.loadServiceSpecifications(services);
  return spec;
}

export const REG_ENABLED = 0x01;
export const REG_MODE = 0x80;
export const REG_BITRATE = 0x81;
export const REG_DATA_BITRATE = 0x82;
export const REG_BUS_STATE = 0x180;
export const REG_COUNTERS = 0x181;
export const REG_FD_SUPPORTED = 0x182;
export const CMD_TRANSMIT = 0x80;
export const REPORT_FRAMES = 0x90;

export enum CanMode {
  ListenOnly = 0,
  Normal = 1,
  Loopback = 2,
}

export enum CanBusState {
  ErrorActive = 0,
  ErrorPassive = 1,
  BusOff = 2,
  Stopped = 3,
}

const SUPPORTED_BITRATES = [125_000, 250_000, 500_000, 1_000_000];

export interface CanBusCounters {
  rxFrames: number;
  txFrames: number;
  rxOverflow: number;
  txFailed: number;
  busErrors: number;
}

export class CanBusServer extends jd.JDServiceServer {
  readonly enabled = this.addRegister<[boolean]>(REG_ENABLED, [false]);
  readonly mode = this.addRegister<[number]>(REG_MODE, [CanMode.ListenOnly]);
  readonly bitrate = this.addRegister<[number]>(REG_BITRATE, [500_000]);
  readonly dataBitrate = this.addRegister<[number]>(REG_DATA_BITRATE, [2_000_000]);
  readonly busState = this.addRegister<[number]>(REG_BUS_STATE, [CanBusState.Stopped]);
  readonly countersReg = this.addRegister<[number, number, number, number, number, number, number]>(REG_COUNTERS, [0, 0, 0, 0, 0, 0, 0]);
  readonly fdSupported = this.addRegister<[boolean]>(REG_FD_SUPPORTED, [true]);
  readonly counters: CanBusCounters = { rxFrames: 0, txFrames: 0, rxOverflow: 0, txFailed: 0, busErrors: 0 };
  /** Transmit records the server could not parse, with the reason (also counted in tx_failed). */
  readonly rejectedTransmits: string[] = [];
  /** Frames the firmware transmitted onto the simulated bus. */
  onTransmit: (frames: Frame[]) => void = () => {};
  private enabledWaiters: Array<() => void> = [];
  /** `first_frame` of the next report: frames reported since `enabled` last went from false to true. */
  private nextReportFrame = 0;
  /** Reports (and their frames) numbered but never sent: fault injection by `loseReports`. */
  readonly lostInTransport = { reports: 0, frames: 0 };

  /** `services`: the firmware build's service specifications (FirmwareBuild.services). */
  constructor(services: jdspec.ServiceSpec[]) {
    super(loadCanBusSpec(services).classIdentifier);
    this.enabled.on(jd.CHANGE, () => {
      const on = this.isEnabled;
      if (on) this.nextReportFrame = 0;
      this.busState.setValues([on ? CanBusState.ErrorActive : CanBusState.Stopped]);
      if (on) for (const w of this.enabledWaiters.splice(0)) w();
    });
    this.bitrate.valueProcessor = (v) => (SUPPORTED_BITRATES.includes(v[0]) ? v : this.bitrate.values());
    this.addCommand(CMD_TRANSMIT, (pkt) => this.handleTransmit(pkt.data));
  }

  get isEnabled(): boolean {
    return !!this.enabled.values()[0];
  }

  get currentMode(): CanMode {
    return this.mode.values()[0] as CanMode;
  }

  /** Resolves once the firmware's client has written `enabled = true` (the spec's handshake). */
  waitEnabled(): Promise<void> {
    if (this.isEnabled) return Promise.resolve();
    return new Promise((resolve) => this.enabledWaiters.push(resolve));
  }

  /**
   * Delivers frames to the firmware as received frames. Frames arriving while the controller is disabled are lost on
   * a real bus too: they are counted in rx_overflow (as the spec's "frames the server could not report").
   */
  async receive(frames: readonly Frame[]): Promise<void> {
    if (!this.isEnabled) {
      this.counters.rxOverflow += frames.length;
      this.publishCounters();
      return;
    }
    // Numbered when they are packed: the numbers follow the order of the calls, as the packets do.
    const reports = this.numberReports(frames);
    for (const r of reports) await this.sendPacketAsync(jd.Packet.from(REPORT_FRAMES, r.packet));
    this.publishCounters();
  }

  /**
   * Fault injection: `frames` are received and reported, i.e. numbered and counted in rx_frames, but their reports
   * never reach the firmware, as when a Jacdac runtime drops them (canbus.md, `first_frame`). The firmware must
   * count every one of them in `drop.report`. Returns false (nothing numbered) while the controller is disabled.
   */
  loseReports(frames: readonly Frame[]): boolean {
    if (!this.isEnabled) return false;
    const reports = this.numberReports(frames);
    this.lostInTransport.reports += reports.length;
    this.lostInTransport.frames += frames.length;
    this.publishCounters();
    return true;
  }

  private numberReports(frames: readonly Frame[]) {
    const reports = packReports(frames, this.nextReportFrame);
    this.nextReportFrame = (this.nextReportFrame + frames.length) >>> 0;
    this.counters.rxFrames += frames.length;
    return reports;
  }

  private handleTransmit(data: Uint8Array): void {
    const { frames, error } = unpackRecords(data);
    const mode = this.currentMode;
    if (!this.isEnabled || (mode !== CanMode.Normal && mode !== CanMode.Loopback)) {
      // Count every record of the packet; a malformed tail counts as one more failed record.
      this.counters.txFailed += frames.length + (error ? 1 : 0);
      log.debug(`canbus: transmit refused (${this.isEnabled ? "listen-only" : "disabled"}): ${frames.length} frames`);
    } else {
      if (error) {
        this.counters.txFailed++;
        this.rejectedTransmits.push(error);
      }
      this.counters.txFrames += frames.length;
      if (mode === CanMode.Normal) this.onTransmit(frames);
      else void this.receive(frames);
    }
    this.publishCounters();
  }

  private publishCounters(): void {
    const c = this.counters;
    this.countersReg.setValues([c.rxFrames >>> 0, c.txFrames >>> 0, c.rxOverflow >>> 0, c.txFailed >>> 0, c.busErrors >>> 0, 0, 0], true);
  }
}
