/**
 * Regressions found by using `vgw decode|encode|dbc|convert` from a shell as a technician does: every --help example
 * run on the fixtures, bad inputs (binary junk, directories, missing folders, wrong extensions), Ctrl-C on a live
 * pipe, `| head`, and the messages that say what to do. Each test is named after what it pins.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { UsageError } from "../../frame/errors";
import { formatFrame } from "../../frame/frame";
import { encodeFromArgs } from "../../can-db/assignments";
import { convert } from "../../cli/commands/convert";
import { decodeTrace } from "../../cli/commands/decode";
import { openTraceReader, openTraceWriter, readAllFrames } from "../../host/trace";
import { ROOT, runVgw as vgw } from "./helpers";

const D = resolve(ROOT, "test/fixtures/dbc");
const T = resolve(ROOT, "test/fixtures/traces");
const BIN = resolve(ROOT, "bin/vgw");
/** C0 controls but tab and newline, DEL, C1: what must never reach a terminal from a damaged file. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Deterministic bytes that are neither text nor a trace (includes ESC, CR, backspace and C1 controls). */
function junk(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >> 16;
  }
  b[5] = 0x1b;
  b[6] = 0x5b;
  b[40] = 0x9b;
  return b;
}

describe("vgw decode / encode / dbc / convert: technician regressions", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vgw-cli-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe("every --help example runs on the fixtures and does what it says", () => {
    // The examples name files a technician has; these are the fixtures standing in for them.
    const files: Record<string, string> = {
      "vw_mqb.dbc": `${D}/vw_mqb.dbc`,
      "motohawk.dbc": `${D}/motohawk.dbc`,
      "multiplex.dbc": `${D}/multiplex.dbc`,
      "abs.dbc": `${D}/abs.dbc`,
      "tesla_can.dbc": `${D}/tesla_can.dbc`,
      "car.dbc": `${D}/motohawk.dbc`,
      "drive.log": `${T}/candump.log`,
      "drive.asc": `${T}/logfile.asc`,
      "drive.trc": `${T}/test_CanMessage_V2_1.trc`,
      "capture.txt": `${T}/logfile.asc`,
      "truck.dbc": `${D}/j1939.dbc`,
      "truck.log": `${D}/../j1939/truck.log`,
      "obd.log": `${T}/../diag/obd-session.log`,
      "uds.log": `${T}/../diag/obd-session.log`,
    };
    // Live-bus tools stand in for what they would do: candump prints a log, cansend echoes the frame it gets.
    const live: Array<[string, string]> = [
      ["candump -L can0", `cat ${T}/candump.log`],
      ["cansend can0", "echo"],
    ];
    const examples = (cmd: string) =>
      vgw([cmd, "--help"])
        .stdout.split("Examples:\n")[1]
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => l.trim().split(/ {2,}/)[0]);

    before(() => {
      for (const [name, src] of Object.entries(files)) copyFileSync(src, join(dir, name));
      writeFileSync(join(dir, "drive.log.gz"), gzipSync(readFileSync(`${T}/candump.log`)));
    });

    for (const cmd of ["decode", "encode", "dbc", "convert"]) {
      it(`vgw ${cmd}`, () => {
        const list = examples(cmd);
        assert.ok(list.length >= 3, `${cmd}: ${list.length} examples`);
        for (const example of list) {
          let line = example;
          for (const [tool, standIn] of live) line = line.replace(tool, standIn);
          // The file an example writes (`> FILE`, or convert's OUT unless it is stdout), removed first so it must be made.
          const tokens = line.split(/\s+/);
          const redirect = tokens.indexOf(">");
          const last = tokens[tokens.length - 1];
          const out = redirect >= 0 ? tokens[redirect + 1] : line.includes("vgw convert ") && last !== "-" ? last : undefined;
          if (out) rmSync(join(dir, out), { force: true });
          const r = spawnSync("bash", ["-o", "pipefail", "-c", `vgw() { "${process.execPath}" "${BIN}" "$@"; }; ${line}`], {
            cwd: dir,
            timeout: 30_000,
            maxBuffer: 1 << 26,
          });
          const stderr = r.stderr.toString();
          assert.equal(r.status, 0, `${example}\n${stderr}`);
          // Each example produces data (on stdout or in the file it writes) and never a warning.
          if (out) assert.ok(statSync(join(dir, out)).size > 0, `${example}: ${out} is empty`);
          else assert.ok(r.stdout.length > 0, `${example}: no output`);
          assert.doesNotMatch(stderr, /^warning:/m, example);
        }
      });
    }
  });

  describe("bad input", () => {
    it("binary junk as a trace: warnings quote it without control characters; a hint names --from", () => {
      writeFileSync(join(dir, "junk.log"), junk(3000));
      const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, join(dir, "junk.log")]);
      assert.equal(r.code, 0);
      assert.doesNotMatch(r.stderr, CONTROL);
      assert.match(r.stderr, /junk\.log:1: .*\\x1b\[/);
      assert.match(r.stderr, /no frame could be read from .*junk\.log as candump .*name it with --from/);
    });

    it("binary junk as a DBC: file:line:column without control characters, exit 1", () => {
      writeFileSync(join(dir, "junk.dbc"), junk(500));
      const r = vgw(["dbc", join(dir, "junk.dbc")]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /junk\.dbc:1:1: unexpected character/);
      assert.doesNotMatch(r.stderr, CONTROL);
    });

    it("a directory as DBC or trace, a missing trace: the same words, exit 1", () => {
      const asDbc = vgw(["dbc", dir]);
      assert.deepEqual([asDbc.code, asDbc.stderr.trim()], [1, `vgw: cannot read DBC ${dir}: it is a directory`]);
      const asTrace = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, join(T, "..", "traces")], undefined);
      assert.equal(asTrace.code, 2, "a folder has no trace extension: usage");
      const missing = vgw(["convert", join(dir, "nope.log"), join(dir, "out.asc")]);
      assert.deepEqual([missing.code, missing.stderr.trim()], [1, `vgw: cannot read trace ${join(dir, "nope.log")}: no such file`]);
      assert.equal(existsSync(join(dir, "out.asc")), false, "no output file for a missing input");
    });

    it("convert into a folder that does not exist: said before any input is read, exit 1", () => {
      const out = join(dir, "no-such-folder", "x.asc");
      const r = vgw(["convert", `${T}/candump.log`, out]);
      assert.deepEqual([r.code, r.stderr.trim()], [1, `vgw: cannot write trace ${out}: its folder does not exist`]);
    });

    it("convert into a directory: 'it is a directory', exit 1", () => {
      const r = vgw(["convert", `${T}/candump.log`, "--to", "log", dir]);
      assert.deepEqual([r.code, r.stderr.trim()], [1, `vgw: cannot write trace ${dir}: it is a directory`]);
    });

    it("--from/--to take an extension without its dot (log, ndjson), as the help says", () => {
      const r = vgw(["convert", "--from", "log", "--to", "ndjson", "-", "-"], "123#11\n");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\{"id":291,.*"data":"11"\}\n$/);
    });

    it("gzip is known by its bytes: on stdin, in a file without .gz; a .gz that holds plain text reads as text", () => {
      const text = readFileSync(`${T}/candump.log`);
      const gz = gzipSync(text);
      const lines = text.toString().trim().split("\n").length;
      const fromStdin = spawnSync(process.execPath, [BIN, "convert", "-", "-"], { input: gz, maxBuffer: 1 << 26, timeout: 30_000 });
      assert.equal(fromStdin.stdout.toString().trim().split("\n").length, lines, fromStdin.stderr.toString());
      writeFileSync(join(dir, "zipped.log"), gz);
      writeFileSync(join(dir, "plain.log.gz"), text);
      for (const name of ["zipped.log", "plain.log.gz"]) {
        const r = vgw(["convert", join(dir, name), join(dir, `${name}.out.log`)]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`convert: ${lines} frames read`), name);
      }
    });

    it("a UTF-8 byte-order mark does not cost the first line (candump, ASC date, jsonl)", async () => {
      const bom = "\ufeff";
      const files: Record<string, string> = {
        "bom.log": `${bom}(1.5) can0 1F0#C006E00000000000\n`,
        "bom.asc": `${bom}date Sat Sep 30 15:06:13.191 2017\nbase hex  timestamps absolute\n   2.501000 1  1F0            Rx   d 1 C0\n`,
        "bom.jsonl": `${bom}{"id":496,"data":"C0"}\n`,
      };
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(join(dir, name), text);
        const frames = await readAllFrames(join(dir, name), { strict: true });
        assert.deepEqual(frames.map((f) => f.id), [0x1f0], name);
      }
      const asc = await readAllFrames(join(dir, "bom.asc"), { strict: true });
      assert.ok(asc[0].t !== undefined && asc[0].t > 1.5e9, "the date line was read: times are absolute");
    });

    it("candump's screen format (no -l/-L) is reported with what to record instead", () => {
      const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "-"], "  can0  1F0   [8]  C0 06 E0 00 00 00 00 00\n");
      assert.match(r.stderr, /<stdin>:1: .*\(this is candump's screen format: record with candump -L can0, or candump -l for a log file\)/);
    });

    it("a binary format is never written to a terminal", () => {
      const was = Object.getOwnPropertyDescriptor(process.stdout, "isTTY");
      Object.defineProperty(process.stdout, "isTTY", { value: true, configurable: true });
      try {
        assert.throws(() => openTraceWriter("-", { format: "blf" }), (e) => e instanceof UsageError && /blf is a binary format/.test(e.message));
      } finally {
        if (was) Object.defineProperty(process.stdout, "isTTY", was);
        else delete (process.stdout as { isTTY?: boolean }).isTTY;
      }
    });

    it("reading - from a terminal says what it waits for (no silent hang)", () => {
      // util-linux script(1) gives the command a terminal as stdin; the input ends at once (</dev/null to script).
      const r = spawnSync("script", ["-qec", `'${process.execPath}' '${BIN}' decode --dbc '${D}/motohawk.dbc'`, "/dev/null"], {
        input: "",
        timeout: 20_000,
        env: { ...process.env, VGW_LOG: "info" },
      });
      assert.match(r.stdout.toString(), /reading candump lines from the terminal: type or paste them, Ctrl-D ends/);
    });

    it("decode --from reads a trace whose extension is not its format; the unknown-extension error exits 2", () => {
      copyFileSync(`${T}/logfile.asc`, join(dir, "capture.txt"));
      const r = vgw(["decode", "--dbc", `${D}/motohawk.dbc`, "--from", "asc", "--format", "jsonl", join(dir, "capture.txt")]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /decode: 20 frames/);
      assert.equal(vgw(["decode", "--dbc", `${D}/motohawk.dbc`, join(dir, "capture.txt")]).code, 2);
    });

    it("an empty DBC: decode warns that it defines no messages", () => {
      writeFileSync(join(dir, "empty.dbc"), "");
      const r = vgw(["decode", "--dbc", join(dir, "empty.dbc"), "-"], "123#00\n");
      assert.equal(r.code, 0);
      assert.match(r.stderr, /empty\.dbc defines no messages/);
    });
  });

  describe("encode", () => {
    it("a signal given twice is a usage error, not the last value silently", () => {
      const r = vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "ExampleMessage", "Temperature=250", "Temperature=251"]);
      assert.deepEqual([r.code, r.stdout], [2, ""]);
      assert.match(r.stderr, /signal Temperature is given twice \('Temperature=250' and 'Temperature=251'\)/);
    });

    it("an unknown message suggests close names, or where the list is", () => {
      assert.match(vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "example"]).stderr, /has no message 'example': did you mean ExampleMessage\?/);
      assert.match(vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "Nope"]).stderr, /has no message 'Nope': run 'vgw dbc .*motohawk\.dbc' for its messages/);
    });

    it("a 64-bit range error prints its limits exactly", () => {
      const r = vgw(["encode", "--dbc", `${D}/signed.dbc`, "Message64big", "s64big=9223372036854775808"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /range \[-9223372036854775808, 9223372036854775807\]/);
    });

    it("send --dbc builds the same frame as vgw encode (one encoder: CAN FD padding, bit-rate switch)", () => {
      const cases: Array<[string, string, string[]]> = [
        ["motohawk.dbc", "ExampleMessage", ["Temperature=250.1", "Enable=Enabled"]],
        ["variable_dlc.dbc", "TestMessage2", []],
        ["fd_test.dbc", "TestMsg_FDEx", []],
      ];
      for (const [dbc, message, values] of cases) {
        const printed = vgw(["encode", "--dbc", `${D}/${dbc}`, message, ...values]);
        assert.equal(printed.code, 0, printed.stderr);
        assert.equal(formatFrame(encodeFromArgs(`${D}/${dbc}`, message, values)) + "\n", printed.stdout, `${dbc} ${message}`);
      }
    });

    it("an unknown signal lists the message's signals", () => {
      const r = vgw(["encode", "--dbc", `${D}/motohawk.dbc`, "ExampleMessage", "Temp=1"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /has no signal Temp \(its signals: Temperature, AverageRadius, Enable\)/);
    });
  });

  it("dbc summary notes statements read leniently or dropped, and where they are listed", () => {
    const r = vgw(["dbc", `${D}/tesla_can.dbc`]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /note: 1 statement\(s\) read leniently or dropped; 'vgw dbc --check .*tesla_can\.dbc' lists them/);
    assert.doesNotMatch(vgw(["dbc", `${D}/motohawk.dbc`]).stderr, /note:/);
  });

  it("a duplicate message ID no longer stops every command: decode works, --check lists it among all findings", () => {
    const dbc = join(dir, "dup.dbc");
    writeFileSync(dbc, 'BU_: A\nBO_ 100 M1: 8 A\n SG_ S1 : 0|8@1+ (1,0) [0|300] "" A\nBO_ 100 M2: 8 A\n SG_ X : 0|8@1+ (1,0) [0|255] "" A\n');
    const check = vgw(["dbc", "--check", dbc]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /dup\.dbc:3: warning: signal M1\.S1: range \[0, 300\] exceeds/);
    assert.match(check.stdout, /dup\.dbc:4: error: duplicate message ID 100: M2 is dropped, M1 \(line 2\) is kept/);
    const decoded = vgw(["decode", "--dbc", dbc, "--format", "jsonl", "-"], "064#07\n");
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.match(decoded.stderr, /dup\.dbc: 1 duplicate definition\(s\) dropped, the first kept/);
    assert.deepEqual(JSON.parse(decoded.stdout), { id: 100, ext: false, message: "M1", signals: { S1: 7 }, error: "frame has 1 bytes, M1 has 8" });
  });

  it("dbc --check with --json is a usage error (exit 2), not a silently ignored option", () => {
    const r = vgw(["dbc", "--check", "--json", `${D}/abs.dbc`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /'--json' cannot be used with option '--check'/);
  });

  it("decode text shows 15 significant digits (no binary noise); jsonl keeps the exact number", () => {
    const frame = "126#0203000000480900\n";
    const text = vgw(["decode", "--dbc", `${D}/vw_mqb.dbc`, "-"], frame).stdout;
    assert.match(text, / EA_ACC_Wunschgeschwindigkeit=52\.48 Unit_KiloMeterPerHour/);
    const json = JSON.parse(vgw(["decode", "--dbc", `${D}/vw_mqb.dbc`, "--format", "jsonl", "-"], frame).stdout) as { signals: Record<string, number> };
    assert.equal(json.signals.EA_ACC_Wunschgeschwindigkeit, 0.01 * 5248);
  });

  it("| head: decode stops early and its summary says the output went away", () => {
    const big = join(dir, "big.log");
    writeFileSync(big, readFileSync(`${T}/candump.log`, "latin1").repeat(8));
    const r = spawnSync("bash", ["-c", `"${process.execPath}" "${BIN}" decode --dbc "${D}/vw_mqb.dbc" "${big}" | head -1`], { timeout: 30_000, env: { ...process.env, VGW_LOG: "info" } });
    assert.equal(r.stdout.toString().split("\n").length, 2);
    const frames = Number(/decode: (\d+) frames/.exec(r.stderr.toString())?.[1]);
    assert.ok(frames < 8 * 12974, `${frames} frames decoded after head exited`);
    assert.match(r.stderr.toString(), /\(stopped: the reader of stdout went away\)/);
  });

  it("decode and convert called as functions leave no Ctrl-C handler behind, also when opening fails", async () => {
    const before = [process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")];
    await assert.rejects(convert(join(dir, "missing.log"), join(dir, "out.asc"), {}), /no such file/);
    await assert.rejects(convert(`${T}/candump.log`, join(dir, "no-folder", "out.asc"), {}), /its folder does not exist/);
    await assert.rejects(decodeTrace(join(dir, "missing.log"), { dbc: `${D}/motohawk.dbc`, format: "text" }), /no such file/);
    await convert(`${T}/logfile.asc`, join(dir, "ok.log"), {});
    assert.deepEqual([process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")], before);
  });

  describe("Ctrl-C on a live pipe ends the input, not the output", () => {
    /** Starts vgw reading stdin, feeds it `lines`, waits until `ready()` says it has worked on them, then sends SIGINT. */
    async function interrupted(args: string[], lines: string, ready: (stdout: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, VGW_LOG: "info" } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      try {
        child.stdin.write(lines); // stdin stays open, as a live candump pipe does
        const deadline = Date.now() + 15_000;
        while (!ready(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        child.kill("SIGINT");
        return { code: await exited, stdout, stderr };
      } finally {
        clearTimeout(killer);
        child.kill("SIGKILL");
      }
    }
    const lines = readFileSync(`${T}/candump.log`, "latin1").split("\n").slice(0, 500).join("\n") + "\n";

    it("convert - cap.blf: the BLF is complete and readable after Ctrl-C", async () => {
      const out = join(dir, "cap.blf");
      const r = await interrupted(["convert", "-", out], lines, () => existsSync(out) && statSync(out).size > 0);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /convert: 500 frames read .*\(stopped by Ctrl-C\)/);
      assert.equal((await readAllFrames(out, { strict: true })).length, 500);
    });

    it("a line cut by Ctrl-C is where the input stopped, not a bad line (also with --strict)", async () => {
      const out = join(dir, "cut.blf");
      const r = await interrupted(["convert", "--strict", "-", out], lines + "(1700000000.5) can0 12", () => existsSync(out) && statSync(out).size > 0);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /warning|bad line/);
      assert.match(r.stderr, /convert: 500 frames read .*\(stopped by Ctrl-C\)/);
    });

    it("a BLF read stopped mid-file ends quietly, also with strict (no 'cut off' record)", async () => {
      const blf = join(dir, "many.blf");
      const big = join(dir, "many.log");
      writeFileSync(big, readFileSync(`${T}/candump.log`, "latin1").repeat(4));
      assert.equal(vgw(["convert", big, blf]).code, 0);
      const stop = new AbortController();
      let frames = 0;
      for await (const batch of openTraceReader(blf, { strict: true, signal: stop.signal })) {
        frames += batch.length;
        stop.abort();
      }
      assert.ok(frames > 0 && frames < 4 * 12974, `${frames} frames before the stop`);
    });

    it("convert - cap.log.gz: the gzip trailer is written after Ctrl-C", async () => {
      const out = join(dir, "cap.log.gz");
      const r = await interrupted(["convert", "-", out], lines, () => existsSync(out));
      assert.equal(r.code, 0, r.stderr);
      const written = gunzipSync(readFileSync(out)).toString().split("\n").filter((l) => l !== "");
      assert.equal(written.length, Number(/(\d+) frames read/.exec(r.stderr)?.[1]));
    });

    it("decode -: the frames read so far are printed and the summary comes", async () => {
      const r = await interrupted(["decode", "--dbc", `${D}/vw_mqb.dbc`, "-"], lines, (out) => out.split("\n").length > 500);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /decode: 500 frames, .*\(stopped by Ctrl-C\)/);
    });
  });
});
