/**
 * Deliveries from a NATS cluster through JetStream. NATS 2.9's MQTT listener speaks MQTT 3.1.1 only and has no shared
 * subscriptions, but every MQTT publish becomes a NATS message on the mapped subject (`vgw/gw1/frames` ->
 * `vgw.gw1.frames`), so a JetStream stream over those subjects keeps every batch, replicated on up to three nodes,
 * whichever node the gateway published to. The workers of a group pull from one durable consumer: each message goes
 * to one worker, and one that is not acknowledged within `ackWaitMs` (the worker died before its commit) is handed
 * to another. Acknowledgements are sent after the commit, so nothing acknowledged is lost.
 */
import { AckPolicy, connect, ConsumerEvents, DeliverPolicy, nanos, StorageType, type ConsumerMessages, type NatsConnection } from "nats";
import { log } from "../log";
import type { Delivery, Subscriber, SubscriberOptions } from "./subscriber";

/** MQTT topic <-> NATS subject as NATS's MQTT listener maps them (device ids must not contain dots). */
export const subjectOf = (topic: string): string => topic.split("/").join(".");
export const topicOf = (subject: string): string => subject.split(".").join("/");

/** The stream's name for a prefix: JetStream names allow no dots, slashes or wildcards. */
export const streamName = (prefix: string): string => `VGW_${prefix.replace(/[^A-Za-z0-9_-]/g, "_")}`;

/** How long one pull request lives (the client's re-pull after a lost pull takes about twice this). */
const PULL_EXPIRES_MS = 5000;

export class NatsSubscriber implements Subscriber {
  readonly description: string;
  private nc?: NatsConnection;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly servers: string[];

  constructor(
    url: string,
    private readonly options: SubscriberOptions,
  ) {
    // nats://h1:4222,h2:4222 (or nats://h1:4222,nats://h2:4222): every node is a way in.
    this.servers = url.replace(/^nats:\/\//i, "").split(",").map((s) => s.trim().replace(/^nats:\/\//i, "")).filter(Boolean);
    this.description = `NATS JetStream ${this.servers.join(",")}, consumer ${this.group}`;
  }

  private get group(): string {
    return this.options.group ?? "vgw-ingest";
  }

  async start(onDelivery: (d: Delivery) => void): Promise<void> {
    const nc = await connect({ servers: this.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: `vgw ingest ${this.group}` });
    this.nc = nc;
    const jsm = await nc.jetstreamManager();
    const stream = streamName(this.options.prefix);
    const base = subjectOf(this.options.prefix);
    const cluster = nc.info?.cluster !== undefined;
    await retrying(`creating the stream ${stream}`, async () => {
      try {
        await jsm.streams.info(stream);
      } catch {
        await jsm.streams.add({
          name: stream,
          subjects: [`${base}.*.frames`, `${base}.*.status`],
          storage: StorageType.File,
          num_replicas: cluster ? 3 : 1,
          // Duplicates within this window (a gateway's QoS 1 resend) are kept: the store drops them by (device, boot, seq).
        });
      }
    });
    await retrying(`creating the consumer ${this.group}`, async () => {
      try {
        await jsm.consumers.info(stream, this.group);
      } catch {
        await jsm.consumers.add(stream, {
          durable_name: this.group,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(this.options.ackWaitMs ?? 30_000),
          max_ack_pending: 20_000,
        });
      }
    });
    const consumer = await nc.jetstream().consumers.get(stream, this.group);
    // A pull lives at most `expires`; the client re-pulls after two idle heartbeats (expires / 2) are missed. With the
    // default 30 s a worker whose pull sat on a node that died waited up to a minute before pulling again (measured in
    // test/ingest/cluster.test.ts under load: 3,550 of 11,000 frames stored after 60 s); 5 s bounds that to ~10 s.
    this.messages = await consumer.consume({ max_messages: 1000, expires: PULL_EXPIRES_MS });
    const wanted = new Set(this.options.devices);
    const messages = this.messages;
    void (async () => {
      for await (const st of await messages.status()) {
        if (st.type === ConsumerEvents.HeartbeatsMissed || st.type === ConsumerEvents.ConsumerNotFound || st.type === ConsumerEvents.StreamNotFound || st.type === ConsumerEvents.NoResponders || st.type === ConsumerEvents.ConsumerDeleted)
          log.warn(`ingest: NATS consumer ${this.group}: ${st.type} (${JSON.stringify(st.data)}); the client retries`);
      }
    })().catch(() => undefined);
    this.loop = (async () => {
      for await (const m of messages) {
        const topic = topicOf(m.subject);
        if (wanted.size) {
          const device = topic.split("/").at(-2) ?? "";
          if (!wanted.has(device)) {
            m.ack(); // another group's device: this group has nothing to do with it
            continue;
          }
        }
        onDelivery({ topic, payload: m.data, receivedAt: Date.now(), ack: () => m.ack() });
      }
    })().catch((e: unknown) => log.warn(`ingest: NATS consumer stopped: ${(e as Error).message}`));
  }

  async close(): Promise<void> {
    // Stop pulling, let the acks already given reach the server, then leave.
    await this.messages?.close();
    await this.loop;
    if (this.nc && !this.nc.isClosed()) await this.nc.drain();
  }
}

/** JetStream in a cluster answers only once its nodes elected a leader: retry for a while before failing. */
async function retrying(what: string, fn: () => Promise<void>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fn();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
