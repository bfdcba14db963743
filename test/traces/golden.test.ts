/**
 * Golden tests of `vgw convert` (in process, and through the CLI for exit codes and messages), in the UTC time
 * zone because ASC/BLF/TRC store local times:
 *  - every fixture trace printed as candump text equals test/fixtures/traces/golden/<fixture>.log (reader goldens);
 *  - golden/sample.jsonl written in every format equals golden/sample.<ext> (writer goldens; BLF compared
 *    after unpacking its zlib containers, since the compressed bytes belong to the zlib build);
 *  - exit codes and messages for the failure cases.
 * After a deliberate format change, regenerate with VGW_UPDATE_GOLDEN=1 and review the diff.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { convert } from "../../cli/commands/convert";
import { log } from "../../host/log";
import { FIXTURES, fixture, sampleFrames, tmpDir } from "./helpers";

const GOLDEN = path.join(FIXTURES, "golden");
const VGW = path.resolve(__dirname, "../../../bin/vgw");
const UPDATE = process.env.VGW_UPDATE_GOLDEN === "1";

function vgw(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VGW, ...args], {
    input,
    encoding: "latin1",
    timeout: 30000,
    env: { ...process.env, TZ: "UTC", VGW_LOG: "info" },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function golden(name: string, actual: Buffer | string): void {
  const file = path.join(GOLDEN, name);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
  }
  assert.ok(fs.existsSync(file), `missing golden file ${file} (run with VGW_UPDATE_GOLDEN=1 to create it)`);
  const expected = fs.readFileSync(file);
  const got = Buffer.isBuffer(actual) ? actual : Buffer.from(actual, "latin1");
  if (!expected.equals(got)) {
    assert.equal(got.toString("latin1"), expected.toString("latin1"), `${name} differs from its golden file`);
    assert.fail(`${name} differs from its golden file (binary)`);
  }
}

/** A BLF file's header (minus file size, which depends on compression) and its unpacked container payloads. */
function blfContent(file: string): Buffer {
  const b = fs.readFileSync(file);
  const header = Buffer.from(b.subarray(0, 144));
  header.fill(0, 16, 24);
  const parts = [header];
  let pos = header.readUInt32LE(4);
  while (pos + 16 <= b.length) {
    assert.equal(b.toString("latin1", pos, pos + 4), "LOBJ", `object signature at byte ${pos}`);
    const size = b.readUInt32LE(pos + 8);
    assert.equal(b.readUInt32LE(pos + 12), 10, "top-level objects are log containers");
    parts.push(zlib.inflateSync(b.subarray(pos + 32, pos + size)));
    pos += size + (size % 4);
  }
  assert.equal(pos, b.length, "no bytes after the last container");
  return Buffer.concat(parts);
}

describe("trace goldens (vgw convert)", function () {
  this.timeout(60000);
  let dir: string;
  const savedTz = process.env.TZ;
  const savedSink = log.sink;
  const logged: string[] = [];
  before(() => {
    // Node re-reads TZ when it is assigned; mocha runs one test at a time, and after() restores it.
    process.env.TZ = "UTC";
    log.sink = (line) => logged.push(line);
    dir = tmpDir();
    if (UPDATE) {
      fs.mkdirSync(GOLDEN, { recursive: true });
      const lines = sampleFrames({ otherErrorClasses: true }).map((f) =>
        JSON.stringify({ t: f.t, bus: f.bus, id: f.id, ext: f.ext, rtr: f.rtr, fd: f.fd, brs: f.brs, esi: f.esi, err: f.err, ...(f.dlc !== undefined ? { dlc: f.dlc } : {}), data: Buffer.from(f.data).toString("hex").toUpperCase() }),
      );
      fs.writeFileSync(path.join(GOLDEN, "sample.jsonl"), lines.join("\n") + "\n");
    }
  });
  after(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
    log.sink = savedSink;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs in UTC", () => {
    assert.equal(new Date(0).getHours(), 0);
  });

  const traces = fs.readdirSync(FIXTURES).filter((n) => /\.(log|asc|blf|trc)(\.gz)?$/.test(n));
  for (const name of traces) {
    it(`reads ${name} as the golden candump text`, async () => {
      const out = path.join(dir, `${name}.log`);
      await convert(fixture(name), out, {});
      golden(`${name}.log`, fs.readFileSync(out));
      assert.match(logged[logged.length - 1], /^convert: \d+ frames read/);
    });
  }

  for (const ext of ["log", "asc", "trc", "jsonl"]) {
    it(`writes golden/sample.jsonl as the golden .${ext}`, async () => {
      const out = path.join(dir, `sample.${ext}`);
      await convert(path.join(GOLDEN, "sample.jsonl"), out, {});
      golden(`sample.${ext}`, fs.readFileSync(out));
    });
  }

  it("writes golden/sample.jsonl as the golden .blf through the CLI (header and unpacked containers)", () => {
    const out = path.join(dir, "sample.blf");
    const r = vgw(["convert", path.join(GOLDEN, "sample.jsonl"), out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /convert: 57 frames read \(jsonl\), 57 written \(blf\)/);
    if (UPDATE) fs.copyFileSync(out, path.join(GOLDEN, "sample.blf"));
    assert.ok(blfContent(out).equals(blfContent(path.join(GOLDEN, "sample.blf"))), "sample.blf content differs from its golden file");
  });

  it("reads each golden sample file back as the golden .log (what each format keeps, see docs/traces.md)", async () => {
    for (const ext of ["asc", "blf", "trc", "jsonl"]) {
      const out = path.join(dir, `sample-from-${ext}.log`);
      await convert(path.join(GOLDEN, `sample.${ext}`), out, {});
      golden(`sample-from-${ext}.log`, fs.readFileSync(out));
    }
    // jsonl keeps everything: its candump form is the candump writer's own golden
    assert.ok(fs.readFileSync(path.join(GOLDEN, "sample-from-jsonl.log")).equals(fs.readFileSync(path.join(GOLDEN, "sample.log"))));
  });

  it("summarises skipped lines and exits 0; --strict exits 1 at the first bad line", () => {
    const input = "(1.0) can0 123#11\nnot a frame\n(2.0) can0 124#22\n";
    const lenient = vgw(["convert", "-", "-"], input);
    assert.equal(lenient.code, 0);
    assert.equal(lenient.stdout, "(1.000000) can0 123#11\n(2.000000) can0 124#22\n");
    assert.match(lenient.stderr, /<stdin>:2: expected <id>#<data>.*'not a frame' \(skipped\)/);
    assert.match(lenient.stderr, /convert: 2 frames read \(candump\), 2 written \(candump\), 1 bad lines skipped/);
    const strict = vgw(["convert", "--strict", "-", "-"], input);
    assert.equal(strict.code, 1);
    assert.equal(strict.stdout, "(1.000000) can0 123#11\n");
    assert.match(strict.stderr, /vgw: <stdin>:2: expected <id>#<data>/);
  });

  it("exits 2 on usage errors and 1 on a missing input, naming the file", () => {
    const unknown = vgw(["convert", "trace.xyz", "out.log"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown trace format: the extension of 'trace\.xyz'/);
    assert.equal(vgw(["convert", "only-one-arg"]).code, 2);
    const badTo = vgw(["convert", "--to", "xyz", path.join(dir, "nope.log"), "-"]);
    assert.equal(badTo.code, 2, "an unknown output format is a usage error, found before the missing input");
    assert.match(badTo.stderr, /unknown trace format: format 'xyz'/);
    const missing = vgw(["convert", path.join(dir, "nope.log"), path.join(dir, "x.log")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read trace .*nope\.log: no such file/);
    const same = vgw(["convert", fixture("candump.log"), fixture("candump.log")]);
    assert.equal(same.code, 2);
  });

  it("has --help with examples", () => {
    const r = vgw(["convert", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
    for (const ext of [".log", ".asc", ".blf", ".trc", ".jsonl"]) assert.ok(r.stdout.includes(ext), ext);
  });
});
