/**
 * Scheduling preferences for a recording, in one place: the SocketCAN receive threads (host/bus/native, named
 * `vgw-can-rx`) keep the normal priority, every other thread of the process runs at a lower one, the writer thread
 * lower still. Why: with the CPU shared, a receive thread
 * that waits loses frames in the kernel (its socket buffer holds a few hundred), while any other thread that waits only
 * lets a bounded, counted queue grow. Measured under QEMU (docs/performance.md): during a burst the writer, the main
 * thread and V8's helper threads took about 7 times the receive thread's CPU time. An unprivileged process may lower a
 * thread's priority but not raise it, so the others go down instead of the receiver going up. Linux only; elsewhere,
 * or where it is not permitted, only the preference is lost, never data.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The nice value for every thread but the receivers. */
export const OTHER_THREADS_NICE = 5;
/**
 * The writer thread's nice value, lower still: when it and the main thread both want the CPU, handing frames over
 * goes first (a late write only makes the queue between them longer, bounded and counted).
 */
export const WRITER_NICE = 10;
export const RECEIVE_THREAD_NAME = "vgw-can-rx";

/** Lowers every thread of this process except the receive threads to OTHER_THREADS_NICE; returns how many. */
export function favourReceiveThreads(): number {
  let lowered = 0;
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim() === RECEIVE_THREAD_NAME) continue;
      if (getPriority(Number(tid)) < OTHER_THREADS_NICE) {
        setPriority(Number(tid), OTHER_THREADS_NICE);
        lowered++;
      }
    } catch {
      // The thread ended meanwhile, or this is not permitted: nothing is lost but the preference.
    }
  }
  return lowered;
}

/** Lowers the calling thread to `nice` (Linux applies a nice value to one thread when given its thread id). */
export function lowerThisThread(nice: number): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // No /proc/thread-self (not Linux) or not permitted: only the scheduling preference is lost, not data.
  }
}
