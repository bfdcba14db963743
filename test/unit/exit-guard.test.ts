/**
 * The exit guard (test/support/exit-guard.ts) run by a real mocha on two small suites written here: one that leaves a
 * child process and a timer behind, which the guard must name (the child by its command line), and one whose last
 * timer ends by itself within the guard's settling time, which it must not report.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const MOCHA = path.join(__dirname, "../../../node_modules/mocha/bin/mocha.js");
const GUARD = path.join(__dirname, "../support/exit-guard.js");

function runSuite(body: string): { status: number | null; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-guard-"));
  try {
    const file = path.join(dir, "suite.test.js");
    fs.writeFileSync(file, body);
    const r = spawnSync(process.execPath, [MOCHA, "--no-config", "--require", GUARD, "--exit", file], { encoding: "utf8", timeout: 60_000 });
    return { status: r.status, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("exit guard", function () {
  this.timeout(120_000);

  it("names a child process and a timer a suite left running", () => {
    const r = runSuite(`
      const { spawn } = require("node:child_process");
      let child;
      describe("leaky", () => {
        it("starts and forgets", () => { child = spawn("sleep", ["30"], { stdio: "ignore" }); setTimeout(() => {}, 100000); });
      });
      process.on("exit", () => child && child.kill());
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /exit guard: still open 2000 ms after the suites: .*ProcessWrap.*; children: sleep 30 \(pid \d+\)/);
    assert.match(r.stderr, /Timeout/);
  });

  it("stays quiet about what ends within its settling time", () => {
    const r = runSuite(`describe("tidy", () => { it("a short timer", () => { setTimeout(() => {}, 300); }); });`);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /exit guard/);
  });
});
