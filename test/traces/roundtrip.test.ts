/**
 * Round trips: each of our writers read back by our reader (plain and gzip), a chain through every format, and
 * `.log`/`.asc` through can-utils' log2asc/asc2log (the reference converters).
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import type { Frame } from "../../frame/frame";
import { bytesToHex, formatFrame } from "../../frame/frame";
import { openTraceReader, openTraceWriter, readAllFrames } from "../../host/trace";
import { candumpChannel } from "../../host/trace/channel";
import { canUtils } from "./reference";
import { sampleFrames, tmpDir } from "./helpers";

const BUS_ERROR = 0x80;

/** What a format keeps of a frame (see docs/traces.md): the expected result of writing then reading it. */
function kept(format: string, f: Frame): Frame | undefined {
  if (format === "log") return { ...f, bus: candumpChannel(f.bus) };
  if (format === "jsonl") return f;
  if (f.err && format === "trc") return undefined; // dropped and counted
  if (f.err) {
    // ASC and BLF keep the error class and the 8 detail bytes (vgw's own tail and mark; docs/traces.md).
    const data = new Uint8Array(8);
    data.set(f.data.subarray(0, 8));
    return { ...f, data };
  }
  return f;
}

function text(f: Frame): string {
  return `${f.bus} ${formatFrame(f)}`;
}

function assertSameFrames(actual: Frame[], expected: Frame[], opts: { relativeTime?: boolean; label: string }): void {
  assert.deepEqual(actual.map(text), expected.map(text), opts.label);
  for (let i = 0; i < actual.length; i++) {
    const ta = (actual[i].t as number) - (opts.relativeTime ? (actual[0].t as number) : 0);
    const te = (expected[i].t as number) - (opts.relativeTime ? (expected[0].t as number) : 0);
    assert.ok(Math.abs(ta - te) <= 1e-6, `${opts.label}: frame ${i} time ${ta} vs ${te}`);
  }
}

async function writeAll(file: string, frames: Frame[]): Promise<{ written: number; dropped: number }> {
  const w = openTraceWriter(file);
  // Several batches, so writers that buffer (BLF containers) see batch boundaries.
  for (let i = 0; i < frames.length; i += 7) await w.write(frames.slice(i, i + 7));
  await w.close();
  return { written: w.framesWritten, dropped: w.framesDropped };
}

describe("trace round trips", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const frames = sampleFrames({ otherErrorClasses: true });

  for (const ext of ["log", "asc", "blf", "trc", "jsonl"]) {
    for (const gz of ["", ".gz"]) {
      it(`writes and reads back .${ext}${gz}`, async () => {
        const file = path.join(dir, `rt.${ext}${gz}`);
        const expected = frames.map((f) => kept(ext, f)).filter((f): f is Frame => f !== undefined);
        const { written, dropped } = await writeAll(file, frames);
        assert.equal(written, expected.length);
        assert.equal(dropped, frames.length - expected.length);
        const back = await readAllFrames(file, { strict: true });
        assertSameFrames(back, expected, { label: `.${ext}${gz}` });
      });
    }
  }

  it("keeps frames through a chain of every format (.log > .asc > .blf > .trc > .jsonl > .log)", async () => {
    const start = frames.filter((f) => !f.err).map((f) => kept("log", f) as Frame);
    let current = path.join(dir, "chain0.log");
    await writeAll(current, start);
    for (const [i, ext] of ["asc", "blf", "trc", "jsonl", "log"].entries()) {
      const next = path.join(dir, `chain${i + 1}.${ext}`);
      const w = openTraceWriter(next);
      for await (const batch of openTraceReader(current, { strict: true })) await w.write(batch);
      await w.close();
      current = next;
    }
    assertSameFrames(await readAllFrames(current), start, { label: "chain" });
  });

  it("can-utils log2asc reads our .log, and we read its .asc", async () => {
    const source = frames.filter((f) => !(f.err && f.id !== BUS_ERROR)).map((f) => kept("log", f) as Frame);
    const log = path.join(dir, "cu.log");
    const asc = path.join(dir, "cu-from-log2asc.asc");
    await writeAll(log, source);
    canUtils("log2asc", ["-I", log, "-O", asc, "can0", "can1"]);
    const back = await readAllFrames(asc, { strict: true });
    // log2asc numbers channels by its interface list (can0 -> 1) and writes times from the first frame.
    const expected = source.map((f) => ({ ...kept("asc", f), bus: String(Number((f.bus as string).slice(3)) + 1) }) as Frame);
    assertSameFrames(back, expected, { relativeTime: true, label: "log2asc" });
  });

  it("can-utils asc2log reads our .asc, and we read its .log", async () => {
    const source = frames.filter((f) => !(f.err && f.id !== BUS_ERROR));
    const asc = path.join(dir, "cu.asc");
    await writeAll(asc, source);
    const out = canUtils("asc2log", ["-I", asc]);
    const log = path.join(dir, "cu-from-asc2log.log");
    fs.writeFileSync(log, out, "latin1");
    const back = await readAllFrames(log, { strict: true });
    // asc2log maps channel N to can<N-1>; without its locale it cannot read the header date, so compare relative times.
    const expected = source.map((f) => kept("log", kept("asc", f) as Frame) as Frame);
    assertSameFrames(back, expected, { relativeTime: true, label: "asc2log" });
  });

  it("keeps the data bytes of a gzip-compressed trace bit-exact (BLF containers across gzip)", async () => {
    const many: Frame[] = [];
    for (let i = 0; i < 20000; i++) many.push({ ...frames[i % frames.length], t: 1700000000 + i / 1000 });
    const file = path.join(dir, "many.blf.gz");
    await writeAll(file, many);
    const back = await readAllFrames(file, { strict: true });
    assert.equal(back.length, many.length);
    assert.equal(back.map((f) => bytesToHex(f.data)).join(""), many.map((f) => bytesToHex(kept("blf", f)!.data)).join(""));
  });
});
