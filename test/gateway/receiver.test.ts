/**
 * The receiving side against a real broker (aedes, in-process) without the firmware: batches published as the
 * protocol describes come out of the receiver and the `mqtt://` bus in order, duplicates dropped, gaps counted,
 * malformed payloads counted, status and results decoded, a transmit turned into a `tx` command.
 * (The same paths with the real firmware are in gateway.e2e.test.ts.)
 */
import { strict as assert } from "assert";
import { decode, encode } from "cbor-x";
import type { MqttClient } from "mqtt";
import { formatFrame, parseFrame } from "../../frame/frame";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { GatewayReceiver, publishWireBytes } from "../../host/gateway/receiver";
import { encodeBatch } from "../../host/gateway/uplink";
import { openBus } from "../../host/bus";
import type { MqttBus } from "../../host/bus/mqtt";
import { unpackRecords } from "../../host/gateway/canbus-records";
import { waitFor } from "../support/wait";

describe("gateway receiver and the mqtt:// bus (aedes, no firmware)", function () {
  this.timeout(60_000);
  let broker: HilBroker;
  let pub: MqttClient;
  before(async () => {
    broker = await openBroker({ kind: "aedes" });
    pub = await connectBroker(parseBrokerUrl(broker.url));
  });
  after(async () => {
    await pub?.endAsync();
    await broker?.close();
  });

  const frames = (texts: string[], t0: number) => texts.map((t, i) => ({ ...parseFrame(t), t: t0 + i / 1000 }));

  it("delivers batches in order, drops duplicates, counts gaps and malformed payloads", async () => {
    const client = await connectBroker(parseBrokerUrl(broker.url));
    const rx = await GatewayReceiver.attach(client, { prefix: "vgw", device: "gw9", expectStart: true });
    const seen: string[] = [];
    const gaps: string[] = [];
    rx.on("batch", (b) => seen.push(...b.frames.map(formatFrame)));
    rx.on("gap", (_d, g) => gaps.push(`${g.from}-${g.to}`));
    const publish = (p: Uint8Array) => pub.publishAsync("vgw/gw9/frames", Buffer.from(p), { qos: 1 });
    await publish(encodeBatch(7, 0, frames(["123#01", "123#02"], 1)));
    await publish(encodeBatch(7, 1, frames(["7FF#R"], 2)));
    await publish(encodeBatch(7, 1, frames(["7FF#R"], 2))); // a QoS 1 resend
    await publish(encodeBatch(7, 3, frames(["12345678##1" + "AB".repeat(64)], 3)));
    await publish(Uint8Array.from([0xa1, 0x61])); // truncated CBOR
    await waitFor(() => rx.counts.malformed === 1, 20_000, "the malformed payload");
    assert.deepEqual(seen, ["123#01", "123#02", "7FF#R", "12345678##1" + "AB".repeat(64)]);
    assert.deepEqual(gaps, ["2-2"]);
    assert.equal(rx.counts.duplicates, 1);
    assert.equal(rx.counts.missing, 1);
    assert.equal(rx.counts.frames, 4);
    await rx.detach();
    await client.endAsync();
  });

  it("computes MQTT PUBLISH sizes as the broker sees them", () => {
    // fixed header 1 + remaining length 1 + topic length 2 + topic 14 + packet id 2 + payload 100
    assert.equal(publishWireBytes("vgw/gw1/frames", 100, 1), 120);
    assert.equal(publishWireBytes("vgw/gw1/frames", 4000, 1), 4000 + 2 + 14 + 2 + 1 + 2);
  });

  it("mqtt:// bus: iterates uplinked frames and sends transmit commands with the gateway's boot id", async () => {
    const bus = (await openBus(`${broker.url}/gw8`)) as MqttBus;
    try {
      // A stand-in for the gateway's command handling, answering as docs/protocol.md says.
      const gwClient = await connectBroker(parseBrokerUrl(broker.url));
      await gwClient.subscribeAsync("vgw/gw8/cmd", { qos: 1 });
      const commands: Array<Record<string, unknown>> = [];
      gwClient.on("message", (_t, payload) => {
        const cmd = decode(payload) as Record<string, unknown>;
        commands.push(cmd);
        const allowed = unpackRecords(cmd.f as Uint8Array).frames[0].id === 0x123;
        void gwClient.publishAsync("vgw/gw8/result", encode({ id: cmd.id, op: cmd.op, ok: allowed, r: allowed ? "ok" : "not-allowed", msg: "" }), { qos: 1 });
      });
      await gwClient.publishAsync("vgw/gw8/status", encode({ v: 1, online: true, dev: "gw8", b: 42, up: 10_000, seq: 0 }), { qos: 1, retain: true });
      await bus.send(parseFrame("123#CAFE"));
      await assert.rejects(bus.send(parseFrame("456#00")), /refused the frame: not-allowed/);
      assert.equal(commands[0].op, "tx");
      assert.equal(commands[0].boot, 42);
      assert.ok((commands[0].exp as number) >= 10_000 + 2000, "expiry is in the gateway's uptime, ahead of its last status");
      await gwClient.publishAsync("vgw/gw8/frames", Buffer.from(encodeBatch(42, 0, frames(["321#AA"], 5))), { qos: 1 });
      const it = bus[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(formatFrame(first.value), "321#AA");
      await gwClient.publishAsync("vgw/gw8/status", Buffer.alloc(0), { qos: 1, retain: true });
      await gwClient.endAsync();
    } finally {
      await bus.close();
    }
  });
});
