/**
 * The broker a HIL run owns, so a scenario can take it away for real: `aedes` (in-process, the embedded default) or
 * `mosquitto` (the Debian broker as a child process). `stop()` closes the listening port and every client connection,
 * as a crashed broker would; `start()` brings a fresh broker back on the SAME port, so the gateway's reconnect logic
 * is what gets it back. An external broker (`mqtt://...`) can be used but not stopped.
 */
import * as net from "node:net";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { Aedes } from "aedes";
import { VgwError } from "../../frame/errors";
import { log } from "../log";
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

export async function openBroker(spec: { kind: "aedes" | "mosquitto" | "url"; url?: string }): Promise<HilBroker> {
  if (spec.kind === "aedes") return AedesBroker.open();
  if (spec.kind === "mosquitto") return MosquittoBroker.open();
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
  private child: ChildProcess | undefined;
  private stderr = "";

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async open(): Promise<MosquittoBroker> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-hil-mosquitto-"));
    const b = new MosquittoBroker(await freePort(), dir);
    fs.writeFileSync(path.join(dir, "mosquitto.conf"), `listener ${b.port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n`);
    try {
      await b.start();
    } catch (e) {
      await b.close();
      throw e;
    }
    return b;
  }

  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.stderr = "";
    const child = spawn("mosquitto", ["-c", path.join(this.dir, "mosquitto.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    const spawnError = new Promise<never>((_, reject) =>
      child.once("error", (e) => reject(new VgwError(`cannot start mosquitto: ${e.message} (install it: apt-get install mosquitto)`, { cause: e }))),
    );
    this.child = child;
    // A harness that exits without closing (process.exit, a crash in a test) must not leave a broker behind.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => {
      process.off("exit", killOnExit);
      if (this.child === child) this.child = undefined;
    });
    // Ready when the port accepts connections; bounded, and a crashed broker fails with what it printed.
    const deadline = Date.now() + 5000;
    for (;;) {
      if (await Promise.race([canConnect(this.port, this.host), spawnError])) return;
      if (!this.child) throw new VgwError(`mosquitto exited at start: ${this.stderr.trim()}`);
      if (Date.now() > deadline) {
        await this.halt();
        throw new VgwError(`mosquitto did not listen on port ${this.port} within 5 s: ${this.stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    await this.halt();
    this.outages++;
  }

  private async halt(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
    log.debug(`hil broker: mosquitto on port ${this.port} stopped`);
  }

  async close(): Promise<void> {
    await this.halt();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
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
