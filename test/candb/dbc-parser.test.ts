/**
 * DBC parser and writer: one golden test per grammar feature (each on the fixture named after it), round trip
 * parse -> write -> parse on every fixture, and malformed input giving DbcParseError with line, column and text.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { loadDbcFile } from "../../can-db/load";
import { decodeDbcBytes, parseDbc } from "../../can-db/dbc-parser";
import { writeDbc } from "../../can-db/dbc-writer";
import { DbcParseError } from "../../frame/errors";
import { attributeLabel, type Database } from "../../can-db/model";
import { DBC_DIR, dbcFixtures } from "./helpers";

const load = (f: string) => loadDbcFile(resolve(DBC_DIR, f));
const msg = (db: Database, name: string) => {
  const m = db.messages.find((x) => x.name === name);
  assert.ok(m, `no message ${name}`);
  return m;
};
const sig = (db: Database, m: string, s: string) => {
  const x = msg(db, m).signals.find((y) => y.name === s);
  assert.ok(x, `no signal ${m}.${s}`);
  return x;
};

/** The database without source positions and parser notes, for comparing two parses. */
function comparable(db: Database): unknown {
  return JSON.parse(
    JSON.stringify(db, (k, v) => {
      if (k === "line" || k === "file" || k === "warnings") return undefined;
      if (v instanceof Map) return { map: [...v] };
      if (typeof v === "number" && !Number.isFinite(v)) return String(v);
      return v;
    }),
  );
}

describe("DBC parser: grammar features", () => {
  it("motohawk.dbc: Motorola signed signal, factor/offset, VAL_, receivers", () => {
    const db = load("motohawk.dbc");
    const t = sig(db, "ExampleMessage", "Temperature");
    assert.deepEqual(
      [t.startBit, t.length, t.byteOrder, t.signed, t.factor, t.offset, t.min, t.max, t.unit, t.receivers],
      [0, 12, "big_endian", true, 0.01, 250, 229.52, 270.47, "degK", ["PCM1", "FOO"]],
    );
    assert.deepEqual([...sig(db, "ExampleMessage", "Enable").choices!], [[0, "Disabled"], [1, "Enabled"]]);
    assert.equal(msg(db, "ExampleMessage").sender, "PCM1");
  });

  it("issue_207_sig_plus.dbc: `+127` in a range", () => {
    assert.equal(sig(load("issue_207_sig_plus.dbc"), "myMsg", "myExtraSigWithPlus").max, 127);
  });

  it("big_numbers.dbc: attribute limits like -9.22337203685478E+018 and extended IDs", () => {
    const db = load("big_numbers.dbc");
    const def = db.attributeDefs.find((d) => d.name === "TheNodeAttribute")!;
    assert.equal(def.min, -9.22337203685478e18);
    assert.equal(def.max, 1.84467440737096e19);
    assert.deepEqual([msg(db, "TheMessage").id, msg(db, "TheMessage").ext], [57, true]);
  });

  it("cp1252.dbc: a Windows-1252 file decodes (€ is 0x80, not a C1 control)", () => {
    const db = load("cp1252.dbc");
    const c = db.nodes[0].comment!;
    assert.ok(c.includes("€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"), c);
    assert.ok(c.endsWith("ýþÿ"));
    assert.equal(decodeDbcBytes(Buffer.from("CM_ \"ä\";", "utf8")), 'CM_ "ä";', "valid UTF-8 stays UTF-8");
  });

  it("UTF-16 with a byte-order mark (a Windows \"Unicode\" export), little and big endian, reads as the UTF-8 file", () => {
    const text = readFileSync(resolve(DBC_DIR, "motohawk.dbc"), "utf8");
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    const be = Buffer.from(le);
    be.swap16();
    for (const bytes of [le, be]) assert.deepEqual(parseDbc(decodeDbcBytes(bytes)).messages, parseDbc(text).messages);
  });

  it("issue_163_newline.dbc: CRLF line endings, a message without signals", () => {
    const db = load("issue_163_newline.dbc");
    assert.deepEqual(db.nodes.map((n) => n.name), ["dummy_node"]);
    assert.deepEqual([msg(db, "dummy_msg").signals.length, msg(db, "dummy_msg").sender], [0, "dummy_node"]);
  });

  it("abs.dbc: comments spanning lines; line numbers stay right after them", () => {
    const db = load("abs.dbc");
    const comments = db.messages.flatMap((m) => [m.comment, ...m.signals.map((s) => s.comment)]).filter((c) => c?.includes("\n"));
    assert.ok(comments.length > 0, "a comment with a newline");
    assert.throws(() => parseDbc('CM_ "a\nb\nc";\nBO_ x', "t.dbc"), /t\.dbc:4:5: /);
  });

  it("long_names.dbc: SystemSignalLongSymbol / SystemMessageLongSymbol give the names users see", () => {
    const db = load("long_names.dbc");
    const long = db.messages.find((m) => m.name !== m.dbcName)!;
    assert.ok(long.name.length > 32 && long.dbcName.length <= 32, `${long.name} / ${long.dbcName}`);
    assert.ok(db.messages.some((m) => m.signals.some((s) => s.name.length > 32 && s.dbcName.length <= 32)));
    assert.ok(db.envVars.length >= 2, "EV_ statements");
  });

  it("fd_test.dbc / foobar.dbc: CAN FD from VFrameFormat and 64-byte messages", () => {
    const fd = load("fd_test.dbc");
    const kinds = fd.messages.map((m) => `${m.name}:${m.fd ? "fd" : "classic"}:${m.ext ? "ext" : "std"}`);
    assert.ok(kinds.some((k) => k.includes(":fd:ext")) && kinds.some((k) => k.includes(":fd:std")), kinds.join());
    assert.ok(kinds.some((k) => k.includes(":classic:")), kinds.join());
    assert.ok(load("foobar.dbc").messages.some((m) => m.length === 64 && m.fd));
  });

  it("attributes.dbc: BA_DEF_/BA_DEF_DEF_/BA_ on network, nodes, messages, signals; BA_DEF_REL_/BA_REL_", () => {
    const db = load("attributes.dbc");
    assert.ok(db.attributes.size > 0, "network attributes");
    assert.ok(db.nodes.some((n) => n.attributes.size > 0), "node attributes");
    assert.ok(db.messages.some((m) => m.attributes.size > 0), "message attributes");
    assert.ok(db.messages.some((m) => m.signals.some((s) => s.attributes.size > 0)), "signal attributes");
    const rel = load("abs.dbc").relationAttributes.concat(db.relationAttributes, load("foobar.dbc").relationAttributes);
    assert.ok(rel.length > 0 || db.attributeDefs.some((d) => d.relation), "relation attributes");
  });

  it("foobar.dbc: BS_ timing, BU_ nodes, SIG_GROUP_, BO_TX_BU_, float SIG_VALTYPE_", () => {
    const db = load("foobar.dbc");
    assert.ok(db.nodes.length >= 2);
    assert.ok(db.messages.some((m) => m.signalGroups.length > 0));
    assert.ok(db.messages.some((m) => m.transmitters.length > 0));
    assert.ok(db.messages.some((m) => m.signals.some((s) => s.valueType !== "integer")));
  });

  it("issue_184_extended_mux_cascaded.dbc: mNM switch inside a switch", () => {
    const s = sig(load("issue_184_extended_mux_cascaded.dbc"), "ext_MUX_cascaded", "muxed_A_2_MUX_B");
    assert.deepEqual([s.isMultiplexer, s.muxValue], [true, 2]);
  });

  it("issue_184_extended_mux_multiple_values.dbc: SG_MUL_VAL_ ranges", () => {
    const s = sig(load("issue_184_extended_mux_multiple_values.dbc"), "ext_MUX_multiple_values", "muxed_0_3_4_5");
    assert.deepEqual([s.muxSwitch, s.muxRanges], ["MUX", [[0, 0], [3, 5]]]);
  });

  it("j1939.dbc: ProtocolType J1939", () => {
    assert.equal(attributeLabel(load("j1939.dbc"), load("j1939.dbc").attributes, "ProtocolType"), "J1939");
  });

  it("tesla_can.dbc / vw_mqb.dbc: statements about undefined signals are dropped and counted as warnings", () => {
    const db = load("tesla_can.dbc");
    assert.ok(db.warnings.some((w) => w.line === 783 && /no signal UI_mapSpeedLimit/.test(w.reason)), JSON.stringify(db.warnings[0]));
    assert.ok(load("vw_mqb.dbc").warnings.length > 0);
  });

  it("vw_pq.dbc: a lone `m` indicator is read as `M`, with a warning", () => {
    const db = load("vw_pq.dbc");
    assert.equal(sig(db, "Motor_2", "MO2_Mp_Code").isMultiplexer, true);
    assert.ok(db.warnings.some((w) => w.line === 394 && w.reason.startsWith("lone 'm'")));
  });

  it("issue_199.dbc: IDs above 0x7FF without the extended flag are 29-bit (extImplied)", () => {
    const m = msg(load("issue_199.dbc"), "DriverDoorStatus");
    assert.deepEqual([m.id, m.ext, m.extImplied], [274923520, true, true]);
  });

  it("an attribute value without BA_DEF_ is dropped with a warning (a dangling reference)", () => {
    const db = parseDbc('BA_ "X" 1;\nBA_DEF_ BU_ "Y" INT 0 9;\nBU_: A\nBA_ "Y" 2;\n');
    assert.deepEqual(db.warnings.map((w) => [w.line, w.column]), [[1, 5], [4, 5]]);
    assert.equal(db.attributes.get("Y"), 2, "an attribute set on the wrong object kind is kept");
  });

  it("keeps statements it does not interpret (SGTYPE_, CAT_DEF_...) verbatim", () => {
    const text = 'VERSION ""\nBU_: A\nBO_ 1 M: 8 A\n SG_ S : 0|8@1+ (1,0) [0|0] "" A\nSGTYPE_ T : 8@1+ (1,0) [0|0] "" 0 ;\n';
    const db = parseDbc(text);
    assert.deepEqual(db.otherStatements, ['SGTYPE_ T : 8@1+ (1,0) [0|0] "" 0 ;']);
    assert.deepEqual(parseDbc(writeDbc(db)).otherStatements, db.otherStatements);
  });
});

describe("DBC writer: parse -> write -> parse gives the same database", () => {
  for (const file of dbcFixtures()) {
    it(file, () => {
      const db = load(file);
      const again = parseDbc(writeDbc(db), "written");
      assert.deepEqual(comparable(again), comparable(db));
    });
  }
});

describe("DBC parser: malformed input is a DbcParseError with line, column and text", () => {
  const cases: Array<[string, string, number, number, RegExp]> = [
    ["unterminated string", 'VERSION "1.0\nBU_: A\n', 1, 9, /unterminated string/],
    ["bad byte order", 'BU_: A\nBO_ 1 M: 8 A\n SG_ S : 0|8@2+ (1,0) [0|0] "" A\n', 3, 14, /byte order/],
    ["missing ':' in BO_", "BO_ 1 M 8 A\n", 1, 9, /expected ':'/],
    ["signal length 0", 'BO_ 1 M: 8 A\n SG_ S : 0|0@1+ (1,0) [0|0] "" A\n', 2, 12, /length 0/],
    ["unknown statement", "VERSION \"\"\nFOO_ 1;\n", 2, 1, /unknown statement FOO_/],
    ["message length 65", "BO_ 1 M: 65 A\n", 1, 10, /length 65/],
    ["stray character", "BU_: A $\n", 1, 8, /unexpected character/],
  ];
  for (const [what, text, line, column, reason] of cases) {
    it(what, () => {
      assert.throws(
        () => parseDbc(text, "bad.dbc"),
        (e: unknown) => {
          assert.ok(e instanceof DbcParseError, String(e));
          assert.deepEqual([e.line, e.column], [line, column], e.message);
          assert.match(e.reason, reason);
          assert.ok(e.text.length > 0, "offending text");
          assert.ok(e.message.startsWith(`bad.dbc:${line}:${column}: `), e.message);
          return true;
        },
      );
    });
  }

  it("a duplicate message ID or signal name: the first is kept, the second dropped, an error for --check (line, column)", () => {
    const db = parseDbc('BU_: A\nBO_ 1 M: 8 A\n SG_ S : 0|8@1+ (1,0) [0|0] "" A\n SG_ S : 8|8@1+ (1,0) [0|0] "" A\nBO_ 1 N: 8 A\n', "dup.dbc");
    assert.deepEqual(db.messages.map((m) => [m.name, m.signals.map((s) => s.startBit)]), [["M", [0]]]);
    assert.deepEqual(
      db.warnings.map((w) => [w.line, w.column, w.severity, w.reason]),
      [
        [4, 6, "error", "duplicate signal S in message M: the one on line 3 is kept"],
        [5, 5, "error", "duplicate message ID 1: N is dropped, M (line 2) is kept"],
      ],
    );
  });

  it("the file name and position are in the message of a file on disk", () => {
    const bad = readFileSync(resolve(DBC_DIR, "motohawk.dbc"), "latin1").replace("@0-", "@0*");
    assert.throws(() => parseDbc(bad, "motohawk-broken.dbc"), /^DbcParseError: motohawk-broken\.dbc:\d+:\d+: .*|motohawk-broken\.dbc:\d+:\d+/);
  });
});
