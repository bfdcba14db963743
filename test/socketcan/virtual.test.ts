/** The in-process `virtual:` bus: delivery to peers, own frames, filters, close. */
import { strict as assert } from "node:assert";
import { parseFrame, sameFrame, type Frame } from "../../frame/frame";
import { openBus } from "../../host/bus";

async function take(bus: AsyncIterable<Frame>, n: number): Promise<Frame[]> {
  const out: Frame[] = [];
  if (n === 0) return out;
  for await (const f of bus) if (out.push(f) >= n) break;
  return out;
}

describe("virtual bus", () => {
  it("delivers a frame to every other endpoint of the same name, stamped and in order", async () => {
    const a = await openBus("virtual:v1");
    const b = await openBus("virtual:v1");
    const c = await openBus("virtual:other");
    const frames = ["123#DEADBEEF", "12345678#R2", "321##1" + "00".repeat(12)].map(parseFrame);
    for (const f of frames) await a.send(f);
    const got = await take(b, 3);
    assert.ok(got.every((f, i) => sameFrame(f, frames[i]) && f.bus === "v1" && typeof f.t === "number"));
    assert.deepEqual(a.counters(), { rx: 0, tx: 3, queueDropped: 0 });
    assert.deepEqual(c.counters(), { rx: 0, tx: 0, queueDropped: 0 });
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it("receives its own frames only with receiveOwn, and applies filters", async () => {
    const a = await openBus("virtual:v2", { receiveOwn: true, filters: [{ id: 0x100, mask: 0x700 }] });
    await a.send(parseFrame("123#01"));
    await a.send(parseFrame("223#02"));
    await a.send(parseFrame("1FF#03"));
    const got = await take(a, 2);
    assert.deepEqual(got.map((f) => f.id), [0x123, 0x1ff]);
    await a.close();
  });

  it("delivers a burst as one batch, and ends batches after close", async () => {
    const a = await openBus("virtual:v4");
    const b = await openBus("virtual:v4");
    const it = b.batches!()[Symbol.asyncIterator]();
    const first = it.next();
    for (let i = 0; i < 5; i++) await a.send(parseFrame(`10${i}#0${i}`));
    const got = await first;
    assert.deepEqual(got.value?.map((f: Frame) => f.id), [0x100, 0x101, 0x102, 0x103, 0x104]);
    await a.send(parseFrame("200#"));
    await b.close();
    assert.deepEqual((await it.next()).value?.map((f: Frame) => f.id), [0x200], "frames received before close are kept");
    assert.equal((await it.next()).done, true);
    await a.close();
  });

  it("ends iteration on close and refuses to send afterwards", async () => {
    const a = await openBus("virtual:v3");
    const pending = take(a, 1);
    await a.close();
    assert.deepEqual(await pending, []);
    await assert.rejects(a.send(parseFrame("123#")), /closed/);
  });
});

describe("bus registry", () => {
  it("a word prefix takes only itself: `simcan0` is a SocketCAN interface, not the simulated gateway", async () => {
    const { registerBus } = await import("../../host/bus/bus");
    const opened: string[] = [];
    registerBus("regtest", async (spec) => {
      opened.push(spec);
      return openBus("virtual:regtest");
    });
    const exact = await openBus("regtest");
    const query = await openBus("regtest?x=1");
    await Promise.all([exact.close(), query.close()]);
    assert.deepEqual(opened, ["regtest", "regtest?x=1"]);
    // Anything longer goes past the word prefix to SocketCAN (which, without the interface, says so).
    await assert.rejects(openBus("regtestcan0"), (e: Error) => !/regtest\?/.test(e.message) && /regtestcan0/.test(e.message));
    await assert.rejects(openBus("simcan0"), (e: Error) => !/sim bus spec/.test(e.message) && /simcan0/.test(e.message));
    assert.deepEqual(opened, ["regtest", "regtest?x=1"]);
  });
});
