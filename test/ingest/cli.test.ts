/**
 * `vgw ingest` and `vgw export` as a user runs them (the built CLI as a child process): a real run against an
 * in-process broker that SIGINT ends with a summary and exit 0, an export of what it stored, and the usage errors
 * (exit 2) and runtime errors (exit 1) of both commands.
 */
import { strict as assert } from "assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { waitFor, within } from "../support/wait";
import { batchesOf, mixedFrames } from "./support";

const CLI = join(__dirname, "../../cli/main.js");

function vgw(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("vgw ingest / vgw export (CLI)", function () {
  this.timeout(60_000);
  let broker: HilBroker | undefined;
  const dir = mkdtempSync(join(tmpdir(), "vgw-ingest-cli-"));
  after(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ingests until SIGINT, prints a summary, and exports what it stored", async () => {
    broker = await openBroker({ kind: "aedes" });
    const store = join(dir, "fleet.duckdb");
    const child = spawn(process.execPath, [CLI, "ingest", "--broker", broker.url, "--store", store, "--device", "gw1", "--progress", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(() => stderr.includes("-> DuckDB"), 20_000, () => `ingest to subscribe (${stderr})`);
      const client = await connectBroker(parseBrokerUrl(broker.url));
      const frames = mixedFrames(120);
      for (const b of batchesOf("gw1", 7, frames, 40)) await client.publishAsync(b.topic, Buffer.from(b.payload), { qos: 1 });
      await client.publishAsync("vgw/gw2/frames", Buffer.from(batchesOf("gw2", 7, frames, 40)[0].payload), { qos: 1 }); // not in --device
      await client.endAsync();
      await new Promise((r) => setTimeout(r, 500));
      child.kill("SIGINT");
      assert.equal(await within(exited, 20_000, "ingest to exit on SIGINT"), 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    assert.equal(stdout, "", "ingest writes nothing on stdout");
    assert.match(stderr, /ingest: 120 frames in 3 batches stored/);
    const out = join(dir, "gw1.log");
    const exp = vgw(["export", "--store", store, "--device", "gw1", out]);
    assert.equal(exp.status, 0, exp.stderr);
    assert.match(exp.stderr, /export: 120 frames of gw1/);
    assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 120);
    const none = vgw(["export", "--store", store, "--device", "gw2", join(dir, "gw2.log")]);
    assert.equal(none.status, 0);
    assert.match(none.stderr, /no frames of device 'gw2'/);
  });

  it("exits 2 on usage errors and 1 on runtime errors, with help and examples", () => {
    const help = vgw(["ingest", "--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Examples:/);
    assert.match(vgw(["export", "--help"]).stdout, /Examples:/);
    assert.equal(vgw(["ingest", "--store", "x.duckdb"]).status, 2, "missing --broker");
    const badUrl = vgw(["ingest", "--broker", "http://x", "--store", join(dir, "a.duckdb")]);
    assert.equal(badUrl.status, 2);
    assert.match(badUrl.stderr, /mqtt:\/\//);
    assert.equal(vgw(["ingest", "--broker", "mqtt://127.0.0.1:1", "--store", join(dir, "a.duckdb"), "--group", "a/b"]).status, 2);
    assert.equal(vgw(["export", "--store", join(dir, "a.duckdb"), "--device", "gw1", join(dir, "out.xyz")]).status, 2);
    assert.equal(vgw(["export", "--store", join(dir, "a.duckdb"), "--device", "gw1", "--from", "yesterday", join(dir, "o.log")]).status, 2);
    const down = vgw(["export", "--store", "postgres://nobody@127.0.0.1:1/none", "--device", "gw1", join(dir, "o.log")]);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /cannot connect/);
  });
});
