/**
 * The README's main job, `npm run demo` (`vgw demo`), run as a user runs it: the firmware in the simulator, the
 * in-process broker, the bundled candump.log replayed (four times faster here), and the summary it ends with.
 */
import { strict as assert } from "assert";
import { spawn } from "node:child_process";
import { join } from "node:path";

const CLI = join(__dirname, "../../../bin/vgw");

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "demo", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The number after `label` on its summary line, e.g. "frames lost          0". */
function figure(out: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([0-9.]+)`, "m").exec(out);
  assert.ok(m, `the summary has a '${label}' line:\n${out}`);
  return Number(m[1]);
}

describe("vgw demo (the README's main job)", function () {
  // Generous: the suite may first wait for another simulator run to release the devtools ports.
  this.timeout(180_000);

  it("replays the bundled trace through the gateway and ends with a lossless summary, exit 0", async () => {
    const run = await runDemo(["--speed", "4"], 150_000);
    assert.equal(run.code, 0, `exit code ${run.code}\n${run.stderr.slice(-2000)}`);
    const out = run.stdout;
    const replayed = figure(out, "frames replayed");
    assert.equal(replayed, 12974, "candump.log has 12,974 frames");
    assert.equal(figure(out, "frames delivered"), replayed);
    assert.equal(figure(out, "frames lost"), 0);
    assert.match(out, /frames delivered\s+\d+\s+\(bit-exact, in order\)/);
    const bytes = /bytes per frame\s+([0-9.]+) B on the wire/.exec(out);
    assert.ok(bytes, `a bytes-per-frame line:\n${out}`);
    assert.ok(Number(bytes[1]) <= 6, `${bytes[1]} B/frame on the wire (the gateway issue's bound is 6)`);
    assert.match(out, /gateway status\s+rx 12974, published 12974, acknowledged 12974, dropped: outbox 0/);
  });
});
