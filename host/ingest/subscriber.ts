/**
 * Where deliveries come from: a broker subscription whose messages are acknowledged only once the store committed
 * them, so a crash before the commit leaves them with the broker for redelivery. Chosen by the broker URL:
 *
 *   mqtt://, mqtts://   an MQTT broker; with a group, an MQTT 5 shared subscription `$share/GROUP/...` (mqtt-subscriber.ts)
 *   nats://h:p,h:p,...  a NATS cluster's JetStream: a replicated stream over the MQTT topics and one durable consumer
 *                       per group that the workers pull from (nats-subscriber.ts)
 */

export interface Delivery {
  /** The MQTT topic (`<prefix>/<device>/<kind>`), also when it came through NATS. */
  topic: string;
  payload: Uint8Array;
  /** Epoch ms when this worker received it. */
  receivedAt: number;
  /** Tells the broker the delivery is stored: call only after the commit. */
  ack(): void;
}

export interface SubscriberOptions {
  /** Topic prefix (the firmware's `topicPrefix`). */
  prefix: string;
  /** Device ids to take; empty: every device under the prefix. */
  devices: string[];
  /** Workers with the same group share the load; without one, this worker alone takes everything. */
  group?: string;
  /** NATS: how long a delivery may stay unacknowledged before JetStream hands it to another worker of the group. */
  ackWaitMs?: number;
  /** Also take `P/signals` batches (MQTT only; the NATS stream's subjects are frames and status). */
  signals?: boolean;
  /** MQTT: the client id of this worker's persistent session (default vgw-ingest-HOST-GROUP); unique per worker. */
  clientId?: string;
}

export interface Subscriber {
  /** Broker and subscription, for messages (no passwords). */
  readonly description: string;
  /** Starts the deliveries; resolves once the broker accepted the subscription. */
  start(onDelivery: (d: Delivery) => void): Promise<void>;
  /** Stops taking new deliveries (what was not acked goes back to the broker) and disconnects. */
  close(): Promise<void>;
}

export async function openSubscriber(url: string, options: SubscriberOptions): Promise<Subscriber> {
  if (/^nats:\/\//i.test(url)) {
    const { NatsSubscriber } = await import("./nats-subscriber");
    return new NatsSubscriber(url, options);
  }
  const { MqttSubscriber } = await import("./mqtt-subscriber");
  return new MqttSubscriber(url, options);
}
