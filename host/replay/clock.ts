/**
 * Clock: where replay (and anything that paces or measures time) takes time from. Injected, so tests can run a trace
 * faster than real time with `ManualClock` and still check every deadline exactly.
 *
 * `now()` is monotonic seconds (not wall-clock: NTP steps must not bend a replay). `waitUntil(t)` resolves at or
 * after `t`; the real clock sleeps with a timer until 2 ms before the deadline (Node timers fire 1 ms late or more),
 * then in a futex wait (Atomics.wait, sub-millisecond timeouts) until 50 us before, and busy-waits the rest.
 * Whatever the deadlines, it lets the event loop turn at least every 5 ms (MAX_HOLD_S).
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
/**
 * The longest the clock holds the thread without a turn of the event loop. Deadlines closer together than the
 * timer margin are waited for in the thread, so at 4,000 frames/s (0.25 ms apart) a replay whose sends are
 * synchronous (SocketCAN, the virtual bus) would otherwise never yield: no signals (Ctrl-C), no progress bar, no
 * I/O, and in the HIL harness no packets to the simulated gateway, whose CanBus client the VM then dropped with every
 * report (docs/hil.md). A turn costs tens of microseconds when nothing else is pending.
 */
const MAX_HOLD_S = 0.005;

function hrSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** For Atomics.wait: a thread sleep with sub-millisecond timeout (a futex), which Node's timers cannot do. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class MonotonicClock implements Clock {
  /** When the event loop last turned inside waitUntil. */
  private lastTurn = hrSeconds();

  now(): number {
    return hrSeconds();
  }

  async waitUntil(t: number): Promise<void> {
    const now = hrSeconds();
    let left = t - now;
    if (left > TIMER_MARGIN_S) {
      await new Promise((resolve) => setTimeout(resolve, (left - TIMER_MARGIN_S) * 1000));
      this.lastTurn = hrSeconds();
      left = t - this.lastTurn;
    } else if (left > 0.0005 || now - this.lastTurn >= MAX_HOLD_S) {
      // One event-loop turn (signals, I/O, worker messages), since the sleep below blocks the thread.
      await new Promise((resolve) => setImmediate(resolve));
      this.lastTurn = hrSeconds();
      left = t - this.lastTurn;
    }
    // Sleeping, not spinning, until just before the deadline: on a busy machine the kernel favours a thread that
    // slept when it wakes, while a spinning one has used up its share and gets preempted. Measured at load 4.5 on
    // 2 cores, 16,000 frames at 2 kHz: spinning the last 0.2-2 ms left 3,000-7,000 frames over 1 ms late, sleeping
    // until 50 us before the deadline 950-1,450, sleeping to the deadline ~800 but with a p50 of 60 us instead of 10.
    if (left > SPIN_S) Atomics.wait(sleeper, 0, 0, (left - SPIN_S) * 1000);
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
