/**
 * The scenario's `ecu:` section: simulated ECUs (host/diag/ecu-sim.ts) on the gateway's CAN wire. They hear what the
 * gateway transmits (a diagnostic request sent through its command topic) and answer onto the wire, where the
 * gateway receives the answer like any frame. Each answer is recorded as a frame the harness put on the wire
 * (trace `ecu`), so the delivery check follows it to the broker.
 */
import type { Frame } from "../frame/frame";
import type { Bus, BusOptions } from "../host/bus";
import type { BusCounters } from "../host/bus/bus";
import { acceptFrame } from "../host/bus/filter";
import { RxQueue } from "../host/bus/rx-queue";
import { startEcus, type RunningEcus } from "../host/diag/bus-links";
import type { EcuConfig } from "../host/diag/ecu-sim";
import type { GatewayTarget } from "./target";
import type { RunRecord } from "./record";

/** One link's view of the wire: sends go to the gateway, receives are the gateway's transmissions that pass its filters. */
export class WireTap implements Bus {
  readonly name = "hil-wire";
  private readonly queue = new RxQueue(4096);
  private readonly count = { rx: 0, tx: 0 };

  constructor(
    private readonly options: BusOptions,
    private readonly put: (frame: Frame) => void,
    private readonly taps: Set<WireTap>,
  ) {
    taps.add(this);
  }

  hear(frame: Frame): void {
    if (!acceptFrame(this.options.filters, frame)) return;
    this.count.rx++;
    this.queue.push(frame);
  }

  async send(frame: Frame): Promise<void> {
    this.count.tx++;
    this.put(frame);
  }

  counters(): BusCounters {
    return { ...this.count, queueDropped: this.queue.dropped };
  }

  async close(): Promise<void> {
    this.taps.delete(this);
    this.queue.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.queue[Symbol.asyncIterator]();
  }
}

/**
 * The ECUs' answers are numbered from here among the run's replayed frames: replay steps number theirs from 0 while
 * an ECU may answer at any time, and the checks match delivered frames by that number.
 */
const FIRST_ECU_INDEX = 1_000_000_000;

/** Starts the ECUs on `target`'s wire; returns what stops them. */
export async function startScenarioEcus(
  configs: EcuConfig[],
  target: GatewayTarget,
  rec: RunRecord,
  now: () => number,
): Promise<() => Promise<void>> {
  const taps = new Set<WireTap>();
  let index = FIRST_ECU_INDEX;
  const previous = target.onTransmit;
  target.onTransmit = (frame) => {
    previous(frame);
    for (const t of taps) t.hear(frame);
  };
  const put = (frame: Frame) => {
    const at = now();
    const lost = target.send(frame);
    const r: RunRecord["replayed"][number] = { frame, index: index++, trace: "ecu", traceT: at / 1000, dueAt: at, sentAt: at };
    if (lost) r.lost = lost;
    rec.replayed.push(r);
  };
  let running: RunningEcus;
  try {
    running = await startEcus(async (options) => new WireTap(options, put, taps), configs);
  } catch (e) {
    target.onTransmit = previous;
    throw e;
  }
  return async () => {
    await running.close();
    target.onTransmit = previous;
  };
}
