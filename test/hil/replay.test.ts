/**
 * The harness's replay step on the real monotonic clock must leave the event loop running: at 4,000 frames/s the
 * frames are due 0.25 ms apart, and a replay that never yields stops everything else in the process (the packets to
 * the simulated gateway, its Jacdac announcements, the MQTT observer) until it ends.
 */
import * as assert from "node:assert/strict";
import { MonotonicClock } from "../../host/replay/clock";
import { replayTrace } from "../../hil/runner";
import { emptyRecord } from "../../hil/record";
import { parseScenario } from "../../hil/scenario";
import { eventLoopGaps } from "../support/wait";

describe("hil replay step", function () {
  this.timeout(20_000);

  it("lets timers and I/O run at least every few ms while replaying 4,000 frames/s", async () => {
    const sc = parseScenario(
      ["traces:", "  load: { synthetic: { rate: 4000, duration: 1s } }", "steps:", "  - replay: load", "expect: []"].join("\n"),
      "/tmp/replay-test.yaml",
    );
    const step = sc.steps[0];
    assert.equal(step.kind, "replay");
    if (step.kind !== "replay") return;
    const rec = emptyRecord("t", "unit", 0);
    let handed = 0;
    const target = { send: () => void handed++, flush: async () => undefined };

    const { result: summary, gaps } = await eventLoopGaps(() => replayTrace(sc.traces.get("load")!, step, target, rec, new MonotonicClock(), 1, 0));

    assert.equal(summary.frames, 4000);
    assert.equal(handed, 4000);
    assert.equal(rec.replayed.length, 4000);
    // One second of replay: a timer every ~1 ms when the loop turns (hundreds); none at all when it does not.
    assert.ok(gaps.length >= 100, `only ${gaps.length} timer turns during a 1 s replay`);
    // Generous for a loaded 2-core machine; without the turns the gap is the whole replay (~1,000 ms).
    const worst = Math.max(...gaps);
    assert.ok(worst < 250, `the event loop was held for ${worst.toFixed(1)} ms during the replay`);
  });
});
