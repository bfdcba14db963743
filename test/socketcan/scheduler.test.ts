/**
 * The replay scheduler with an injected ManualClock: every deadline is checked exactly, faster than real time.
 * One test runs on the real MonotonicClock to check it is never early and rarely late.
 */
import { strict as assert } from "node:assert";
import { cpus, loadavg } from "node:os";
import { makeFrame, type Frame } from "../../frame/frame";
import { ManualClock, MonotonicClock } from "../../host/replay/clock";
import { replayFrames, type FrameSource } from "../../host/replay/scheduler";
import { LatenessStats } from "../../host/replay/lateness";

function trace(times: number[]): FrameSource {
  const frames = times.map((t, i) => makeFrame({ id: i & 0x7ff, data: Uint8Array.of(i & 0xff), t }));
  // Two batches, as trace readers deliver them.
  const half = Math.ceil(frames.length / 2);
  return async function* () {
    yield frames.slice(0, half);
    yield frames.slice(half);
  };
}

describe("replay scheduler (injected clock)", () => {
  it("sends each frame at start + (t - t0) / speed", async () => {
    const clock = new ManualClock(1000);
    const sentAt: number[] = [];
    const s = await replayFrames(trace([5, 5.25, 5.25, 7, 9.5]), { clock, send: () => void sentAt.push(clock.now()) });
    assert.deepEqual(sentAt, [1000, 1000.25, 1000.25, 1002, 1004.5]);
    assert.equal(s.frames, 5);
    assert.equal(s.late, 0);
    assert.equal(s.drift, 0);
    assert.equal(s.elapsed, 4.5);
  });

  it("scales by speed", async () => {
    const clock = new ManualClock(0);
    const sentAt: number[] = [];
    await replayFrames(trace([10, 11, 14]), { clock, speed: 4, send: () => void sentAt.push(clock.now()) });
    assert.deepEqual(sentAt, [0, 0.25, 1]);
  });

  it("keeps an absolute schedule: a slow send delays one frame, not the ones after it", async () => {
    const clock = new ManualClock(0);
    const sentAt: number[] = [];
    const s = await replayFrames(trace([0, 1, 2, 3]), {
      clock,
      send: (f: Frame) => {
        sentAt.push(clock.now());
        if (f.id === 1) clock.advance(1.5); // this send takes 1.5 s: frame 2 is late, frame 3 on time
      },
    });
    assert.deepEqual(sentAt, [0, 1, 2.5, 3]);
    assert.equal(s.late, 1);
    assert.equal(s.lateness.max, 0.5);
    assert.equal(s.drift, 0);
  });

  it("loops N times, each loop one mean gap after the previous one's last frame", async () => {
    const clock = new ManualClock(0);
    const sentAt: number[] = [];
    const s = await replayFrames(trace([0, 1, 2]), { clock, loops: 3, send: () => void sentAt.push(clock.now()) });
    assert.deepEqual(sentAt, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(s.loops, 3);
    assert.equal(s.frames, 9);
  });

  it("--no-timing sends back to back", async () => {
    const clock = new ManualClock(0);
    const sentAt: number[] = [];
    const s = await replayFrames(trace([0, 100, 200]), { clock, timing: false, send: () => void sentAt.push(clock.now()) });
    assert.deepEqual(sentAt, [0, 0, 0]);
    assert.equal(s.drift, 0);
  });

  it("stops between frames when aborted, and reports what was sent", async () => {
    const clock = new ManualClock(0);
    const ac = new AbortController();
    let n = 0;
    const s = await replayFrames(trace([0, 1, 2, 3, 4]), {
      clock,
      signal: ac.signal,
      send: () => {
        if (++n === 2) ac.abort();
      },
    });
    assert.equal(s.frames, 2);
    assert.equal(s.aborted, true);
  });

  it("frames without timestamps go right after the previous one and are counted", async () => {
    const clock = new ManualClock(0);
    const frames = [makeFrame({ id: 1, t: 0 }), makeFrame({ id: 2, t: 2 }), makeFrame({ id: 3 })];
    const sentAt: number[] = [];
    const s = await replayFrames(
      async function* () {
        yield frames;
      },
      { clock, send: () => void sentAt.push(clock.now()) },
    );
    assert.deepEqual(sentAt, [0, 2, 2]);
    assert.equal(s.untimed, 1);
  });

  it("rejects a speed that is not positive", async () => {
    await assert.rejects(replayFrames(trace([0]), { clock: new ManualClock(), speed: 0, send: () => undefined }), RangeError);
  });
});

describe("lateness statistics", () => {
  it("gives exact quantiles to 1 us and the exact maximum", () => {
    const st = new LatenessStats(0.001);
    for (let i = 1; i <= 100; i++) st.add(i * 1e-5); // 10 us .. 1 ms
    st.add(0.5);
    assert.equal(st.count, 101);
    assert.ok(Math.abs(st.quantile(0.5) - 0.00051) < 1.1e-6, String(st.quantile(0.5)));
    assert.equal(st.max, 0.5);
    assert.equal(st.late, 1);
    assert.equal(st.quantile(1), 0.5);
  });
});

describe("MonotonicClock", () => {
  it("is never early, and late by under half a millisecond at the median on a machine with a free core", async () => {
    const clock = new MonotonicClock();
    const st = new LatenessStats();
    const start = clock.now();
    for (let i = 1; i <= 200; i++) {
      const deadline = start + i * 0.0007;
      await clock.waitUntil(deadline);
      const late = clock.now() - deadline;
      assert.ok(late >= 0, `woke ${-late * 1e6} us early`);
      st.add(late);
    }
    // Sub-millisecond wake-ups need a free core; on an overloaded machine only a looser bound is meaningful.
    const busy = loadavg()[0] >= cpus().length;
    const bound = busy ? 0.005 : 0.0005;
    assert.ok(st.quantile(0.5) < bound, `p50 lateness ${st.quantile(0.5) * 1e3} ms (load ${loadavg()[0]})`);
  });
});
