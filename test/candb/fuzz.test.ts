/**
 * Fuzz: thousands of mutated DBC texts (spans deleted, DBC-ish tokens inserted, lines duplicated or swapped, files
 * truncated). Each must either parse or throw DbcParseError: no other exception, no hang (time bounded per case).
 * What parses must also write and parse again, and decode random frames without throwing.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { decodeDbcBytes, parseDbc } from "../../can-db/dbc-parser";
import { writeDbc } from "../../can-db/dbc-writer";
import { Decoder } from "../../can-db/decoder";
import { DbcParseError } from "../../frame/errors";
import { DBC_DIR, dbcFixtures, seededRandom } from "./helpers";

const CASES = 5000;
// Generous: the machine is shared; a hang or quadratic blow-up takes far longer than this.
const MAX_MS_PER_CASE = 1500;
const TOKENS = [
  '"', ";", ":", "|", "@", "(", ")", "[", "]", ",", "-", "+", ".", "0", "1", "7", "64", "99999999999999999999", "1e400",
  "-1", "\n", " ", "\t", "BO_ ", "SG_ ", "VAL_ ", "BA_ ", "CM_ ", "SG_MUL_VAL_ ", "m1M", "M", "m", "\\", "\u0000", "é", "€",
];

function mutate(text: string, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  let s = text;
  const ops = 1 + pick(4);
  for (let k = 0; k < ops; k++) {
    const at = pick(s.length + 1);
    switch (pick(6)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + pick(20));
        break;
      case 1:
        s = s.slice(0, at) + TOKENS[pick(TOKENS.length)] + s.slice(at);
        break;
      case 2: {
        const lines = s.split("\n");
        const i = pick(lines.length);
        lines.splice(pick(lines.length), 0, lines[i]);
        s = lines.join("\n");
        break;
      }
      case 3: {
        const lines = s.split("\n");
        const i = pick(lines.length);
        const j = pick(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        s = lines.join("\n");
        break;
      }
      case 4:
        s = s.slice(0, at);
        break;
      default:
        s = s.slice(0, at) + String.fromCharCode(32 + pick(95)) + s.slice(at + 1);
    }
  }
  return s;
}

describe("can-db fuzz: mutated DBC files", function () {
  this.timeout(120_000);

  it(`${CASES} mutants: DbcParseError or a database that writes, re-parses and decodes`, () => {
    const sources = dbcFixtures()
      .filter((f) => statSync(resolve(DBC_DIR, f)).size < 20_000)
      .map((f) => ({ f, text: decodeDbcBytes(readFileSync(resolve(DBC_DIR, f))) }));
    const rnd = seededRandom(2024);
    let parsed = 0;
    let rejected = 0;
    let slowest = 0;
    for (let c = 0; c < CASES; c++) {
      const src = sources[c % sources.length];
      const text = mutate(src.text, rnd);
      const t0 = process.hrtime.bigint();
      try {
        const db = parseDbc(text, src.f);
        parsed++;
        const again = parseDbc(writeDbc(db), `${src.f} (written)`);
        assert.equal(again.messages.length, db.messages.length, `case ${c}: written copy lost messages`);
        const dec = new Decoder(db);
        for (const m of db.messages) {
          if (m.pseudo) continue;
          const data = new Uint8Array(Math.floor(rnd() * 65));
          for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
          dec.decode({ id: m.id, ext: m.ext, rtr: false, fd: true, brs: false, esi: false, err: false, data });
        }
      } catch (e) {
        if (!(e instanceof DbcParseError)) {
          throw new Error(`case ${c} (${src.f}): ${e instanceof Error ? e.stack : String(e)}\n--- mutant ---\n${text.slice(0, 3000)}`);
        }
        assert.ok(e.line >= 1 && e.column >= 1, `case ${c}: position ${e.line}:${e.column}`);
        rejected++;
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < MAX_MS_PER_CASE, `case ${c} (${src.f}) took ${ms.toFixed(0)} ms`);
    }
    assert.ok(parsed > 100 && rejected > 100, `both outcomes exercised: ${parsed} parsed, ${rejected} rejected`);
    process.stderr.write(`      fuzz: ${parsed} parsed, ${rejected} rejected with DbcParseError, slowest ${slowest.toFixed(1)} ms\n`);
  });
});
