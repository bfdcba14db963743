/**
 * A three-node NATS cluster for tests (Debian's `nats-server` 2.9): each node on 127.0.0.1 with its own client port,
 * cluster port, MQTT port and JetStream directory, routes to all three. kill(i) ends a node as a crash would
 * (SIGKILL); stop() ends them all and removes the temp dir.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as natsConnect } from "nats";
import { startChild, type Child } from "../../host/process";
import { canConnect, freePort } from "../../host/tcp";
import { waitFor } from "./wait";

export interface NatsNode {
  name: string;
  clientPort: number;
  mqttPort: number;
  child: Child;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** nats://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 */
  natsUrl: string;
  mqttUrl(i: number): string;
  kill(i: number): void;
  /**
   * Moves the leadership of every JetStream stream and consumer (the ingest stream, MQTT's own streams) off node i,
   * by leader stepdowns until another node leads each; returns what moved. See docs/ingest.md ("Limits") for why
   * the cluster test kills a node that leads nothing.
   */
  leadNothing(i: number): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  try {
    execFileSync("nats-server", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("nats-server is not installed: apt-get install nats-server (scripts/setup-test.sh does)");
  }
  const dir = mkdtempSync(join(tmpdir(), "vgw-nats-"));
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort(), mqtt: await freePort() });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(", ");
  const nodes: NatsNode[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      mkdirSync(join(dir, name));
      const conf = join(dir, `${name}.conf`);
      writeFileSync(
        conf,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i].client}`,
          `jetstream { store_dir: "${join(dir, name)}", max_memory_store: 64MB, max_file_store: 1GB }`,
          `cluster { name: vgw, listen: 127.0.0.1:${ports[i].cluster}, routes: [${routes}] }`,
          `mqtt { listen: 127.0.0.1:${ports[i].mqtt}, stream_replicas: 3 }`,
        ].join("\n") + "\n",
      );
      nodes.push({ name, clientPort: ports[i].client, mqttPort: ports[i].mqtt, child: startChild("nats-server", ["-c", conf], { name: `nats ${name}` }) });
    }
    for (const n of nodes) {
      let up = false;
      await waitFor(() => {
        if (!n.child.running) throw new Error(`nats-server ${n.name} exited: ${n.child.recent.slice(-5).join(" | ")}`);
        void canConnect(n.mqttPort).then((ok) => (up = ok));
        return up;
      }, 30_000, `nats-server ${n.name} to listen for MQTT on ${n.mqttPort}`, 100);
    }
  } catch (e) {
    await Promise.all(nodes.map((n) => n.child.stop(1000)));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    nodes,
    natsUrl: "nats://" + nodes.map((n) => `127.0.0.1:${n.clientPort}`).join(","),
    mqttUrl: (i) => `mqtt://127.0.0.1:${nodes[i].mqttPort}`,
    kill(i) {
      try {
        process.kill(-nodes[i].child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    },
    async leadNothing(i) {
      const victim = nodes[i].name;
      const others = nodes.filter((_, k) => k !== i).map((n) => `127.0.0.1:${n.clientPort}`);
      const nc = await natsConnect({ servers: others, timeout: 5000 });
      const moved: string[] = [];
      try {
        const jsm = await nc.jetstreamManager();
        const deadline = Date.now() + 60_000;
        for (;;) {
          const led: string[] = [];
          for (const si of await jsm.streams.list().next()) {
            const stream = si.config.name;
            if (si.cluster?.leader === victim) led.push(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`);
            for (const ci of await jsm.consumers.list(stream).next()) {
              if (ci.cluster?.leader === victim) led.push(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${ci.name}`);
            }
          }
          if (led.length === 0) break;
          if (Date.now() > deadline) throw new Error(`node ${victim} still leads ${led.join(", ")} after 60 s of stepdowns`);
          // a stepdown elects another replica (or, by chance, the same node again: asked once more next round)
          for (const subject of led) {
            await nc.request(subject, undefined, { timeout: 5000 }).catch(() => undefined);
            moved.push(subject.replace("$JS.API.", ""));
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        await nc.close();
      }
      return moved;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.child.stop(3000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
