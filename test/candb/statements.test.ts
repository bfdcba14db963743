/**
 * The DBC statements issue 2 lists, each read to the exact value (the fixture tests only see that some exist), written
 * back by the writer, and used by the codec: EV_/ENVVAR_DATA_, BA_DEF_REL_/BA_DEF_DEF_REL_/BA_REL_, SIG_GROUP_,
 * BO_TX_BU_, SIG_VALTYPE_, SG_MUL_VAL_ on an `mN` signal, CANFD_BRS.
 */
import assert from "node:assert/strict";
import { parseDbc } from "../../can-db/dbc-parser";
import { writeDbc } from "../../can-db/dbc-writer";
import { Decoder } from "../../can-db/decoder";
import { encodeFrame } from "../../can-db/encoder";
import { formatFrame, makeFrame } from "../../frame/frame";
import type { Database } from "../../can-db/model";

const TEXT = `VERSION "1.0"

NS_ :
\tCM_
\tBA_DEF_REL_

BS_:

BU_: ECU1 ECU2 GW

BO_ 100 Msg1: 8 ECU1
 SG_ Mux M : 0|8@1+ (1,0) [0|255] "" ECU2
 SG_ A m1 : 8|16@1- (0.5,-10) [-100|100] "km/h" ECU2,GW
 SG_ B m2 : 8|8@1+ (1,0) [0|255] "" ECU2
 SG_ F : 32|32@1- (1,0) [0|0] "" ECU2

BO_ 101 Fd: 10 GW
 SG_ S : 0|8@1+ (1,0) [0|0] "" ECU1

BO_TX_BU_ 100 : ECU1,GW;

EV_ EnvSpeed: 0 [0|250] "km/h" 10 1 DUMMY_NODE_VECTOR0 ECU1,ECU2;
EV_ EnvData: 0 [0|0] "" 0 2 DUMMY_NODE_VECTOR8000 Vector__XXX;
ENVVAR_DATA_ EnvData: 4;

CM_ EV_ EnvSpeed "speed env";
BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","reserved","StandardCAN_FD","ExtendedCAN_FD";
BA_DEF_ BO_ "CANFD_BRS" ENUM "0","1";
BA_DEF_REL_ BU_SG_REL_ "GenSigTimeoutTime" INT 0 65535;
BA_DEF_REL_ BU_BO_REL_ "NodeMsgRel" STRING ;
BA_DEF_DEF_ "CANFD_BRS" "1";
BA_DEF_DEF_REL_ "GenSigTimeoutTime" 0;
BA_DEF_DEF_REL_ "NodeMsgRel" "";
BA_ "VFrameFormat" BO_ 101 14;
BA_ "CANFD_BRS" BO_ 101 0;
BA_REL_ "GenSigTimeoutTime" BU_SG_REL_ ECU2 SG_ 100 A 500;
BA_REL_ "NodeMsgRel" BU_BO_REL_ GW 100 "x";
VAL_ EnvSpeed 0 "stop" ;
SIG_GROUP_ 100 Grp 1 : A B;
SIG_VALTYPE_ 100 F : 1;
SG_MUL_VAL_ 100 A Mux 1-1, 5-7;
`;

/** What these statements put in the model, as plain data (line numbers left out: the writer moves lines). */
function statements(db: Database) {
  const m = db.messages[0];
  return {
    envVars: db.envVars.map(({ line: _line, attributes: _a, ...ev }) => ({ ...ev, choices: ev.choices && [...ev.choices] })),
    relationDefs: db.attributeDefs.filter((d) => d.relation).map((d) => [d.name, d.objectKind, d.type, d.defaultValue]),
    relations: db.relationAttributes.map(({ line: _line, ...r }) => r),
    transmitters: m.transmitters,
    groups: m.signalGroups.map((g) => [g.name, g.repetitions, g.signals]),
    valueTypes: m.signals.map((s) => s.valueType),
    mux: m.signals.map((s) => [s.name, s.muxValue, s.muxSwitch, s.muxRanges]),
  };
}

describe("DBC statements of issue 2, read exactly, written back, used", () => {
  const db = parseDbc(TEXT, "statements.dbc");

  it("reads every statement without a warning", () => {
    assert.deepEqual(db.warnings, []);
  });

  it("EV_, ENVVAR_DATA_, CM_ EV_ and VAL_ on an environment variable", () => {
    assert.deepEqual(statements(db).envVars, [
      { name: "EnvSpeed", type: 0, min: 0, max: 250, unit: "km/h", initial: 10, evId: 1, accessType: "DUMMY_NODE_VECTOR0", accessNodes: ["ECU1", "ECU2"], comment: "speed env", choices: [[0, "stop"]] },
      { name: "EnvData", type: 0, min: 0, max: 0, unit: "", initial: 0, evId: 2, accessType: "DUMMY_NODE_VECTOR8000", accessNodes: ["Vector__XXX"], dataSize: 4, choices: undefined },
    ]);
  });

  it("BA_DEF_REL_, BA_DEF_DEF_REL_ and BA_REL_ on node-signal and node-message relations", () => {
    const s = statements(db);
    assert.deepEqual(s.relationDefs, [
      ["GenSigTimeoutTime", "BU_SG_REL_", "INT", 0],
      ["NodeMsgRel", "BU_BO_REL_", "STRING", ""],
    ]);
    assert.deepEqual(s.relations, [
      { name: "GenSigTimeoutTime", relation: "BU_SG_REL_", node: "ECU2", messageId: 100, target: "A", value: 500 },
      { name: "NodeMsgRel", relation: "BU_BO_REL_", node: "GW", messageId: 100, target: undefined, value: "x" },
    ]);
  });

  it("BO_TX_BU_, SIG_GROUP_, SIG_VALTYPE_ and SG_MUL_VAL_ on an mN signal", () => {
    const s = statements(db);
    assert.deepEqual(s.transmitters, ["ECU1", "GW"]);
    assert.deepEqual(s.groups, [["Grp", 1, ["A", "B"]]]);
    assert.deepEqual(s.valueTypes, ["integer", "integer", "integer", "float32"]);
    assert.deepEqual(s.mux, [
      ["Mux", undefined, undefined, undefined],
      ["A", 1, "Mux", [[1, 1], [5, 7]]],
      ["B", 2, undefined, undefined],
      ["F", undefined, undefined, undefined],
    ]);
  });

  it("the writer keeps all of them: write -> parse gives the same statements", () => {
    assert.deepEqual(statements(parseDbc(writeDbc(db))), statements(db));
  });

  it("decoding follows SG_MUL_VAL_ over the mN value, and SIG_VALTYPE_ float32", () => {
    const decoder = new Decoder(db);
    const decode = (text: string) => decoder.decode(makeFrame({ id: 100, data: Buffer.from(text, "hex") })).signals;
    // F = 1.5f (0x3FC00000, little endian); A raw 20 -> 0 km/h
    assert.deepEqual(decode("061400000000C03F"), { Mux: 6, A: 0, F: 1.5 });
    assert.deepEqual(decode("011400000000C03F"), { Mux: 1, A: 0, F: 1.5 });
    assert.deepEqual(decode("021400000000C03F"), { Mux: 2, B: 20, F: 1.5 });
    assert.deepEqual(decode("031400000000C03F"), { Mux: 3, F: 1.5 }, "3 is in no range: neither A nor B");
  });

  it("CANFD_BRS 0 encodes a CAN FD frame without the bit-rate switch; padded to a CAN FD length", () => {
    const fd = db.messages.find((m) => m.name === "Fd");
    assert.ok(fd?.fd);
    assert.equal(formatFrame(encodeFrame(db, fd, { S: 7 })), "065##007" + "00".repeat(11), "10 bytes padded to 12");
    const brsDefault = parseDbc(TEXT.replace('BA_ "CANFD_BRS" BO_ 101 0;\n', ""));
    assert.match(formatFrame(encodeFrame(brsDefault, brsDefault.messages[1], { S: 7 })), /^065##107/);
  });
});
