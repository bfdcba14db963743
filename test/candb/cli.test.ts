/**
 * CLI golden tests: `node bin/vgw decode|encode|dbc` as a user runs them (after tsc), compared with the files in
 * test/candb/golden/, plus exit codes (0 ok, 1 runtime, 2 usage), stderr diagnostics and --help examples.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ROOT, runVgw } from "./helpers";
import { parseDbc } from "../../can-db/dbc-parser";
import { loadDbcFile } from "../../can-db/load";

const GOLDEN = resolve(ROOT, "test/candb/golden");
const D = "test/fixtures/dbc";

const vgw = (args: string[], input?: string) => runVgw(args, input);

const golden = (name: string) => readFileSync(resolve(GOLDEN, name), "utf8");

describe("vgw decode / encode / dbc (CLI)", function () {
  this.timeout(60_000);

  describe("decode", () => {
    it("text: one line per frame; bad lines reported with file:line and counted", () => {
      const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "test/candb/golden/motohawk.log"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, golden("decode-text.out"));
      assert.match(r.stderr, /motohawk\.log:5: .*'this is not a candump line' \(skipped\)/);
      assert.match(r.stderr, /decode: 5 frames, 4 of a known message, 1 unknown ID, 1 not fully decodable .*1 bad lines skipped/);
    });

    it("jsonl --choices: the DESIGN.md contract (t, bus, id, ext, message, signals, error)", () => {
      const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "--format", "jsonl", "--choices", "test/candb/golden/motohawk.log"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, golden("decode-jsonl-choices.out"));
      const objs = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(Object.keys(objs[0]), ["t", "bus", "id", "ext", "message", "signals"]);
      assert.deepEqual(objs[3], { t: 1700000000.03, bus: "can0", id: 291, ext: false, message: null, signals: {} });
      assert.ok(typeof objs[2].error === "string");
    });

    it("stdin: bare and candump -l lines; integers beyond 2^53 as decimal strings", () => {
      const r = vgw(["decode", "--dbc", `${D}/signed.dbc`, "--format", "jsonl", "-"], "003#8000000000000000\n(0.5) vcan0 002#0100000000000080\n");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        '{"id":3,"ext":false,"message":"Message64big","signals":{"s64big":"-9223372036854775808"}}\n' +
          '{"t":0.5,"bus":"vcan0","id":2,"ext":false,"message":"Message64","signals":{"s64":"-9223372036854775807"}}\n',
      );
    });

    it("only the signals of the active multiplexer branch", () => {
      const r = vgw(["decode", "--dbc", `${D}/issue_184_extended_mux_cascaded.dbc`, "--format", "jsonl"], "00000001#0201050000000000\n");
      assert.deepEqual(JSON.parse(r.stdout).signals, { muxed_B_1: 0, muxed_A_2_MUX_B: 1, MUX_A: 2 });
    });

    it("reads any trace format by extension through the trace registry (.asc.gz, .trc)", () => {
      for (const trace of ["test/fixtures/traces/test_CanMessage.asc.gz", "test/fixtures/traces/test_CanMessage_V2_1.trc"]) {
        const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "--format", "jsonl", trace]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n");
        const frames = Number(/decode: (\d+) frames/.exec(r.stderr)?.[1]);
        assert.ok(frames > 0 && lines.length === frames, `${trace}: ${lines.length} lines, summary ${frames}`);
        for (const l of lines) assert.equal(typeof (JSON.parse(l) as { id: number }).id, "number");
      }
    });

    it("--strict stops at the first bad line with exit 1", () => {
      const r = vgw(["decode", "--strict", "--dbc", `${D}/motohawk.dbc`, "test/candb/golden/motohawk.log"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /motohawk\.log:5: /);
    });

    it("usage errors exit 2; a broken DBC exits 1 naming file:line:column", () => {
      assert.equal(vgw(["decode", "test/candb/golden/motohawk.log"]).code, 2);
      assert.equal(vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "--format", "xml", "-"], "").code, 2);
      const broken = vgw(["decode", "--dbc", "test/candb/golden/broken.dbc", "-"], "");
      assert.equal(broken.code, 1);
      assert.match(broken.stderr, /broken\.dbc:3:14: byte order must be 0 or 1 \(near '2'\)/);
      const missing = vgw(["decode", "--dbc", "nope.dbc", "-"], "");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /cannot read DBC nope\.dbc: no such file/);
    });
  });

  describe("encode", () => {
    it("prints the frame in can-utils form; labels accepted", () => {
      const r = vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "ExampleMessage", "Temperature=250.1", "AverageRadius=3.2", "Enable=Enabled"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "1F0#C001400000000000\n");
    });
    it("by ID, extended and CAN FD messages", () => {
      assert.equal(vgw(["encode", "--dbc", `${D}/multiplex.dbc`, "Message1", "Multiplexor=8", "BIT_J=1"]).stdout, "00123456#2000040000000000\n");
      assert.equal(vgw(["encode", "--dbc", `${D}/foobar.dbc`, "0x12331"]).stdout, "00012331#0000000000\n");
      const fd = vgw(["encode", "--dbc", `${D}/foobar.dbc`, "CanFd"]);
      assert.match(fd.stdout, /^00012333##1(00){64}\n$/);
    });
    it("out-of-range value: exit 2 naming the signal and its range", () => {
      const r = vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "ExampleMessage", "Temperature=500"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /signal Temperature: 500 is outside its range \[229\.52, 270\.47\] degK/);
      assert.equal(r.stdout, "");
    });
    it("unknown message or malformed assignment: exit 2", () => {
      assert.equal(vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "Nope"]).code, 2);
      assert.equal(vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "ExampleMessage", "Temperature"]).code, 2);
    });
  });

  describe("dbc", () => {
    it("summary with the multiplexer tree", () => {
      const r = vgw(["dbc", `${D}/multiplex_2.dbc`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, golden("dbc-summary-multiplex_2.out"));
    });
    it("--json dumps the database", () => {
      const r = vgw(["dbc", "--json", `${D}/motohawk.dbc`]);
      const db = JSON.parse(r.stdout) as { messages: Array<{ name: string; signals: Array<{ name: string; choices?: Record<string, string> }> }> };
      assert.equal(db.messages[0].name, "ExampleMessage");
      assert.deepEqual(db.messages[0].signals[2].choices, { "0": "Disabled", "1": "Enabled" });
    });
    it("--write prints DBC text that parses back to the same database", () => {
      const r = vgw(["dbc", "--write", `${D}/motohawk.dbc`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^VERSION /);
      const again = parseDbc(r.stdout, "written");
      const orig = loadDbcFile(resolve(ROOT, D, "motohawk.dbc"));
      assert.deepEqual(again.messages.map((m) => [m.name, m.id, m.signals.map((s) => s.name)]), orig.messages.map((m) => [m.name, m.id, m.signals.map((s) => s.name)]));
      assert.equal(vgw(["dbc", "--write", "--json", `${D}/motohawk.dbc`]).code, 2);
    });
    it("--check: findings with line numbers, exit 1 on errors", () => {
      const bad = vgw(["dbc", "--check", `${D}/vw_pq.dbc`]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stdout, golden("dbc-check-vw_pq.out"));
      assert.match(bad.stderr, /dbc --check: 21 error\(s\), 21 warning\(s\)/);
      const good = vgw(["dbc", "--check", `${D}/motohawk.dbc`]);
      assert.deepEqual([good.code, good.stdout], [0, ""]);
    });
  });

  it("--help of each command has examples", () => {
    for (const cmd of ["decode", "encode", "dbc"]) {
      const r = vgw([cmd, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Examples:\n {2}vgw /);
    }
  });
});
