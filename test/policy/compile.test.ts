/**
 * The policy compiler (can-db/policy.ts) on real DBCs: selection by name, glob, sender and ID, downsampling from
 * GenMsgCycleTime, exclusion, transmit allowlist, table limits, widening reports; and every way a policy file can be
 * wrong, each named by file:line and key.
 */
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadDbcFile } from "../../can-db/load";
import { compilePolicy, pgnFilter, type CompiledPolicy } from "../../can-db/policy";
import { MAX_FILTERS, MAX_RULES } from "../../can-db/gateway-settings";
import { j1939Pgn, makeJ1939Id } from "../../can-db/j1939";
import { loadPolicyFile, parsePolicy, PolicyError } from "../../can-db/policy-file";
import { admitsAny, type KeyFilter } from "../../can-db/policy-filters";
import { frameKey } from "../../can-db/frame-key";
import { VgwError } from "../../frame/errors";
import type { Database } from "../../can-db/model";

const ROOT = resolve(__dirname, "../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/policy");
const abs = loadDbcFile(resolve(FIXTURES, "abs.dbc"));
const vehicle = loadDbcFile(resolve(FIXTURES, "vehicle.dbc"));
const j1939 = loadDbcFile(resolve(FIXTURES, "j1939.dbc"));

function compile(text: string, db = abs, options = {}): CompiledPolicy {
  return compilePolicy(parsePolicy(text, "p.yaml"), db, options);
}

function filters(pairs: number[][]): KeyFilter[] {
  return pairs.map(([value, mask]) => ({ value, mask }));
}

/** Keys the compiled uplink filters admit, over every standard ID and every key of the DBC. */
function admitted(c: CompiledPolicy, db = abs): number[] {
  const f = filters(c.settings.canFilters);
  const keys = new Set<number>(Array.from({ length: 0x800 }, (_, i) => i));
  for (const m of db.messages) keys.add(frameKey(m.id, m.ext));
  return [...keys].filter((k) => admitsAny(f, k)).sort((a, b) => a - b);
}

function rejects(text: string, pattern: RegExp, db = abs) {
  assert.throws(
    () => compile(text, db),
    (e: unknown) => {
      assert.ok(e instanceof VgwError, String(e));
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe("policy: compiler", () => {
  it("the table sizes match the firmware's (firmware/src/filters.ts)", () => {
    const src = readFileSync(resolve(ROOT, "firmware/src/filters.ts"), "utf8");
    assert.equal(Number(/MAX_FILTERS = (\d+)/.exec(src)?.[1]), MAX_FILTERS);
    assert.equal(Number(/MAX_RULES = (\d+)/.exec(src)?.[1]), MAX_RULES);
  });

  it("transmit allowlist entries name the FD kinds for CAN FD messages (firmware: classic data frames only otherwise)", () => {
    const fd = loadDbcFile(resolve(ROOT, "test/fixtures/dbc/fd_test.dbc"));
    const c = compile("uplink: [ TestMsg_Std ]\ntransmit:\n  rate: 5\n  allow: [ TestMsg_FDStd, TestMsg_Std, TestMsg_FDEx ]", fd);
    const entries = c.settings.txAllow.map((e) => e.map((x) => x.toString(16)).join(","));
    // every mask carries bit 31 (the ID kind); FD messages get kinds FD | BRS
    for (const e of c.settings.txAllow) assert.ok(e[1] & 0x80000000, `mask of ${entries.join(" ")}`);
    const kindsOf = (key: number) => c.settings.txAllow.find((e) => admitsAny(filters([e]), key))?.[2];
    assert.equal(kindsOf(frameKey(1, false)), 0x0c);
    assert.equal(kindsOf(frameKey(0, true)), 0x0c);
    assert.equal(kindsOf(frameKey(2, false)), undefined);
  });

  it("the bundled example: exact filters, rules from interval, every x GenMsgCycleTime and onChange, transmit", () => {
    const c = compilePolicy(loadPolicyFile(resolve(FIXTURES, "abs.policy.yaml")), abs);
    // BREMSE_30..33 (0x340..0x343), BREMSE_10 (0x140), MM5_10_TX1/TX2 (0x70, 0x80; TX3 excluded), 0x7E8 (not in the DBC)
    assert.deepEqual(admitted(c), [0x70, 0x80, 0x140, 0x340, 0x341, 0x342, 0x343, 0x7e8]);
    assert.equal(c.settings.canFilters.length, 5, "0x140 + 0x340 share one filter, 0x340..0x343 another");
    assert.deepEqual(c.settings.rateRules, [
      [0x70, 95, 0], // every 10 cycles of 10 ms: 9.5 cycles, so a frame a little early still counts
      [0x80, 95, 0],
      [0x140, 100, 0],
      [0x7e8, 0, 1],
    ]);
    assert.deepEqual(c.settings.txAllow, [[0x24c, 0x800007ff]]);
    assert.equal(c.settings.txRate, 5);
    const row = (name: string) => c.rows.find((r) => r.message?.name === name)!;
    assert.equal(row("MM5_10_TX3").uplink, false);
    assert.equal(row("ABS_Switch").tx, true);
    assert.equal(row("BREMSE_31").filter >= 0, true);
    assert.equal(row("BREMSE_2").filter, -1);
  });

  it("later entries override earlier ones per field; defaults apply to every uplinked message", () => {
    const c = compile(`
defaults: { interval: 50, onChange: true }
uplink:
  - BREMSE_1*
  - { message: BREMSE_11, interval: 0 }
  - { id: 0x142, onChange: false }
`);
    assert.deepEqual(c.settings.rateRules, [
      [0x140, 50, 1],
      [0x141, 0, 1],
      [0x142, 50, 0],
      [0x143, 50, 1],
    ]);
  });

  it("selects by sender (BO_ sender and BO_TX_BU_), by ID range, by ext", () => {
    const bySender = compile("uplink: [ { sender: DRS_MM5_10 } ]");
    assert.deepEqual(admitted(bySender), [0x70, 0x80, 0x576]);
    const byRange = compile('uplink: [ { id: "0x340-0x3FF" } ]');
    assert.deepEqual(admitted(byRange), [0x340, 0x341, 0x342, 0x343]);
    assert.deepEqual(byRange.settings.canFilters, [[0x340, 0x800007fc]]);
    const ext = compile("uplink: [ { id: 0x7E8, ext: true } ]");
    assert.deepEqual(ext.settings.canFilters, [[0x800007e8, 0x9fffffff]]);
  });

  it("extended messages of a large DBC: exact filters over 29-bit IDs (brute force around them)", () => {
    const c = compile('uplink: [ "RT_IRTemp_Temp_*" ]', vehicle);
    const selected = c.rows.filter((r) => r.uplink).map((r) => r.key);
    assert.equal(selected.length, vehicle.messages.filter((m) => m.name.startsWith("RT_IRTemp_Temp_")).length);
    assert.ok(c.settings.canFilters.length <= MAX_FILTERS);
    const f = filters(c.settings.canFilters);
    // every extended key within 0x4000 of the selected ones, and every other key of the DBC
    const lo = Math.min(...selected) - 0x2000;
    const hi = Math.max(...selected) + 0x2000;
    const want = new Set(selected);
    for (let k = lo; k <= hi; k++) assert.equal(admitsAny(f, k), want.has(k), `key ${k.toString(16)}`);
    for (const r of c.rows) assert.equal(admitsAny(f, r.key), want.has(r.key), r.message?.name);
  });

  it("J1939 PGN groups: one filter per group admits the PGN at every priority, source and destination, nothing else", () => {
    const c = compilePolicy(loadPolicyFile(resolve(FIXTURES, "j1939.policy.yaml")), j1939);
    assert.deepEqual(
      c.groups.map((g) => [g.pgn, g.source, g.uplink, g.tx]),
      [
        [0x1f010, undefined, true, false],
        [0xea00, undefined, true, false],
        [0xea00, 0xf9, false, true],
      ],
    );
    const up = filters(c.settings.canFilters);
    const tx = filters(c.settings.txAllow);
    assert.equal(up.length, 3, "two groups and Message1");
    // brute force: every priority, PS and SA of the selected PFs and of their neighbours
    for (const pgnBase of [0x1f010, 0xea00, 0x13400]) {
      for (const pf of [(pgnBase >> 8) & 0xff, ((pgnBase >> 8) & 0xff) ^ 1]) {
        const dp = (pgnBase >> 16) & 3;
        for (let prio = 0; prio < 8; prio++) {
          for (let ps = 0; ps < 256; ps++) {
            for (let sa = 0; sa < 256; sa++) {
              const id = ((prio << 26) | (dp << 24) | (pf << 16) | (ps << 8) | sa) >>> 0;
              const key = frameKey(id, true);
              const pgn = j1939Pgn(id);
              const wantUp = pgn === 0x1f010 || pgn === 0xea00 || id === 0x15340201;
              if (admitsAny(up, key) !== wantUp) assert.fail(`uplink ${id.toString(16)} (PGN ${pgn.toString(16)})`);
              const wantTx = pgn === 0xea00 && sa === 0xf9;
              if (admitsAny(tx, key) !== wantTx) assert.fail(`transmit ${id.toString(16)}`);
            }
          }
        }
      }
    }
    // standard frames with the same low bits are not admitted
    assert.equal(admitsAny(up, 0x010), false);
    // Message2 (PGN 0x1F010) is kept through the group and gets no rule from defaults (it would cover one source only);
    // Message1, named, gets the default interval
    assert.equal(c.rows.find((r) => r.message?.name === "Message2")?.uplink, true);
    assert.deepEqual(c.settings.rateRules, [[frameKey(0x15340201, true), 500, 0]]);
    assert.deepEqual(pgnFilter(0xea00, 0xf9), { value: frameKey(makeJ1939Id(0, 0xea00, 0xf9, 0), true), mask: 0x83ff00ff });
  });

  it("too many filters: a clear error, or with allowSuperset every extra ID reported", () => {
    assert.throws(
      () => compile("uplink: [ BREMSE_3*, BREMSE_10, MM5_10_TX1, MM5_10_TX2 ]", abs, { maxFilters: 2 }),
      /^VgwError: canFilters: the 7 selected IDs need 4 exact \[value, mask\] filters; the firmware holds 2\. .*--allow-superset/,
    );
    const c = compile("uplink: [ BREMSE_3*, BREMSE_10, MM5_10_TX1, MM5_10_TX2 ]", abs, { maxFilters: 2, allowSuperset: true });
    assert.equal(c.settings.canFilters.length, 2);
    const w = c.widenings[0];
    assert.equal(w.table, "canFilters");
    assert.equal(w.exactCount, 4);
    const got = new Set(admitted(c));
    const selected = [0x70, 0x80, 0x140, 0x340, 0x341, 0x342, 0x343];
    for (const k of selected) assert.ok(got.has(k));
    // reported extras = brute-forced extras, split by known/unknown
    const known = new Set(c.rows.filter((r) => r.message).map((r) => r.key));
    const extraKnown = [...got].filter((k) => !selected.includes(k) && known.has(k));
    const extraOther = [...got].filter((k) => !selected.includes(k) && !known.has(k));
    assert.deepEqual(w.extraMessages.map((r) => r.key).sort((a, b) => a - b), extraKnown);
    assert.equal(w.extraOther, extraOther.length);
    if (w.extraOtherKeys) assert.deepEqual(w.extraOtherKeys, extraOther);
    for (const r of c.rows) assert.equal(r.extra, extraKnown.includes(r.key) || (!r.message && extraOther.includes(r.key)));
  });

  it("warns about rules that do less than they seem: interval under the cycle time, onChange on a counter", () => {
    const c = compile("uplink:\n  - { message: BREMSE_10, interval: 5 }\n  - { message: BREMSE_5*, onChange: true }\n  - { message: BREMSE_2, onChange: true }");
    assert.deepEqual(c.warnings, [
      "BREMSE_10: interval 5 ms is shorter than its cycle time 10 ms, so the rule only drops frames that arrive early",
      "BREMSE_51: onChange will keep every frame: its signal IF_chksum looks like a counter or checksum, which changes in every frame",
      "BREMSE_53: onChange will keep every frame: its signal Bremse_53_cnt looks like a counter or checksum, which changes in every frame",
    ]);
    assert.deepEqual(compilePolicy(loadPolicyFile(resolve(FIXTURES, "abs.policy.yaml")), abs).warnings, []);
  });

  it("more downsampled messages than the firmware's rules is an error naming the count", () => {
    rejects("defaults: { interval: 100 }\nuplink: [ '*' ]", /rateRules: 217 messages have an interval or onChange; the firmware holds 32 rules/, vehicle);
  });

  it("a policy that forwards nothing is an error, never an empty filter list (which the firmware reads as accept-all)", () => {
    rejects("uplink: [ BREMSE_3* ]\nexclude: [ BREMSE_* ]", /^p\.yaml:2: exclude: excludes every selected message: the gateway would forward nothing/);
    rejects("uplink: []", /^p\.yaml:1: uplink: the list is empty/);
    rejects("defaults: { interval: 5 }", /^p\.yaml:1: uplink: missing/);
  });

  it("property: any text, and any YAML of policy-like shape, compiles or fails with a VgwError naming p.yaml, never crashes", () => {
    const expectClean = (text: string) => {
      try {
        compile(text);
      } catch (e) {
        if (!(e instanceof VgwError)) throw e;
        if (e instanceof PolicyError) assert.match(e.message, /^p\.yaml:\d+: /);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 200 }), expectClean), { numRuns: 300, seed: 5 });
    const scalar = fc.oneof(fc.constantFrom("BREMSE_*", "ABS", "0x7E8", "*", "", "0x100-0x1FF", "DRS_MM5_10"), fc.integer({ min: -5, max: 0x20000000 }), fc.boolean(), fc.constant(null), fc.double());
    const entry = fc.oneof(
      scalar,
      fc.dictionary(fc.constantFrom("message", "sender", "id", "ext", "pgn", "source", "interval", "every", "onChange", "bogus"), scalar, { maxKeys: 4 }),
    );
    const policy = fc.dictionary(
      fc.constantFrom("uplink", "exclude", "defaults", "transmit", "version", "other"),
      fc.oneof(scalar, fc.array(entry, { maxLength: 5 }), fc.dictionary(fc.constantFrom("rate", "allow", "interval", "every", "onChange"), fc.oneof(scalar, fc.array(entry, { maxLength: 3 })))),
      { maxKeys: 4 },
    );
    fc.assert(fc.property(policy, (p) => expectClean(JSON.stringify(p))), { numRuns: 500, seed: 6 });
  });

  describe("bad policy files name file:line and key", () => {
    const cases: Array<[string, string, RegExp, Database?]> = [
      ["not YAML", "uplink: [ a, b\nexclude: x", /^p\.yaml:\d+: not valid YAML/],
      ["not a map", "- BREMSE_10", /^p\.yaml:1: a policy is a map/],
      ["unknown top key", "uplink: [ BREMSE_10 ]\nupload: 1", /^p\.yaml:2: unknown key 'upload'/],
      ["unknown entry key", "uplink:\n  - message: BREMSE_10\n    intervall: 5", /^p\.yaml:3: uplink\[0\]: unknown key 'intervall'/],
      ["bad interval", "uplink:\n  - BREMSE_10\n  - message: BREMSE_11\n    interval: -5", /^p\.yaml:4: uplink\[1\]\.interval: expected a minimum interval in ms \(an integer 0\.\.3600000\), got -5/],
      ["fractional interval", "uplink:\n  - { message: BREMSE_11, interval: 2.5 }", /^p\.yaml:2: uplink\[0\]\.interval: expected .* got 2\.5/],
      ["interval and every", "uplink:\n  - { message: BREMSE_11, interval: 5, every: 2 }", /^p\.yaml:2: uplink\[0\]\.every: give either interval/],
      ["onChange not bool", "uplink:\n  - { message: BREMSE_11, onChange: yes }", /^p\.yaml:2: uplink\[0\]\.onChange: expected true or false, got "yes"/],
      ["two ways", "uplink:\n  - { message: BREMSE_11, id: 5 }", /^p\.yaml:2: uplink\[0\]: select by one of message, sender, id, pgn, not message and id/],
      ["no way", "uplink:\n  - { interval: 5 }", /^p\.yaml:2: uplink\[0\]: select messages by one of message, sender, id, pgn/],
      ["rate on a pgn", "uplink:\n  - pgn: 0xFEF1\n    interval: 100", /^p\.yaml:3: uplink\[0\]\.interval: a pgn entry matches frames from any source, but the firmware's rate rules are per exact ID/],
      ["PDU1 pgn with a destination", "uplink:\n  - pgn: 0xEA12", /^p\.yaml:2: uplink\[0\]\.pgn: 0xEA12 is a PDU1 PGN \(PF < 240\) whose low byte must be 0/],
      ["pgn too large", "uplink:\n  - pgn: 0x40000", /^p\.yaml:2: uplink\[0\]\.pgn: expected a J1939 PGN \(an integer 0\.\.262143\)/],
      ["source without pgn", "uplink:\n  - { message: BREMSE_10, source: 3 }", /^p\.yaml:2: uplink\[0\]\.source: source applies to pgn only/],
      ["exclude inside a pgn group", "uplink:\n  - pgn: 0x1F010\nexclude:\n  - Message2", /^p\.yaml:4: exclude\[0\]: Message2 is in the uplinked PGN group 0x1F010 and cannot be excluded from it/, j1939],
      ["pgn in exclude", "uplink: [ BREMSE_10 ]\nexclude:\n  - pgn: 0xFEF1", /^p\.yaml:3: exclude\[0\]: unknown key 'pgn'/],
      ["glob matches nothing", "uplink:\n  - BREMSE_10\n  - BRMSE_*", /^p\.yaml:3: uplink\[1\]\.message: 'BRMSE_\*' matches no message in .*abs\.dbc/],
      ["unknown sender", "uplink:\n  - sender: ESP", /^p\.yaml:2: uplink\[0\]\.sender: no node 'ESP' \(nodes: ABS, DRS_MM5_10\)/],
      ["range without messages", 'uplink:\n  - id: "0x600-0x6FF"', /^p\.yaml:2: uplink\[0\]\.id: no message of .* has an ID in 0x600-0x6FF/],
      ["bad id", 'uplink:\n  - id: "0x20-0x10"', /^p\.yaml:2: uplink\[0\]\.id: expected an ID/],
      ["id beyond kind", "uplink:\n  - { id: 0x800, ext: false }", /^p\.yaml:2: uplink\[0\]\.id: 0x800 is beyond the 11-bit ID range/],
      ["ext without id", "uplink:\n  - { message: BREMSE_10, ext: true }", /^p\.yaml:2: uplink\[0\]\.ext: ext applies to id only/],
      ["every without cycle time", "uplink:\n  - BREMSE_10\n  - { id: 0x7E8, every: 5 }", /^p\.yaml:3: uplink\[1\]\.every: ID 0x7E8 is not in .*, so it has no cycle time: give interval in ms instead/],
      ["every from defaults without cycle", "defaults:\n  every: 5\nuplink: [ { id: 0x7E8 } ]", /^p\.yaml:2: defaults\.every: ID 0x7E8/],
      ["exclude typo", "uplink: [ BREMSE_10 ]\nexclude:\n  - BREMSE_99", /^p\.yaml:3: exclude\[0\]\.message: 'BREMSE_99' matches no message/],
      ["exclude with a rate", "uplink: [ BREMSE_10 ]\nexclude:\n  - { message: BREMSE_11, interval: 5 }", /^p\.yaml:3: exclude\[0\]: unknown key 'interval'/],
      ["transmit rate too high", "uplink: [ BREMSE_10 ]\ntransmit:\n  rate: 5000\n  allow: [ ABS_Switch ]", /^p\.yaml:3: transmit\.rate: expected frames per second \(an integer 0\.\.1000\)/],
      ["transmit without allow", "uplink: [ BREMSE_10 ]\ntransmit:\n  rate: 5", /^p\.yaml:3: transmit\.allow: missing/],
      ["transmit typo", "uplink: [ BREMSE_10 ]\ntransmit:\n  rate: 5\n  allow: [ ABS_Swich ]", /^p\.yaml:4: transmit\.allow\[0\]\.message: 'ABS_Swich' matches no message/],
      ["duplicate key", "uplink: [ BREMSE_10 ]\nuplink: [ BREMSE_11 ]", /^p\.yaml:2: duplicate key 'uplink'/],
      ["wrong version", "version: 2\nuplink: [ BREMSE_10 ]", /^p\.yaml:1: version: expected the policy format version/],
    ];
    for (const [name, text, pattern, db] of cases) it(name, () => rejects(text, pattern, db));

    it("errors are PolicyErrors with file, line and key", () => {
      try {
        compile("uplink:\n  - BREMSE_10\n  - { message: X_*, interval: 5 }");
        assert.fail("no error");
      } catch (e) {
        assert.ok(e instanceof PolicyError);
        assert.equal(e.file, "p.yaml");
        assert.equal(e.line, 3);
        assert.equal(e.key, "uplink[1].message");
      }
    });
  });
});
