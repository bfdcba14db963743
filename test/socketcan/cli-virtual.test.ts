/**
 * The commands' library parts on the in-process virtual bus and on plain data (the kernel runs are in vm.test.ts):
 * candump's text columns, the monitor screen and keys, record's rotation helpers, the read-ahead reader, and replay
 * end to end onto a virtual bus.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { makeFrame, parseFrame, sameFrame, type Frame } from "../../frame/frame";
import { openBus } from "../../host/bus";
import { openTraceWriter, readAllFrames } from "../../host/trace";
import { CandumpText } from "../../frame/candump-text";
import { parseDuration, rotatedName } from "../../cli/commands/record";
import { startRecording, stopRecordings } from "../support/recording";
import { within } from "../support/wait";
import { parseSize } from "../../cli/options";
import { parseMap, replay } from "../../cli/commands/replay";
import { BusStats, frameBits } from "../../host/bus/stats";
import { applyKey, initialView, renderScreen } from "../../cli/monitor-view";
import { readAhead } from "../../host/replay/read-ahead";
import { log } from "../../host/log";
import { loadDecoder } from "../../can-db/annotate";
import { encodeFromArgs } from "../../can-db/assignments";
import { frameJson } from "../../cli/commands/dump";

const on = (bus: string, text: string, t?: number): Frame => ({ ...parseFrame(text), bus, t });

// A test that fails midway still ends its recording, so no writer thread keeps mocha from exiting.
afterEach(stopRecordings);

describe("candump text columns", () => {
  it("prints what candump vcan0 vcan1 printed for the same frames (captured from can-utils in the VM)", () => {
    const c = new CandumpText(["vcan0", "vcan1"]);
    const lines = ["123#DEADBEEF", "12345678#11", "123#R3", "7FF#", "00000001#R"].map((t) => c.format(on("vcan0", t)));
    lines.push(c.format(on("vcan1", "123##1001122334455667788000000")), c.format(on("vcan1", "1234ABCD##0AABB")));
    assert.deepEqual(lines, [
      "  vcan0  123   [4]  DE AD BE EF",
      "  vcan0  12345678   [1]  11",
      "  vcan0       123   [3]  remote request",
      "  vcan0       7FF   [0] ",
      "  vcan0  00000001   [0]  remote request",
      "  vcan1       123  [12]  00 11 22 33 44 55 66 77 88 00 00 00",
      "  vcan1  1234ABCD  [02]  AA BB",
    ]);
  });

  it("right-aligns interface names to the longest one and prefixes candump -t a timestamps", () => {
    const c = new CandumpText(["can0", "vcan10"], "a");
    assert.equal(c.format(on("can0", "123#01", 1700000000.5)), " (1700000000.500000)    can0  123   [1]  01");
  });
});

describe("signals beside frames (--dbc) and send --dbc", () => {
  const dbc = path.join(__dirname, "../../../test/fixtures/dbc/motohawk.dbc");

  it("encodes MESSAGE SIG=VALUE and decodes it back beside the frame, as text and as JSON", async () => {
    const frame = { ...encodeFromArgs(dbc, "ExampleMessage", ["Temperature=250.1", "AverageRadius=3.2", "Enable=Enabled"]), bus: "vcan0", t: 1 };
    assert.equal(frame.id, 0x1f0);
    const d = await loadDecoder(dbc);
    assert.equal(d.text(frame), "ExampleMessage Temperature=250.1 degK AverageRadius=3.2 m Enable=Enabled");
    const o = JSON.parse(frameJson(frame, d));
    assert.deepEqual(o.signals, { Enable: "Enabled", AverageRadius: 3.2, Temperature: 250.1 });
    assert.equal(o.message, "ExampleMessage");
    assert.equal(d.text(parseFrame("7FF#00")), "");
  });

  it("names the message or value that cannot be encoded", () => {
    assert.throws(() => encodeFromArgs(dbc, "Nope", []), /no message 'Nope': run 'vgw dbc .*motohawk\.dbc' for its messages/);
    assert.throws(() => encodeFromArgs(dbc, "ExampleMessage", ["Temperature"]), /not SIGNAL=VALUE/);
    assert.throws(() => encodeFromArgs(dbc, "ExampleMessage", ["Temperature=99999"]), /ExampleMessage: .*Temperature/);
  });
});

describe("record helpers", () => {
  it("numbers rotated files before the format's extension", () => {
    assert.equal(rotatedName("drive.log", 0), "drive-000.log");
    assert.equal(rotatedName("/x/drive.log.gz", 12), "/x/drive-012.log.gz");
    assert.equal(rotatedName("drive", 1), "drive-001");
  });
  it("parses sizes and durations, rejecting nonsense", () => {
    assert.equal(parseSize("10M"), 10 * 1024 * 1024);
    assert.equal(parseSize("512"), 512);
    assert.equal(parseDuration("5m"), 300);
    assert.equal(parseDuration("90"), 90);
    assert.throws(() => parseSize("ten"), /bad size/);
    assert.throws(() => parseDuration("0"), /positive/);
  });
});

describe("bus statistics", () => {
  it("counts frame bits as canbusload does without stuffing: 47 + 8n (11-bit), 67 + 8n (29-bit)", () => {
    assert.equal(frameBits(parseFrame("123#0011223344556677"), 500000), 111);
    assert.equal(frameBits(parseFrame("12345678#00"), 500000), 75);
    assert.equal(frameBits(parseFrame("123#R4"), 500000), 47);
  });
  it("gives cycle times, jitter and load from receive timestamps", () => {
    const s = new BusStats(500000);
    for (let i = 0; i < 11; i++) s.add(on("can0", "100#0011223344556677", 10 + i * 0.01));
    const id = [...s.ids.values()][0];
    assert.equal(id.count, 11);
    assert.ok(Math.abs(id.minGap - 0.01) < 1e-9 && Math.abs(id.maxGap - 0.01) < 1e-9);
    // 11 frames x 111 bits in 0.1 s at 500 kbit/s = 2.442 %
    assert.ok(Math.abs(s.load(0.1) - 2.442) < 1e-9, String(s.load(0.1)));
  });
});

describe("monitor screen", () => {
  const stats = new BusStats();
  stats.add(on("vcan0", "1F0#A5E0000000000000", 1));
  stats.add(on("vcan0", "0AA#FF", 1.05));
  stats.add(on("vcan0", "1F0#A5E0010000000000", 1.1));

  it("has one row per ID with count and period, and marks changed bytes", () => {
    const lines = renderScreen(stats, initialView(), 100, 10, 1.2);
    const text = lines.map((l) => l.map((s) => s.text).join(""));
    assert.equal(lines.length, 10);
    assert.match(text[0], /3 frames, 2 IDs/);
    const row = lines.find((l) => l[0].text.includes(" 1F0 "));
    assert.ok(row, text.join("\n"));
    assert.match(row[0].text, /\s2\s+100\.0\s/);
    const inverted = row.filter((s) => s.inverse).map((s) => s.text);
    assert.deepEqual(inverted, ["01"]);
    assert.match(text[9], /q quit/);
  });

  it("fits the width, sorts, filters, pauses and quits by key", () => {
    const v = initialView();
    assert.ok(renderScreen(stats, v, 30, 6, 1.2).every((l) => l.reduce((n, s) => n + s.text.length, 0) <= 30));
    applyKey(v, "s");
    assert.equal(v.sort, "name");
    for (const k of ["f", "0", "A", "ENTER"]) applyKey(v, k);
    assert.equal(v.filter, "0A");
    const text = renderScreen(stats, v, 100, 10, 1.2).map((l) => l.map((s) => s.text).join("")).join("\n");
    assert.match(text, / 0AA /);
    assert.doesNotMatch(text, / 1F0 /);
    applyKey(v, "p");
    assert.equal(v.paused, true);
    const narrow = renderScreen(stats, v, 20, 6, 1.2);
    assert.equal(narrow[5][0].text, "PAUSED", "the pause mark starts the last line, visible at any width");
    assert.equal(applyKey(v, "q"), "quit");
  });
});

describe("replay onto a virtual bus", function () {
  this.timeout(30000);
  let dir = "";
  before(() => (dir = mkdtempSync(path.join(tmpdir(), "vgw-replay-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function writeTrace(name: string, frames: Frame[]): Promise<string> {
    const file = path.join(dir, name);
    const w = openTraceWriter(file);
    await w.write(frames);
    await w.close();
    return file;
  }

  it("the read-ahead worker yields exactly what the trace reader yields", async () => {
    const frames = Array.from({ length: 5000 }, (_, i) =>
      makeFrame({ id: i % 0x800, ext: i % 5 === 0, data: Uint8Array.of(i & 255), t: 100 + i * 1e-4, bus: i % 2 ? "can0" : "can1" }),
    );
    frames.push(makeFrame({ id: 0x7df, rtr: true, dlc: 3, t: 101, bus: "can0" }), parseFrame("321##1" + "11".repeat(64)));
    const file = await writeTrace("ra.log", frames);
    const direct = await readAllFrames(file);
    const ahead: Frame[] = [];
    for await (const b of readAhead(file)) ahead.push(...b);
    assert.equal(ahead.length, direct.length);
    ahead.forEach((f, i) => assert.ok(sameFrame(f, direct[i]) && f.t === direct[i].t && f.bus === direct[i].bus, `#${i}`));
  });

  it("vgw replay sends every frame in order with --map routing and --filter, and reports timing", async () => {
    const frames = Array.from({ length: 200 }, (_, i) => makeFrame({ id: 0x100 + (i % 4), data: Uint8Array.of(i), t: 50 + i * 0.002, bus: i % 2 ? "can1" : "can0" }));
    const file = await writeTrace("r.log", frames);
    const a = await openBus("virtual:ra");
    const b = await openBus("virtual:rb");
    const got: Frame[] = [];
    const pumps = [a, b].map(async (bus) => {
      for await (const f of bus) got.push(f);
    });
    const lines: string[] = [];
    const sink = log.sink;
    log.sink = (l) => lines.push(l);
    try {
      const s = await replay(file, { map: ["can0=virtual:ra", "can1=virtual:rb"], filter: "100:7FE", speed: 2, loop: 1, timing: true, progress: false });
      assert.equal(s.frames, 200);
      assert.ok(s.elapsed > 0.19 && s.elapsed < 0.4, `elapsed ${s.elapsed}`);
      assert.ok(Math.abs(s.drift) < 0.005, `drift ${s.drift}`);
    } finally {
      log.sink = sink;
      await a.close();
      await b.close();
    }
    await Promise.all(pumps);
    const expected = frames.filter((f) => (f.id & 0x7fe) === 0x100);
    assert.equal(got.length, expected.length);
    assert.ok(got.every((f) => (f.bus === "ra") === (f.data[0] % 2 === 0)), "routing by channel");
    assert.match(lines.join("\n"), /replay: 200 frames[\s\S]*100 frames filtered out/);
  });

  it("vgw record rotates by size into numbered files that together hold every frame, and reports the summary", async () => {
    const out = path.join(dir, "rot.log");
    const tx = await openBus("virtual:rec");
    const lines: string[] = [];
    const sink = log.sink;
    log.sink = (l) => lines.push(l);
    try {
      const { done, listening } = startRecording({ interface: "virtual:rec", output: out, rotateSize: 2000, count: 600 });
      await within(listening, 60_000, "the recorder to listen");
      // 6 bursts of 100 frames, 150 ms apart: each burst is flushed, and the size check runs after each flush.
      for (let k = 0; k < 6; k++) {
        for (let i = 0; i < 100; i++) await tx.send(makeFrame({ id: 0x100 + k, data: Uint8Array.of(i, k) }));
        await new Promise((r) => setTimeout(r, 150));
      }
      await done;
    } finally {
      log.sink = sink;
      await tx.close();
    }
    const files = readdirSync(dir).filter((f) => /^rot-\d{3}\.log$/.test(f)).sort();
    assert.ok(files.length >= 3, files.join(" "));
    let total = 0;
    for (const f of files) total += (await readAllFrames(path.join(dir, f), { strict: true })).length;
    assert.equal(total, 600);
    assert.match(lines.join("\n"), /record: 600 frames received, 600 written to \d+ files/);
  });

  it("parses --map pairs and rejects bad ones", () => {
    assert.deepEqual([...parseMap(["can0=vcan0,1=can1", "2=can2"])], [["can0", "vcan0"], ["1", "can1"], ["2", "can2"]]);
    assert.throws(() => parseMap(["can0"]), /expected SRC=DST/);
  });
});
