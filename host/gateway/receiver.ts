/**
 * The receiving end of gateways' uplinks: subscribes to `<prefix>/<device>/{frames,status,result}` on a broker,
 * decodes every payload (docs/protocol.md), drops duplicate batches, and reports what it saw:
 *
 *   "batch"     a new batch (in order, late, or after a gap) with its frames
 *   "gap"       batch numbers skipped (a batch the gateway dropped, or one lost)
 *   "unseen"    batch numbers the gateway's status says were used but never arrived (the last batches of a run lost)
 *   "duplicate" a batch seen before (QoS 1 resend), already dropped
 *   "malformed" a payload that does not decode, dropped and counted
 *   "status"    a status map (retained; `online: false` is the last will)
 *   "result"    a command result
 *   "diag"      a `P/diag` batch of poll responses (device, DiagBatch)
 *
 * `vgw tail`, the `mqtt://` bus, the demo, the tests and the HIL harness all read gateways through this one class.
 */
import { EventEmitter } from "node:events";
import type { MqttClient, IPublishPacket } from "mqtt";
import { log } from "../log";
import { decodeBatch, decodeDiagBatch, decodeResult, decodeStatus, parseTopic, PayloadError, type CommandResult, type DiagBatch, type FrameBatch, type GatewayStatus } from "./uplink";
import { SequenceTracker, type SequenceVerdict } from "./sequence";

export interface ReceiverOptions {
  /** Topic prefix (the firmware's `topicPrefix`), default `vgw`. */
  prefix?: string;
  /** Device id, or `+` for every gateway under the prefix. */
  device?: string;
  /** A boot's first batch should be number 0 (the receiver was listening before the gateway booted). */
  expectStart?: boolean;
}

export interface BatchInfo {
  device: string;
  /** Date.now() when the payload arrived. */
  receivedAt: number;
  /** The CBOR payload's length. */
  payloadBytes: number;
  /** The whole MQTT PUBLISH packet's length, fixed header and topic included. */
  wireBytes: number;
  verdict: SequenceVerdict;
}

export interface ReceiverCounts {
  batches: number;
  frames: number;
  duplicates: number;
  /** Batch numbers skipped and not filled later. */
  missing: number;
  malformed: number;
  payloadBytes: number;
  wireBytes: number;
}

/** Events and their arguments. */
export interface ReceiverEvents {
  batch: [batch: FrameBatch, info: BatchInfo];
  gap: [device: string, verdict: Extract<SequenceVerdict, { kind: "gap" }>, batch: FrameBatch];
  /** Batches the gateway's status says it closed (outbox empty, status `seq`) that never arrived: a trailing loss. */
  unseen: [device: string, verdict: Extract<SequenceVerdict, { kind: "gap" }>, boot: number];
  duplicate: [device: string, boot: number, seq: number];
  malformed: [topic: string, error: PayloadError];
  status: [device: string, status: GatewayStatus];
  result: [device: string, result: CommandResult];
  diag: [device: string, batch: DiagBatch];
}

/** Length of an MQTT 3.1.1 PUBLISH on the wire: fixed header + remaining length varint + topic + packet id + payload. */
export function publishWireBytes(topic: string, payloadBytes: number, qos: number): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + payloadBytes;
  const lenBytes = remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4;
  return 1 + lenBytes + remaining;
}

export class GatewayReceiver extends EventEmitter<ReceiverEvents> {
  readonly counts: ReceiverCounts = { batches: 0, frames: 0, duplicates: 0, missing: 0, malformed: 0, payloadBytes: 0, wireBytes: 0 };
  /** Latest status per device. */
  readonly statuses = new Map<string, GatewayStatus>();
  private readonly trackers = new Map<string, SequenceTracker>();
  readonly prefix: string;
  readonly device: string;
  private readonly onMessage: (topic: string, payload: Buffer, packet: IPublishPacket) => void;
  /** Messages that arrived before the caller of attach() could listen (see attach); undefined once released. */
  private early: Array<[string, Buffer, IPublishPacket]> | undefined = [];

  private constructor(
    readonly client: MqttClient,
    private readonly options: ReceiverOptions,
  ) {
    super();
    this.prefix = options.prefix ?? "vgw";
    this.device = options.device ?? "+";
    this.onMessage = (topic, payload, packet) => {
      if (this.early) this.early.push([topic, payload, packet]);
      else this.handle(topic, payload, packet);
    };
  }

  /** Subscribes on an already connected client; resolves once the broker granted the subscriptions. */
  static async attach(client: MqttClient, options: ReceiverOptions = {}): Promise<GatewayReceiver> {
    const r = new GatewayReceiver(client, options);
    client.on("message", r.onMessage);
    const base = `${r.prefix}/${r.device}`;
    await client.subscribeAsync([`${base}/frames`, `${base}/status`, `${base}/result`, `${base}/diag`], { qos: 1 });
    // A broker may send the retained status in the same write as the SUBACK (NATS does): MQTT.js then hands it over
    // before the caller of attach() could add its listeners, and the event would be lost. Messages wait for the
    // next turn of the event loop, by which time the caller has listened.
    setImmediate(() => r.release());
    return r;
  }

  private release(): void {
    const early = this.early ?? [];
    this.early = undefined;
    for (const [topic, payload, packet] of early) this.handle(topic, payload, packet);
  }

  /** Stops listening; the client stays connected (it belongs to the caller). */
  async detach(): Promise<void> {
    this.client.removeListener("message", this.onMessage);
    const base = `${this.prefix}/${this.device}`;
    if (this.client.connected) await this.client.unsubscribeAsync([`${base}/frames`, `${base}/status`, `${base}/result`, `${base}/diag`]).catch(() => undefined);
  }

  private handle(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const parts = parseTopic(topic);
    if (!parts || parts.prefix !== this.prefix) return;
    try {
      switch (parts.kind) {
        case "frames":
          this.handleBatch(parts.device, topic, payload, packet.qos);
          break;
        case "status": {
          if (payload.length === 0) return; // a cleared retained message
          const status = decodeStatus(payload);
          this.statuses.set(parts.device, status);
          this.settle(parts.device, status);
          this.emit("status", parts.device, status);
          break;
        }
        case "result":
          this.emit("result", parts.device, decodeResult(payload));
          break;
        case "diag":
          this.emit("diag", parts.device, decodeDiagBatch(payload));
          break;
      }
    } catch (e) {
      if (!(e instanceof PayloadError)) throw e;
      this.counts.malformed++;
      log.debug(`receiver: ${topic}: ${e.message}`);
      this.emit("malformed", topic, e);
    }
  }

  /**
   * With its outbox empty, a gateway's status `seq` (the next batch number) tells which batches it closed: those not
   * seen are lost, also the last ones of a run, which no later batch would reveal as a gap.
   */
  private settle(device: string, status: GatewayStatus): void {
    if (!status.online || status.ob !== 0 || status.boot === undefined || status.seq === undefined) return;
    const tracker = this.trackers.get(device);
    const gap = tracker?.settle(status.boot, status.seq);
    if (!gap) return;
    this.counts.missing += gap.missing;
    this.emit("unseen", device, gap, status.boot);
  }

  private handleBatch(device: string, topic: string, payload: Buffer, qos: number): void {
    const receivedAt = Date.now();
    const wireBytes = publishWireBytes(topic, payload.length, qos);
    const batch = decodeBatch(payload);
    let tracker = this.trackers.get(device);
    if (!tracker) {
      tracker = new SequenceTracker(this.options.expectStart ?? false);
      this.trackers.set(device, tracker);
    }
    const verdict = tracker.observe(batch.boot, batch.seq);
    // Bytes on the wire count every delivery, duplicates included: they crossed the network too.
    this.counts.wireBytes += wireBytes;
    this.counts.payloadBytes += payload.length;
    if (verdict.kind === "duplicate") {
      this.counts.duplicates++;
      this.emit("duplicate", device, batch.boot, batch.seq);
      return;
    }
    if (verdict.kind === "gap") {
      this.counts.missing += verdict.missing;
      this.emit("gap", device, verdict, batch);
    } else if (verdict.kind === "late") {
      this.counts.missing--;
    }
    this.counts.batches++;
    this.counts.frames += batch.frames.length;
    this.emit("batch", batch, { device, receivedAt, payloadBytes: payload.length, wireBytes, verdict });
  }
}
