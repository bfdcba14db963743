import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { formatFrame } from "../../frame/frame";
import { TraceParseError } from "../../frame/errors";
import { openTraceReader, openTraceWriter, readAllFrames } from "../../host/trace";
import { fixture, tmpDir } from "./helpers";

describe("trace: candump .log", () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  }

  it("reads the SavvyCAN candump fixture: count, first and last frame", async () => {
    const frames = await readAllFrames(fixture("candump.log"));
    assert.equal(frames.length, 12974);
    assert.equal(formatFrame(frames[0]), "21A#FE3612FE690507AD");
    assert.equal(frames[0].t, 166);
    assert.equal(frames[0].bus, "vcan0");
  });

  it("reads classic, extended, FD, remote, error, bare and python-can direction lines", async () => {
    const p = write(
      "mixed.log",
      [
        "(1436509052.249713) can0 123#DEADBEEF",
        "(1436509052.250000) can1 12345678#00112233 R",
        "(1436509052.250001) can0 7FF##3" + "AB".repeat(12),
        "(1436509052.250002) can0 123#R",
        "(1436509052.250003) can0 1F334455#R5",
        "(1436509052.250004) can0 20000080#0000000000000000",
        "",
        "123#11223344",
        "  456##1  ",
        "(0.5) can0 001#de.ad\r",
      ].join("\n"),
    );
    const frames = await readAllFrames(p, { strict: true });
    assert.deepEqual(
      frames.map((f) => [formatFrame(f), f.t, f.bus]),
      [
        ["123#DEADBEEF", 1436509052.249713, "can0"],
        ["12345678#00112233", 1436509052.25, "can1"],
        ["7FF##3" + "AB".repeat(12), 1436509052.250001, "can0"],
        ["123#R", 1436509052.250002, "can0"],
        ["1F334455#R5", 1436509052.250003, "can0"],
        ["20000080#0000000000000000", 1436509052.250004, "can0"],
        ["123#11223344", undefined, undefined],
        ["456##1", undefined, undefined],
        ["001#DEAD", 0.5, "can0"],
      ],
    );
    assert.equal(frames[5].err, true);
    assert.equal(frames[2].brs && frames[2].esi && frames[2].fd, true);
  });

  it("timestamps equal parseFloat of the text exactly", async () => {
    const times = ["1700000000.000123", "0.000001", "12.5", "99999.999999", "1436509052.249713", "1.123456789", "17000000000.0000001"];
    // regression (found by the fuzz test): a line indented before a timestamp too long for the integer path
    const p = write("times.log", times.map((t) => `  (${t}) can0 123#`).join("\n") + "\n");
    const frames = await readAllFrames(p);
    assert.deepEqual(
      frames.map((f) => f.t),
      times.map(Number),
    );
  });

  it("reports every bad line with file:line and skips it; strict stops at the first", async () => {
    const p = write(
      "bad.log",
      ["(1.0) can0 123#00", "(1.0 can0 123#00", "(1.0) can0 800#00", "(1.0) can0 123#0", "(1.0) can0 123#001122334455667788", "(2.0) can0 124#01"].join(
        "\n",
      ),
    );
    const errors: TraceParseError[] = [];
    const reader = openTraceReader(p, { onError: (e) => errors.push(e) });
    const frames: string[] = [];
    for await (const batch of reader) for (const f of batch) frames.push(formatFrame(f));
    assert.deepEqual(frames, ["123#00", "124#01"]);
    assert.equal(reader.skipped, 4);
    assert.equal(reader.framesRead, 2);
    assert.deepEqual(
      errors.map((e) => e.line),
      [2, 3, 4, 5],
    );
    assert.match(errors[1].message, /bad\.log:3: 11-bit ID exceeds 7FF/);

    await assert.rejects(
      async () => {
        for await (const _ of openTraceReader(p, { strict: true })) void _;
      },
      (e: unknown) => e instanceof TraceParseError && e.line === 2,
    );
  });

  it("counts lines across chunk boundaries (a 3 MB file read in 64 KB chunks)", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 100000; i++) lines.push(`(${(i / 1000).toFixed(6)}) can0 ${(i & 0x7ff).toString(16).padStart(3, "0")}#0011223344556677`);
    lines[76543] = "garbage";
    const p = write("big.log", lines.join("\n") + "\n");
    const errors: TraceParseError[] = [];
    const frames = await readAllFrames(p, { onError: (e) => errors.push(e) });
    assert.equal(frames.length, 99999);
    assert.deepEqual(
      errors.map((e) => e.line),
      [76544],
    );
    assert.equal(frames[76543].t, 76.544);
  });

  it("writes what it reads, byte for byte for candump -l output, also through gzip", async () => {
    const src = fixture("candump.log");
    for (const out of ["copy.log", "copy.log.gz"]) {
      const dst = path.join(dir, out);
      const w = openTraceWriter(dst);
      for await (const batch of openTraceReader(src)) await w.write(batch);
      await w.close();
      assert.equal(w.framesWritten, 12974);
      const back = await readAllFrames(dst);
      assert.equal(back.length, 12974);
      if (!out.endsWith(".gz")) assert.equal(fs.readFileSync(dst, "latin1"), fs.readFileSync(src, "latin1"));
    }
  });

  it("fails with the path when the file does not exist or the extension is unknown", () => {
    assert.throws(() => openTraceReader(path.join(os.tmpdir(), "no-such-trace.log")), /cannot read trace .*no-such-trace\.log: no such file/);
    assert.throws(() => openTraceReader(fixture("SOURCES.md")), /unknown trace format/);
  });
});
