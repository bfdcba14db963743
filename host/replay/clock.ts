/**
 * Clock: where replay (and anything that paces or measures time) takes time from. Injected, so tests can run a trace
 * faster than real time with `ManualClock` and still check every deadline exactly.
 *
 * `now()` is monotonic seconds (not wall-clock: NTP steps must not bend a replay). `waitUntil(t)` resolves at or
 * after `t`; the real clock sleeps with a timer until shortly before the deadline, yields to the event loop for the
 * last stretch, and busy-waits the final ~0.2 ms, because Node timers fire 1 ms late or more.
 */

export interface Clock {
  /** Monotonic time in seconds. */
  now(): number;
  /** Resolves when `now() >= t`; never earlier. */
  waitUntil(t: number): Promise<void>;
}

/** Timer sleep ends this long before the deadline (timers overshoot by ~1 ms); then the event loop is polled. */
const TIMER_MARGIN_S = 0.002;
/** Below this the clock spins without yielding: setImmediate costs tens of microseconds per turn. */
const SPIN_S = 0.0002;

function hrSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export class MonotonicClock implements Clock {
  now(): number {
    return hrSeconds();
  }

  async waitUntil(t: number): Promise<void> {
    let left = t - hrSeconds();
    if (left > TIMER_MARGIN_S) {
      await new Promise((resolve) => setTimeout(resolve, (left - TIMER_MARGIN_S) * 1000));
      left = t - hrSeconds();
    }
    while (left > SPIN_S) {
      await new Promise((resolve) => setImmediate(resolve));
      left = t - hrSeconds();
    }
    while (hrSeconds() < t) {
      // busy-wait: the last fraction of a millisecond is shorter than anything the event loop can schedule
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
