/**
 * The real monotonic clock under the replay scheduler: deadlines closer together than a timer can wait are waited
 * for in the thread, yet the event loop must keep turning (signals, I/O, a progress bar, the simulated gateway's
 * packets), also when frames are already due.
 */
import * as assert from "node:assert/strict";
import { makeFrame, type Frame } from "../../frame/frame";
import { MonotonicClock } from "../../host/replay/clock";
import { replayFrames } from "../../host/replay/scheduler";
import { eventLoopGaps } from "../support/wait";

function frames(n: number, rate: number, t0 = 0): Frame[] {
  return Array.from({ length: n }, (_, i) => makeFrame({ id: 0x100, data: Uint8Array.of(i & 255), t: t0 + i / rate }));
}

describe("replay clock: the event loop keeps turning", function () {
  this.timeout(20_000);

  it("at 4,000 frames/s with a synchronous send (deadlines 0.25 ms apart)", async () => {
    let sent = 0;
    const { gaps } = await eventLoopGaps(() =>
      replayFrames(async function* () {
        yield frames(4000, 4000);
      }, { clock: new MonotonicClock(), send: () => void sent++ }),
    );
    assert.equal(sent, 4000);
    // A second of replay: a timer every ~1 ms when the loop turns; one single gap of ~1,000 ms when it does not.
    assert.ok(gaps.length >= 100, `only ${gaps.length} timer turns during a 1 s replay`);
    const worst = Math.max(...gaps);
    assert.ok(worst < 250, `the event loop was held for ${worst.toFixed(1)} ms`);
  });

  it("when every frame is already due (a burst of one timestamp, as candump.log's one-second stamps give)", async () => {
    let sent = 0;
    // 100,000 frames with the same timestamp: all due at once; each send takes a few microseconds of busy work.
    const { gaps } = await eventLoopGaps(() =>
      replayFrames(async function* () {
        const burst = frames(100_000, Infinity, 5);
        yield burst;
      }, {
        clock: new MonotonicClock(),
        send: () => {
          const until = performance.now() + 0.005;
          while (performance.now() < until) sent += 0;
          sent++;
        },
      }),
    );
    assert.equal(sent, 100_000);
    assert.ok(gaps.length >= 50, `only ${gaps.length} timer turns while sending a 100,000-frame burst`);
  });
});
