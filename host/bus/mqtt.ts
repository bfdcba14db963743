/**
 * The `mqtt://host[:port]/device` bus: a remote gateway seen through its broker (docs/protocol.md).
 *
 *   iterate       frames the gateway uplinked, in order, duplicates (QoS 1 resends) dropped, gaps logged and counted
 *   send(frame)   a `tx` command; resolves when the gateway reports it sent, rejects with the gateway's reason
 *                 (`listen-only`, `not-allowed`, `rate-limited`, ...) or when no result comes within 5 s
 *
 * Spec: `mqtt[s]://[user:pass@]host[:port]/<device>[?prefix=vgw&ca=ca.pem]`. Sending needs the gateway's boot id and
 * uptime, which come from its retained status; send() waits for the first status.
 */
import type { MqttClient } from "mqtt";
import type { Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusCounters, BusOptions } from "./bus";
import { RxQueue } from "./rx-queue";
import { connectBroker, parseBrokerUrl } from "../gateway/broker-url";
import { GatewayReceiver } from "../gateway/receiver";
import { encodeCommand, gatewayTopics, type CommandResult, type GatewayStatus } from "../gateway/uplink";
import { log } from "../log";

const QUEUE_BOUND = 100_000;
const RESULT_TIMEOUT_MS = 5000;
/** How long a tx command stays valid on the gateway (it must not run a stale command later). */
const TX_LIFETIME_MS = 2000;
/** The gateway may wait up to 6 responsePending answers of P2* (5 s) each before it reports a timeout. */
const DIAG_RESULT_TIMEOUT_MS = 40_000;
/**
 * How long a diag command stays valid on the gateway: longer than a tx's, as the uptime is estimated across a
 * broker round trip; a replay is refused by its id anyway (the gateway runs each diag id once per boot).
 */
const DIAG_LIFETIME_MS = 10_000;

export interface MqttBusSpec {
  broker: string;
  device: string;
  prefix: string;
}

export function parseMqttBusSpec(spec: string): MqttBusSpec {
  const u = new URL(spec);
  const device = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!device || device.includes("/")) throw new BusError(`'${spec}': name one gateway after the host, e.g. mqtt://localhost/gw1`);
  const prefix = u.searchParams.get("prefix") ?? "vgw";
  u.searchParams.delete("prefix");
  u.pathname = "";
  return { broker: u.toString().replace(/\/(\?|$)/, "$1"), device, prefix };
}

export class MqttBus implements Bus {
  /** Frames the gateway uplinked, waiting for a reader; bounded, overflow counted. */
  private readonly queue = new RxQueue(QUEUE_BOUND);
  private closed = false;
  private status: { status: GatewayStatus; at: number } | undefined;
  private statusWaiters: Array<() => void> = [];
  private readonly results = new Map<string, (r: CommandResult) => void>();
  private nextId = 1;
  private lastDiagId: number | undefined;
  /** A status published after this bus asked for one has arrived (freshStatus). */
  private fresh = false;
  /** Frames the gateway uplinked, and frames it confirmed sending for us. */
  private rx = 0;
  private tx = 0;
  private txFailed = 0;

  private constructor(
    readonly name: string,
    private readonly client: MqttClient,
    private readonly receiver: GatewayReceiver,
    private readonly device: string,
    private readonly prefix: string,
  ) {
    receiver.on("batch", (batch) => {
      this.rx += batch.frames.length;
      for (const f of batch.frames) this.queue.push({ ...f, bus: this.device });
    });
    receiver.on("gap", (_dev, gap) => log.warn(`${name}: batches ${gap.from}..${gap.to} missing (${gap.missing}); their frames are lost`));
    receiver.on("malformed", (topic, e) => log.warn(`${name}: dropped a malformed payload on ${topic}: ${e.message}`));
    receiver.on("status", (_dev, status) => {
      this.status = { status, at: Date.now() };
      if (status.online) for (const w of this.statusWaiters.splice(0)) w();
    });
    receiver.on("result", (_dev, result) => {
      const key = String(result.id);
      const done = this.results.get(key);
      if (done) {
        this.results.delete(key);
        done(result);
      }
    });
  }

  static async open(spec: string): Promise<MqttBus> {
    const s = parseMqttBusSpec(spec);
    const client = await connectBroker(parseBrokerUrl(s.broker));
    try {
      const receiver = await GatewayReceiver.attach(client, { prefix: s.prefix, device: s.device });
      return new MqttBus(spec, client, receiver, s.device, s.prefix);
    } catch (e) {
      client.end(true);
      throw e;
    }
  }

  counters(): BusCounters {
    return { rx: this.rx, tx: this.tx, txFailed: this.txFailed, queueDropped: this.queue.dropped };
  }

  private async onlineStatus(): Promise<{ status: GatewayStatus; at: number }> {
    if (!this.status?.status.online) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BusError(`${this.name}: no online status from gateway '${this.device}' within ${RESULT_TIMEOUT_MS} ms`, "is the gateway running and connected to this broker?")), RESULT_TIMEOUT_MS);
        this.statusWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.status!;
  }

  async send(frame: Frame): Promise<void> {
    if (this.closed) throw new BusError(`${this.name}: the bus is closed`);
    const { status, at } = await this.onlineStatus();
    if (status.boot === undefined || status.up === undefined) throw new BusError(`${this.name}: the gateway's status has no boot id or uptime`);
    // The gateway's uptime now, estimated from its last status.
    const uptime = status.up + (Date.now() - at);
    const id = this.nextId++;
    const result = new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(String(id));
        reject(new BusError(`${this.name}: no result for transmit command ${id} within ${RESULT_TIMEOUT_MS} ms`));
      }, RESULT_TIMEOUT_MS);
      this.results.set(String(id), (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    const payload = encodeCommand({ op: "tx", id, boot: status.boot, exp: Math.round(uptime + TX_LIFETIME_MS), frame });
    await this.client.publishAsync(gatewayTopics(this.prefix, this.device).cmd, Buffer.from(payload), { qos: 1 });
    const r = await result.catch((e: unknown) => {
      this.txFailed++;
      throw e;
    });
    if (!r.ok) {
      this.txFailed++;
      throw new BusError(`${this.name}: the gateway refused the frame: ${r.reason}${r.msg ? ` (${r.msg})` : ""}`);
    }
    this.tx++;
  }

  /**
   * One diagnostic exchange through the gateway's `diag` command (docs/protocol.md, "Diagnostics"): the request goes
   * from `req` to the ECU answering on `res` (keys: id, + 0x80000000 for 29-bit), the gateway runs ISO-TP and waits
   * out responsePending itself; resolves with its result (ok with the response bytes, or a reason code), rejects when
   * no result comes within `timeoutMs`. Ids increase across processes (a clock in ms, then +1): the gateway runs a
   * diag id once per boot, so a second `vgw diag` must not reuse the first one's ids.
   */
  async diag(req: number, res: number, data: Uint8Array, timeoutMs = DIAG_RESULT_TIMEOUT_MS): Promise<CommandResult> {
    if (this.closed) throw new BusError(`${this.name}: the bus is closed`);
    const { status, at } = await this.freshStatus();
    if (status.boot === undefined || status.up === undefined) throw new BusError(`${this.name}: the gateway's status has no boot id or uptime`);
    const uptime = status.up + (Date.now() - at);
    const now = Date.now() % 2 ** 32;
    const id = (this.lastDiagId === undefined || ((now - this.lastDiagId) | 0) > 0 ? now : this.lastDiagId + 1) >>> 0;
    this.lastDiagId = id;
    const result = this.awaitResult(id, timeoutMs, "diag");
    const payload = encodeCommand({ op: "diag", id, boot: status.boot, exp: Math.round(uptime + DIAG_LIFETIME_MS), req, res, data });
    await this.client.publishAsync(gatewayTopics(this.prefix, this.device).cmd, Buffer.from(payload), { qos: 1 });
    return await result;
  }

  /**
   * A status published after this bus asked for one: the retained status a subscriber gets first may be a status
   * period old, and an uptime estimated from it would make commands arrive already expired. Asked once per bus.
   */
  private async freshStatus(): Promise<{ status: GatewayStatus; at: number }> {
    if (!this.fresh) {
      const asked = Date.now();
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BusError(`${this.name}: no status from gateway '${this.device}' within ${RESULT_TIMEOUT_MS} ms of asking`, "is the gateway running and connected to this broker?")), RESULT_TIMEOUT_MS);
        const check = () => {
          if (this.status && this.status.at >= asked && this.status.status.online) {
            clearTimeout(timer);
            resolve();
          } else this.statusWaiters.push(check);
        };
        this.statusWaiters.push(check);
      });
      await this.client.publishAsync(gatewayTopics(this.prefix, this.device).cmd, Buffer.from(encodeCommand({ op: "status" })), { qos: 1 });
      await got;
      this.fresh = true;
    }
    return this.status!;
  }

  private awaitResult(id: number, timeoutMs: number, what: string): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(String(id));
        reject(new BusError(`${this.name}: no result for ${what} command ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.results.set(String(id), (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.queue[Symbol.asyncIterator]();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.end();
    await this.receiver.detach();
    await this.client.endAsync();
    if (this.queue.dropped) log.warn(`${this.name}: ${this.queue.dropped} received frames were dropped: nobody read them`);
  }
}

export async function openMqttBus(spec: string, options: BusOptions): Promise<Bus> {
  void options;
  return MqttBus.open(spec);
}
