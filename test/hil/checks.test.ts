/**
 * The checkers over hand-built run records (unit level; the scenario suite runs them over real runs). Each failing
 * case must name the frame (ID, replay index, time) or signal at fault.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { parseFrame, type Frame } from "../../frame/frame";
import { checkAll, type SignalDecoder } from "../../hil/checks";
import { emptyRecord, type RunRecord } from "../../hil/record";
import { parseScenario } from "../../hil/scenario";

function scenario(yaml: string) {
  return parseScenario(`steps: []\n${yaml}`, "/tmp/t.yaml");
}

/** A run where frames `texts` were replayed every 10 ms and each arrived `latency` ms later, one batch per frame. */
function run(texts: string[], latency = 5): RunRecord {
  const rec = emptyRecord("t", "unit", 0);
  texts.forEach((t, i) => {
    const frame = parseFrame(t);
    rec.replayed.push({ frame, index: i, trace: "bus", traceT: i * 0.01, dueAt: i * 10, sentAt: i * 10 + 0.2 });
    rec.delivered.push({ frame, boot: 7, seq: i, pos: 0, deviceT: 1000 + i * 10, receivedAt: i * 10 + latency });
  });
  return rec;
}

const FRAMES = ["123#01", "123#02", "456#AA", "123#03", "456#BB", "123#04"];

describe("hil checks", () => {
  it("delivery passes when every frame arrives bit-exact", () => {
    const { results } = checkAll(run(FRAMES), scenario("expect: [{ delivery: {} }]"));
    assert.equal(results[0].pass, true, results[0].message);
    assert.match(results[0].message, /6 of 6 forwarded frames/);
  });

  it("delivery names a missing frame by ID, replay index and trace time", () => {
    const rec = run(FRAMES);
    rec.delivered.splice(3, 1);
    rec.uplink.gaps.push("7:3");
    const r = checkAll(rec, scenario("expect: [{ delivery: {} }]")).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /1 of 6 frames missing .*first: 0x123 replay #3 \(bus t=0\.030000 s\)/);
    assert.match(r.message, /sequence gap.*7:3/);
  });

  it("delivery names a corrupted frame with what was expected", () => {
    const rec = run(FRAMES);
    rec.delivered[1].frame = parseFrame("123#FF");
    const r = checkAll(rec, scenario("expect: [{ delivery: {} }]")).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /unexpected frame.*0x123 123#FF \(batch 7:1 record 0\): its data matches no replayed frame/);
  });

  it("delivery catches frames reordered within one ID", () => {
    const rec = run(FRAMES);
    [rec.delivered[0].frame, rec.delivered[1].frame] = [rec.delivered[1].frame, rec.delivered[0].frame];
    const r = checkAll(rec, scenario("expect: [{ delivery: {} }]")).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /out of order/);
  });

  it("delivery passes with resent batches the receiver dropped, and says so", () => {
    const rec = run(FRAMES);
    rec.uplink.duplicates = 1;
    const { results, analysis } = checkAll(rec, scenario("expect: [{ delivery: {} }]"));
    assert.equal(results[0].pass, true, results[0].message);
    assert.equal(analysis.duplicateBatches, 1);
    assert.match(results[0].message, /1 duplicate batch/);
  });

  it("delivery fails when a frame the filters must drop arrives, and expects only what they pass", () => {
    const sc = scenario("gateway: { filters: [0x123] }\nexpect: [{ delivery: {} }]");
    const r1 = checkAll(run(FRAMES), sc).results[0];
    assert.equal(r1.pass, false);
    assert.match(r1.message, /0x456 456#AA.*filters should have dropped it/);
    const rec = run(FRAMES);
    rec.delivered = rec.delivered.filter((d) => d.frame.id === 0x123).map((d, i) => ({ ...d, seq: i }));
    assert.equal(checkAll(rec, sc).results[0].pass, true);
  });

  it("send-on-change: every change must arrive, repeats must not", () => {
    const texts = ["108#01", "108#01", "108#02", "108#02", "108#02", "108#03"];
    const sc = scenario("gateway: { onChange: [0x108] }\nexpect: [{ delivery: {} }]");
    const rec = run(texts);
    rec.delivered = [rec.delivered[0], rec.delivered[2], rec.delivered[5]].map((d, i) => ({ ...d, seq: i }));
    const ok = checkAll(rec, sc).results[0];
    assert.equal(ok.pass, true, ok.message);
    assert.match(ok.message, /3 of 3 forwarded/);
    rec.delivered.splice(1, 1);
    const bad = checkAll(rec, sc).results[0];
    assert.equal(bad.pass, false);
    assert.match(bad.message, /missing.*0x108 replay #2/);
  });

  it("29-bit rules apply to 29-bit frames only, also for an ID <= 0x7FF", () => {
    // The same numeric ID in both kinds: 0x123 (11-bit) and 0x00000123 (29-bit), plus a J1939-style 29-bit ID.
    const texts = ["00000123#01", "123#01", "00000123#01", "18FEF100#01", "123#01", "18FEF100#02", "00000123#02", "18FEF100#03"];
    // Keeps the deliveries of the replayed frames `keep` (run() delivered every one), numbered afresh.
    const delivered = (rec: RunRecord, keep: number[]) => (rec.delivered = keep.map((i, seq) => ({ ...run(texts).delivered[i], seq })));
    // Send-on-change on the 29-bit 0x123 only: its repeat (#2) must not arrive, the 11-bit repeat (#4) must.
    const onChange = scenario("gateway: { onChange: [0x123x] }\nexpect: [{ delivery: {} }]");
    const rec = run(texts);
    delivered(rec, [0, 1, 3, 4, 5, 6, 7]);
    const ok = checkAll(rec, onChange).results[0];
    assert.equal(ok.pass, true, ok.message);
    assert.match(ok.message, /7 of 7 forwarded/);
    delivered(rec, [0, 1, 3, 5, 6, 7]);
    assert.match(checkAll(rec, onChange).results[0].message, /missing.*0x123 replay #4/);
    // A minimum interval on a 29-bit ID: its frames are an in-order subsequence, none counted missing.
    const minInterval = scenario("gateway: { minInterval: { 0x18FEF100x: 100ms, 0x123x: 100ms } }\nexpect: [{ delivery: {} }]");
    const sparse = run(texts);
    delivered(sparse, [0, 1, 3, 4]);
    const r = checkAll(sparse, minInterval).results[0];
    assert.equal(r.pass, true, r.message);
    // Accept filters by kind: 0x123x passes the 29-bit frame, not the 11-bit one.
    const filtered = scenario("gateway: { filters: [0x123x, { id: 0x18FEF100, mask: 0x1FFFFF00, ext: true }] }\nexpect: [{ delivery: {} }, { delivery: { ids: [0x123x] } }]");
    const all = checkAll(run(texts), filtered).results;
    assert.equal(all[0].pass, false);
    assert.match(all[0].message, /unexpected frame.*0x123 123#01.*filters should have dropped it/);
    const rec2 = run(texts);
    delivered(rec2, [0, 2, 3, 5, 6, 7]);
    const [exact, scoped] = checkAll(rec2, filtered).results;
    assert.equal(exact.pass, true, exact.message);
    assert.equal(scoped.name, "delivery of 0x00000123");
    assert.match(scoped.message, /3 of 3 forwarded/);
  });

  it("cycle time of a 29-bit ID ignores the 11-bit ID of the same number", () => {
    const texts = Array.from({ length: 10 }, (_, i) => (i % 2 ? "123#01" : `00000123#${i.toString(16).padStart(2, "0")}`));
    const r = checkAll(run(texts), scenario("expect: [{ cycle: { id: 0x123x, period: 20ms, tolerance: 1ms } }]")).results[0];
    assert.equal(r.pass, true, r.message);
    assert.match(r.name, /cycle time of 0x00000123/);
    assert.match(r.message, /over 4 intervals/);
  });

  it("latency fails naming the slowest frame", () => {
    const rec = run(FRAMES);
    rec.delivered[4].receivedAt += 500;
    const r = checkAll(rec, scenario("expect: [{ latency: { max: 100ms } }]")).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /max 504\.8 ms > 100 ms.*slowest: 0x456 replay #4/);
  });

  it("cycle time uses the gateway's receive times and names the late frame", () => {
    const texts = Array.from({ length: 20 }, (_, i) => `123#${i.toString(16).padStart(2, "0")}`);
    const ok = checkAll(run(texts), scenario("expect: [{ cycle: { id: 0x123, period: 10ms, tolerance: 1ms } }]")).results[0];
    assert.equal(ok.pass, true, ok.message);
    const rec = run(texts);
    rec.delivered[10].deviceT! += 5;
    const bad = checkAll(rec, scenario("expect: [{ cycle: { id: 0x123, period: 10ms, tolerance: 1ms } }]")).results[0];
    assert.equal(bad.pass, false);
    assert.match(bad.message, /2 of 19 intervals outside.*123#0A.*15\.0 ms/);
    const tolerant = checkAll(rec, scenario("expect: [{ cycle: { id: 0x123, period: 10ms, tolerance: 1ms, maxOutside: 15 } }]")).results[0];
    assert.equal(tolerant.pass, true, tolerant.message);
    assert.match(tolerant.message, /2 of 19 intervals outside .*allowed 15%/);
  });

  it("signals: exact delivery agrees; a wrong value names message, signal and frame", () => {
    const decode: SignalDecoder = (f: Frame) => (f.id === 0x123 ? { message: "Speed", signals: { kph: f.data[0] * 0.5 } } : undefined);
    const sc = parseScenario(`dbc: ${path.basename(__filename)}\nsteps: []\nexpect: [{ signals: { tolerance: 0.1 } }]`, __filename);
    const ok = checkAll(run(FRAMES), sc, decode).results[0];
    assert.equal(ok.pass, true, ok.message);
    const rec = run(FRAMES);
    rec.delivered[3].frame = parseFrame("123#09");
    rec.replayed[3].frame = parseFrame("123#03");
    const bad = checkAll(rec, sc, decode).results[0];
    assert.equal(bad.pass, false);
    assert.match(bad.message, /Speed\.kph at 0x123 replay #/);
  });

  it("signals: a downsampled ID is judged by the held value within tolerance", () => {
    const texts = ["123#00", "123#01", "123#02", "123#03", "123#04"];
    const decode: SignalDecoder = (f: Frame) => ({ message: "M", signals: { s: f.data[0] } });
    const rec = run(texts);
    rec.delivered = [rec.delivered[0], rec.delivered[2], rec.delivered[4]].map((d, i) => ({ ...d, seq: i }));
    const sc = (tol: number) =>
      parseScenario(`dbc: ${path.basename(__filename)}\ngateway: { minInterval: { 0x123: 20ms } }\nsteps: []\nexpect: [{ delivery: {} }, { signals: { tolerance: ${tol} } }]`, __filename);
    const loose = checkAll(rec, sc(1), decode).results;
    assert.equal(loose[0].pass, true, loose[0].message);
    assert.equal(loose[1].pass, true, loose[1].message);
    const tight = checkAll(rec, sc(0.5), decode).results[1];
    assert.equal(tight.pass, false);
    assert.match(tight.message, /M\.s at 0x123 replay #1.*input 1, broker 0/);
  });

  it("commands: transmitted within the bound, refused with its reason", () => {
    const sc = parseScenario("steps:\n  - transmit: 321#01\n    as: a\n  - transmit: 322#02\n    as: b\nexpect:\n  - command: { ref: a, outcome: transmitted, within: 50ms }\n  - command: { ref: b, outcome: refused, reason: not-allowed }\n", "/tmp/t.yaml");
    const rec = emptyRecord("t", "unit", 0);
    rec.commands.push({ ref: "a", frame: parseFrame("321#01"), sentAt: 10, result: { ok: true, reason: "ok", at: 20, raw: {} } });
    rec.commands.push({ ref: "b", frame: parseFrame("322#02"), sentAt: 10, result: { ok: false, reason: "not-allowed", at: 20, raw: {} } });
    rec.transmitted.push({ frame: parseFrame("321#01"), at: 30 });
    let r = checkAll(rec, sc).results;
    assert.ok(r[0].pass && r[1].pass, r.map((x) => x.message).join(" | "));
    rec.transmitted.push({ frame: parseFrame("322#02"), at: 40 });
    rec.transmitted[0].at = 100;
    r = checkAll(rec, sc).results;
    assert.equal(r[0].pass, false);
    assert.match(r[0].message, /321#01 appeared on the bus 90\.0 ms after.*within 50 ms/);
    assert.equal(r[1].pass, false);
    assert.match(r[1].message, /322#02 reached the bus 1 time/);
  });

  it("status compares counters with what the harness measured", () => {
    const rec = run(FRAMES);
    rec.statuses.push({ at: 100, online: true, counters: { rx: 6, "drop.outbox": 0, ack: 6 }, raw: {} });
    const sc = scenario("expect: [{ status: { counters: { rx: replayed, drop.outbox: 0, ack: delivered } } }]");
    assert.equal(checkAll(rec, sc).results[0].pass, true);
    rec.statuses.push({ at: 200, online: true, counters: { rx: 5, "drop.outbox": 1, ack: 6 }, raw: {} });
    const r = checkAll(rec, sc).results[0];
    assert.equal(r.pass, false);
    assert.match(r.message, /rx = 5, expected 6 \(replayed\); drop\.outbox = 1, expected 0/);
  });

  it("last will must follow the gateway's disappearance", () => {
    const rec = emptyRecord("t", "unit", 0);
    const sc = scenario("expect: [{ lastWill: { within: 2s } }]");
    assert.match(checkAll(rec, sc).results[0].message, /never stopped the gateway/);
    rec.gatewayStoppedAt = 1000;
    rec.statuses.push({ at: 1500, online: false, counters: {}, raw: {} });
    assert.equal(checkAll(rec, sc).results[0].pass, true);
  });

});
