/**
 * Clock: where replay (and anything that paces or measures time) takes time from. Injected, so tests can run a trace
 * faster than real time with `ManualClock` and still check every deadline exactly.
 *
 * `now()` is monotonic seconds (not wall-clock: NTP steps must not bend a replay). `waitUntil(t)` resolves at or
 * after `t`; the real clock sleeps with a timer until 2 ms before the deadline (Node timers fire 1 ms late or more),
 * then in a futex wait (Atomics.wait, sub-millisecond) until 50 us before, and busy-waits the rest.
 */

export interface Clock {
  /** Monotonic time in seconds. */
  now(): number;
  /** Resolves when `now() >= t`; never earlier. */
  waitUntil(t: number): Promise<void>;
}

/** Timer sleep ends this long before the deadline (libuv timers have 1 ms resolution and fire late). */
const TIMER_MARGIN_S = 0.002;
/** The final stretch is busy-waited: a futex wake-up takes tens of microseconds. */
const SPIN_S = 0.00005;

function hrSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** For Atomics.wait: a thread sleep with sub-millisecond timeout (a futex), which Node's timers cannot do. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class MonotonicClock implements Clock {
  /**
   * How late a futex wait wakes up, estimated from the waits so far (rises fast, falls slowly, so it tracks a high
   * percentile). The sleep ends this much earlier and the rest is spun: about 60 us on an idle host, milliseconds
   * under an emulated CPU (QEMU TCG), where sleeping less and spinning more is what keeps frames on time.
   */
  private wakeLate = 0.0001;

  now(): number {
    return hrSeconds();
  }

  async waitUntil(t: number): Promise<void> {
    let left = t - hrSeconds();
    if (left > TIMER_MARGIN_S) {
      await new Promise((resolve) => setTimeout(resolve, (left - TIMER_MARGIN_S) * 1000));
      left = t - hrSeconds();
    } else if (left > 0.0005) {
      // One event-loop turn (signals, I/O, worker messages), since the sleep below blocks the thread.
      await new Promise((resolve) => setImmediate(resolve));
      left = t - hrSeconds();
    }
    // Sleeping, not spinning, until just before the deadline: on a busy machine the kernel favours a thread that
    // slept when it wakes, while a spinning one has used up its share and gets preempted (measured: p50 lateness
    // 1.8 ms spinning vs. sub-millisecond sleeping, load average 9 on 2 cores).
    const sleep = left - SPIN_S - this.wakeLate;
    if (sleep > 0) {
      const before = hrSeconds();
      Atomics.wait(sleeper, 0, 0, sleep * 1000);
      const late = hrSeconds() - before - sleep;
      this.wakeLate += (late > this.wakeLate ? 0.25 : 0.02) * (late - this.wakeLate);
      this.wakeLate = Math.min(Math.max(this.wakeLate, 0.00002), TIMER_MARGIN_S);
    }
    while (hrSeconds() < t) {
      // busy-wait the last few tens of microseconds
    }
  }
}

/** A clock that only moves when waited on: `waitUntil` jumps to the deadline at once. For tests. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  async waitUntil(t: number): Promise<void> {
    if (t > this.t) this.t = t;
  }
  /** Moves time forward, as if work took this long. */
  advance(seconds: number): void {
    this.t += seconds;
  }
}

/** Wall-clock seconds since the epoch with microsecond resolution, for receive timestamps (what candump -l prints). */
const wallAnchor = Date.now() / 1000 - hrSeconds();
export function wallClockSeconds(): number {
  return wallAnchor + hrSeconds();
}
