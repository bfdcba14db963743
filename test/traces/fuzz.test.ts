/**
 * Fuzz: thousands of mutated trace lines per text format and hundreds of mutated BLF files (raw bytes, and the
 * object stream inside containers, re-packed so the mutations get past zlib's checksum). A reader may only report
 * TraceParseErrors through its context; it must never throw anything else, never yield an invalid frame, and end.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { validateFrame, type Frame } from "../../frame/frame";
import { TraceParseError } from "../../frame/errors";
import { findFormat, type TraceFormat } from "../../host/trace";
import { AscParser, fastLine } from "../../host/trace/asc";
import { parseCandumpLines } from "../../host/trace/candump";
import { parseFrame } from "../../frame/frame";
import { FIXTURES, prng, sampleFrames } from "./helpers";
import type { CopiedLines } from "../../host/trace/format";

const GOLDEN = path.join(FIXTURES, "golden");
const rnd = prng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const CHARS = " \t#().-xXrRdD0123456789ABCDEFabcdef;$=,:\u00e4\u0000\r\n{}\"[]";

function mutateLine(line: string): string {
  let s = line;
  const n = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(rnd() * (s.length + 1));
    switch (Math.floor(rnd() * 7)) {
      case 0: // replace a character
        s = s.slice(0, i) + pick([...CHARS]) + s.slice(i + 1);
        break;
      case 1: // insert
        s = s.slice(0, i) + pick([...CHARS]) + s.slice(i);
        break;
      case 2: // delete a run
        s = s.slice(0, i) + s.slice(i + 1 + Math.floor(rnd() * 4));
        break;
      case 3: // truncate
        s = s.slice(0, i);
        break;
      case 4: {
        // swap two whitespace-separated tokens
        const t = s.split(" ");
        const a = Math.floor(rnd() * t.length);
        const b = Math.floor(rnd() * t.length);
        [t[a], t[b]] = [t[b], t[a]];
        s = t.join(" ");
        break;
      }
      case 5: // a huge number
        s = s.slice(0, i) + "99999999999999999999" + s.slice(i);
        break;
      default: // duplicate a slice
        s = s.slice(0, i) + s.slice(Math.max(0, i - 8), i) + s.slice(i);
    }
  }
  return s;
}

async function* pieces(bytes: Buffer): AsyncGenerator<Buffer> {
  // Random chunk boundaries exercise the line splitter and BLF's byte stream as well.
  let pos = 0;
  while (pos < bytes.length) {
    const n = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 64 : 4096));
    yield bytes.subarray(pos, pos + n);
    pos += n;
  }
}

/** Reads `bytes` like a reader reads a file; returns frames and reported errors, failing on anything else. */
async function read(format: TraceFormat, bytes: Buffer, strict: boolean): Promise<{ frames: Frame[]; errors: number }> {
  const frames: Frame[] = [];
  let errors = 0;
  const ctx = {
    file: "fuzz",
    stopped: false,
    bad(line: number, reason: string) {
      assert.ok(Number.isInteger(line) && line >= 0, `line ${line}`);
      assert.ok(typeof reason === "string" && reason.length > 0);
      errors++;
      if (strict) throw new TraceParseError(reason, "fuzz", line);
    },
  };
  try {
    for await (const batch of format.read(pieces(bytes), ctx)) {
      for (const f of batch) {
        validateFrame(f);
        assert.ok(f.t === undefined || Number.isFinite(f.t), `time ${f.t}`);
        frames.push(f);
      }
    }
  } catch (e) {
    if (!(strict && e instanceof TraceParseError)) throw e;
  }
  return { frames, errors };
}

const TEXT_SEEDS: Record<string, string[]> = {
  candump: ["candump.log", "golden/sample.log"],
  asc: ["logfile.asc", "test_CanFdMessage64.asc", "golden/sample.asc", "single_frame_us_locale.asc"],
  trc: ["test_CanMessage_V1_0_BUS1.trc", "test_CanMessage_V1_1.trc", "test_CanMessage_V1_3.trc", "test_CanMessage_V2_0_BUS1.trc", "golden/sample.trc"],
  jsonl: ["golden/sample.jsonl"],
};

describe("trace fuzz (mutated input: typed errors only, no crash, no hang)", function () {
  this.timeout(60000);

  for (const [name, seeds] of Object.entries(TEXT_SEEDS)) {
    it(`${name}: 3000 mutated lines, lenient and strict`, async () => {
      const format = findFormat(name) as TraceFormat;
      let bad = 0;
      let good = 0;
      for (let file = 0; file < 60; file++) {
        // Mutate lines of one seed file; keep its header (first 15 lines) intact half of the time, so that mutated
        // frame lines are parsed under the right version/base, and lines pass through unmutated now and then.
        const own = fs.readFileSync(path.join(FIXTURES, pick(seeds)), "latin1").split("\n").slice(0, 400);
        const header = rnd() < 0.5 ? own.slice(0, 15) : [];
        const body: string[] = [];
        for (let i = 0; i < 50; i++) body.push(rnd() < 0.1 ? pick(own) : mutateLine(pick(own)));
        const bytes = Buffer.from([...header, ...body].join(rnd() < 0.2 ? "\r\n" : "\n"), "latin1");
        const lenient = await read(format, bytes, false);
        bad += lenient.errors;
        good += lenient.frames.length;
        await read(format, bytes, true);
      }
      // The mutations must actually reach the parser's error paths and still leave readable lines.
      assert.ok(bad > 100, `${name}: only ${bad} bad lines reported`);
      assert.ok(good > 100, `${name}: only ${good} frames read`);
    });
  }

  it("candump: copying lines (candump to candump) gives the bytes, counts and errors of parsing and printing them", async () => {
    const format = findFormat("candump") as TraceFormat;
    // Lines the writer prints (every kind of frame, channel names the writer keeps or renames), then their mutations
    // and edge cases of the copy rule: seconds at and over 2^32, leading zeros, lower case, CR, no time, bare numbers.
    const printed = format.createWriter().encode(sampleFrames({ otherErrorClasses: true })).toString("latin1").split("\n").filter(Boolean);
    const seeds = [
      ...printed,
      ...fs.readFileSync(path.join(GOLDEN, "sample.log"), "latin1").split("\n").filter(Boolean),
      ...fs.readFileSync(path.join(FIXTURES, "candump.log"), "latin1").split("\n").filter(Boolean).slice(0, 200),
      "(4294967295.999999) can0 123#11",
      "(4294967296.000000) can0 123#11",
      "(9999999999.999999) can0 7FF#",
      "(0.000000) can0 000#0011223344556677",
      "(00.000001) can0 123#11",
      "(1.00000) can0 123#11",
      "(1.0000001) can0 123#11",
      "(1.000000) 3 123#11",
      "(1.000000) can\u00e4 123#11",
      "(1.000000) can0 1FFFFFFF#11",
      "(1.000000) can0 20000080#0000000000000000",
      "(1.000000) can0 123##4112233",
      "(1.000000) can0 123##311223344556677889900",
      "(1.000000) can0 123#R",
      "(1.000000) can0 123#R0",
      "(1.000000) can0 123#11 R",
      "123#11",
      "(1.000000) can0 abc#11",
      "(1.000000) can0 123#1122334455667788AA",
    ];
    let copiedLines = 0;
    for (let file = 0; file < 200; file++) {
      const lines: string[] = [];
      for (let i = 0; i < 60; i++) lines.push(rnd() < 0.6 ? pick(seeds) : mutateLine(pick(seeds)));
      const eol = rnd() < 0.1 ? "\r\n" : "\n";
      const bytes = Buffer.from(lines.join(eol) + (rnd() < 0.8 ? eol : ""), "latin1");
      for (const strict of [false, true]) {
        const run = async (copy: boolean) => {
          const errors: string[] = [];
          const ctx = {
            file: "fuzz",
            stopped: false,
            bad(line: number, reason: string) {
              errors.push(`${line}: ${reason}`);
              if (strict) throw new TraceParseError(reason, "fuzz", line);
            },
          };
          const writer = format.createWriter();
          const out: Buffer[] = [];
          let frames = 0;
          const batches: AsyncIterable<Frame[] | CopiedLines> = copy ? format.readForCopy!(pieces(bytes), ctx) : format.read(pieces(bytes), ctx);
          try {
            for await (const batch of batches) {
              if (Array.isArray(batch)) {
                frames += batch.length;
                out.push(Buffer.from(writer.encode(batch) as Buffer));
              } else {
                frames += batch.frames;
                copiedLines += batch.frames;
                out.push(Buffer.from(writer.copy!(batch)));
              }
            }
          } catch (e) {
            if (!(strict && e instanceof TraceParseError)) throw e;
          }
          return { text: Buffer.concat(out).toString("latin1"), frames, errors };
        };
        const parsed = await run(false);
        const copied = await run(true);
        assert.deepEqual(copied, parsed, `file ${file}, strict ${strict}:\n${bytes.toString("latin1")}`);
      }
    }
    assert.ok(copiedLines > 5000, `only ${copiedLines} lines copied`);
  });

  it("candump: the byte parser accepts exactly what can-db's parseFrame accepts, on 20000 bare frames", () => {
    const frames = fs
      .readFileSync(path.join(GOLDEN, "sample.log"), "latin1")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" ")[2]);
    let accepted = 0;
    for (let k = 0; k < 20000; k++) {
      const text = k < frames.length ? frames[k] : mutateLine(pick(frames)).replace(/[\s]/g, "");
      if (text.length === 0) continue;
      let expected: Frame | string;
      try {
        expected = parseFrame(text);
      } catch {
        expected = "rejected";
      }
      const out: Frame[] = [];
      let reason = "";
      parseCandumpLines(Buffer.from(text, "latin1"), 1, { file: "x", stopped: false, bad: (_, r) => void (reason = r) }, out);
      if (typeof expected === "string") {
        assert.equal(out.length, 0, `${text}: parseFrame rejects it, the trace reader read ${JSON.stringify(out[0])}`);
        continue;
      }
      accepted++;
      assert.equal(out.length, 1, `${text}: parseFrame reads it, the trace reader says ${reason}`);
      const { t: _t, bus: _b, ...got } = out[0];
      assert.deepEqual({ ...got, data: [...got.data] }, { ...expected, data: [...expected.data] }, text);
    }
    assert.ok(accepted > 3000, `only ${accepted} frames accepted`);
  });

  it("asc: the byte-level fast path gives what the general parser gives, on 20000 real and mutated lines", () => {
    const lines = ["logfile.asc", "issue_1256.asc", "test_CanFdMessage.asc", "test_CanFdMessage64.asc", "golden/sample.asc"].flatMap((s) =>
      fs.readFileSync(path.join(FIXTURES, s), "latin1").split("\n"),
    );
    let fast = 0;
    for (let k = 0; k < 20000; k++) {
      const line = k < lines.length ? lines[k] : mutateLine(pick(lines));
      const errors: string[] = [];
      const ctx = { file: "x", stopped: false, bad: (_: number, r: string) => void errors.push(r) };
      const slowParser = new AscParser(ctx);
      const fastParser = new AscParser(ctx);
      slowParser.start = fastParser.start = 1000;
      const expected = slowParser.line(line, 1);
      const out: Frame[] = [];
      const b = Buffer.from(line, "latin1");
      if (!fastLine(fastParser, b, 0, b.length, out)) continue;
      fast++;
      assert.equal(errors.length, 0, `fast path took a line the parser rejects: ${line}`);
      assert.deepEqual(out[0], expected, JSON.stringify(line));
    }
    assert.ok(fast > 3000, `fast path used for only ${fast} lines`);
  });

  it("blf: 300 files with random byte damage and 300 with damaged object streams", async () => {
    const format = findFormat("blf") as TraceFormat;
    const seeds = ["golden/sample.blf", "issue_1905.blf", "test_CanMessage.blf", "test_CanErrorFrameExt.blf"].map((s) =>
      fs.readFileSync(path.join(FIXTURES, s)),
    );
    let errors = 0;
    for (let k = 0; k < 300; k++) {
      const b = Buffer.from(pick(seeds));
      const n = 1 + Math.floor(rnd() * 8);
      for (let i = 0; i < n; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const cut = rnd() < 0.3 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      errors += (await read(format, cut, false)).errors;
      await read(format, cut, true);
    }
    // Damage the uncompressed object stream, then pack it again (stored or deflated) so the parser sees it.
    const sample = fs.readFileSync(path.join(GOLDEN, "sample.blf"));
    const head = sample.subarray(0, 144);
    const size = sample.readUInt32LE(144 + 8);
    const payload = zlib.inflateSync(sample.subarray(144 + 32, 144 + size));
    let frames = 0;
    for (let k = 0; k < 300; k++) {
      const p = Buffer.from(payload);
      const n = 1 + Math.floor(rnd() * 6);
      for (let i = 0; i < n; i++) {
        const at = Math.floor(rnd() * p.length);
        // Hit the header fields (sizes, types, versions) often: they steer the parser.
        if (rnd() < 0.5) p.writeUInt32LE(Math.floor(rnd() * 2 ** 32), Math.min(at - (at % 4), p.length - 4));
        else p[at] = Math.floor(rnd() * 256);
      }
      const stored = rnd() < 0.5;
      const body = stored ? p : zlib.deflateSync(p);
      const obj = Buffer.alloc(32 + body.length);
      obj.write("LOBJ", 0, "latin1");
      obj.writeUInt16LE(16, 4);
      obj.writeUInt16LE(1, 6);
      obj.writeUInt32LE(obj.length, 8);
      obj.writeUInt32LE(10, 12);
      obj.writeUInt16LE(stored ? 0 : 2, 16);
      obj.writeUInt32LE(p.length, 24);
      body.copy(obj, 32);
      const file = Buffer.concat([head, obj, Buffer.alloc(obj.length % 4)]);
      const r = await read(format, file, false);
      errors += r.errors;
      frames += r.frames.length;
      await read(format, file, true);
    }
    assert.ok(errors > 300, `only ${errors} errors reported`);
    assert.ok(frames > 1000, `only ${frames} frames survived`);
  });
});
