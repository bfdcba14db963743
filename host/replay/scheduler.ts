/**
 * The replay scheduler: sends a trace's frames at the times the trace gives, scaled by `speed`, on an absolute
 * schedule. Every deadline is computed from the one start instant (`start + (t - t0) / speed`), never by adding
 * up sleeps, so lateness of one frame never carries over to the next and the end of a one-hour trace lands within
 * the clock's resolution of one hour. Time comes from an injected Clock (a ManualClock in tests).
 */
import type { Frame } from "../../frame/frame";
import type { Clock } from "./clock";
import { LatenessStats } from "./lateness";

export interface ReplayOptions {
  clock: Clock;
  /** Puts one frame on its bus; may return a promise (awaited before the next frame). */
  send: (frame: Frame) => void | Promise<void>;
  /** Time scale: 2 plays twice as fast. Default 1. */
  speed?: number;
  /** Plays the trace this many times; 0 = until aborted. Default 1. */
  loops?: number;
  /** false: send as fast as the bus takes frames, ignoring timestamps. Default true. */
  timing?: boolean;
  /** Frames later than this (seconds) count as late. Default 1 ms. */
  lateThreshold?: number;
  /** Called after each batch with the number of frames sent so far. */
  onProgress?: (sent: number) => void;
  /** Stops the replay between two frames; the summary covers what was sent. */
  signal?: AbortSignal;
}

export interface ReplaySummary {
  frames: number;
  loops: number;
  /** Frames sent more than `lateThreshold` after their deadline. */
  late: number;
  /** Seconds after the deadline at which frames were handed to the bus. */
  lateness: { p50: number; p99: number; max: number };
  /** Seconds: (actual time of the last frame - start) - (its scheduled time - start). 0 without timing. */
  drift: number;
  /** Seconds from the first to the last frame sent. */
  elapsed: number;
  /** Frames without a timestamp, sent right after the one before. */
  untimed: number;
  aborted: boolean;
}

/** Opens the trace afresh for each loop (a stream can be read once). */
export type FrameSource = () => AsyncIterable<Frame[]>;

export async function replayFrames(source: FrameSource, options: ReplayOptions): Promise<ReplaySummary> {
  const { clock, send } = options;
  const speed = options.speed ?? 1;
  const loops = options.loops ?? 1;
  const timing = options.timing ?? true;
  if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a positive number, got ${speed}`);
  const stats = new LatenessStats(options.lateThreshold ?? 0.001);
  let frames = 0;
  let untimed = 0;
  let loopsDone = 0;
  let start = NaN;
  let lastSent = NaN;
  let lastDeadline = NaN;
  // Trace time of the first frame of the first loop; later loops are shifted by `loopOffset` trace seconds.
  let t0 = NaN;
  let loopOffset = 0;
  let aborted = false;

  outer: while (loops === 0 || loopsDone < loops) {
    let first = NaN;
    let last = NaN;
    let count = 0;
    let prevT = NaN;
    for await (const batch of source()) {
      for (const frame of batch) {
        if (options.signal?.aborted) {
          aborted = true;
          break outer;
        }
        let t = frame.t;
        if (t === undefined || !Number.isFinite(t)) {
          untimed++;
          t = Number.isNaN(prevT) ? 0 : prevT;
        }
        prevT = t;
        if (Number.isNaN(first)) first = t;
        last = t;
        count++;
        if (Number.isNaN(start)) {
          start = clock.now();
          t0 = t;
        }
        if (timing) {
          const deadline = start + (t - t0 + loopOffset) / speed;
          // Also when the frame is already due: the clock uses the call to let the event loop turn now and then.
          await clock.waitUntil(deadline);
          const sendAt = clock.now();
          stats.add(sendAt - deadline);
          lastDeadline = deadline;
          lastSent = sendAt;
        } else {
          lastSent = clock.now();
        }
        const pending = send(frame);
        if (pending) await pending;
        frames++;
      }
      options.onProgress?.(frames);
      // Without timing nothing else would ever yield: let signals, timers and receivers run between batches.
      if (!timing) await new Promise((resolve) => setImmediate(resolve));
    }
    loopsDone++;
    if (count === 0) break;
    // The next loop starts one mean frame gap after this loop's last frame, as a cyclic trace would continue.
    const span = last - first;
    loopOffset += span + (count > 1 ? span / (count - 1) : 0);
  }
  return {
    frames,
    loops: loopsDone,
    late: stats.late,
    lateness: { p50: stats.quantile(0.5), p99: stats.quantile(0.99), max: stats.max },
    drift: timing && frames > 0 ? lastSent - lastDeadline : 0,
    elapsed: frames > 0 ? lastSent - start : 0,
    untimed,
    aborted,
  };
}
