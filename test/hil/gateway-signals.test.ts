/**
 * The `signals` expectation with `from: gateway` over hand-built run records: `P/signals` samples against the DBC
 * decode of the replayed frames (in order, within tolerance) and the table's rules between samples (minimum
 * interval, deadband, heartbeat); and the scenario's `gateway.signals` policy compiled into the deployed settings.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { parseFrame } from "../../frame/frame";
import { checkAll } from "../../hil/checks";
import { emptyRecord, type RunRecord } from "../../hil/record";
import { parseScenario, ScenarioError } from "../../hil/scenario";
import { firmwareSettings } from "../../hil/target";
import { dbcDecoder } from "../../hil/runner";

const FIXTURES = path.resolve(__dirname, "../../../test/fixtures/policy");
const FILE = path.join(FIXTURES, "signals-scenario.yaml");
const scenario = (extra = "", gateway = "signals: abs.signals.policy.yaml") =>
  parseScenario(`dbc: abs.dbc\ngateway: { ${gateway} }\nsteps: []\nexpect: [{ signals: { from: gateway, messages: [BREMSE_33]${extra} } }]\n`, FILE);
const decode = dbcDecoder(path.join(FIXTURES, "abs.dbc"));

/** BREMSE_33 frames with whlspeed_FL = `fl` raw (the other wheels 0), replayed every 10 ms. */
function run(fl: number[]): RunRecord {
  const rec = emptyRecord("t", "unit", 0);
  fl.forEach((v, i) => {
    const data = Buffer.alloc(8);
    data.writeUInt16LE(v, 0);
    rec.replayed.push({ frame: parseFrame(`343#${data.toString("hex")}`), index: i, trace: "bus", traceT: i * 0.01, dueAt: i * 10, sentAt: i * 10 });
  });
  return rec;
}

/** What the gateway published: [signal index, gateway ms, raw]. */
function publish(rec: RunRecord, samples: Array<[number, number, number]>): RunRecord {
  const sc = scenario();
  const t = sc.gateway.signals!.table;
  samples.forEach(([i, ms, raw], k) => rec.signals.push({ message: "BREMSE_33", signal: t.info[i]!.signal, value: t.physical(i, raw), raw, i, deviceT: ms, receivedAt: ms + 5, boot: 1, seq: k }));
  return rec;
}

const wheels0 = (ms = 0): Array<[number, number, number]> => [1, 2, 3].map((i) => [i, ms, 0]);

describe("hil: signals from the gateway", () => {
  it("the scenario's gateway.signals policy becomes sigTable/sigOnly in the deployed settings", () => {
    const sc = scenario();
    const s = firmwareSettings(sc.gateway);
    assert.equal((s.sigTable as number[][]).length, 6);
    assert.deepEqual(s.sigOnly, [0x343]);
    assert.equal(sc.gateway.signals!.table.name(0), "BREMSE_33.whlspeed_FL");
  });

  it("passes when every sample is an input value, in order, and changes exceed the deadband (32 raw)", () => {
    const rec = publish(run([0, 10, 40, 45, 100, 100]), [[0, 0, 0], ...wheels0(), [0, 20, 40], [0, 40, 100]]);
    const r = checkAll(rec, scenario(), decode).results[0];
    assert.equal(r.pass, true, r.message);
    assert.match(r.message, /6 samples of 4 signals agree/);
  });

  it("a heartbeat may repeat an unchanged value once it is due (1000 ms)", () => {
    const rec = publish(run([0, 0, 5]), [[0, 0, 0], ...wheels0(), [0, 1000, 5]]);
    const r = checkAll(rec, scenario(), decode).results[0];
    assert.equal(r.pass, true, r.message);
  });

  it("fails on a value no replayed frame had, naming the signal, value and batch", () => {
    const rec = publish(run([0, 10, 40]), [[0, 0, 0], ...wheels0(), [0, 20, 41]]);
    const r = checkAll(rec, scenario(), decode).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /BREMSE_33\.whlspeed_FL: sample 0\.640625 \(raw 41, gateway t 20 ms, batch 1:4\) matches no later replayed input/);
  });

  it("fails on a change within the deadband before the heartbeat is due", () => {
    const rec = publish(run([0, 10, 40]), [[0, 0, 0], ...wheels0(), [0, 10, 10]]);
    const r = checkAll(rec, scenario(), decode).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /BREMSE_33\.whlspeed_FL at gateway t 10 ms \(batch 1:4\): raw 0 -> 10 is within the deadband 32/);
  });

  it("fails when a signal with input was never published; a tolerance admits values near the input", () => {
    const rec = publish(run([0, 10]), [[0, 0, 0]]);
    const r = checkAll(rec, scenario(), decode).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /BREMSE_33\.whlspeed_FR: 2 input frames, no sample published/);
    const near = publish(run([0, 64]), [[0, 0, 0], ...wheels0(), [0, 10, 65]]);
    assert.equal(checkAll(near, scenario(", tolerance: 0.02"), decode).results[0].pass, true);
  });

  it("scenario errors name the key: no table, blocked by the filters, a hand-written sigTable", () => {
    assert.throws(() => scenario("", "keepAlive: 2"), (e: unknown) => e instanceof ScenarioError && /expect\[0\]\.signals\.from: signals from the gateway need a signal table/.test(e.message));
    assert.throws(() => scenario("", "signals: abs.signals.policy.yaml, filters: [0x140]"), /gateway\.signals: BREMSE_33 has signals in the table but the scenario's filters do not admit it/);
    assert.throws(() => scenario("", "sigTable: []"), /gateway\.sigTable: give the signal table as 'signals: <policy\.yaml>'/);
  });
});
