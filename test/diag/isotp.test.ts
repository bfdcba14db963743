/**
 * ISO-TP (ISO 15765-2): the pure reassembler fed with frames and times, and two endpoints talking over an in-process
 * `virtual:` bus, with a raw peer that plays a misbehaving sender or receiver for every named error.
 */
import { strict as assert } from "node:assert";
import { makeFrame, type Frame } from "../../frame/frame";
import { openBus, type Bus } from "../../host/bus";
import { IsoTpEndpoint, IsoTpError, openIsoTp, type IsoTpOptions } from "../../host/diag/isotp";
import { IsoTpReassembler, type ReassemblyEvent } from "../../host/diag/isotp-reassembler";
import { stMinMicros } from "../../host/diag/isotp-pci";
import { within } from "../support/wait";
import { log } from "../../host/log";

const h = (s: string) => Uint8Array.from(Buffer.from(s.replace(/[\s.]/g, ""), "hex"));
const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function kinds(events: ReassemblyEvent[]): string[] {
  return events.map((e) => (e.kind === "error" ? `error:${e.error.code}` : e.kind === "flow-control" ? `fc:${e.status}` : `message:${e.payload.length}`));
}

describe("ISO-TP reassembler (pure: frames and times in, messages and errors out)", () => {
  it("single frames, classic and CAN FD escape form, padded or not", () => {
    const r = new IsoTpReassembler();
    const a = r.push(h("03 11 22 33"), 0);
    assert.deepEqual(kinds(a), ["message:3"]);
    assert.deepEqual((a[0] as { payload: Uint8Array }).payload, h("112233"));
    assert.deepEqual(kinds(r.push(h("03 11 22 33 CC CC CC CC"), 0)), ["message:3"]);
    const fd = new Uint8Array(64).fill(0xcc);
    fd[0] = 0;
    fd[1] = 62;
    fd.set(bytes(62), 2);
    const e = r.push(fd, 0);
    assert.deepEqual(kinds(e), ["message:62"]);
    assert.deepEqual((e[0] as { payload: Uint8Array }).payload, bytes(62));
  });

  it("first + consecutive frames: flow control owed after the FF and after each block", () => {
    const r = new IsoTpReassembler({ blockSize: 2 });
    const payload = bytes(30);
    const events = [...r.push(Uint8Array.of(0x10, 30, ...payload.subarray(0, 6)), 0)];
    for (let i = 0, off = 6, sn = 1; off < 30; i++, off += 7, sn++) events.push(...r.push(Uint8Array.of(0x20 | sn, ...payload.subarray(off, off + 7)), 0.001 * i));
    // 6 + 7 + 7 + 7 + 3 bytes: flow control after the FF and after the 2nd CF; the 4th CF ends the message.
    assert.deepEqual(kinds(events), ["fc:0", "fc:0", "message:30"]);
    assert.deepEqual((events[2] as { payload: Uint8Array }).payload, payload);
  });

  it("a 5000-byte message on CAN FD: 32-bit first frame, 64-byte frames, the last one padded to a valid length", () => {
    const payload = bytes(5000, 3);
    const r = new IsoTpReassembler();
    const ff = Uint8Array.of(0x10, 0, 0, 0, 0x13, 0x88, ...payload.subarray(0, 58));
    const events = r.push(ff, 0);
    let off = 58;
    for (let sn = 1; off < 5000; sn = (sn + 1) & 15) {
      const chunk = payload.subarray(off, off + 63);
      const frame = new Uint8Array(chunk.length + 1 <= 8 ? chunk.length + 1 : [12, 16, 20, 24, 32, 48, 64].find((l) => l >= chunk.length + 1)!).fill(0xcc);
      frame[0] = 0x20 | sn;
      frame.set(chunk, 1);
      events.push(...r.push(frame, 0));
      off += chunk.length;
    }
    assert.deepEqual(kinds(events), ["fc:0", "message:5000"]);
    assert.deepEqual((events[1] as { payload: Uint8Array }).payload, payload);
  });

  it("extended addressing: the address byte before the PCI", () => {
    const r = new IsoTpReassembler({ offset: 1 });
    assert.deepEqual(kinds(r.push(h("F1 02 AA BB"), 0)), ["message:2"]);
    // 6 bytes fit a single frame with an address byte; 7 need a first frame.
    assert.deepEqual(kinds(r.push(h("F1 10 07 01 02 03 04 05"), 0)), ["fc:0"]);
    assert.deepEqual(kinds(r.push(h("F1 21 06 07"), 0)), ["message:7"]);
  });

  it("named errors: wrong-sn, unexpected-cf, interrupted, length, overflow, bad-frame; the next message still arrives", () => {
    const r = new IsoTpReassembler({ maxLength: 100 });
    assert.deepEqual(kinds(r.push(h("21 01 02"), 0)), ["error:unexpected-cf"]);
    r.push(h("10 14 00 01 02 03 04 05"), 0);
    assert.deepEqual(kinds(r.push(h("22 06 07 08 09 0A 0B 0C"), 0)), ["error:wrong-sn"]);
    r.push(h("10 14 00 01 02 03 04 05"), 0);
    assert.deepEqual(kinds(r.push(h("02 AA BB"), 0)), ["error:interrupted", "message:2"]);
    assert.deepEqual(kinds(r.push(h("00 AA"), 0)), ["error:length"]);
    assert.deepEqual(kinds(r.push(h("05 AA BB"), 0)), ["error:length"]);
    assert.deepEqual(kinds(r.push(h("10 07 01 02 03 04 05 06"), 0)), ["error:length"], "7 bytes fit a single frame");
    assert.deepEqual(kinds(r.push(h("10 14 00 01 02"), 0)), ["error:length"], "a first frame must fill its frame");
    assert.deepEqual(kinds(r.push(h("10 65 00 01 02 03 04 05"), 0)), ["fc:2", "error:overflow"]);
    r.push(h("10 0A 00 01 02 03 04 05"), 0);
    assert.deepEqual(kinds(r.push(h("21 06 07 08 09 0A 0B 0C 0D 0E"), 0)), ["error:length"], "a CF longer than the FF");
    r.push(h("10 14 00 01 02 03 04 05"), 0);
    assert.deepEqual(kinds(r.push(h("21 06 07"), 0)), ["error:length"], "a short CF before the last");
    assert.deepEqual(kinds(r.push(h("45 00"), 0)), ["error:bad-frame"]);
    assert.deepEqual(kinds(r.push(new Uint8Array(0), 0)), ["error:bad-frame"]);
    const fdBad = new Uint8Array(12);
    fdBad[0] = 0x05;
    assert.deepEqual(kinds(r.push(fdBad, 0)), ["error:length"], "a CAN FD frame over 8 bytes needs the escape SF");
    assert.deepEqual(kinds(r.push(h("03 01 02 03"), 0)), ["message:3"]);
  });

  it("timeout-cr from the frames' own times, and expire() at the end of a trace", () => {
    const r = new IsoTpReassembler({ nCr: 1 });
    r.push(h("10 14 00 01 02 03 04 05"), 10);
    assert.deepEqual(kinds(r.push(h("21 06 07 08 09 0A 0B 0C"), 10.9)), []);
    assert.deepEqual(kinds(r.push(h("22 06 07 08 09 0A 0B 0C"), 12)), ["error:timeout-cr", "error:unexpected-cf"]);
    r.push(h("10 14 00 01 02 03 04 05"), 20);
    r.touch(20.8);
    assert.deepEqual(kinds(r.expire(21.5)), [], "N_Cr runs from the flow control");
    assert.deepEqual(kinds(r.expire(21.9)), ["error:timeout-cr"]);
  });

  it("padding check: length and content", () => {
    const r = new IsoTpReassembler({ padding: { length: true, content: 0xaa } });
    assert.deepEqual(kinds(r.push(h("02 01 02"), 0)), ["error:padding"]);
    assert.deepEqual(kinds(r.push(h("02 01 02 AA AA AA AA CC"), 0)), ["error:padding"]);
    assert.deepEqual(kinds(r.push(h("02 01 02 AA AA AA AA AA"), 0)), ["message:2"]);
  });

  it("STmin: milliseconds, 100-900 microseconds, reserved values as 127 ms", () => {
    assert.deepEqual([0, 1, 0x7f, 0xf1, 0xf9, 0x80, 0xfa].map(stMinMicros), [0, 1000, 127000, 100, 900, 127000, 127000]);
  });
});

/** A raw CAN peer on a virtual bus: sees every frame the endpoint sends, sends frames as given. */
async function rawPeer(wire: string): Promise<{ bus: Bus; next: (what: string) => Promise<Frame>; send: (id: number, data: string, fd?: boolean) => Promise<void> }> {
  const bus = await openBus(wire);
  const it = bus[Symbol.asyncIterator]();
  return {
    bus,
    next: async (what) => (await within(it.next(), 3000, what)).value as Frame,
    send: (id, data, fd = false) => bus.send(makeFrame({ id, ext: id > 0x7ff, fd, data: h(data) })),
  };
}

describe("ISO-TP endpoints over a virtual bus", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });
  const endpoint = async (wire: string, o: IsoTpOptions) => {
    const e = await openIsoTp(wire, o);
    open.push(e);
    return e;
  };
  async function pair(wire: string, a: Partial<IsoTpOptions> = {}, b: Partial<IsoTpOptions> = {}) {
    const tester = await endpoint(wire, { txId: 0x7e0, rxId: 0x7e8, ...a });
    const ecu = await endpoint(wire, { txId: 0x7e8, rxId: 0x7e0, ...b });
    return { tester, ecu };
  }

  for (const [name, a, b, sizes] of [
    ["classic, normal addressing, unpadded", {}, {}, [1, 7, 8, 62, 4095, 4096, 10000]],
    ["classic, padded with 0xAA, block size 3, STmin 1 ms", { txPadding: 0xaa }, { txPadding: 0x55, blockSize: 3, stMin: 1 }, [1, 7, 100]],
    ["classic, STmin 500 us (0xF5), block size 8", {}, { blockSize: 8, stMin: 0xf5 }, [200]],
    ["29-bit IDs", { txId: 0x18da10f1, rxId: 0x18daf110 }, { txId: 0x18daf110, rxId: 0x18da10f1 }, [5, 300]],
    ["extended addressing (address bytes 0x10 / 0xF1)", { txAddress: 0x10, rxAddress: 0xf1 }, { txAddress: 0xf1, rxAddress: 0x10 }, [1, 6, 7, 500]],
    ["CAN FD, TX_DL 64", { txDl: 64 }, { txDl: 64 }, [7, 8, 62, 63, 4095, 4096, 70000]],
    ["CAN FD, TX_DL 16, one end padded, extended addressing", { txDl: 16, txPadding: 0, txAddress: 1, rxAddress: 2 }, { txDl: 12, txAddress: 2, rxAddress: 1 }, [13, 14, 15, 999]],
  ] as Array<[string, Partial<IsoTpOptions>, Partial<IsoTpOptions>, number[]]>) {
    it(`${name}: messages of ${sizes.join(", ")} bytes both ways`, async () => {
      const wire = `virtual:isotp-${name}`;
      const { tester, ecu } = await pair(wire, a, b);
      for (const n of sizes) {
        const m = bytes(n, n);
        const [, got] = await Promise.all([tester.send(m), within(ecu.receive(5000), 10000, `${n} bytes at the ECU`)]);
        assert.deepEqual(got, m);
        const back = bytes(n, n + 1);
        const [, got2] = await Promise.all([ecu.send(back), within(tester.receive(5000), 10000, `${n} bytes at the tester`)]);
        assert.deepEqual(got2, back);
      }
      assert.deepEqual(tester.counters().errors, {});
      assert.equal(tester.counters().txMessages, sizes.length);
      assert.equal(ecu.counters().rxMessages, sizes.length);
    });
  }

  it("frames on the wire: padding, FD lengths, block size and STmin as granted", async () => {
    const wire = "virtual:isotp-wire";
    const spy = await rawPeer(wire);
    open.push(spy.bus);
    const { tester, ecu } = await pair(wire, { txDl: 16, txPadding: 0x77 }, { blockSize: 2, stMin: 3, txDl: 16 });
    const m = bytes(77); // 14 in the FF, 4 x 15 in full CFs, 3 in the last
    await Promise.all([tester.send(m), ecu.receive(5000)]);
    const frames: Frame[] = [];
    for (;;) {
      frames.push(await spy.next("a frame"));
      if (frames.length === 9) break;
    }
    // FF (16 bytes), FC, CF, CF, FC, CF, CF, FC, CF (the last: 1+3 bytes padded to 8 with 0x77)
    assert.deepEqual(
      frames.map((f) => `${f.id.toString(16)}:${f.fd ? "fd" : "cc"}:${f.data.length}:${f.data[0].toString(16)}`),
      ["7e0:fd:16:10", "7e8:fd:3:30", "7e0:fd:16:21", "7e0:fd:16:22", "7e8:fd:3:30", "7e0:fd:16:23", "7e0:fd:16:24", "7e8:fd:3:30", "7e0:fd:8:25"],
    );
    assert.deepEqual(frames[1].data, h("30 02 03"), "the ECU's FC is unpadded: BS 2, STmin 3 ms");
    assert.deepEqual(frames[8].data, Uint8Array.of(0x25, m[74], m[75], m[76], 0x77, 0x77, 0x77, 0x77));
    const gap = frames[3].t! - frames[2].t!;
    assert.ok(gap >= 0.0029, `consecutive frames ${gap * 1000} ms apart, STmin is 3 ms`);
  });

  it("STmin 0: consecutive frames leave in bursts (Bus.sendBatch), cut at the block size granted; STmin > 0 frame by frame", async () => {
    const wire = "virtual:isotp-burst";
    const inner = await openBus(wire);
    const calls: number[] = []; // frames per bus call of the tester: 1 for send(), n for sendBatch()
    const bus: Bus = {
      name: inner.name,
      send: (f) => (calls.push(1), inner.send(f)),
      sendBatch: (fs) => (calls.push(fs.length), inner.sendBatch!(fs)),
      close: () => inner.close(),
      counters: () => inner.counters(),
      batches: () => inner.batches!(),
      [Symbol.asyncIterator]: () => inner[Symbol.asyncIterator](),
    };
    const tester = new IsoTpEndpoint(bus, { txId: 0x7e0, rxId: 0x7e8 }, true);
    open.push(tester);
    const m = bytes(4095); // FF with 6 bytes, then 585 CFs of 7
    let ecu = await endpoint(wire, { txId: 0x7e8, rxId: 0x7e0 });
    const [, got] = await Promise.all([tester.send(m), ecu.receive(5000)]);
    assert.deepEqual(got, m);
    assert.deepEqual(calls, [1, ...Array<number>(9).fill(64), 585 - 9 * 64], "the FF alone, then bursts of 64 frames");
    assert.equal(tester.counters().txFrames, 586);
    await ecu.close();

    calls.length = 0;
    ecu = await endpoint(wire, { txId: 0x7e8, rxId: 0x7e0, blockSize: 100 });
    const [, got2] = await Promise.all([tester.send(m), ecu.receive(5000)]);
    assert.deepEqual(got2, m);
    assert.deepEqual(calls, [1, 64, 36, 64, 36, 64, 36, 64, 36, 64, 36, 64, 21], "bursts never cross a block (100 frames)");
    await ecu.close();

    calls.length = 0;
    ecu = await endpoint(wire, { txId: 0x7e8, rxId: 0x7e0, stMin: 0xf1 });
    const [, got3] = await Promise.all([tester.send(bytes(100)), ecu.receive(5000)]);
    assert.deepEqual(got3, bytes(100));
    assert.deepEqual(calls, Array<number>(15).fill(1), "with STmin every frame is its own send");
    assert.equal(ecu.counters().stMinViolations, 0, "the tester keeps the STmin the ECU grants");
  });

  it("a sender faster than the STmin granted: the message is taken, the early frames counted (stMinViolations), one warning", async () => {
    const wire = "virtual:isotp-fast-sender";
    const logged: string[] = [];
    const sink = log.sink;
    log.sink = (line) => logged.push(line);
    try {
      const { tester, ecu } = await pair(wire, { forceStMinUs: 0 }, { stMin: 20 });
      const m = bytes(300); // FF + 42 CFs
      const [, got] = await Promise.all([tester.send(m), ecu.receive(5000)]);
      assert.deepEqual(got, m);
      const c = ecu.counters();
      assert.ok(c.stMinViolations >= 30 && c.stMinViolations <= 41, `${c.stMinViolations} early frames of 41 gaps`);
      assert.deepEqual(c.errors, {});
      assert.equal(logged.filter((l) => l.includes("sooner than the STmin of 20000 us granted")).length, 1, logged.join("\n"));
    } finally {
      log.sink = sink;
    }
  });

  it("sender errors: timeout-bs, overflow, wft-overrun (WAITs under the limit are fine), bad-fc; the endpoint keeps working", async () => {
    const wire = "virtual:isotp-tx-errors";
    const peer = await rawPeer(wire);
    open.push(peer.bus);
    const tester = await endpoint(wire, { txId: 0x700, rxId: 0x708, nBs: 150, maxWaitFrames: 2 });
    const fails = async (code: string, answer: (() => Promise<void>) | undefined) => {
      const sending = tester.send(bytes(20));
      await peer.next("the first frame");
      if (answer) await answer();
      await assert.rejects(sending, (e: unknown) => e instanceof IsoTpError && e.code === code);
    };
    await fails("timeout-bs", undefined);
    await fails("overflow", () => peer.send(0x708, "32 00 00"));
    await fails("wft-overrun", async () => {
      for (let i = 0; i < 3; i++) await peer.send(0x708, "31 00 00");
    });
    await fails("bad-fc", () => peer.send(0x708, "35 00 00"));
    // Two WAITs, then CONTINUE: the message goes through.
    const sending = tester.send(bytes(20));
    await peer.next("the first frame");
    await peer.send(0x708, "31 00 00");
    await peer.send(0x708, "31 00 00");
    await peer.send(0x708, "30 00 00");
    await sending;
    assert.deepEqual(tester.counters().errors, { "timeout-bs": 1, overflow: 1, "wft-overrun": 1, "bad-fc": 1 });
    assert.equal(tester.counters().txMessages, 1);
    await assert.rejects(tester.send(new Uint8Array(0)), (e: unknown) => e instanceof IsoTpError && e.code === "length");
  });

  it("receiver errors: wrong-sn, timeout-cr, overflow answered with flow status 2, stray frames counted; receive() goes on", async () => {
    const wire = "virtual:isotp-rx-errors";
    const peer = await rawPeer(wire);
    open.push(peer.bus);
    const ecu = await endpoint(wire, { txId: 0x708, rxId: 0x700, nCr: 150, maxLength: 50 });
    await peer.send(0x700, "10 14 00 01 02 03 04 05");
    assert.deepEqual((await peer.next("flow control")).data, h("30 00 00"));
    await peer.send(0x700, "23 06 07 08 09 0A 0B 0C");
    await assert.rejects(ecu.receive(2000), (e: unknown) => e instanceof IsoTpError && e.code === "wrong-sn");
    await peer.send(0x700, "10 14 00 01 02 03 04 05");
    await peer.next("flow control");
    await assert.rejects(ecu.receive(2000), (e: unknown) => e instanceof IsoTpError && e.code === "timeout-cr");
    await peer.send(0x700, "10 FF 00 01 02 03 04 05");
    assert.deepEqual((await peer.next("flow control OVERFLOW")).data, h("32 00 00"));
    await assert.rejects(ecu.receive(2000), (e: unknown) => e instanceof IsoTpError && e.code === "overflow");
    await peer.send(0x700, "21 00");
    await peer.send(0x700, "30 00 00");
    await peer.send(0x700, "02 AB CD");
    assert.deepEqual(await ecu.receive(2000), h("AB CD"));
    await assert.rejects(ecu.receive(50), (e: unknown) => e instanceof IsoTpError && e.code === "timeout");
    const c = ecu.counters();
    assert.deepEqual(c.errors, { "wrong-sn": 1, "timeout-cr": 1, overflow: 1, "unexpected-cf": 1 });
    assert.equal(c.ignoredFrames, 1, "the flow control that arrived while sending nothing");
    assert.equal(c.rxMessages, 1);
  });

  it("close() rejects a pending receive and send, and is idempotent; a shared bus stays the caller's", async () => {
    const bus = await openBus("virtual:isotp-close");
    const e = new IsoTpEndpoint(bus, { txId: 0x1, rxId: 0x2 });
    const pending = e.receive(5000);
    const sending = e.send(bytes(100));
    await e.close();
    await e.close();
    await assert.rejects(pending, (err: unknown) => err instanceof IsoTpError && err.code === "closed");
    await assert.rejects(sending, (err: unknown) => err instanceof IsoTpError && err.code === "closed");
    await bus.send(makeFrame({ id: 0x5, data: h("01") }));
    await bus.close();
  });
});
