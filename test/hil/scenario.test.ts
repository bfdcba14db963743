/**
 * Scenario loader: good files load into checked values; bad files fail with file, line and the key at fault.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseScenario, loadScenario, ScenarioError } from "../../hil/scenario";
import { main } from "../../cli/main";
import { log } from "../../host/log";

describe("hil scenario loader", () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-hil-scn-"));
    fs.writeFileSync(path.join(dir, "drive.log"), "(0.000000) can0 1F0#0102030405060708\n");
    fs.writeFileSync(path.join(dir, "car.dbc"), 'VERSION ""\n');
    file = path.join(dir, "s.yaml");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const GOOD = `name: good one
dbc: car.dbc
traces:
  drive: drive.log
  load: { synthetic: { rate: 4000, duration: 2s } }
gateway:
  filters: [{ id: 0x1F0, mask: 0x7FF }, 0x200]
  minInterval: { 0x1F0: 100ms }
  onChange: [0x300]
  allow: [{ id: 0x321, rate: 10 }]
  prefix: vgw/test
steps:
  - replay: drive
    speed: 10
  - wait: 1.5s
  - transmit: 321#0102
    as: ok
  - link: slow
    bytesPerSecond: 2000
  - broker: restart
  - can: bus-off
expect:
  - delivery: {}
  - signals: { tolerance: 0.5 }
  - latency: { p99: 200ms }
  - cycle: { id: 0x1F0, period: 100ms, tolerance: 10ms }
  - command: { ref: ok, outcome: transmitted, within: 500ms }
  - status: { counters: { rx: replayed, dropped: 0 } }
`;

  function fails(text: string, line: number, key: string, reason: RegExp): void {
    assert.throws(
      () => parseScenario(text, file),
      (e: unknown) => {
        assert.ok(e instanceof ScenarioError, `expected ScenarioError, got ${String(e)}`);
        assert.equal(e.line, line, `line of: ${e.message}`);
        assert.equal(e.key, key, `key of: ${e.message}`);
        assert.match(e.reason, reason);
        assert.ok(e.message.startsWith(`${file}:${line}: `), e.message);
        return true;
      },
    );
  }

  it("loads a complete scenario into checked values", () => {
    const s = parseScenario(GOOD, file);
    assert.equal(s.name, "good one");
    assert.equal(s.dbc, path.join(dir, "car.dbc"));
    assert.equal(s.traces.get("drive")!.path, path.join(dir, "drive.log"));
    assert.deepEqual(s.traces.get("load")!.synthetic!.rate, 4000);
    assert.equal(s.traces.get("load")!.synthetic!.durationMs, 2000);
    // compiled into the firmware's settings: [value, mask] over frame keys, bit 31 fixing the kind
    assert.deepEqual(s.gateway.settings, {
      canFilters: [
        [0x1f0, 0x800007ff],
        [0x200, 0x9fffffff],
      ],
      rateRules: [
        [0x1f0, 100, 0],
        [0x300, 0, 1],
      ],
      txAllow: [[0x321, 0xffffffff]],
      txRate: 10,
    });
    assert.deepEqual(s.gateway.extra, { prefix: "vgw/test" });
    assert.deepEqual(
      s.steps.map((x) => x.kind),
      ["replay", "wait", "transmit", "link", "broker", "can"],
    );
    assert.equal(s.steps[1].kind === "wait" && s.steps[1].ms, 1500);
    const tx = s.steps[2];
    assert.ok(tx.kind === "transmit" && tx.frame.id === 0x321 && tx.ref === "ok" && tx.origin.line === 16);
    assert.deepEqual(
      s.expectations.map((x) => x.kind),
      ["delivery", "signals", "latency", "cycle", "command", "status"],
    );
    assert.equal(s.expectations[0].origin.line, 23);
  });

  it("names a YAML syntax error's line", () => {
    fails("name: x\nsteps: [\n", 3, "", /YAML syntax/);
  });

  it("names an unknown top-level key", () => {
    fails("name: x\ntarget: sim\nstpes: []\n", 3, "stpes", /unknown key .*steps/);
  });

  it("names an unknown step kind with its index", () => {
    fails("steps:\n  - wait: 1s\n  - sleep: 2s\nexpect: [{ delivery: {} }]\n", 3, "steps[1]", /expected one of: replay, wait/);
  });

  it("rejects a replay of a trace that is not declared", () => {
    fails("traces: { drive: drive.log }\nsteps:\n  - replay: driv\nexpect: [{ delivery: {} }]\n", 3, "steps[0].replay", /no trace named 'driv'.*drive/);
  });

  it("rejects a missing trace file", () => {
    fails("traces:\n  drive: nope.log\nsteps: []\nexpect: []\n", 2, "traces.drive", /file not found/);
  });

  it("rejects a bad duration", () => {
    fails("steps:\n  - wait: 5 parsecs\nexpect: []\n", 2, "steps[0].wait", /duration/);
  });

  it("rejects a bad frame in a transmit step", () => {
    fails("steps:\n  - transmit: 9999#00\nexpect: []\n", 2, "steps[0].transmit", /3 \(11-bit\) or 8/);
  });

  it("rejects an unknown key inside a step", () => {
    fails("traces: { drive: drive.log }\nsteps:\n  - replay: drive\n    sped: 10\nexpect: []\n", 4, "steps[0].sped", /unknown key/);
  });

  it("rejects 'slow' without a rate", () => {
    fails("steps:\n  - link: slow\nexpect: []\n", 2, "steps[0]", /missing 'bytesPerSecond'/);
  });

  it("loads 'can: report-loss' with its frame count; a count on a fault that loses none is refused", () => {
    const s = parseScenario("steps:\n  - can: report-loss\n    frames: 20\nexpect: []\n", file);
    assert.deepEqual({ ...s.steps[0], origin: undefined }, { kind: "can", fault: "report-loss", frames: 20, origin: undefined });
    fails("steps:\n  - can: bus-off\n    frames: 3\nexpect: []\n", 3, "steps[0].frames", /only 'can: overflow' and 'can: report-loss'/);
  });

  it("rejects an out-of-range CAN ID in the gateway filters", () => {
    fails("gateway:\n  filters:\n    - id: 0x40000000x\nsteps: []\nexpect: []\n", 3, "gateway.filters[0].id", /0x40000000 is beyond the 29-bit ID range/);
    fails("gateway:\n  filters:\n    - id: 0x1G0\nsteps: []\nexpect: []\n", 3, "gateway.filters[0].id", /expected a CAN ID \(0x123 for 11 bits, 0x123x for 29 bits\)/);
  });

  it("reads 29-bit IDs only when written so (0x123x or ext: true), never from the ID's size", () => {
    const s = parseScenario(
      [
        "traces:",
        "  load: { synthetic: { rate: 100, duration: 1s, ids: [0x123, 0x123x, { id: 0x7FF, ext: true }, 18FEF100x], hold: { 0x123x: 4 } } }",
        "gateway:",
        "  filters: [0x123x, { id: 0x18FEF100, mask: 0x1FFFFF00, ext: true }, { id: 0x0F0, mask: 0x0F0 }]",
        "  minInterval: { 0x123x: 50ms, 0x18FEF1AAx: 100ms }",
        "  onChange: [0x123, { id: 0x456, ext: true }]",
        "  allow: [{ id: 0x321x, rate: 5 }, { id: 0x321, ext: true }]",
        "steps: []",
        "expect:",
        "  - delivery: { ids: [0x123x] }",
        "  - cycle: { id: 0x7FFx, period: 10ms, tolerance: 1ms }",
        "  - cycle: { id: 0x7FF, ext: true, period: 10ms, tolerance: 1ms }",
      ].join("\n"),
      file,
    );
    const load = s.traces.get("load")!.synthetic!;
    assert.deepEqual(load.keys, [0x123, 0x80000123, 0x800007ff, 0x98fef100]);
    assert.deepEqual([...load.hold], [[0x80000123, 4]]);
    assert.deepEqual(s.gateway.settings.canFilters, [
      [0x80000123, 0x9fffffff],
      [0x98fef100, 0x9fffff00],
      [0x0f0, 0x800000f0],
    ]);
    assert.deepEqual(s.gateway.settings.rateRules, [
      [0x80000123, 50, 0],
      [0x98fef1aa, 100, 0],
      [0x123, 0, 1],
      [0x80000456, 0, 1],
    ]);
    assert.deepEqual(s.gateway.settings.txAllow, [
      [0x80000321, 0xffffffff],
      [0x80000321, 0xffffffff],
    ]);
    const [delivery, cycle1, cycle2] = s.expectations;
    assert.ok(delivery.kind === "delivery" && delivery.ids[0].value === 0x80000123);
    assert.ok(cycle1.kind === "cycle" && cycle1.key === 0x800007ff);
    assert.ok(cycle2.kind === "cycle" && cycle2.key === 0x800007ff);
  });

  it("rejects an ID beyond 11 bits written without its kind, and a kind written twice two ways", () => {
    fails("gateway:\n  onChange: [0x18FEF100]\nsteps: []\nexpect: []\n", 2, "gateway.onChange[0]", /0x18FEF100 is beyond the 11-bit ID range \(0x7FF\): write 0x18FEF100x for a 29-bit ID/);
    fails("gateway:\n  minInterval: { 0x800: 10ms }\nsteps: []\nexpect: []\n", 2, "gateway.minInterval.2048", /write 0x800x/);
    fails("gateway:\n  allow: [{ id: 0x321x, ext: false }]\nsteps: []\nexpect: []\n", 2, "gateway.allow[0].id", /written as a 29-bit ID, but ext is false/);
  });

  it("rejects more filters or rate rules than the firmware holds, and a transmit rate beyond its range", () => {
    fails("gateway:\n  allow: [{ id: 0x321, rate: 5000 }]\nsteps: []\nexpect: []\n", 2, "gateway.allow[0].rate", /at most 1000 frames\/s/);
    const ids = Array.from({ length: 17 }, (_, i) => `0x${(0x100 + i).toString(16)}`).join(", ");
    fails(`gateway:\n  filters: [${ids}]\nsteps: []\nexpect: []\n`, 2, "gateway.filters", /17 filters; the firmware holds 16/);
    const rules = Array.from({ length: 33 }, (_, i) => `0x${(0x100 + i).toString(16)}`).join(", ");
    fails(`gateway:\n  onChange: [${rules}]\nsteps: []\nexpect: []\n`, 2, "gateway", /33 IDs with minInterval or onChange; the firmware holds 32 rules/);
  });

  it("rejects a command expectation without its transmit step", () => {
    fails("steps: []\nexpect:\n  - command: { ref: nope, outcome: refused }\n", 3, "expect[0].command", /no transmit step is named 'nope'/);
  });

  it("rejects signal checks without a DBC", () => {
    fails("steps: []\nexpect:\n  - signals: {}\n", 3, "expect[0].signals", /need a 'dbc'/);
  });

  it("rejects a scenario without expectations", () => {
    fails("steps: []\n", 1, "", /missing 'expect'/);
  });

  it("rejects an unknown status quantity", () => {
    fails("steps: []\nexpect:\n  - status:\n      counters: { rx: everything }\n", 4, "expect[0].status.counters.rx", /replayed, forwarded/);
  });

  it("reports an unreadable file by name", () => {
    assert.throws(() => loadScenario(path.join(dir, "missing.yaml")), /missing\.yaml:0: cannot read/);
  });

  it("vgw hil run exits 2 on a bad scenario file, naming file, line and key, before running anything", async () => {
    const bad = path.join(dir, "bad.yaml");
    fs.writeFileSync(bad, "steps:\n  - wait: 1s\n  - link: sever\nexpect: []\n");
    const lines: string[] = [];
    const sink = log.sink;
    log.sink = (l) => lines.push(l);
    try {
      fs.writeFileSync(file, GOOD);
      assert.equal(await main(["node", "vgw", "hil", "run", file, bad]), 2);
    } finally {
      log.sink = sink;
      process.exitCode = undefined;
    }
    assert.ok(lines.some((l) => l.includes(`${bad}:3: steps[1].link: expected one of: pass, drop, stall, slow, reset, got "sever"`)), lines.join("\n"));
  });

  it("loads every ready scenario shipped in hil/scenarios", () => {
    const scenarios = path.join(__dirname, "../../../hil/scenarios");
    const files = fs.readdirSync(scenarios).filter((f) => f.endsWith(".yaml"));
    assert.ok(files.length > 0, "no scenarios found");
    for (const f of files) loadScenario(path.join(scenarios, f));
  });
});
