/**
 * The fault proxy in front of a real broker (aedes, and mosquitto for outages), with real MQTT clients:
 * a publisher connects through the proxy, a subscriber directly, and each mode is seen from the MQTT side.
 */
import * as assert from "node:assert/strict";
import mqtt, { type MqttClient } from "mqtt";
import { FaultProxy } from "../../hil/proxy";
import { openBroker, type HilBroker } from "../../host/gateway/broker";

async function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
}

/** Resolves when `pred` holds, polling; rejects after `ms` (generous: a loaded machine is slow) naming what was awaited. */
async function until(what: string, pred: () => boolean, ms = 12_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("hil fault proxy (real broker, real MQTT clients)", function () {
  this.timeout(60_000);
  let broker: HilBroker;
  let proxy: FaultProxy;
  let sub: MqttClient;
  let pub: MqttClient | undefined;
  const got: string[] = [];

  beforeEach(async () => {
    got.length = 0;
    broker = await openBroker({ kind: "aedes" });
    proxy = await FaultProxy.start({ host: broker.host, port: broker.port });
    sub = await connect(broker.url);
    sub.on("message", (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync("t/#", { qos: 1 });
  });
  afterEach(async () => {
    pub?.end(true);
    pub = undefined;
    sub.end(true);
    await proxy.close();
    await broker.close();
  });

  it("pass relays both directions and counts bytes", async () => {
    pub = await connect(proxy.url);
    await pub.publishAsync("t/a", "one", { qos: 1 });
    await until("message one", () => got.includes("one"));
    assert.equal(proxy.counts.connections, 1);
    assert.ok(proxy.counts.bytesUp > 0 && proxy.counts.bytesDown > 0, JSON.stringify(proxy.counts));
  });

  it("drop swallows what the gateway sends and counts it; pass restores the path", async () => {
    pub = await connect(proxy.url);
    proxy.setMode("drop");
    pub.publish("t/a", "lost", { qos: 0 });
    await until("dropped bytes", () => proxy.counts.bytesDropped > 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 0, got.join());
    proxy.setMode("pass");
    await pub.publishAsync("t/a", "after", { qos: 1 });
    await until("message after", () => got.includes("after"));
    assert.deepEqual(got, ["after"]);
  });

  it("stall holds bytes back and delivers them, in order, when the link returns", async () => {
    pub = await connect(proxy.url);
    proxy.setMode("stall");
    for (const m of ["s1", "s2", "s3"]) pub.publish("t/a", m, { qos: 0 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.length, 0, "nothing may pass a stalled link");
    proxy.setMode("pass");
    await until("stalled messages", () => got.length === 3);
    assert.deepEqual(got, ["s1", "s2", "s3"]);
    assert.equal(proxy.counts.bytesDropped, 0);
  });

  it("slow limits the rate to about bytesPerSecond", async () => {
    pub = await connect(proxy.url);
    proxy.setMode("slow", 20000);
    const before = proxy.counts.bytesUp;
    const t0 = Date.now();
    const payload = "x".repeat(1000);
    for (let i = 0; i < 10; i++) pub.publish("t/slow", payload, { qos: 0 });
    await until("10 slow messages", () => got.length === 10, 5000);
    const seconds = (Date.now() - t0) / 1000;
    const rate = (proxy.counts.bytesUp - before) / seconds;
    // 10 KB at 20 KB/s takes about 0.5 s; a relay that ignored the limit would take a few ms.
    assert.ok(seconds > 0.35, `10 KB crossed a 20 KB/s link in ${seconds} s`);
    assert.ok(rate < 30000, `measured ${rate.toFixed(0)} B/s through a 20,000 B/s link`);
  });

  it("reset tears open connections down and refuses new ones until pass", async () => {
    pub = await connect(proxy.url);
    const closed = new Promise<void>((resolve) => pub!.once("close", () => resolve()));
    proxy.setMode("reset");
    await closed;
    assert.equal(proxy.counts.resets, 1);
    await assert.rejects(connect(proxy.url, { connectTimeout: 1000 }));
    assert.equal(proxy.counts.resets, 2);
    proxy.setMode("pass");
    const again = await connect(proxy.url);
    await again.publishAsync("t/a", "back", { qos: 1 });
    await until("message back", () => got.includes("back"));
    again.end(true);
  });

  it("an aedes outage closes the gateway side; a restart on the same port lets it reconnect", async () => {
    const port = broker.port;
    pub = mqtt.connect(proxy.url, { reconnectPeriod: 100, connectTimeout: 1000 });
    let connects = 0;
    pub.on("connect", () => connects++);
    await until("first connect", () => connects === 1);
    await broker.stop();
    assert.equal(broker.running, false);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(connects, 1, "no broker, no connection");
    await broker.start();
    assert.equal(broker.port, port);
    await until("reconnect", () => connects === 2);
    assert.equal(broker.outages, 1);
  });
});

describe("hil broker: mosquitto outage and restart", function () {
  this.timeout(60_000);
  it("stops the mosquitto process and brings it back on the same port", async () => {
    const broker = await openBroker({ kind: "mosquitto" });
    const c = mqtt.connect(broker.url, { reconnectPeriod: 100, connectTimeout: 1000 });
    try {
      let connects = 0;
      c.on("connect", () => connects++);
      await until("first connect", () => connects === 1);
      await broker.stop();
      await until("client notices the outage", () => !c.connected);
      await broker.start();
      await until("reconnect", () => connects === 2);
    } finally {
      c.end(true);
      await broker.close();
    }
  });
});
