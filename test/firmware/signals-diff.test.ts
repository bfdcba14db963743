/**
 * Differential test of the gateway's signal extraction: every signal of the test DBCs that can-db/signal-table.ts
 * turns into a `sigTable` row (Intel and Motorola, signed and unsigned, 1..32 bits, classic and FD frames) is extracted
 * by the firmware's own SignalTable in the DeviceScript VM from random frames, and the raw values it publishes (decoded
 * from the `P/signals` records) must equal can-db's decoder (CompiledMessage.decodeInto) on the same frames. A signal
 * the frame is too short for must be skipped by both.
 *
 * The generated DeviceScript test goes to firmware/.signals-vm/ (not tracked). Each table is one JSON string parsed in
 * its own VM test, so the heap holds one table at a time.
 */
import { strict as assert } from "node:assert";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadDbcFile } from "../../can-db/load";
import { CompiledMessage } from "../../can-db/decoder";
import { frameKey } from "../../can-db/frame-key";
import { FLAG_MOTOROLA, FLAG_SIGNED, MAX_SIGNALS, signalRow } from "../../can-db/signal-table";
import { runDevsTest } from "../support/devs";

const ROOT = resolve(__dirname, "../../..");
const FIRMWARE = join(ROOT, "firmware");
const DBC_DIR = join(ROOT, "test/fixtures/dbc");
const OUT_DIR = join(FIRMWARE, ".signals-vm");
const RUN_TIMEOUT_MS = 170_000;
/** Random frames per message (after an all-ones and an all-zeros frame). */
const RANDOM_FRAMES = 3;
/**
 * Signals compared, at most: the extraction depends only on (start, len, flags) and the frame length, so one signal
 * per distinct triple is kept, then a deterministic sample of them (the VM program must stay small enough to build).
 */
const MAX_COMPARED = 4 * MAX_SIGNALS;

interface Frame {
  key: number;
  hex: string;
  /** The samples the firmware must publish for this frame, in table order: "i=raw". */
  want: string;
}
interface Case {
  name: string;
  rows: number[][];
  frames: Frame[];
}

/** A deterministic generator (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

interface Candidate {
  row: number[];
  msg: CompiledMessage;
  sig: number;
  key: number;
  length: number;
}

function candidates(): { list: Candidate[]; kinds: Set<number>; files: number } {
  const all: Candidate[] = [];
  const seen = new Set<string>();
  const kinds = new Set<number>();
  let files = 0;
  for (const f of readdirSync(DBC_DIR).filter((x) => x.endsWith(".dbc")).sort()) {
    let db;
    try {
      db = loadDbcFile(join(DBC_DIR, f));
    } catch {
      continue; // fixtures of parser errors
    }
    files++;
    for (const m of db.messages) {
      if (m.pseudo || m.length < 1 || m.length > 64) continue;
      const key = frameKey(m.id, m.ext);
      const cm = new CompiledMessage(m);
      m.signals.forEach((s, i) => {
        const r = signalRow(s, key);
        if (!r.row) return;
        const triple = `${r.row[1]}/${r.row[2]}/${r.row[3]}`;
        if (seen.has(triple)) return;
        seen.add(triple);
        all.push({ row: r.row, msg: cm, sig: i, key, length: m.length });
        kinds.add((r.row[3] & (FLAG_MOTOROLA | FLAG_SIGNED)) | (r.row[2] === 32 ? 4 : r.row[2] > 24 ? 8 : 0));
      });
    }
  }
  const random = rng(0xd1ff);
  const list = all.filter(() => random() < MAX_COMPARED / all.length);
  return { list, kinds, files };
}

function buildCases(list: Candidate[]): Case[] {
  const random = rng(0x5eed);
  const cases: Case[] = [];
  for (let at = 0; at < list.length; at += MAX_SIGNALS) {
    const part = list.slice(at, at + MAX_SIGNALS);
    // messages of different DBCs share IDs: each message of a table gets its own key (1, 2, ...; the extraction does
    // not depend on it), so a frame carries exactly that message's signals
    const msgs = [...new Set(part.map((c) => c.msg))];
    const rows = part.map((c) => [msgs.indexOf(c.msg) + 1, ...c.row.slice(1)]);
    const frames: Frame[] = [];
    const raw = new Float64Array(256);
    const phys = new Float64Array(256);
    for (const msg of msgs) {
      const mine = part.map((c, i) => ({ c, i })).filter((x) => x.c.msg === msg);
      const key = msgs.indexOf(msg) + 1;
      const { length } = mine[0].c;
      for (let k = 0; k < RANDOM_FRAMES + 2; k++) {
        // a random length now and then (DLC shorter than the DBC's): signals past it are skipped by both
        const len = k >= 2 && random() < 0.25 ? Math.floor(random() * length) + 1 : length;
        const d = new Uint8Array(len);
        for (let j = 0; j < len; j++) d[j] = k === 0 ? 0xff : k === 1 ? 0 : Math.floor(random() * 256);
        msg.decodeInto(d, raw, phys);
        const want = mine.filter((x) => raw[x.c.sig] === raw[x.c.sig]).map((x) => `${x.i}=${raw[x.c.sig]}`);
        frames.push({ key, hex: Buffer.from(d).toString("hex"), want: want.join(" ") });
      }
    }
    cases.push({ name: `table ${cases.length} (rows ${at}..${at + part.length - 1})`, rows, frames });
  }
  return cases;
}

function vmSource(cases: Case[]): string {
  return `// generated by test/firmware/signals-diff.test.ts: the firmware's extraction against can-db's decoder
import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"
import { SignalTable, SIG_SIGNED } from "../src/signals"

const CASES: string[] = ${JSON.stringify(cases.map((c) => JSON.stringify(c)))}

class Keep {
    g: Buffer = null
    constructor(readonly t: SignalTable) {}
    closeSignals() {
        this.g = this.t.rec.slice(0, this.t.recLen)
        this.t.clear()
    }
}

/** The samples of the records, "i=raw" (time ignored: every frame is one batch). */
function samples(g: Buffer, rows: number[][]): string {
    const out: string[] = []
    let p = 0
    const varint = () => {
        let v = 0
        let mul = 1
        for (;;) {
            const b = g[p++]
            v += (b & 0x7f) * mul
            mul *= 128
            if (!(b & 0x80)) return v
        }
    }
    while (p < g.length) {
        const head = varint()
        const i = head >> 1
        if (head & 1) varint()
        const u = varint()
        out.push(i + "=" + (rows[i][3] & SIG_SIGNED ? (u % 2 ? -(u + 1) / 2 : u / 2) : u))
    }
    return out.join(" ")
}

function addCase(src: string, name: string) {
    test(name, async () => {
        const c = JSON.parse(src)
        const t = new SignalTable(2048)
        const why = await t.compile(c.rows, [])
        if (why) throw new Error("table refused: " + why)
        const k = new Keep(t)
        let n = 0
        for (const f of c.frames) {
            const d = Buffer.from(f.hex, "hex")
            k.g = null
            t.onFrame(f.key, d, 0, d.length, 1000 + n, k)
            k.closeSignals()
            const got = samples(k.g, c.rows)
            if (got !== f.want) throw new Error("frame " + f.key + " " + f.hex + ": firmware [" + got + "], can-db [" + f.want + "]")
            n++
            if (n % 8 === 0) await ds.sleep(0)
        }
        console.log("checked " + n + " frames of " + c.rows.length + " signals")
    })
}

describe("signals: firmware extraction = can-db decoder", () => {
${cases.map((c, i) => `    addCase(CASES[${i}], ${JSON.stringify(c.name)})`).join("\n")}
})
`;
}

describe("signal extraction: the firmware in the VM against can-db's decoder", function () {
  this.timeout(RUN_TIMEOUT_MS + 10_000);

  it("every signal kind the table supports, from the test DBCs, on random frames", async () => {
    const { list, kinds, files } = candidates();
    for (const k of [0, 1, 2, 3]) assert.ok(list.some((c) => (c.row[3] & 3) === k), `no signal of kind ${k} sampled`);
    assert.ok(files >= 20, `expected the test DBCs, loaded ${files}`);
    // Intel/Motorola x unsigned/signed, and 25..31 and 32-bit widths among them
    for (const k of [0, 1, 2, 3]) assert.ok([...kinds].some((x) => (x & 3) === k), `no signal of kind ${k} in the fixtures`);
    assert.ok([...kinds].some((x) => x & 4), "no 32-bit signal in the fixtures");
    const cases = buildCases(list);
    mkdirSync(OUT_DIR, { recursive: true });
    const file = join(OUT_DIR, "signals-diff.test.ts");
    writeFileSync(file, vmSource(cases));
    const r = await runDevsTest(".signals-vm/signals-diff.test.ts", FIRMWARE, RUN_TIMEOUT_MS);
    const tail = r.output.split("\n").slice(-30).join("\n");
    const summary = /tests: (\d+), pass: (\d+), error: (\d+)/.exec(r.output);
    assert.ok(summary, `no test summary from the VM:\n${tail}`);
    assert.equal(Number(summary[3]), 0, `the VM reported mismatches:\n${r.output.split("\n").filter((l) => /firmware \[|Error|error/.test(l)).slice(0, 20).join("\n")}`);
    assert.equal(Number(summary[1]), cases.length, `the VM ran ${summary[1]} of ${cases.length} tables:\n${tail}`);
    assert.equal(r.code, 0, tail);
    const checked = [...r.output.matchAll(/checked (\d+) frames/g)].reduce((a, m) => a + Number(m[1]), 0);
    assert.equal(checked, cases.reduce((a, c) => a + c.frames.length, 0));
    console.log(`      ${list.length} signals of ${files} DBCs in ${cases.length} tables, ${checked} frames compared`);
  });
});
