/**
 * Units of the host side that the end-to-end suites rely on: the delivery check (lost vs unexpected vs late-found),
 * child processes in their own group (grandchildren die with them), broker URLs, the devtools lock's holder logic.
 */
import { strict as assert } from "assert";
import { execFileSync } from "node:child_process";
import { parseFrame } from "../../frame/frame";
import { DeliveryCheck } from "../../host/gateway/delivery";
import { startChild } from "../../host/process";
import { parseBrokerUrl } from "../../host/gateway/broker-url";
import { parseMqttBusSpec } from "../../host/bus/mqtt";
import { waitFor } from "../support/wait";

const f = (t: string) => parseFrame(t);
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("gateway host support", function () {
  this.timeout(60_000);
  it("delivery check: in order, lost, unexpected, latency", () => {
    const c = new DeliveryCheck();
    c.sent(["100#01", "100#02", "200#AA", "100#03", "300#"].map(f), 1000);
    c.delivered([f("100#01")], 1010, String);
    c.delivered([f("200#AA")], 1030, String); // 100#02 passed over: lost
    c.delivered([f("7FF#FF")], 1040, String); // never sent: unexpected
    c.delivered([f("100#03")], 1050, String);
    assert.deepEqual(c.counts, { sent: 5, delivered: 3, lost: 1, unexpected: 1, pending: 1 });
    c.finish(String);
    assert.equal(c.counts.lost, 2, "the frame still pending at the end is lost");
    assert.equal(c.percentile(50), 30);
    assert.equal(c.percentile(100), 50);
    assert.equal(c.problems.length, 3);
  });

  it("delivery check: repeated identical frames match one for one", () => {
    const c = new DeliveryCheck();
    c.sent(["123#00", "123#00", "123#00"].map(f), 0);
    c.delivered(["123#00", "123#00"].map(f), 5, String);
    assert.deepEqual(c.counts, { sent: 3, delivered: 2, lost: 0, unexpected: 0, pending: 1 });
  });

  it("stops a child together with the processes it started", async () => {
    // sh starts a grandchild (sleep) and prints its pid; stop() must end both.
    const child = startChild("sh", ["-c", "sleep 60 & echo $!; wait"], { name: "test" });
    await waitFor(() => child.recent.length > 0, 20_000, "the grandchild's pid");
    const grandchild = Number(child.recent[0]);
    assert.ok(alive(grandchild));
    await child.stop(500);
    await waitFor(() => !alive(grandchild) || isZombie(grandchild), 20_000, "the grandchild to die");
    assert.equal(child.running, false);
  });

  it("reads broker URLs and mqtt:// bus specs", () => {
    assert.deepEqual(parseBrokerUrl("mqtts://u%40x:p%3Aw@broker:8884?ca=%2Ftmp%2Fca.pem"), {
      url: "mqtts://u%40x:p%3Aw@broker:8884?ca=%2Ftmp%2Fca.pem",
      host: "broker",
      port: 8884,
      tls: true,
      username: "u@x",
      password: "p:w",
      caFile: "/tmp/ca.pem",
    });
    assert.equal(parseBrokerUrl("mqtt://localhost").port, 1883);
    assert.throws(() => parseBrokerUrl("http://x"), /start with mqtt/);
    assert.deepEqual(parseMqttBusSpec("mqtt://localhost:1884/gw7?prefix=fleet"), { broker: "mqtt://localhost:1884", device: "gw7", prefix: "fleet" });
    assert.throws(() => parseMqttBusSpec("mqtt://localhost"), /name one gateway/);
  });
});

function isZombie(pid: number): boolean {
  try {
    return execFileSync("ps", ["-o", "stat=", "-p", String(pid)]).toString().trim().startsWith("Z");
  } catch {
    return true;
  }
}
