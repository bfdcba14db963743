/**
 * The policy's `signals` section (docs/policy.md "Signals"): which signals become sigTable rows, rules merged per
 * signal, deadbands converted to raw, `raw: false` -> sigOnly, accept filters admitting the signal messages, and every
 * refusal named by file:line, key and signal.
 */
import { strict as assert } from "node:assert";
import { resolve } from "node:path";
import { loadDbcFile } from "../../can-db/load";
import { compilePolicy, type CompiledPolicy } from "../../can-db/policy";
import { loadPolicyFile, parsePolicy, PolicyError } from "../../can-db/policy-file";
import { parseDbc } from "../../can-db/dbc-parser";
import { admitsAny } from "../../can-db/policy-filters";
import { rowProblem, tableHash, MAX_SIGNALS } from "../../can-db/signal-table";
import type { Database } from "../../can-db/model";

const ROOT = resolve(__dirname, "../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/policy");
const abs = loadDbcFile(resolve(FIXTURES, "abs.dbc"));

const compile = (text: string, db: Database = abs): CompiledPolicy => compilePolicy(parsePolicy(text, "p.yaml"), db);

function refused(text: string, pattern: RegExp, db: Database = abs) {
  assert.throws(
    () => compile(text, db),
    (e: unknown) => {
      assert.ok(e instanceof PolicyError, `expected a PolicyError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe("policy: signals", () => {
  it("the fixture policy: rows, raw deadband, relPm, sigOnly, filters and hash", () => {
    const c = compilePolicy(loadPolicyFile(resolve(FIXTURES, "abs.signals.policy.yaml")), abs);
    const s = c.settings;
    assert.deepEqual(s.sigTable, [
      // whlspeed_*: factor 0.015625 = 1/64; 0.5 m/s = 32 raw; onChange implied by the deadband; heartbeat 1000
      [0x343, 0, 16, 4, 1, 64, 0, 0, 1000, 32, 0],
      [0x343, 16, 16, 4, 1, 64, 0, 0, 1000, 32, 0],
      [0x343, 32, 16, 4, 1, 64, 0, 0, 1000, 32, 0],
      [0x343, 48, 16, 4, 1, 64, 0, 0, 1000, 32, 0],
      // AY1: (0.000127465, -4.1768) = (raw * 25493 - 835360000) / 200000000; 2 % = 20 per mille; 50 ms
      [0x070, 32, 16, 4, 25493, 200000000, -835360000, 50, 0, 0, 20],
      // BREMSE_52's multiplexer switch (in every frame); its multiplexed signals are skipped with a warning
      [0x542, 0, 8, 0, 1, 1, 0, 0, 0, 0, 0],
    ]);
    assert.deepEqual(s.sigOnly, [0x343]);
    for (const r of s.sigTable!) assert.equal(rowProblem(r), undefined);
    assert.equal(c.signalHash, tableHash(s.sigTable!));
    assert.deepEqual(
      c.signals.map((x) => `${x.index} ${x.message.name}.${x.signal.name}`),
      ["0 BREMSE_33.whlspeed_FL", "1 BREMSE_33.whlspeed_FR", "2 BREMSE_33.whlspeed_RL", "3 BREMSE_33.whlspeed_RR", "4 MM5_10_TX1.AY1", "5 BREMSE_52.Mplx_SW_Info"],
    );
    const filters = s.canFilters.map(([value, mask]) => ({ value, mask }));
    for (const key of [0x140, 0x343, 0x070, 0x542]) assert.ok(admitsAny(filters, key), `0x${key.toString(16)} admitted`);
    assert.ok(!admitsAny(filters, 0x341), "nothing else");
    assert.ok(c.warnings.some((w) => /signals\[2\]: skipped 38 signals of BREMSE_52 .*multiplexed/.test(w)), c.warnings.join("\n"));
  });

  it("a policy without signals prints no signal settings; one with only signals needs no uplink", () => {
    const plain = compile("uplink: [ BREMSE_10 ]");
    assert.equal(plain.settings.sigTable, undefined);
    assert.equal(plain.signalHash, 0);
    const only = compile("signals: [ { message: BREMSE_33, signals: whlspeed_FL, raw: false } ]");
    assert.deepEqual(only.settings.sigTable, [[0x343, 0, 16, 0, 1, 64, 0, 0, 0, 0, 0]]);
    assert.deepEqual(only.settings.canFilters, [[0x343, 0x800007ff]]);
    assert.deepEqual(only.settings.sigOnly, [0x343]);
  });

  it("later entries win per field; an uplinked message with raw: false loses its rate rule and is warned about", () => {
    const c = compile(`
uplink: [ { message: BREMSE_33, interval: 100 } ]
signals:
  - { message: BREMSE_33, signals: [ "whlspeed_F?" ], onChange: true, interval: 20, heartbeat: 500 }
  - { message: BREMSE_33, signals: [ whlspeed_FR ], interval: 40, raw: false }
`);
    assert.deepEqual(c.settings.sigTable, [
      [0x343, 0, 16, 4, 1, 64, 0, 20, 500, 0, 0],
      [0x343, 16, 16, 4, 1, 64, 0, 40, 500, 0, 0],
    ]);
    assert.deepEqual(c.settings.rateRules, []);
    assert.ok(c.warnings.some((w) => /BREMSE_33: signals\[1\] has raw: false/.test(w)), c.warnings.join("\n"));
  });

  it("refuses, by file:line and key, what it cannot extract or does not understand", () => {
    refused(`signals:\n  - { message: BREMSE_52, signals: [ BB_dig1 ] }`, /^p\.yaml:2: signals\[0\]\.signals\[0\]: signal BREMSE_52\.BB_dig1: it is multiplexed/);
    refused(`signals:\n  - { message: BREMSE_33, signals: [ "nope*" ] }`, /^p\.yaml:2: signals\[0\]\.signals\[0\]: 'nope\*' matches no signal of BREMSE_33/);
    refused(`signals:\n  - { message: NOPE }`, /^p\.yaml:2: signals\[0\]\.message: 'NOPE' matches no message/);
    refused(`signals:\n  - { id: 0x7E8 }`, /^p\.yaml:2: signals\[0\]: 0x7E8 is not a message of .*so it has no signals/);
    refused(`signals:\n  - { message: BREMSE_33, relDeadband: 2 }`, /^p\.yaml:2: signals\[0\]\.relDeadband: expected a percentage/);
    refused(`signals:\n  - { message: BREMSE_33, relDeadband: "0.25%" }`, /relDeadband: expected a percentage with at most one decimal/);
    refused(`signals:\n  - { message: BREMSE_33, deadband: 1, onChange: false }`, /^p\.yaml:2: signals\[0\]: a deadband applies to onChange only/);
    refused(`signals:\n  - { message: BREMSE_33, deadband: -1 }`, /signals\[0\]\.deadband: expected a deadband/);
    refused(`signals:\n  - { message: BREMSE_33, heartbeat: fast }`, /signals\[0\]\.heartbeat: expected a heartbeat period/);
    refused(`signals:\n  - { signals: [ x ] }`, /^p\.yaml:2: signals\[0\]: select the message by message \(a name or glob\) or id/);
    refused(`signals:\n  - { message: BREMSE_33, every: 3 }`, /signals\[0\]: unknown key 'every'/);
    refused(`signals: []`, /^p\.yaml:1: signals: the list is empty/);
    const wide = parseDbc(`VERSION ""\nBU_: E\nBO_ 16 W: 8 E\n SG_ F : 0|8@1+ (1,0) [0|0] "" E\n SG_ X : 8|8@1+ (1e-12,0) [0|0] "" E\n SG_ D : 32|32@1- (1,0) [0|0] "" E\nSIG_VALTYPE_ 16 D : 1;\n`);
    refused(`signals:\n  - { message: W, signals: [ X ] }`, /^p\.yaml:2: signals\[0\]\.signals\[0\]: signal W\.X: factor 1e-12 is not an exact fraction/, wide);
    // by glob: skipped and reported, the rest kept
    const c = compile(`signals:\n  - { message: W }`, wide);
    assert.deepEqual(c.settings.sigTable, [[16, 0, 8, 0, 1, 1, 0, 0, 0, 0, 0]]);
    assert.equal(c.warnings.length, 2, c.warnings.join("\n"));
  });

  it(`at most ${MAX_SIGNALS} signals; the error names the count`, () => {
    const sigs = Array.from({ length: 65 }, (_, i) => ` SG_ S${i} : ${(i % 8) * 8}|8@1+ (1,0) [0|0] "" E`);
    const msgs = Array.from({ length: 9 }, (_, m) => `BO_ ${100 + m} M${m}: 8 E\n${sigs.slice(m * 8, m * 8 + 8).join("\n")}`);
    const db = parseDbc(`VERSION ""\nBU_: E\n${msgs.join("\n")}\n`);
    refused(`signals:\n  - { message: "M*" }`, /^p\.yaml:2: signals: 65 signals selected; the gateway's table holds 64/, db);
    assert.equal(compile(`signals:\n  - { message: "M[0-7]" }`, db).settings.sigTable!.length, 64);
  });
});
