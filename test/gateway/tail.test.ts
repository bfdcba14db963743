/**
 * `vgw tail` as a user runs it (the built CLI as a child process) against a real mosquitto with TLS and a password:
 * frames and signals decoded with a DBC, gaps, duplicates and status changes reported, jsonl events, bad credentials
 * refused with exit 1, a bad option with exit 2. Batches are published the way the firmware does (docs/protocol.md).
 */
import { strict as assert } from "assert";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { encode } from "cbor-x";
import { parseFrame } from "../../frame/frame";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { encodeBatch } from "../../host/gateway/uplink";
import { startSecureMosquitto, type SecureMosquitto } from "../support/mosquitto";
import { sleep } from "../support/wait";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { compilePolicy } from "../../can-db/policy";
import { loadPolicyFile } from "../../can-db/policy-file";
import { loadDbcFile } from "../../can-db/load";
import { encodeSignalBatch, SignalTable } from "../../host/gateway/signals";

const CLI = join(__dirname, "../../cli/main.js");
const DBC = join(__dirname, "../../../test/fixtures/dbc/motohawk.dbc");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `whileRunning` gets to act once tail has subscribed (it says so on stderr). Bounded by 20 s. */
function runTail(args: string[], whileRunning?: () => Promise<void>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "tail", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let acted = false;
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!acted && whileRunning && stderr.includes("listening on")) {
        acted = true;
        whileRunning().catch(reject);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("vgw tail (mosquitto with TLS and a password)", function () {
  this.timeout(60_000);
  let broker: SecureMosquitto;
  before(async () => {
    broker = await startSecureMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  const publishAll = async (items: Array<{ topic: string; payload: Uint8Array; retain?: boolean }>): Promise<void> => {
    const client = await connectBroker(parseBrokerUrl(broker.tlsUrl));
    for (const i of items) await client.publishAsync(i.topic, Buffer.from(i.payload), { qos: 1, retain: i.retain ?? false });
    await client.endAsync();
  };
  const frames = (texts: string[], t: number) => texts.map((x) => ({ ...parseFrame(x), t }));

  it("prints frames with signals, and reports gaps, duplicates and status changes on stderr", async () => {
    const run = await runTail(["--broker", broker.tlsUrl, "--device", "gw1", "--dbc", DBC, "--count", "3"], async () => {
      await publishAll([
        { topic: "vgw/gw1/status", payload: encode({ v: 1, online: true, dev: "gw1", fw: "0.1.0", b: 0xabc, up: 1000, seq: 0, bus: "error-active", drop: { outbox: 0 }, rc: 0 }) },
        { topic: "vgw/gw1/frames", payload: encodeBatch(0xabc, 0, frames(["1F0#C006E00000000000"], 1.5)) },
        { topic: "vgw/gw1/frames", payload: encodeBatch(0xabc, 0, frames(["1F0#C006E00000000000"], 1.5)) },
        { topic: "vgw/gw1/frames", payload: encodeBatch(0xabc, 2, frames(["123#01", "123#02"], 2)) },
      ]);
    });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^\(1\.500\) gw1 1F0#C006E00000000000 {2}ExampleMessage Temperature=250\.55 degK AverageRadius=3\.2 m Enable=Enabled$/); // canmatrix decodes the same; units and value names as dump prints them
    assert.equal(lines[1], "(2.000) gw1 123#01");
    assert.match(run.stderr, /gw1: online, fw 0\.1\.0, boot abc/);
    assert.match(run.stderr, /duplicate batch 0 of boot abc dropped/);
    assert.match(run.stderr, /GAP: batches 1\.\.1 of boot abc missing \(1\)/);
  });

  it("writes jsonl with events in the stream", async () => {
    const run = await runTail(["--broker", broker.tlsUrl, "--device", "gw2", "--format", "jsonl", "--count", "1"], async () => {
      await publishAll([
        { topic: "vgw/gw2/status", payload: encode({ v: 1, online: false, dev: "gw2", b: 5 }) },
        { topic: "vgw/gw2/frames", payload: Uint8Array.from([0xff]) },
        { topic: "vgw/gw2/frames", payload: encodeBatch(5, 0, frames(["12345678#R2"], 3)) },
      ]);
    });
    assert.equal(run.code, 0, run.stderr);
    const objs = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(objs.map((o) => o.event ?? "frame"), ["status", "malformed", "frame"]);
    assert.equal(objs[0].online, false);
    assert.deepEqual(objs[2], { t: 3, bus: "gw2", id: 0x12345678, ext: true, frame: "12345678#R2", boot: 5, seq: 0 });
  });

  it("exits 1 with a clear message when the broker refuses the password, 2 on a bad option", async () => {
    const bad = broker.tlsUrl.replace(broker.password, "wrong");
    const run = await runTail(["--broker", bad, "--duration", "5"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /refused the connection/);
    const usage = await runTail(["--broker", broker.tlsUrl, "--format", "xml"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--format must be text or jsonl/);
    await sleep(10);
  });

  describe("--signals", () => {
    const FIX = join(__dirname, "../../../test/fixtures/policy");
    const sigArgs = ["--signals", "--policy", join(FIX, "abs.signals.policy.yaml"), "--dbc", join(FIX, "abs.dbc")];
    const compiled = compilePolicy(loadPolicyFile(join(FIX, "abs.signals.policy.yaml")), loadDbcFile(join(FIX, "abs.dbc")));
    const table = SignalTable.fromPolicy(compiled);
    const status = (sh: number) => encode({ v: 1, online: true, dev: "gw2", fw: "0.1.0", b: 0x5, up: 1000, seq: 0, sh, bus: "error-active", rc: 0 });

    it("prints the decoded samples with names, values and units (table from --policy/--dbc and from --table), duplicates dropped", async () => {
      const samples = [
        { i: 0, t: 1500, raw: 800 },
        { i: 4, t: 1500, raw: 32768 },
        { i: 1, t: 1520, raw: 65535 },
      ];
      const run = await runTail(["--broker", broker.tlsUrl, "--device", "gw2", ...sigArgs, "--count", "3"], async () => {
        const batch = encodeSignalBatch(0x5, 0, samples, table);
        await publishAll([
          { topic: "vgw/gw2/status", payload: status(table.hash) },
          { topic: "vgw/gw2/signals", payload: batch },
          { topic: "vgw/gw2/signals", payload: batch },
        ]);
      });
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trim().split("\n");
      assert.deepEqual(lines, [
        "(1.500) gw2 BREMSE_33.whlspeed_FL = 12.5 m/s (raw 800)",
        `(1.500) gw2 MM5_10_TX1.AY1 = ${32768 * 0.000127465 - 4.1768} g (raw 32768)`,
        `(1.520) gw2 BREMSE_33.whlspeed_FR = ${65535 / 64} m/s (raw 65535)`,
      ]);
      assert.doesNotMatch(run.stderr, /hash/);

      const dir = mkdtempSync(join(tmpdir(), "vgw-tail-"));
      const tablePath = join(dir, "gw2.json");
      writeFileSync(tablePath, JSON.stringify(compiled.settings));
      const json = await runTail(["--broker", broker.tlsUrl, "--device", "gw2", "--signals", "--table", tablePath, "--format", "jsonl", "--count", "1"], async () => {
        await publishAll([{ topic: "vgw/gw2/signals", payload: encodeSignalBatch(0x6, 0, [{ i: 5, t: 7, raw: 3 }], table) }]);
      });
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout.trim().split("\n").pop()!), { t: 0.007, bus: "gw2", i: 5, signal: "#5 0x542 0|8", value: 3, raw: 3, boot: 6, sseq: 0 });
    });

    it("refuses a gateway running another table: status sh and batch h, exit 1 with a clear message", async () => {
      const other = new SignalTable(table.rows.slice(1));
      const run = await runTail(["--broker", broker.tlsUrl, "--device", "gw3", ...sigArgs, "--duration", "3"], async () => {
        await publishAll([
          { topic: "vgw/gw3/status", payload: status(other.hash) },
          { topic: "vgw/gw3/signals", payload: encodeSignalBatch(0x5, 0, [{ i: 0, t: 1, raw: 1 }], other) },
        ]);
      });
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /gateway gw3 has signal table hash 0x[0-9a-f]{8}, the table here hashes to 0x[0-9a-f]{8}: the gateway runs a different sigTable/);
      assert.match(run.stderr, /vgw\/gw3\/signals: signal batch refused: signal batch \(boot 5, seq 0\): the batch has signal table hash/);
      assert.match(run.stderr, /1 refused \(1 for another table\)/);
    });

    it("--signals without a table is a usage error", async () => {
      const run = await runTail(["--broker", broker.tlsUrl, "--signals"]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /--signals needs the table the gateway runs/);
    });
  });
});
