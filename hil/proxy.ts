/**
 * The network fault proxy: a TCP relay the gateway connects through instead of reaching the broker directly,
 * so a scenario can damage the link for real (the gateway's MQTT client sees genuine TCP behaviour, not a flag).
 *
 * Modes, switchable at any moment, applying to open connections and new ones:
 *   pass   relay both directions as fast as the sockets take it
 *   drop   a black hole: bytes are read and thrown away (counted), connections stay up, new ones are accepted
 *   stall  nothing is read any more, so TCP flow control backs up into the sender; what was read is kept and
 *          delivered when the mode changes back (a congested or hung path)
 *   slow   relay at most `bytesPerSecond` per direction per connection (a poor cellular link)
 *   reset  every open connection is torn down with a TCP RST, and new ones are reset on arrival
 *
 * Node's net module has no fault injection of its own and the usual tools (toxiproxy, tc netem) need a daemon or
 * root; this file is the smallest honest relay that can do all five.
 */
import * as net from "node:net";
import { log } from "../host/log";

export type ProxyMode = "pass" | "drop" | "stall" | "slow" | "reset";

export interface ProxyCounts {
  /** Connections accepted from the gateway side. */
  connections: number;
  /** Bytes relayed gateway -> broker and broker -> gateway. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes thrown away in `drop` mode (both directions). */
  bytesDropped: number;
  /** Connections torn down by `reset` (open ones and those reset on arrival). */
  resets: number;
  /** Connections that failed to reach the broker. */
  upstreamFailures: number;
}

const TICK_MS = 20;
/** Above this many queued bytes a direction stops reading, so a slow link pushes back on the sender as TCP would. */
const HIGH_WATER = 64 * 1024;

/** One direction of one relayed connection, with its queue of bytes read but not yet written. */
class Direction {
  queue: Buffer[] = [];
  queued = 0;
  /** Bytes the `slow` budget still allows in this tick. */
  budget = 0;

  constructor(
    readonly from: net.Socket,
    readonly to: net.Socket,
    readonly up: boolean,
    readonly proxy: FaultProxy,
  ) {
    from.on("data", (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      this.pump();
    });
    to.on("drain", () => this.pump());
  }

  pump(): void {
    const p = this.proxy;
    switch (p.mode) {
      case "drop":
        p.counts.bytesDropped += this.queued;
        this.queue = [];
        this.queued = 0;
        this.from.resume();
        return;
      case "stall":
        this.from.pause();
        return;
      case "reset":
        return;
      case "pass":
        while (this.queue.length > 0 && !this.to.writableNeedDrain) this.write(this.queue.shift()!);
        break;
      case "slow":
        while (this.queue.length > 0 && this.budget > 0 && !this.to.writableNeedDrain) {
          let chunk = this.queue.shift()!;
          if (chunk.length > this.budget) {
            this.queue.unshift(chunk.subarray(this.budget));
            chunk = chunk.subarray(0, this.budget);
          }
          this.budget -= chunk.length;
          this.write(chunk);
        }
        break;
    }
    if (this.queued > HIGH_WATER || this.to.writableNeedDrain) this.from.pause();
    else this.from.resume();
  }

  private write(chunk: Buffer): void {
    this.queued -= chunk.length;
    if (this.up) this.proxy.counts.bytesUp += chunk.length;
    else this.proxy.counts.bytesDown += chunk.length;
    if (!this.to.destroyed) this.to.write(chunk);
  }
}

interface Relay {
  client: net.Socket;
  upstream: net.Socket;
  dirs: Direction[];
}

export class FaultProxy {
  mode: ProxyMode = "pass";
  bytesPerSecond = 0;
  readonly counts: ProxyCounts = { connections: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0, resets: 0, upstreamFailures: 0 };
  /** Every mode change with its time, for the report. */
  readonly history: Array<{ t: number; mode: ProxyMode; bytesPerSecond?: number }> = [];
  private readonly relays = new Set<Relay>();
  private readonly server: net.Server;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly target: { host: string; port: number },
    private readonly now: () => number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** Listens on an ephemeral port of 127.0.0.1 (or `listenPort`) and relays to `target`. */
  static async start(target: { host: string; port: number }, options: { listenPort?: number; now?: () => number } = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, options.now ?? Date.now);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(options.listenPort ?? 0, "127.0.0.1", () => resolve());
    });
    proxy.history.push({ t: proxy.now(), mode: "pass" });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** `mqtt://127.0.0.1:<port>`: what the gateway is told the broker is. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.relays.size;
  }

  setMode(mode: ProxyMode, bytesPerSecond?: number): void {
    if (mode === "slow" && !(bytesPerSecond && bytesPerSecond > 0)) throw new RangeError("slow mode needs bytesPerSecond > 0");
    this.mode = mode;
    this.bytesPerSecond = mode === "slow" ? bytesPerSecond! : 0;
    this.history.push({ t: this.now(), mode, ...(mode === "slow" ? { bytesPerSecond } : {}) });
    log.debug(`hil proxy: ${mode}${mode === "slow" ? ` at ${bytesPerSecond} B/s` : ""}`);
    if (mode === "reset") for (const r of [...this.relays]) this.reset(r);
    this.retime();
    for (const r of this.relays) for (const d of r.dirs) d.pump();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const r of [...this.relays]) {
      r.client.destroy();
      r.upstream.destroy();
    }
    this.relays.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.counts.connections++;
    if (this.mode === "reset") {
      this.counts.resets++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    const relay: Relay = { client, upstream, dirs: [] };
    relay.dirs = [new Direction(client, upstream, true, this), new Direction(upstream, client, false, this)];
    this.relays.add(relay);
    let connected = false;
    upstream.on("connect", () => (connected = true));
    upstream.on("error", (e) => {
      if (!connected) this.counts.upstreamFailures++;
      log.debug(`hil proxy: upstream ${e.message}`);
    });
    client.on("error", (e) => log.debug(`hil proxy: client ${e.message}`));
    // Either side closing closes the other: the relay is one TCP path as far as the two ends can tell.
    const end = () => {
      if (!this.relays.delete(relay)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    for (const d of relay.dirs) d.pump();
  }

  private reset(r: Relay): void {
    this.relays.delete(r);
    this.counts.resets++;
    r.client.resetAndDestroy();
    r.upstream.destroy();
  }

  /** The slow mode refills each direction's budget every tick; other modes need no timer. */
  private retime(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode !== "slow") return;
    const perTick = Math.max(1, Math.round((this.bytesPerSecond * TICK_MS) / 1000));
    this.timer = setInterval(() => {
      for (const r of this.relays) {
        for (const d of r.dirs) {
          d.budget = perTick;
          d.pump();
        }
      }
    }, TICK_MS);
    this.timer.unref();
  }
}
