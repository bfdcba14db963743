/**
 * Mocha root hooks: after the last suite, name every handle still keeping Node alive (a worker, a socket, a child,
 * a timer a test forgot). `.mocharc.json` also sets `exit`, as the last guard only: a leak is still printed here and
 * is a bug to fix, but it can no longer hold CI until its time limit.
 *
 * Handles get a moment to finish closing first: a child killed in a suite's `after` has exited but its process and
 * pipe handles close a turn later, and a library's pending timeout (jacdac-ts waits 500 ms for a command's answer)
 * ends by itself. Only what is still open after SETTLE_MS is a leak.
 */
import { ChildProcess } from "node:child_process";

const EXPECTED = new Set(["TTYWrap", "PipeWrap", "FSReqCallback", "CloseReq"]);
const SETTLE_MS = 2_000;

function stillOpen(): string[] {
  return process.getActiveResourcesInfo().filter((r) => !EXPECTED.has(r));
}

/** The command lines of child processes still running: "ProcessWrap" alone does not say which. */
function children(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.filter((h): h is ChildProcess => h instanceof ChildProcess).map((c) => `${c.spawnargs.join(" ")} (pid ${c.pid})`);
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    // No hook timeout: the wait is bounded here, and mocha's timer for this hook would count as a leak below. Mocha
    // arms that timer once this function has returned its promise, so it is cleared after the first await.
    this.timeout(0);
    await Promise.resolve();
    this.runnable().clearTimeout();
    const deadline = Date.now() + SETTLE_MS;
    // the wait's own timer still counts while its callback runs: look a turn of the event loop later
    while (stillOpen().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setImmediate(r));
    }
    const left = stillOpen();
    if (left.length === 0) return;
    const kids = children();
    process.stderr.write(`exit guard: still open ${SETTLE_MS} ms after the suites: ${left.join(", ")}${kids.length ? `; children: ${kids.join("; ")}` : ""}\n`);
  },
};
