/**
 * The ready scenarios of hil/scenarios/, run by the harness against the real firmware bytecode in the DeviceScript VM
 * and real brokers (aedes in-process, mosquitto as a process), exactly as `vgw hil run` runs them; the scenario written
 * to fail must fail naming the frame and the signal; and the board path of the harness, exercised through a stand-in
 * (clearly one): the same simulated gateway, but reached only through a CAN wire (`virtual:` bus) and an external
 * broker, as a rig's board would be.
 *
 * One simulator at a time (fixed devtools ports): the scenarios run one after another; a busy port fails clearly.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadScenario } from "../../hil/scenario";
import { runScenario, type RunOutcome } from "../../hil/runner";
import { openBroker } from "../../host/gateway/broker";
import { openBus } from "../../host/bus";
import { startSimulatedGateway } from "../../host/simulator/gateway";
import { main } from "../../cli/main";

const ROOT = path.join(__dirname, "../../..");
const SCENARIOS = path.join(ROOT, "hil/scenarios");

function explain(o: RunOutcome): string {
  return [o.error ? `run error: ${o.error}` : "", ...o.results.map((r) => `${r.pass ? "ok  " : "FAIL"} ${r.name}: ${r.message}\n      ${r.details.slice(0, 3).join("\n      ")}`)].join("\n");
}

describe("hil scenarios against the firmware in the simulator", function () {
  this.timeout(180_000);
  for (const file of fs.readdirSync(SCENARIOS).filter((f) => f.endsWith(".yaml")).sort()) {
    it(`${file} passes`, async () => {
      const sc = loadScenario(path.join(SCENARIOS, file));
      const o = await runScenario(sc, { target: "sim" });
      assert.ok(o.pass, `${sc.name}:\n${explain(o)}`);
      assert.ok(o.results.length === sc.expectations.length);
    });
  }

  it("a scenario written to fail fails, naming the frame and the signal", async () => {
    const sc = loadScenario(path.join(ROOT, "test/fixtures/hil/wrong-expectations.yaml"));
    const o = await runScenario(sc, { target: "sim" });
    assert.equal(o.error, undefined, o.error);
    assert.equal(o.pass, false);
    const [delivery, cycle, signals] = o.results;
    assert.ok(delivery.pass, explain(o));
    assert.equal(cycle.pass, false);
    assert.match(cycle.message, /intervals outside 10 ± 2 ms; first: 0x1F0 1F0#[0-9A-F]{16} \(batch [0-9a-f]+:\d+ record \d+\): \d+\.\d ms after the previous one/);
    assert.equal(signals.pass, false);
    assert.match(signals.message, /ExampleMessage\.Temperature at 0x1F0 replay #\d+ \(load t=\d+\.\d+ s\): input [\d.]+, broker [\d.]+/);
  });
});

describe("vgw hil run (the command) against the simulator", function () {
  this.timeout(240_000);
  it("exits 1 when a scenario fails, 0 when all pass, and writes JUnit and HTML naming the failure", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-hil-cli-"));
    try {
      const junit = path.join(dir, "junit.xml");
      const html = path.join(dir, "report.html");
      const code = await main(["node", "vgw", "hil", "run", path.join(SCENARIOS, "fd.yaml"), path.join(ROOT, "test/fixtures/hil/wrong-expectations.yaml"), "--junit", junit, "--html", html, "--no-progress"]);
      process.exitCode = undefined;
      assert.equal(code, 1);
      const xml = fs.readFileSync(junit, "utf8");
      assert.equal((xml.match(/<testsuite /g) ?? []).length, 2);
      assert.equal((xml.match(/<failure /g) ?? []).length, 2, xml);
      assert.match(xml, /<failure message="[^"]*first: 0x1F0 1F0#/);
      assert.match(fs.readFileSync(html, "utf8"), /<span id="verdict" class="verdict fail">FAIL<\/span>/);
      assert.equal(await main(["node", "vgw", "hil", "run", path.join(SCENARIOS, "fd.yaml"), "--no-progress"]), 0);
      process.exitCode = undefined;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("hil board target through a stand-in (simulated gateway on a virtual CAN wire, external broker)", function () {
  this.timeout(180_000);
  it("lossless delivery and the downlink allowlist pass through the board path", async () => {
    // The stand-in: the simulated gateway's CAN side bridged to a virtual wire the harness drives as `--can`.
    const broker = await openBroker({ kind: "aedes" });
    try {
      await standIn(broker.url);
    } finally {
      await broker.close();
    }
  });
});

async function standIn(brokerUrl: string): Promise<void> {
  {
    const broker = { url: brokerUrl };
    const gw = await startSimulatedGateway({ broker: broker.url, device: "standin", settings: { canMode: "normal", insecure: true, txAllow: [[0x321, 0xffffffff]], keepAlive: 5 } });
    const wire = await openBus("virtual:hil-board-wire");
    // Bridge loops end when either side closes; a send on a closed side ends them quietly (teardown order).
    const toGateway = (async () => {
      for await (const f of wire) await gw.bus.sendMany([f]);
    })().catch(() => undefined);
    const fromGateway = (async () => {
      for await (const f of gw.bus) await wire.send(f);
    })().catch(() => undefined);
    try {
      for (const file of ["lossless.yaml", "downlink-board.yaml"]) {
        const p = file === "downlink-board.yaml" ? path.join(ROOT, "test/fixtures/hil/downlink-board.yaml") : path.join(SCENARIOS, file);
        const sc = loadScenario(p);
        const o = await runScenario(sc, { target: "board", can: "virtual:hil-board-wire", broker: broker.url, device: "standin" });
        assert.equal(o.record.target, "board");
        assert.ok(o.pass, `${sc.name} (board stand-in):\n${explain(o)}`);
      }
      // Power and controller faults need the sim target: the board target says so instead of pretending.
      const sc = loadScenario(path.join(SCENARIOS, "bus-off.yaml"));
      const o = await runScenario(sc, { target: "board", can: "virtual:hil-board-wire", broker: broker.url, device: "standin" });
      assert.match(o.error ?? "", /needs control of the gateway's CAN controller.*--target sim/s);
    } finally {
      await wire.close();
      await gw.bus.close();
      await gw.stop();
      await Promise.all([toGateway, fromGateway]);
    }
  }
}
