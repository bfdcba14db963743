/** `checkDatabase` (vgw dbc --check): each finding on the line of the statement at fault, with its severity. */
import assert from "node:assert/strict";
import { parseDbc } from "../../can-db/dbc-parser";
import { checkDatabase } from "../../can-db/check";

const DBC = [
  /* 1 */ "BU_: A",
  /* 2 */ "BO_ 1 Overlaps: 8 A",
  /* 3 */ ' SG_ Wide : 0|16@1+ (1,0) [0|0] "" A',
  /* 4 */ ' SG_ Inside : 8|4@1+ (1,0) [0|0] "" A',
  /* 5 */ "BO_ 2 Muxed: 8 A",
  /* 6 */ ' SG_ Sw M : 0|8@1+ (1,0) [0|0] "" A',
  /* 7 */ ' SG_ Zero m0 : 8|8@1+ (1,0) [0|0] "" A',
  /* 8 */ ' SG_ One m1 : 8|8@1+ (1,0) [0|0] "" A',
  /* 9 */ ' SG_ Beyond : 60|8@1+ (1,0) [0|0] "" A',
  /* 10 */ "BO_ 3 Ranges: 8 A",
  /* 11 */ ' SG_ TooWide : 0|4@1+ (1,0) [0|100] "" A',
  /* 12 */ ' SG_ Inverted : 8|4@1+ (1,0) [5|1] "" A',
  /* 13 */ ' SG_ Labels : 16|2@1+ (1,0) [0|0] "" A',
  /* 14 */ "BO_ 4096 ImpliedExt: 10 A",
  /* 15 */ ' SG_ X : 0|8@1+ (1,0) [0|0] "" A',
  /* 16 */ 'VAL_ 3 Labels 0 "a" 7 "b" ;',
  /* 17 */ 'BA_DEF_ SG_ "GenSigStartValue" INT 0 1000;',
  /* 18 */ 'BA_ "GenSigStartValue" SG_ 3 TooWide 99;',
  /* 19 */ "SIG_GROUP_ 3 G 1 : Labels Ghost;",
  /* 20 */ 'BA_DEF_ SG_ "SystemSignalLongSymbol" STRING;',
  /* 21 */ 'BA_ "SystemSignalLongSymbol" SG_ 3 Inverted "TooWide";',
].join("\n");

describe("can-db checks (vgw dbc --check)", () => {
  it("finds overlaps, signals beyond the message, ranges, bad raw values, FD lengths, duplicates, dangling names", () => {
    const got = checkDatabase(parseDbc(DBC, "c.dbc")).map((f) => `${f.line} ${f.severity}: ${f.message}`);
    const want: RegExp[] = [
      /^4 error: signals Wide and Inside of Overlaps overlap in 4 bit\(s\) \(first: bit 8\)$/,
      /^9 error: signal Muxed\.Beyond needs 9 bytes, the message has 8$/,
      /^11 warning: signal Ranges\.TooWide: range \[0, 100\] exceeds what 4 unsigned bits carry \[0, 15\]$/,
      /^11 warning: signal Ranges\.TooWide: GenSigStartValue 99 \(raw\) does not fit 4 unsigned bits$/,
      /^12 error: duplicate signal name TooWide in Ranges \(first on line 11\)$/,
      /^12 warning: signal Ranges\.TooWide: minimum 5 is above maximum 1$/,
      /^13 warning: signal Ranges\.Labels: value-table key\(s\) 7 do not fit 2 unsigned bits$/,
      /^14 warning: message ImpliedExt: ID 4096 is above 0x7FF without the extended flag; read as 29-bit$/,
      /^14 warning: message ImpliedExt has 10 bytes but its VFrameFormat is unset, not CAN FD$/,
      /^14 warning: message ImpliedExt: 10 bytes is not a CAN FD length; frames are padded to 12$/,
      /^19 warning: signal group G of Ranges names unknown signal\(s\) Ghost$/,
    ];
    assert.equal(got.length, want.length, got.join("\n"));
    for (const w of want) assert.ok(got.some((g) => w.test(g)), `missing ${w}\n${got.join("\n")}`);
    // Zero and One share bits but never appear together: no overlap finding for them.
    assert.ok(!got.some((g) => /Zero and One/.test(g)));
  });

  it("a duplicate node name is reported on its BU_ line, not line 0", () => {
    const findings = checkDatabase(parseDbc('VERSION ""\n\nBU_: A B\n A\n'));
    assert.deepEqual(findings.map((f) => [f.line, f.severity, f.message]), [[4, "error", "duplicate node name A in BU_"]]);
  });
});
