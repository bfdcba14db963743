/**
 * Bounded waiting for tests: every wait names what it waited for and fails with that name, never hangs.
 */

/**
 * Polls `cond` every `stepMs` until it holds; rejects after `timeoutMs` with `what` in the message. `what` may be a
 * function: it is called at the timeout, so the message shows the state then, not at the start of the wait.
 */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string | (() => string), stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Resolves with `p`, or rejects after `timeoutMs` naming `what`. */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `work` while a chain of 0 ms timers measures how long the event loop was held at a time: one gap per turn of
 * the loop, so a `work` that never yields leaves one gap as long as itself.
 */
export async function eventLoopGaps<T>(work: () => Promise<T>): Promise<{ result: T; gaps: number[] }> {
  const gaps: number[] = [];
  let last = performance.now();
  let running = true;
  const tick = (): void => {
    const t = performance.now();
    gaps.push(t - last);
    last = t;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  try {
    return { result: await work(), gaps };
  } finally {
    running = false;
  }
}
