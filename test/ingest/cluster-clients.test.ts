/**
 * The host's MQTT clients on the 3-node NATS cluster the ingest workers use (docs/ingest.md, "Brokers"): a gateway
 * (synthetic, speaking docs/protocol.md and answering commands as the firmware does) publishes to node 1; the
 * `mqtt://` bus on node 2, the HIL observer on node 3 and `vgw tail` (the built CLI) on node 3 each receive its frames
 * in order and its retained status, and the bus's and the observer's commands reach the gateway across nodes.
 * NATS 2.9 speaks MQTT 3.1.1 only: `vgw ingest --group` over MQTT (a `$share` subscription, MQTT 5) is refused with
 * a message that names the cause and the way out (nats://).
 */
import { strict as assert } from "assert";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode, encode } from "cbor-x";
import type { MqttClient } from "mqtt";
import { formatFrame, parseFrame, type Frame } from "../../frame/frame";
import { openBus, type Bus } from "../../host/bus";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { unpackRecords } from "../../host/gateway/canbus-records";
import { GatewayObserver } from "../../hil/observer";
import { emptyRecord } from "../../hil/record";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster";
import { waitFor } from "../support/wait";
import { batchesOf, mixedFrames } from "./support";

const CLI = join(__dirname, "../../cli/main.js");
const BOOT = 0x5eed0042;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end (bounded: killed after `ms`); `onStderr` sees stderr as it grows. */
function runCli(args: string[], ms: number, onStderr?: (stderr: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const run: Run = { code: null, stdout: "", stderr: "" };
    const killer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.stdout.on("data", (d: Buffer) => (run.stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      run.stderr += d.toString();
      onStderr?.(run.stderr);
    });
    child.on("exit", (code) => {
      clearTimeout(killer);
      run.code = code;
      resolve(run);
    });
  });
}

describe("vgw tail, the mqtt:// bus and the HIL observer on a 3-node NATS cluster", function () {
  this.timeout(120_000);
  let cluster: NatsCluster | undefined;
  const clients: MqttClient[] = [];
  let bus: Bus | undefined;
  let observer: GatewayObserver | undefined;
  const tmp = mkdtempSync(join(tmpdir(), "vgw-cluster-clients-"));

  after(async () => {
    await bus?.close().catch(() => undefined);
    await observer?.close().catch(() => undefined);
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    await cluster?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("each reads a gateway publishing to another node, and commands cross nodes", async () => {
    cluster = await startNatsCluster(3);
    const nodes = cluster;

    // The gateway on node 1: a retained online status, then (below) batches; it answers each command with a result.
    const gw = await connectBroker(parseBrokerUrl(nodes.mqttUrl(0)), { clientId: "gw1" });
    clients.push(gw);
    const transmitted: Frame[] = [];
    gw.on("message", (topic, payload) => {
      if (topic !== "vgw/gw1/cmd") return;
      const cmd = decode(payload) as { op: string; id: unknown; boot?: number; f?: Uint8Array };
      let ok = false;
      if (cmd.op === "tx" && cmd.boot === BOOT && cmd.f) {
        transmitted.push(...unpackRecords(cmd.f).frames);
        ok = true;
      }
      void gw.publishAsync("vgw/gw1/result", Buffer.from(encode({ id: cmd.id, op: cmd.op, ok, r: ok ? "ok" : "bad-command" })), { qos: 1 });
    });
    await gw.subscribeAsync("vgw/gw1/cmd", { qos: 1 });
    await gw.publishAsync("vgw/gw1/status", Buffer.from(encode({ v: 1, online: true, dev: "gw1", b: BOOT, up: 1000, seq: 0 })), { qos: 1, retain: true });

    // The three readers, each on another node than the gateway.
    bus = await openBus(`${nodes.mqttUrl(1)}/gw1`);
    const rec = emptyRecord("cluster", "nats", Date.now());
    observer = await GatewayObserver.connect(nodes.mqttUrl(2), "vgw", "gw1", rec, () => Date.now(), 10_000);
    const frames = mixedFrames(240);
    const batches = batchesOf("gw1", BOOT, frames, 40);
    let published = false;
    const tail = runCli(["tail", "--broker", nodes.mqttUrl(2), "--device", "gw1", "--format", "jsonl", "--count", String(frames.length)], 60_000, (stderr) => {
      if (published || !stderr.includes("listening on")) return;
      published = true;
      // NATS grants a subscription on one node before its interest reaches the others: publish once the observer's
      // own subscription (same node as tail) is in place, then the batches, one acknowledged publish at a time.
      void (async () => {
        await waitFor(() => observer?.ready === true, 20_000, "the observer's subscription");
        await new Promise((r) => setTimeout(r, 500));
        for (const b of batches) await gw.publishAsync(b.topic, Buffer.from(b.payload), { qos: 1 });
      })();
    });

    // The bus: every frame, in order.
    const got: Frame[] = [];
    const reading = (async () => {
      for await (const frame of bus!) {
        got.push(frame);
        if (got.length >= frames.length) break;
      }
    })();
    const t = await tail;
    assert.equal(t.code, 0, `vgw tail: ${t.stderr}`);
    const lines = t.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: number; data: string; event?: string });
    const tailFrames = lines.filter((l) => l.event === undefined);
    assert.equal(tailFrames.length, frames.length, "vgw tail: every frame");
    tailFrames.forEach((l, i) => assert.equal(l.id, frames[i].id, `vgw tail: frame ${i}`));
    await waitFor(() => got.length >= frames.length, 30_000, () => `the mqtt:// bus to read ${frames.length} frames (has ${got.length})`);
    await reading;
    assert.deepEqual(got.map(formatFrame), frames.map(formatFrame), "the mqtt:// bus: every frame in order");
    await waitFor(() => rec.delivered.length >= frames.length, 30_000, () => `the observer to see ${frames.length} frames (has ${rec.delivered.length})`);
    assert.deepEqual(rec.delivered.map((d) => formatFrame(d.frame)), frames.map(formatFrame), "the HIL observer: every frame in order");
    assert.deepEqual(rec.uplink.gaps, []);
    assert.ok(rec.statuses.some((s) => s.online), "the observer got the retained status");

    // Commands down across nodes: the bus's transmit waits for the gateway's result; the observer's arrives too.
    await bus.send(parseFrame("123#DEADBEEF"));
    await observer.command({ op: "tx", id: "obs-1", boot: BOOT, exp: 5000, frame: parseFrame("456#01") });
    await waitFor(() => transmitted.length === 2, 20_000, () => `both commands at the gateway (${transmitted.map(formatFrame).join(", ")})`);
    assert.deepEqual(transmitted.map(formatFrame), ["123#DEADBEEF", "456#01"]);
  });

  it("refuses `vgw ingest --group` over MQTT on NATS (no MQTT 5, no $share) and says to use nats://", async () => {
    assert.ok(cluster, "the cluster of the test above");
    const r = await runCli(["ingest", "--broker", cluster.mqttUrl(0), "--group", "g", "--store", join(tmp, "x.duckdb"), "--progress", "0"], 60_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /MQTT 5/);
    assert.match(r.stderr, /nats:\/\//);
  });
});
