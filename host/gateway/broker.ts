/**
 * Brokers vgw starts itself: `aedes` (in-process, the embedded default) or `mosquitto` (the Debian broker as a child
 * process, started by `startMosquitto`, the one mosquitto launcher of the HIL harness, the tests and the benchmarks).
 *
 * `openBroker` gives the broker a HIL run owns, so a scenario can take it away for real: `stop()` closes the listening
 * port and every client connection, as a crashed broker would; `start()` brings a fresh broker back on the SAME port,
 * so the gateway's reconnect logic is what gets it back. An external broker (`mqtt://...`) can be used but not stopped.
 */
import * as net from "node:net";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Aedes } from "aedes";
import { VgwError } from "../../frame/errors";
import { log } from "../log";
import { startChild, type Child } from "../process";
import { canConnect, freePort } from "../tcp";

export interface HilBroker {
  readonly kind: "aedes" | "mosquitto" | "url";
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** How many times the broker was stopped by the scenario. */
  readonly outages: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops for good and frees everything (child process, temp files). Safe to call twice. */
  close(): Promise<void>;
}

export interface BrokerSpec {
  kind: "aedes" | "mosquitto" | "url";
  url?: string;
  /** mosquitto: TCP_NODELAY on the broker's sockets (default true; see MosquittoOptions). */
  nodelay?: boolean;
}

export async function openBroker(spec: BrokerSpec): Promise<HilBroker> {
  if (spec.kind === "aedes") return AedesBroker.open();
  if (spec.kind === "mosquitto") return MosquittoBroker.open({ nodelay: spec.nodelay });
  return externalBroker(spec.url!);
}

class AedesBroker implements HilBroker {
  readonly kind = "aedes" as const;
  readonly host = "127.0.0.1";
  outages = 0;
  private broker: Aedes | undefined;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(public port: number) {}

  static async open(): Promise<AedesBroker> {
    const b = new AedesBroker(0);
    await b.start();
    return b;
  }

  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const broker = await Aedes.createBroker();
    const server = net.createServer((socket) => {
      // No Nagle on the broker's side: a PUBACK (4 bytes) held back behind unacknowledged data frees the gateway's
      // outbox a batch late (docs/firmware.md, Throughput).
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new VgwError(`cannot start the aedes broker on port ${this.port}: ${e.message}`, { cause: e })));
      server.listen(this.port, this.host, () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.broker = broker;
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.halt();
    this.outages++;
  }

  private async halt(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    const broker = this.broker!;
    this.server = undefined;
    this.broker = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.halt();
  }
}

class MosquittoBroker implements HilBroker {
  readonly kind = "mosquitto" as const;
  readonly host = "127.0.0.1";
  outages = 0;

  private constructor(private readonly broker: MosquittoProcess) {}

  static async open(options: MosquittoOptions): Promise<MosquittoBroker> {
    return new MosquittoBroker(await startMosquitto(options));
  }

  get port(): number {
    return this.broker.port;
  }

  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.broker.running;
  }

  start(): Promise<void> {
    return this.broker.start();
  }

  async stop(): Promise<void> {
    if (!this.broker.running) return;
    await this.broker.kill();
    this.outages++;
  }

  close(): Promise<void> {
    return this.broker.close();
  }
}

/** How a mosquitto process is set up; it always listens on 127.0.0.1 only, on ports chosen when it starts. */
export interface MosquittoOptions {
  /**
   * TCP_NODELAY on the broker's sockets (mosquitto's `set_tcp_nodelay`, >= 2.0), default true, as a gateway's broker
   * should run (docs/firmware.md, "Throughput"): with Nagle's algorithm a PUBACK can wait a whole batch interval behind
   * unacknowledged data. false leaves mosquitto's own default (Nagle on), to measure what that costs.
   */
  nodelay?: boolean;
  /**
   * mosquitto's `max_queued_messages`: QoS 1 and 2 messages held for one client beyond those in flight. Past its
   * default (1000) mosquitto drops what it would queue, and nobody else knows: a persistent subscriber that falls
   * behind (`vgw ingest` committing batch by batch) loses batches the gateway saw acknowledged. 0: no limit.
   */
  maxQueuedMessages?: number;
  /** A password file (mosquitto_passwd); without one, anonymous clients are allowed. */
  passwordFile?: string;
  /** Adds a TLS listener (its own port) with these PEM files, beside the plain one. */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

/** A mosquitto child process with its configuration in a temp directory. */
export interface MosquittoProcess {
  /** The plain TCP listener's port. */
  readonly port: number;
  /** The TLS listener's port, when `tls` was given. */
  readonly tlsPort?: number;
  readonly running: boolean;
  /** Kills the broker at once (SIGKILL: its clients' connections die as in a crash). */
  kill(): Promise<void>;
  /** Starts it again (after kill) on the same ports; resolves when every listener accepts connections. */
  start(): Promise<void>;
  /** Kills it and removes its directory. Safe to call twice. */
  close(): Promise<void>;
}

/** How long mosquitto may take to listen before the start counts as failed. */
const MOSQUITTO_START_MS = 10_000;

/** Starts mosquitto (Debian package `mosquitto`) and resolves when it listens. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-mosquitto-"));
  const port = await freePort();
  const tlsPort = options.tls ? await freePort() : undefined;
  const conf = path.join(dir, "mosquitto.conf");
  const lines = [
    // one password file and one anonymous setting for both listeners
    "per_listener_settings false",
    options.passwordFile ? `password_file ${options.passwordFile}\nallow_anonymous false` : "allow_anonymous true",
    "persistence false",
    `set_tcp_nodelay ${options.nodelay ?? true}`,
    ...(options.maxQueuedMessages !== undefined ? [`max_queued_messages ${options.maxQueuedMessages}`] : []),
    `listener ${port} 127.0.0.1`,
  ];
  if (options.tls) {
    lines.push(`listener ${tlsPort} 127.0.0.1`, `cafile ${options.tls.caFile}`, `certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`);
  }
  fs.writeFileSync(conf, lines.join("\n") + "\n");
  const ports = tlsPort === undefined ? [port] : [port, tlsPort];
  let child: Child | undefined;

  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    await c?.stop(0, "SIGKILL");
    if (c) log.debug(`mosquitto on port ${port} killed`);
  };
  const start = async (): Promise<void> => {
    if (child?.running) return;
    let c: Child;
    try {
      c = startChild("mosquitto", ["-c", conf], { name: "mosquitto", keepLines: 20 });
    } catch (e) {
      throw new VgwError(`cannot start mosquitto: ${(e as Error).message} (install it: apt-get install mosquitto)`, { cause: e });
    }
    child = c;
    // Ready when every port accepts connections; bounded, and a broker that exits fails with what it printed.
    const deadline = Date.now() + MOSQUITTO_START_MS;
    for (;;) {
      if ((await Promise.all(ports.map((p) => canConnect(p)))).every(Boolean)) return;
      const failed = !c.running ? "exited at start" : Date.now() > deadline ? `did not listen on ${ports.join(", ")} within ${MOSQUITTO_START_MS / 1000} s` : "";
      if (failed) {
        await kill();
        throw new VgwError(`mosquitto ${failed}: ${c.recent.join(" | ")}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const close = async (): Promise<void> => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (e) {
    await close();
    throw e;
  }
  return {
    port,
    tlsPort,
    get running() {
      return child?.running ?? false;
    },
    kill,
    start,
    close,
  };
}

function externalBroker(url: string): HilBroker {
  const u = new URL(url);
  const cannot = async () => {
    throw new VgwError(`the scenario stops or starts the broker, but ${url} is an external broker the harness cannot control`);
  };
  return {
    kind: "url",
    host: u.hostname,
    port: Number(u.port || 1883),
    url,
    running: true,
    outages: 0,
    start: cannot,
    stop: cannot,
    close: async () => {},
  };
}
