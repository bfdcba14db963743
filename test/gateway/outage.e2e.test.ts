/**
 * Fault: the broker goes away for 10 s in the middle of a replay and comes back on the same port (aedes, restarted
 * by the test). The gateway firmware (real bytecode, VM) keeps receiving CAN frames into its bounded outbox and
 * reconnects with backoff:
 *   - at a rate whose 10 s of batches fit the outbox: nothing is lost (QoS 1 resends; duplicates dropped by (boot, seq))
 *   - at a rate that overflows the outbox: frames are lost, and the gateway's `drop.outbox` counter says exactly how many.
 */
import { strict as assert } from "assert";
import type { Frame } from "../../frame/frame";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { openTraceReader } from "../../host/trace";
import { join } from "node:path";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import { sleep } from "../support/wait";

const TRACE = join(__dirname, "../../../test/fixtures/traces/candump.log");

describe("gateway end to end: broker outage of 10 s mid-replay (aedes restarted)", function () {
  this.timeout(360_000);
  let broker: HilBroker;
  let fx: GatewayFixture;
  let trace: Frame[];

  before(async () => {
    trace = [];
    for await (const batch of openTraceReader(TRACE)) trace.push(...batch);
    broker = await openBroker({ kind: "aedes" });
    fx = await startGatewayFixture({ broker: broker.url, device: "out1" });
  });
  after(async () => {
    await fx?.stop();
    await broker?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed" && fx) process.stderr.write(`firmware output (last 30 lines):\n  ${fx.firmwareLines.slice(-30).join("\n  ")}\n`);
  });

  /** Offers `rate` frames/s for `seconds` with the broker down from 2 s to 12 s; then waits for the gateway to settle. */
  async function replayThroughOutage(rate: number, seconds: number) {
    const session = fx.session();
    const frames = (n: number, i: number) => Array.from({ length: n }, (_, j) => trace[(i + j) % trace.length]);
    const before = await fx.status();
    const outage = (async () => {
      await sleep(2000);
      await broker.stop();
      await sleep(10_000);
      await broker.start();
    })();
    await session.offer(rate, seconds, frames);
    await outage;
    // Settled: every frame received is accounted for (published or dropped) and every published batch acknowledged.
    const st = await fx.status(
      (s) => s.rx! - before.rx! === session.check.counts.sent && s.rx === (s.flt ?? 0) + (s.ds ?? 0) + (s.pub ?? 0) + (s.drop?.outbox ?? 0) && s.ack === s.pub && s.ob === 0,
      60_000,
    );
    await session.drain(5000);
    return { summary: session.summary(), before, after: st };
  }

  it("loses nothing while the outbox has room (100 frames/s)", async () => {
    const { summary, before, after } = await replayThroughOutage(100, 16);
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.lost, 0);
    assert.equal(summary.delivered, summary.sent);
    assert.equal(after.drop?.outbox, before.drop?.outbox, "no outbox drops");
    assert.ok((after.rc ?? 0) > (before.rc ?? 0), "the gateway reconnected");
    assert.ok((after.obmax ?? 0) > 0 && (after.ob ?? 1) === 0, "the outbox emptied after the outage");
  });

  it("counts exactly what it drops when the outbox overflows (2,000 frames/s)", async () => {
    const { summary, before, after } = await replayThroughOutage(2000, 15);
    const dropped = (after.drop?.outbox ?? 0) - (before.drop?.outbox ?? 0);
    assert.ok(dropped > 0, "10 s at 2,000 frames/s cannot fit the outbox");
    assert.equal(summary.unexpected, 0, "what arrived is bit-exact and in order");
    assert.equal(summary.lost, dropped, `frames missing at the receiver (${summary.lost}) = the gateway's drop.outbox (${dropped})`);
    assert.equal(summary.delivered + dropped, summary.sent);
    assert.ok(summary.missingBatches > 0, `dropped batches show up as gaps in (boot, seq): ${JSON.stringify({ ...summary, replay: undefined, status: undefined })} ${JSON.stringify(after.raw)}`);
  });
});
