/**
 * The harness's eyes at the broker: one MQTT client, connected to the broker directly (never through the fault
 * proxy, which is the gateway's link), reading the gateway through the host's receiver (host/gateway/receiver.ts:
 * decode, dedup of resent batches, gaps by sequence number) and writing what it sees into the run record.
 * A payload that does not decode is counted with its reason, never fatal. Commands go down the same client.
 */
import mqtt, { type MqttClient } from "mqtt";
import { VgwError } from "../frame/errors";
import { log } from "../host/log";
import { GatewayReceiver } from "../host/gateway/receiver";
import { SignalReceiver, type SignalTable } from "../host/gateway/signals";
import { encodeCommand, gatewayTopics, type GatewayCommand, type GatewayTopics } from "../host/gateway/uplink";
import { flattenCounters } from "./checks";
import type { RunRecord, StatusRecord } from "./record";

export class GatewayObserver {
  readonly topics: GatewayTopics;
  /** True once the subscriptions of the current connection are in place (after each reconnect too). */
  private subscribed = false;
  /** The `P/signals` receiver, when the scenario gives the gateway a signal table. */
  signalReceiver?: SignalReceiver;

  private constructor(
    private readonly client: MqttClient,
    readonly receiver: GatewayReceiver,
    private readonly rec: RunRecord,
  ) {
    this.topics = gatewayTopics(receiver.prefix, receiver.device);
  }

  /** Connects (bounded by `timeoutMs`) and subscribes; reconnects and resubscribes when the broker comes back. */
  static async connect(url: string, prefix: string, device: string, rec: RunRecord, now: () => number, timeoutMs = 5000, signals?: SignalTable): Promise<GatewayObserver> {
    const client = mqtt.connect(url, { clientId: `vgw-hil-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 100, connectTimeout: timeoutMs });
    client.on("error", (e) => log.debug(`hil observer: ${e.message}`));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs);
        client.once("connect", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const receiver = await GatewayReceiver.attach(client, { prefix, device, expectStart: true });
      const obs = new GatewayObserver(client, receiver, rec);
      if (signals) obs.signalReceiver = await SignalReceiver.attach(client, signals, { prefix, device });
      obs.subscribed = true;
      obs.wire(now);
      return obs;
    } catch (e) {
      client.end(true);
      throw new VgwError(`cannot watch the broker at ${url}: ${(e as Error).message}`, { cause: e });
    }
  }

  private wire(now: () => number): void {
    const rec = this.rec;
    const r = this.receiver;
    r.on("batch", (b) => {
      const at = now();
      b.frames.forEach((frame, pos) => {
        rec.delivered.push({ frame, boot: b.boot, seq: b.seq, pos, deviceT: frame.t !== undefined ? frame.t * 1000 : undefined, receivedAt: at });
      });
    });
    r.on("duplicate", () => rec.uplink.duplicates++);
    r.on("gap", (_dev, v, b) => {
      for (let s = v.from; s <= v.to && rec.uplink.gaps.length < 10_000; s++) rec.uplink.gaps.push(`${b.boot.toString(16)}:${s}`);
    });
    r.on("malformed", (topic, e) => rec.undecodable.push({ topic, at: now(), reason: e.message }));
    const sr = this.signalReceiver;
    if (sr) {
      sr.on("batch", (b) => {
        const at = now();
        for (const s of b.samples) {
          const info = sr.table.info[s.i];
          rec.signals.push({ message: info?.message ?? "", signal: info?.signal ?? sr.table.name(s.i), value: sr.table.physical(s.i, s.raw), deviceT: s.t, receivedAt: at, i: s.i, raw: s.raw, boot: b.boot, seq: b.seq });
        }
      });
      sr.on("duplicate", () => rec.uplink.duplicates++);
      sr.on("gap", (_dev, v, b) => {
        for (let s = v.from; s <= v.to && rec.uplink.gaps.length < 10_000; s++) rec.uplink.gaps.push(`signals ${b.boot.toString(16)}:${s}`);
      });
      sr.on("malformed", (topic, e) => rec.undecodable.push({ topic, at: now(), reason: e.message }));
    }
    r.on("status", (_dev, s) => rec.statuses.push({ at: now(), online: s.online, counters: flattenCounters(s.raw), raw: s.raw }));
    r.on("result", (_dev, res) => {
      // The harness's own status requests (ids "hil-..."): their effect is the status message itself.
      if (typeof res.id === "string" && res.id.startsWith("hil-")) return;
      const cmd = rec.commands.find((c) => c.ref === res.id && !c.result);
      if (cmd) cmd.result = { ok: res.ok, reason: res.reason, at: now(), raw: res };
      else rec.undecodable.push({ topic: this.topics.result, at: now(), reason: `a result for no pending command (${JSON.stringify(res.id)})` });
    });
    // mqtt.js resubscribes by itself after a reconnect; a probe subscription's SUBACK tells when that is done,
    // because the broker answers in order.
    this.client.on("close", () => (this.subscribed = false));
    this.client.on("connect", () => {
      this.client.subscribe(`${this.topics.cmd}/hil-probe`, { qos: 0 }, (err) => {
        if (!err) this.subscribed = true;
      });
    });
  }

  get ready(): boolean {
    return this.subscribed && this.client.connected;
  }

  /** The newest online status, if any. */
  get lastStatus(): StatusRecord | undefined {
    for (let i = this.rec.statuses.length - 1; i >= 0; i--) if (this.rec.statuses[i].online) return this.rec.statuses[i];
    return undefined;
  }

  async command(cmd: GatewayCommand): Promise<void> {
    await this.client.publishAsync(this.topics.cmd, Buffer.from(encodeCommand(cmd)), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.receiver.detach().catch(() => undefined);
    await this.signalReceiver?.detach().catch(() => undefined);
    await this.client.endAsync(true);
  }
}

/** Polls `pred` every 10 ms; rejects after `ms` naming what it waited for. */
export async function waitFor(what: string, pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new VgwError(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
