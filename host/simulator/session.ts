/**
 * A gateway session: frames replayed onto a simulated gateway's CAN bus (with the trace's timing, host/replay), and
 * everything the broker delivers checked against them (DeliveryCheck): delivered, lost, duplicates, bit-exactness,
 * latency, bytes on the wire. The demo prints it; the end-to-end tests and the benchmark assert on it.
 *
 *   const session = new GatewaySession(gateway.bus, receiver)
 *   const summary = await session.replay(() => openTraceReader(path), { speed: 1 })
 */
import type { Frame } from "../../frame/frame";
import { formatFrame } from "../../frame/frame";
import { MonotonicClock } from "../replay/clock";
import { replayFrames, type FrameSource, type ReplaySummary } from "../replay/scheduler";
import type { SimBus } from "./sim-bus";
import { DeliveryCheck, type DeliveryCounts } from "../gateway/delivery";
import type { GatewayReceiver, ReceiverCounts } from "../gateway/receiver";
import { encodeCommand, gatewayTopics, type GatewayStatus } from "../gateway/uplink";
import type { MqttClient } from "mqtt";

export interface SessionOptions {
  speed?: number;
  /** 1 = once (default), 0 = until aborted. */
  loops?: number;
  /** false: as fast as the bus takes frames. */
  timing?: boolean;
  signal?: AbortSignal;
  /** How long to wait after the last frame for the rest to arrive (ms). Default 5000. */
  drainMs?: number;
}

export interface SessionSummary extends DeliveryCounts {
  replay: ReplaySummary;
  /** Duplicate batches the receiver dropped (QoS 1 resends). */
  duplicateBatches: number;
  /** Batch numbers missing (gaps) at the end. */
  missingBatches: number;
  malformed: number;
  batches: number;
  /** MQTT PUBLISH bytes (fixed header, topic, packet id, payload) per delivered frame. */
  wireBytesPerFrame: number;
  payloadBytesPerFrame: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Seconds from the first frame sent to the last delivered. */
  seconds: number;
  /** The gateway's last status, for its own counters. */
  status?: GatewayStatus;
  /** Up to 20 lost or unexpected frames, described. */
  problems: string[];
}

/** Asks a gateway for its status now (`status` command) and resolves with it, or undefined after `timeoutMs`. */
export async function requestStatus(client: MqttClient, receiver: GatewayReceiver, device: string, timeoutMs: number): Promise<GatewayStatus | undefined> {
  return new Promise((resolve) => {
    const onStatus = (dev: string, status: GatewayStatus): void => {
      if (dev !== device || !status.online) return;
      clearTimeout(timer);
      receiver.removeListener("status", onStatus);
      resolve(status);
    };
    const timer = setTimeout(() => {
      receiver.removeListener("status", onStatus);
      resolve(undefined);
    }, timeoutMs);
    receiver.on("status", onStatus);
    client.publishAsync(gatewayTopics(receiver.prefix, device).cmd, Buffer.from(encodeCommand({ op: "status", id: "status" })), { qos: 1 }).catch(() => undefined);
  });
}

export class GatewaySession {
  readonly check = new DeliveryCheck();
  private sendError: unknown;
  private startedAt = NaN;
  private lastDeliveryAt = NaN;
  private arrivalWaiters: Array<() => void> = [];
  /** The receiver's counts when the session began: it may serve many sessions, each summary is its own share. */
  private readonly base: ReceiverCounts;
  private readonly onBatch = (batch: { frames: Frame[] }, info: { device: string; receivedAt: number }): void => {
    if (this.device && info.device !== this.device) return;
    this.check.delivered(batch.frames, info.receivedAt, formatFrame);
    this.lastDeliveryAt = info.receivedAt;
    for (const w of this.arrivalWaiters.splice(0)) w();
  };

  constructor(
    readonly bus: SimBus,
    readonly receiver: GatewayReceiver,
    readonly device?: string,
  ) {
    this.base = { ...receiver.counts };
    receiver.on("batch", this.onBatch);
  }

  /** Puts frames on the gateway's bus now (not paced); resolves when they were handed over. */
  async send(frames: readonly Frame[]): Promise<void> {
    if (Number.isNaN(this.startedAt)) this.startedAt = Date.now();
    this.check.sent(frames, Date.now());
    await this.bus.sendMany(frames);
  }

  /**
   * Offers `rate` frames/s for `seconds` (frames from `next(n, index)`), at most 5 ms of frames per send; a steady
   * load for throughput and fault runs. Resolves when the last frame was handed over (not delivered: see drain()).
   */
  async offer(rate: number, seconds: number, next: (n: number, index: number) => Frame[], signal?: AbortSignal): Promise<void> {
    const perSend = Math.max(1, Math.round(rate / 200));
    const t0 = performance.now();
    let sent = 0;
    while (performance.now() - t0 < seconds * 1000 && !signal?.aborted) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      if (due > sent) {
        const n = Math.min(due - sent, perSend * 4);
        await this.send(next(n, sent));
        sent += n;
      } else await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Replays a frame source with its timing, then waits (bounded) for every frame to arrive. */
  async replay(source: FrameSource, options: SessionOptions = {}): Promise<SessionSummary> {
    const replay = await replayFrames(source, {
      clock: new MonotonicClock(),
      speed: options.speed,
      loops: options.loops,
      timing: options.timing,
      signal: options.signal,
      // Not awaited: every frame due in the same tick joins one flush of the sim bus (packed 236-byte reports).
      send: (frame) => {
        if (Number.isNaN(this.startedAt)) this.startedAt = Date.now();
        this.check.sent([frame], Date.now());
        this.bus.sendMany([frame]).catch((e: unknown) => (this.sendError ??= e));
      },
    });
    if (this.sendError) throw this.sendError;
    await this.drain(options.drainMs ?? 5000);
    return this.summary(replay);
  }

  /** Waits until nothing is pending, or `ms` passed without any new delivery. */
  async drain(ms: number): Promise<void> {
    while (this.check.counts.pending > 0) {
      const arrived = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        this.arrivalWaiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!arrived) break;
    }
  }

  /**
   * Ends the session: stops checking what arrives (a finished session would otherwise go on matching every later
   * frame of the receiver against nothing sent), counts pending frames as lost, and sums up what happened while it
   * ran; `replay` when frames came through replay().
   */
  summary(replay?: ReplaySummary): SessionSummary {
    this.receiver.removeListener("batch", this.onBatch);
    this.check.finish(formatFrame);
    replay ??= { frames: this.check.counts.sent, loops: 1, late: 0, lateness: { p50: 0, p99: 0, max: 0 }, drift: 0, elapsed: 0, untimed: 0, aborted: false };
    const c = this.check.counts;
    const b = this.base;
    const n = this.receiver.counts;
    const r: ReceiverCounts = {
      batches: n.batches - b.batches,
      frames: n.frames - b.frames,
      duplicates: n.duplicates - b.duplicates,
      missing: n.missing - b.missing,
      malformed: n.malformed - b.malformed,
      payloadBytes: n.payloadBytes - b.payloadBytes,
      wireBytes: n.wireBytes - b.wireBytes,
    };
    const statuses = [...this.receiver.statuses.values()];
    return {
      ...c,
      replay,
      duplicateBatches: r.duplicates,
      missingBatches: r.missing,
      malformed: r.malformed,
      batches: r.batches,
      wireBytesPerFrame: c.delivered ? r.wireBytes / c.delivered : NaN,
      payloadBytesPerFrame: c.delivered ? r.payloadBytes / c.delivered : NaN,
      latencyMs: { p50: this.check.percentile(50), p99: this.check.percentile(99), max: this.check.percentile(100) },
      seconds: (this.lastDeliveryAt - this.startedAt) / 1000,
      status: this.device ? this.receiver.statuses.get(this.device) : statuses[statuses.length - 1],
      problems: this.check.problems,
    };
  }
}
