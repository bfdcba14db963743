/**
 * `vgw policy` as a user runs it (`node bin/vgw policy ...`): golden outputs for env, json, --explain and a widened
 * table, and exit codes with clear messages for bad input. Regenerate goldens with VGW_UPDATE_GOLDEN=1 (then review).
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { openBroker } from "../../host/gateway/broker";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(__dirname, "../../..");
const FIX = "test/fixtures/policy";
const GOLDEN = resolve(ROOT, FIX, "golden");

function vgw(args: string[], input = ""): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["bin/vgw", "policy", ...args], { cwd: ROOT, input, timeout: 30_000, encoding: "utf8", env: { ...process.env, VGW_LOG: "info" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function golden(name: string, actual: string) {
  const path = resolve(GOLDEN, name);
  if (process.env.VGW_UPDATE_GOLDEN) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, actual);
  }
  assert.equal(actual, readFileSync(path, "utf8"), `output differs from ${FIX}/golden/${name}`);
}

const DBC = ["--dbc", `${FIX}/abs.dbc`];
const POLICY = `${FIX}/abs.policy.yaml`;

describe("policy: vgw policy command", function () {
  this.timeout(60_000);

  it("env lines for .env.defaults (golden)", () => {
    const r = vgw([...DBC, POLICY]);
    assert.equal(r.code, 0, r.stderr);
    golden("abs.env", r.stdout);
    assert.equal(r.stderr, "");
  });

  it("json (golden), the same values as env", () => {
    const r = vgw([...DBC, POLICY, "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    golden("abs.json", r.stdout);
    const env = vgw([...DBC, POLICY]).stdout;
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const [k, v] of Object.entries(json)) assert.ok(env.includes(`\n${k}=${JSON.stringify(v)}\n`), k);
  });

  it("--explain: one row per message, kept/dropped, interval, on-change, filter, transmit (golden)", () => {
    const r = vgw([...DBC, POLICY, "--explain"]);
    assert.equal(r.code, 0, r.stderr);
    golden("abs.explain.txt", r.stdout);
  });

  it("signals: env with sigTable/sigOnly and the hash comment, json, --explain with the signal table (golden)", () => {
    const policy = `${FIX}/abs.signals.policy.yaml`;
    const env = vgw([...DBC, policy]);
    assert.equal(env.code, 0, env.stderr);
    golden("abs.signals.env", env.stdout);
    assert.match(env.stderr, /signals\[2\]: skipped 38 signals of BREMSE_52/);
    const json = vgw([...DBC, policy, "--format", "json"]);
    golden("abs.signals.json", json.stdout);
    const explain = vgw([...DBC, policy, "--explain"]);
    golden("abs.signals.explain.txt", explain.stdout);
  });

  it("J1939 PGN groups: env and --explain (golden)", () => {
    const args = ["--dbc", `${FIX}/j1939.dbc`, `${FIX}/j1939.policy.yaml`];
    const env = vgw(args);
    assert.equal(env.code, 0, env.stderr);
    golden("j1939.env", env.stdout);
    const explain = vgw([...args, "--explain"]);
    assert.equal(explain.code, 0, explain.stderr);
    golden("j1939.explain.txt", explain.stdout);
  });

  it("a table too small: exit 1 with the reason; --allow-superset widens and lists the extra IDs on stderr (golden)", () => {
    const tight = vgw([...DBC, POLICY, "--max-filters", "2"]);
    assert.equal(tight.code, 1);
    assert.equal(tight.stdout, "");
    assert.match(tight.stderr, /^vgw: canFilters: the 8 selected IDs need 5 exact \[value, mask\] filters; the firmware holds 2\./);
    const wide = vgw([...DBC, POLICY, "--max-filters", "2", "--allow-superset"]);
    assert.equal(wide.code, 0, wide.stderr);
    golden("abs.superset.env", wide.stdout);
    golden("abs.superset.stderr.txt", wide.stderr);
    assert.match(wide.stderr, /^canFilters: 5 exact filters do not fit; masks widened/);
    const explain = vgw([...DBC, POLICY, "--max-filters", "2", "--allow-superset", "--explain"]);
    assert.equal(explain.code, 0, explain.stderr);
    golden("abs.superset.explain.txt", explain.stdout);
  });

  it("--publish with no gateway answering: exit 1 after --timeout, naming what is missing", async () => {
    const broker = await openBroker({ kind: "aedes" });
    try {
      // async spawn: the broker lives in this process and must keep serving
      const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((done) => {
        const child = spawn(process.execPath, ["bin/vgw", "policy", ...DBC, POLICY, "--publish", `${broker.url}/vgw/nobody`, "--timeout", "1500"], { cwd: ROOT });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          done({ code, stdout, stderr });
        });
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /vgw: no result from vgw\/nobody within 1500 ms for: filter, rate \(is the gateway online\?\)/);
    } finally {
      await broker.close();
    }
  });

  it("a bad policy file: exit 1, file:line: key: reason", () => {
    const r = vgw([...DBC, `${FIX}/bad-interval.policy.yaml`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `vgw: ${FIX}/bad-interval.policy.yaml:6: uplink[1].interval: expected a minimum interval in ms (an integer 0..3600000), got "fast"\n`);
  });

  it("the policy from stdin (-): same values; errors name <stdin>", () => {
    const fromFile = vgw([...DBC, POLICY, "--format", "json"]);
    const fromStdin = vgw([...DBC, "-", "--format", "json"], readFileSync(resolve(ROOT, POLICY), "utf8"));
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, fromFile.stdout);
    const bad = vgw([...DBC, "-"], "uplink:\n  - NOPE_*\n");
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, "vgw: <stdin>:2: uplink[0].message: 'NOPE_*' matches no message in test/fixtures/policy/abs.dbc\n");
  });

  it("a missing file: exit 1 naming it", () => {
    const r = vgw([...DBC, `${FIX}/nope.yaml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read policy .*nope\.yaml: no such file/);
  });

  it("usage errors exit 2", () => {
    assert.equal(vgw([POLICY]).code, 2, "--dbc is required");
    const format = vgw([...DBC, POLICY, "--format", "yaml"]);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format must be env or json/);
    assert.equal(vgw([...DBC, POLICY, "--max-filters", "17"]).code, 2);
    const publish = vgw([...DBC, POLICY, "--publish", "mqtt://127.0.0.1:1"]);
    assert.equal(publish.code, 2);
    assert.match(publish.stderr, /name the device/);
  });

  it("--help shows examples", () => {
    const r = vgw(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}vgw policy --dbc abs\.dbc abs\.policy\.yaml/);
  });
});
