/**
 * `vgw record`'s pipeline (host/record/): frames packed on the receive thread, written by the writer thread. The
 * packing round trip on plain data; then the command end to end on the in-process virtual bus, the real worker
 * thread and the real trace writers: every frame kind into the file, and the writer's failures as clear errors.
 * (The same command against candump in a real kernel: vm.test.ts.)
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { formatFrame, makeFrame, sameFrame, type Frame } from "../../frame/frame";
import { VgwError } from "../../frame/errors";
import { openBus } from "../../host/bus";
import { readAllFrames } from "../../host/trace";
import { startRecording, stopRecordings } from "../support/recording";
import { within } from "../support/wait";
import { FramePacker, headOfBatch, unpackFrames } from "../../frame/packed";
import { TraceWriterThread } from "../../host/record/pipeline";
import { log } from "../../host/log";

const ROOT = path.resolve(__dirname, "../../..");

/** Every kind of frame a bus can deliver: classic, 29-bit, remote with a length, empty, CAN FD with flags, error. */
function everyKind(n: number): Frame[] {
  const kinds = [
    (i: number) => makeFrame({ id: i & 0x7ff, data: Uint8Array.of(i & 0xff, 1, 2, 3, 4, 5, 6, 7) }),
    (i: number) => makeFrame({ id: 0x1abc0000 + i, ext: true, data: Uint8Array.of(i & 0xff) }),
    (i: number) => makeFrame({ id: 0x100 + (i % 16), rtr: true, dlc: i % 9 }),
    (i: number) => makeFrame({ id: 0x7ff - (i % 16) }),
    (i: number) => makeFrame({ id: 0x200 + (i % 16), fd: true, brs: i % 2 === 0, esi: i % 3 === 0, data: Uint8Array.from({ length: 64 }, (_, k) => (i + k) & 0xff) }),
    (i: number) => makeFrame({ id: 0x1fffffff - i, ext: true, fd: true, data: Uint8Array.from({ length: 12 }, (_, k) => k) }),
    (i: number) => makeFrame({ id: 0x4 | (i % 2 ? 0x40 : 0), err: true, data: Uint8Array.of(0, 0x10, 0, 0, 0, 0, 0, 0) }),
  ];
  return Array.from({ length: n }, (_, i) => kinds[i % kinds.length](i));
}

// A test that fails midway still ends its recording, so no writer thread keeps mocha from exiting.
afterEach(stopRecordings);

describe("vgw record pipeline (receive thread -> writer thread)", () => {
  let dir = "";
  before(() => (dir = mkdtempSync(path.join(tmpdir(), "vgw-record-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("packs and unpacks every frame kind with time and bus, across buffer growth", () => {
    const frames = everyKind(6000).map((f, i) => ({ ...f, t: i % 5 === 0 ? undefined : 1.7e9 + i / 7, bus: i % 3 === 0 ? undefined : `can${i % 4}` }));
    const packer = new FramePacker();
    for (const f of frames.slice(0, 1000)) packer.add(f);
    const first = unpackFrames(packer.take());
    // 5,000 frames (29 bytes on average) exceed the first 64 KB buffer: it grows and keeps what it had.
    for (const f of frames.slice(1000)) packer.add(f);
    const second = packer.take();
    assert.ok(second.buffer.byteLength > 1 << 16);
    const got = [...first, ...unpackFrames(second)];
    assert.equal(got.length, frames.length);
    got.forEach((g, i) => {
      const f = frames[i];
      assert.ok(sameFrame(g, f), `#${i}: ${formatFrame(g)} vs ${formatFrame(f)}`);
      assert.equal(g.t, f.t, `#${i} t`);
      assert.equal(g.bus, f.bus, `#${i} bus`);
    });
    assert.equal(packer.take().count, 0);
  });

  it("cuts a packed batch after n records (vgw record -n on a received chunk) and counts its error frames", () => {
    const frames = everyKind(70);
    const packer = new FramePacker();
    for (const f of frames) packer.add(f);
    const whole = packer.take();
    for (const n of [0, 1, 6, 7, 33, 70, 99]) {
      const { batch, errors } = headOfBatch(whole, n);
      const want = frames.slice(0, n);
      assert.equal(batch.count, want.length);
      assert.equal(errors, want.filter((f) => f.err).length, `n=${n}`);
      const got = unpackFrames(batch);
      got.forEach((g, i) => assert.ok(sameFrame(g, want[i]), `n=${n} #${i}`));
    }
  });

  it("hands batches packed elsewhere (SocketCAN chunks) to the writer in order with frames packed here", async () => {
    const out = path.join(dir, "mixed.log");
    const frames = everyKind(1000).map((f, i) => ({ ...f, t: 1.7e9 + i / 1000, bus: i % 2 ? "vcan1" : "vcan0" }));
    const writer = await TraceWriterThread.start({ output: out });
    for (let i = 0; i < frames.length; ) {
      // Alternate: 10 frames through add(), then a chunk of 57 packed apart (as a SocketCAN bus delivers them).
      for (const f of frames.slice(i, i + 10)) writer.add(f);
      i += 10;
      const chunk = new FramePacker();
      for (const f of frames.slice(i, i + 57)) chunk.add(f);
      i += 57;
      writer.addPacked(chunk.take());
    }
    const files = await writer.close();
    assert.equal(files[0].frames, frames.length);
    const got = await readAllFrames(out, { strict: true });
    assert.equal(got.length, frames.length);
    got.forEach((g, i) => assert.ok(sameFrame(g, frames[i]) && g.bus === frames[i].bus, `#${i}: ${formatFrame(g)} vs ${formatFrame(frames[i])}`));
  });

  it("favourReceiveThreads lowers every thread of the process but those named vgw-can-rx (Linux per-thread nice)", () => {
    // In a child process: the test runner's own threads keep their priority.
    const script = `
      const { Worker } = require("node:worker_threads");
      const { readdirSync, readFileSync } = require("node:fs");
      const { getPriority } = require("node:os");
      const { favourReceiveThreads } = require(${JSON.stringify(path.join(ROOT, "dist/host/record/thread-priority.js"))});
      const w = new Worker("setInterval(() => {}, 1000)", { eval: true });
      w.on("online", () => {
        const lowered = favourReceiveThreads();
        const nice = readdirSync("/proc/self/task").map((t) => [readFileSync("/proc/self/task/" + t + "/comm", "utf8").trim(), getPriority(Number(t))]);
        console.log(JSON.stringify({ lowered, nice }));
        process.exit(0);
      });`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    const { lowered, nice } = JSON.parse(r.stdout) as { lowered: number; nice: Array<[string, number]> };
    assert.ok(lowered >= 2, `lowered ${lowered}`);
    assert.ok(nice.length >= 2 && nice.every(([, n]) => n >= 5), JSON.stringify(nice));
  });

  for (const ext of [".log", ".jsonl.gz"]) {
    it(`writes every frame kind the bus delivered, in order, with its time (${ext})`, async () => {
      const out = path.join(dir, `kinds${ext}`);
      const sent = everyKind(2100);
      const tx = await openBus("virtual:kinds");
      const received: Frame[] = [];
      const watch = await openBus("virtual:kinds");
      const watching = (async () => {
        for await (const f of watch) if (received.push(f) >= sent.length) break;
      })();
      const lines: string[] = [];
      const sink = log.sink;
      log.sink = (l) => lines.push(l);
      try {
        const { done, listening } = startRecording({ interface: "virtual:kinds", output: out, count: sent.length });
        await within(listening, 60_000, "the recorder to listen");
        // In bursts, so several batches cross to the writer thread, some of them partial (handed over by the timer).
        for (let i = 0; i < sent.length; i++) {
          await tx.send(sent[i]);
          if (i % 300 === 299) await new Promise((r) => setTimeout(r, 80));
        }
        await done;
      } finally {
        log.sink = sink;
        await tx.close();
        await watch.close();
        await watching;
      }
      const got = await readAllFrames(out, { strict: true });
      assert.equal(got.length, sent.length);
      got.forEach((g, i) => {
        assert.ok(sameFrame(g, sent[i]), `#${i}: ${formatFrame(g)} vs ${formatFrame(sent[i])}`);
        // What the bus stamped, to the format's resolution (candump -l: microseconds).
        assert.ok(Math.abs((g.t ?? 0) - (received[i].t ?? 0)) < 1.5e-6, `#${i}: t ${g.t} vs ${received[i].t}`);
      });
      assert.match(lines.join("\n"), new RegExp(`record: ${sent.length} frames received, ${sent.length} written to .*kinds\\.${ext.slice(1).replace(".", "\\.")}; 300 error frames; dropped: 0 by vgw`));
    });
  }

  it("rotates by time on the writer thread, also while the bus is quiet, and every frame lands in one of the files", async () => {
    const out = path.join(dir, "timed.asc");
    const tx = await openBus("virtual:timed");
    const sink = log.sink;
    log.sink = () => undefined;
    try {
      const { done, listening } = startRecording({ interface: "virtual:timed", output: out, rotateTime: 0.25, timeout: 1.6 });
      await within(listening, 60_000, "the recorder to listen");
      // Four bursts 100 ms apart, then silence: the files after the last burst come from the timer alone.
      for (let k = 0; k < 4; k++) {
        for (let i = 0; i < 50; i++) await tx.send(makeFrame({ id: 0x400 + k, data: Uint8Array.of(k, i) }));
        await new Promise((r) => setTimeout(r, 100));
      }
      await done;
    } finally {
      log.sink = sink;
      await tx.close();
    }
    const files = readdirSync(dir).filter((f) => /^timed-\d{3}\.asc$/.test(f)).sort();
    // The bursts end about 0.5 s in, when at most 3 files exist; a 4th proves the timer rotates on a quiet bus.
    assert.ok(files.length >= 4, files.join(" "));
    const frames: Frame[] = [];
    for (const f of files) frames.push(...(await readAllFrames(path.join(dir, f), { strict: true })));
    assert.equal(frames.length, 200);
    frames.forEach((f, i) => assert.ok(f.id === 0x400 + Math.floor(i / 50) && f.data[1] === i % 50, `#${i}: ${formatFrame(f)}`));
  });

  it("a write failure of the writer thread (disk full) ends the recording with that error, after the summary", async () => {
    const out = path.join(dir, "full.log");
    symlinkSync("/dev/full", out);
    const tx = await openBus("virtual:full");
    const lines: string[] = [];
    const sink = log.sink;
    log.sink = (l) => lines.push(l);
    let failure: unknown;
    try {
      const recording = startRecording({ interface: "virtual:full", output: out, timeout: 20 });
      const done = recording.done.catch((e: unknown) => (failure = e));
      const listening = recording.listening.catch(() => undefined);
      await within(listening, 60_000, "the recorder to listen");
      // Enough frames for the file stream to write (and fail) while the recording still runs: it stops early.
      const started = Date.now();
      for (let k = 0; k < 40 && failure === undefined; k++) {
        for (let i = 0; i < 300; i++) await tx.send(makeFrame({ id: 0x123, data: Uint8Array.of(i & 0xff) }));
        await new Promise((r) => setTimeout(r, 60));
      }
      await done;
      assert.ok(Date.now() - started < 15_000, "the recording did not stop on the failure");
    } finally {
      log.sink = sink;
      await tx.close();
    }
    assert.ok(failure instanceof VgwError, String(failure));
    assert.match((failure as Error).message, /cannot write trace .*full\.log: no space left on the device/);
    assert.match(lines.join("\n"), /record: \d+ frames received, the file was not completed;/);
  });

  it("-o - whose reader goes away (| head): the recording stops, says so, and the process does not crash", async () => {
    // A child process, because the writer thread's stdout is this process's stdout.
    const script = `
      const { record } = require(${JSON.stringify(path.join(ROOT, "dist/cli/commands/record"))});
      const { openBus } = require(${JSON.stringify(path.join(ROOT, "dist/host/bus"))});
      const { makeFrame } = require(${JSON.stringify(path.join(ROOT, "dist/frame/frame"))});
      (async () => {
        const tx = await openBus("virtual:head");
        let onListening;
        const listening = new Promise((r) => (onListening = r));
        const done = record({ interface: "virtual:head", output: "-", timeout: 30, onListening });
        await listening;
        let ended = false;
        done.finally(() => (ended = true));
        while (!ended) {
          for (let i = 0; i < 500; i++) await tx.send(makeFrame({ id: 0x321, data: Uint8Array.of(i & 0xff) }));
          await new Promise((r) => setTimeout(r, 10));
        }
        await done;
        await tx.close();
      })();`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let stdout = "";
    // Read the first two lines, then close the pipe as `head -2` does.
    await new Promise<void>((resolve) => {
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (stdout.split("\n").length > 2) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, stderr);
    assert.ok(Date.now() - started < 15_000, "the recording went on after its reader left");
    assert.match(stdout, /^\(\d+\.\d{6}\) head 321#00\n/);
    assert.match(stderr, /record: \d+ frames received, \d+ written to stdout before its reader closed it \(the rest was not written\);/);
  });

  it("the command: an unwritable output is a clear error with exit code 1, an unknown format exit code 2", () => {
    const run = (output: string) =>
      spawnSync(process.execPath, [path.join(ROOT, "bin/vgw"), "record", "-i", "virtual:cli", "-o", output, "--timeout", "5"], {
        encoding: "utf8",
        timeout: 60_000,
      });
    const missing = run(path.join(dir, "no-such-folder", "x.log"));
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /^vgw: cannot write trace .*no-such-folder\/x\.log: its folder does not exist\n$/);
    const unknown = run(path.join(dir, "x.xyz"));
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /unknown trace format: the extension of '.*x\.xyz'/);
  });
});
