/**
 * Format features the fixtures do not cover: ASC relative times, decimal base, localised and US dates; TRC 1.2 and
 * 2.x FD/error lines; BLF damage reports; jsonl validation; the channel rule.
 */
import { waitFor } from "../support/wait";
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { formatFrame, type Frame } from "../../frame/frame";
import { TraceParseError } from "../../frame/errors";
import { openTraceReader, openTraceWriter, readAllFrames } from "../../host/trace";
import { parseAscDate } from "../../host/trace/asc";
import { candumpChannel, channelNumber } from "../../host/trace/channel";
import { tmpDir } from "./helpers";
import { canUtils, pythonCanRead } from "./reference";

describe("trace format details", () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function read(name: string, text: string | Buffer): Promise<{ frames: Frame[]; errors: TraceParseError[] }> {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    const errors: TraceParseError[] = [];
    const frames = await readAllFrames(file, { onError: (e) => errors.push(e) });
    return { frames, errors };
  }

  const local = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms = 0) => new Date(y, mo - 1, d, h, mi, s, ms).getTime() / 1000;

  it("reads ASC dates: English, German, US am/pm, without milliseconds", () => {
    assert.equal(parseAscDate("Sat Sep 30 15:06:13.191 2017"), local(2017, 9, 30, 15, 6, 13, 191));
    assert.equal(parseAscDate("Sam Okt 30 15:06:13.191 2017"), local(2017, 10, 30, 15, 6, 13, 191));
    assert.equal(parseAscDate("Tue May 27 04:09:35.000 pm 2014"), local(2014, 5, 27, 16, 9, 35));
    assert.equal(parseAscDate("Tue May 27 12:09:35.000 am 2014"), local(2014, 5, 27, 0, 9, 35));
    assert.equal(parseAscDate("Fri Jul 10 06:17:32 2015"), local(2015, 7, 10, 6, 17, 32));
    assert.equal(parseAscDate("Fri Foo 10 06:17:32 2015"), undefined);
    assert.equal(parseAscDate("Fri Jul 10 13:17:32 pm 2015"), undefined);
  });

  it("reads ASC relative times (each since the previous event) and decimal base", async () => {
    const { frames, errors } = await read(
      "rel.asc",
      [
        "date Fri Jul 10 06:17:32.000 2015",
        "base dec  timestamps relative",
        "   1.000000 1  291             Rx   d 2 10 255",
        "   0.500000 2  291x            Tx   d 1 7",
        "   0.250000 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%",
        "   0.250000 1  100             Rx   d 1 256",
        "",
      ].join("\n"),
    );
    assert.deepEqual(
      frames.map((f) => [formatFrame(f), f.bus, (f.t as number) - local(2015, 7, 10, 6, 17, 32)]),
      [
        ["123#0AFF", "1", 1],
        ["00000123#07", "2", 1.5],
      ],
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /rel\.asc:6: bad data byte '256'/);
  });

  it("reports an unreadable ASC date and keeps going with relative times", async () => {
    const { frames, errors } = await read("baddate.asc", "date someday\nbase hex  timestamps absolute\n   1.5 1  7FF  Rx d 0\n");
    assert.equal(frames[0].t, 1.5);
    assert.match(errors[0].message, /baddate\.asc:1: cannot read the date 'someday'/);
  });

  it("reads TRC 1.2 (bus column) and 2.1 FD, remote and error lines", async () => {
    const v12 = await read(
      "v12.trc",
      [";$FILEVERSION=1.2", ";$STARTTIME=43008.5", "     1)      1000.5 2  Rx         0300  2  01 02", "     2)      1001.0 1  Tx     18FF0000  8  RTR", ""].join("\r\n"),
    );
    assert.deepEqual(
      v12.frames.map((f) => [formatFrame(f), f.bus]),
      [
        ["300#0102", "2"],
        ["18FF0000#R8", "1"],
      ],
    );
    assert.ok(Math.abs((v12.frames[0].t as number) - (local(2017, 9, 30, 12, 0, 0) + 1.0005)) < 1e-6);
    const v21 = await read(
      "v21.trc",
      [
        ";$FILEVERSION=2.1",
        ";$STARTTIME=43008.5",
        ";$COLUMNS=N,O,T,B,I,d,R,L,D",
        "      1         1.000 BI 1     0123 Rx -  9    01 02 03 04 05 06 07 08 09 0A 0B 0C",
        "      2         2.000 ER 2        - Rx -  5    04 00 00 00 00",
        "      3         3.000 EC 1        - Rx -  2    10 00",
        "      4         4.000 RR 1 1FFFFFFF Tx -  3",
        "      5         5.000 DT 1     0800 Rx -  0",
        "",
      ].join("\n"),
    );
    assert.deepEqual(
      v21.frames.map((f) => [formatFrame(f), f.bus]),
      [
        ["123##30102030405060708090A0B0C", "1"],
        ["20000080#0000000000000000", "2"],
        ["1FFFFFFF#R3", "1"],
      ],
    );
    assert.equal(v21.errors.length, 1);
    assert.match(v21.errors[0].message, /v21\.trc:8: bad CAN ID '0800'/);
  });

  it("reports BLF damage with the object index and byte offset, and resynchronises", async () => {
    const file = path.join(dir, "ok.blf");
    const w = openTraceWriter(file);
    await w.write([{ id: 1, ext: false, rtr: false, fd: false, brs: false, esi: false, err: false, data: Uint8Array.of(1), t: 1, bus: "1" }]);
    await w.close();
    const good = fs.readFileSync(file);
    const garbage = Buffer.from("garbage!");
    const { frames, errors } = await read("damaged.blf", Buffer.concat([good.subarray(0, 144), garbage, good.subarray(144)]));
    assert.equal(frames.length, 1);
    assert.match(errors[0].message, /damaged\.blf:1: object 1 \(byte 144\): no object signature/);
    const notBlf = await read("not.blf", "hello");
    assert.match(notBlf.errors[0].message, /not a BLF file/);
  });

  it("validates jsonl lines as frames", async () => {
    const { frames, errors } = await read(
      "f.jsonl",
      [
        '{"id":291,"data":"0102"}',
        '{"id":291,"fd":true,"data":"' + "00".repeat(9) + '"}',
        '{"id":"1"}',
        "[1]",
        '{"id":5,"rtr":true,"dlc":4,"bus":"can1","t":2}',
        '{"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}}',
        "",
      ].join("\n"),
    );
    assert.deepEqual(
      frames.map((f) => formatFrame(f)),
      ["123#0102", "005#R4"],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [2, 3, 4, 6],
    );
    assert.match(errors[0].message, /CAN FD data length 9/);
    assert.match(errors[3].message, /'data' is missing/);
  });

  it("maps channels one way across formats", () => {
    assert.equal(channelNumber("can0"), 1);
    assert.equal(channelNumber("vcan3"), 4);
    assert.equal(channelNumber("2"), 2);
    assert.equal(channelNumber(undefined), 1);
    assert.equal(channelNumber("any"), 1);
    assert.equal(candumpChannel("1"), "can0");
    assert.equal(candumpChannel("vcan0"), "vcan0");
    assert.equal(candumpChannel(undefined), "can0");
  });

  it("counts TRC error frames as dropped, not written", async () => {
    const file = path.join(dir, "err.trc");
    const w = openTraceWriter(file);
    await w.write([
      { id: 0x80, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data: new Uint8Array(8), t: 1, bus: "1" },
      { id: 0x12, ext: false, rtr: false, fd: false, brs: false, esi: false, err: false, data: new Uint8Array(1), t: 2, bus: "1" },
    ]);
    await w.close();
    assert.equal(w.framesWritten, 1);
    assert.equal(w.framesDropped, 1);
    const back = [];
    for await (const b of openTraceReader(file, { strict: true })) back.push(...b);
    assert.deepEqual(back.map(formatFrame), ["012#00"]);
  });

  it("keeps an error frame's class bits and details through ASC and BLF (python-can and asc2log still read them as error frames)", async () => {
    const err = (t: number, id: number, data: number[]): Frame => ({ id, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data: Uint8Array.from(data), t, bus: "1" });
    const frames: Frame[] = [
      err(1, 0x004, [0, 0x04, 0, 0, 0, 0, 0, 0]), // controller problem: rx error warning
      { id: 0x123, ext: false, rtr: false, fd: false, brs: false, esi: false, err: false, data: Uint8Array.of(1, 2), t: 1.5, bus: "1" },
      err(2, 0x040, [0, 0, 0, 0, 0, 0, 0, 0]), // bus-off
      err(3, 0x088, [0, 0, 0x04, 0x0f, 0, 0, 0x7f, 0x80]), // protocol violation (bit stuffing) with error counters
      err(4, 0x1fffffff & 0x3ff, [1, 2, 3, 4, 5, 6, 7, 8]),
    ];
    for (const ext of ["asc", "blf"]) {
      const file = path.join(dir, `errors.${ext}`);
      const w = openTraceWriter(file);
      await w.write(frames);
      await w.close();
      const back = await readAllFrames(file, { strict: true });
      assert.deepEqual(back.map(formatFrame), frames.map(formatFrame), `.${ext}`);
      // The references read the same objects and lines as error frames (python-can's BLF reader also takes the class
      // from the ID field); asc2log, which knows only the bare keyword, gives its generic bus error.
      const py = pythonCanRead([file]).get(file);
      assert.equal(py?.error, undefined, `python-can on .${ext}: ${py?.error}`);
      assert.deepEqual(py?.msgs.map((m) => m.err), frames.map((f) => f.err), `python-can on .${ext}`);
      if (ext === "blf") assert.deepEqual(py?.msgs.filter((m) => m.err).map((m) => m.id), frames.filter((f) => f.err).map((f) => f.id));
      if (ext === "asc") assert.equal(canUtils("asc2log", ["-I", file]).split("\n").filter((l) => / can0 20000080#0000000000000000$/.test(l)).length, 4);
    }
    // A plain `ErrorFrame` line (CANoe's, python-can's) still reads as a bus error; a damaged tail is a bad line.
    const plain = path.join(dir, "plain-error.asc");
    fs.writeFileSync(plain, "base hex  timestamps absolute\n   1.000000 1  ErrorFrame\n   2.000000 1  ErrorFrame  SocketCAN 0x40 00 00\n");
    const bad: string[] = [];
    const got = await readAllFrames(plain, { onError: (e) => bad.push(e.message) });
    assert.deepEqual(got.map(formatFrame), ["20000080#0000000000000000"]);
    assert.match(bad.join("\n"), /plain-error\.asc:3: .*expected 8 error detail bytes after SocketCAN/);
  });

  it("reports damaged gzip with the path, and leaves no file open after an early stop", async () => {
    const file = path.join(dir, "bad.log.gz");
    const gz = zlib.gzipSync(Buffer.from("(1.0) can0 123#11\n".repeat(2000)));
    fs.writeFileSync(file, Buffer.concat([gz.subarray(0, 100), Buffer.from("garbage")]));
    // zlib notices the damage only when it reaches it: lines unpacked before may be garbled (and reported).
    await assert.rejects(readAllFrames(file, { onError: () => undefined }), /cannot read trace .*bad\.log\.gz: gzip data is corrupt/);
    const good = path.join(dir, "good.log.gz");
    fs.writeFileSync(good, gz);
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    const before = fds();
    for (let k = 0; k < 20; k++) {
      for await (const batch of openTraceReader(good)) {
        assert.ok(batch.length > 0);
        break;
      }
    }
    // Closing is asynchronous: wait for the descriptors to go, with a bound a loaded machine cannot reach.
    await waitFor(() => fds() <= before + 1, 20_000, "the readers' files to close").catch(() => undefined);
    assert.ok(fds() <= before + 1, `${fds() - before} files left open`);
  });
});
