/**
 * Deliveries from an MQTT broker. QoS 1 messages are acknowledged (PUBACK) only after the store committed them,
 * through MQTT.js's `handleMessage` hook. MQTT.js handles incoming packets one after another and waits for that
 * hook, so this worker has one unacknowledged message at a time: each commit holds one batch (plus whatever QoS 0
 * status arrived meanwhile). Throughput then follows the batch size and the commit time (docs/ingest.md, limits).
 *
 * With a group the subscription is shared (`$share/GROUP/<prefix>/<device>/frames`, MQTT 5; mosquitto, EMQX and
 * HiveMQ have it): the broker hands each message to one worker of the group.
 */
import type { MqttClient } from "mqtt";
import { connectBroker, parseBrokerUrl } from "../gateway/broker-url";
import { hostname } from "node:os";
import { VgwError } from "../../frame/errors";
import { log } from "../log";
import type { Delivery, Subscriber, SubscriberOptions } from "./subscriber";

export class MqttSubscriber implements Subscriber {
  readonly description: string;
  private client?: MqttClient;
  private closing = false;
  private readonly clientId: string;

  constructor(
    private readonly url: string,
    private readonly options: SubscriberOptions,
  ) {
    const a = parseBrokerUrl(url);
    this.clientId = options.clientId ?? `vgw-ingest-${hostname()}-${options.group ?? "all"}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
    this.description = `MQTT ${a.tls ? "mqtts" : "mqtt"}://${a.host}:${a.port}${options.group ? `, shared subscription group ${options.group}` : ""}`;
  }

  private topics(): string[] {
    const devices = this.options.devices.length ? this.options.devices : ["+"];
    const share = this.options.group ? `$share/${this.options.group}/` : "";
    const kinds = this.options.signals ? ["frames", "status", "signals"] : ["frames", "status"];
    return devices.flatMap((d) => kinds.map((k) => `${share}${this.options.prefix}/${d}/${k}`));
  }

  async start(onDelivery: (d: Delivery) => void): Promise<void> {
    const address = parseBrokerUrl(this.url);
    // A persistent session under a stable client id: what the broker queued for this worker, and what it delivered
    // but never saw acknowledged, survives a reconnect or a restart of the worker (a clean session would drop it).
    const v5 = this.options.group !== undefined;
    try {
      this.client = await connectBroker(address, {
        protocolVersion: v5 ? 5 : 4,
        clientId: this.clientId,
        clean: false,
        ...(v5 ? { properties: { sessionExpiryInterval: 24 * 3600 } } : {}),
      });
    } catch (e) {
      if (v5 && /protocol version/i.test((e as Error).message)) {
        throw new VgwError(
          `${this.description}: the broker refused MQTT 5, which --group needs for a shared subscription ($share/${this.options.group}/...)\n` +
            "  hint: NATS 2.9's MQTT listener speaks MQTT 3.1.1 only: give the workers the cluster's nats:// URL (nats://n1:4222,n2:4222,...), or run one worker without --group",
          { cause: e },
        );
      }
      throw e;
    }
    this.client.on("offline", () => log.warn(`ingest: lost the broker connection; reconnecting (${this.description})`));
    this.client.on("reconnect", () => log.debug("ingest: reconnecting"));
    // MQTT.js sends a QoS 1 PUBACK only once handleMessage calls back (its documented backpressure hook, for every
    // protocol version; customHandleAcks works with MQTT 5 only): the callback is the acknowledgement.
    this.client.handleMessage = (packet, callback) => {
      if (this.closing) return; // not acked: the broker keeps it for another worker or the next session
      const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
      const ack = () => callback();
      onDelivery({ topic: packet.topic, payload, receivedAt: Date.now(), ack: packet.qos > 0 ? ack : () => undefined });
      if (packet.qos === 0) ack();
    };
    // Every reconnect subscribes again (clean sessions), then the broker resends nothing that was acked.
    await this.client.subscribeAsync(this.topics(), { qos: 1 });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.client) await this.client.endAsync();
  }
}
