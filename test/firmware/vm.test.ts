/**
 * The firmware's unit tests, run in the DeviceScript VM: each `firmware/test/*.test.ts` with
 * `devs run FILE --test --test-self-exit` (exit 1 on a failed test). Passing requires exit 0 AND that every test
 * named in the file printed its name, so a file whose tests silently did not run fails too.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { strict as assert } from "node:assert";

const ROOT = resolve(__dirname, "../../..");
const FIRMWARE = join(ROOT, "firmware");
const DEVS = join(ROOT, "node_modules/@devicescript/cli/built/devicescript-cli.cjs");
/** Bound for one VM run (build + tests); the slowest file takes about 10 s on an idle machine. */
const RUN_TIMEOUT_MS = 180_000;

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function devs(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [DEVS, ...args], {
    cwd: FIRMWARE,
    encoding: "utf8",
    timeout: RUN_TIMEOUT_MS,
    killSignal: "SIGKILL",
    maxBuffer: 16 * 1024 * 1024,
  });
  const out = ((r.stdout ?? "") + (r.stderr ?? "")).replace(ANSI, "");
  if (r.error) return { status: null, out: out + `\n${r.error.message}` };
  return { status: r.status, out };
}

/** Names passed to `test("...")` in a VM test file. */
function testNames(file: string): string[] {
  const src = readFileSync(join(FIRMWARE, "test", file), "utf8");
  return [...src.matchAll(/\btest\(\s*"([^"]+)"/g)].map((m) => m[1]);
}

const files = readdirSync(join(FIRMWARE, "test"))
  .filter((f) => f.endsWith(".test.ts"))
  .sort();

describe("firmware in the DeviceScript VM", function () {
  this.timeout(RUN_TIMEOUT_MS + 10_000);

  before(function () {
    // writes firmware/node_modules/@devicescript/* and checks that the program itself compiles
    const r = devs(["build", "src/main.ts", "--quiet"]);
    assert.equal(r.status, 0, `devs build src/main.ts failed:\n${r.out}`);
  });

  it("has VM test files", () => {
    assert.ok(files.length >= 5, `expected the firmware's VM test files, found ${files.join(", ")}`);
  });

  for (const file of files) {
    it(`${file}: every test passes in the VM`, () => {
      const names = testNames(file);
      assert.ok(names.length > 0, `${file} declares no tests`);
      const r = devs(["run", `test/${file}`, "--test", "--test-self-exit", "-T", String(RUN_TIMEOUT_MS - 20_000)]);
      const tail = r.out.split("\n").slice(-40).join("\n");
      assert.equal(r.status, 0, `devs run test/${file} exited ${r.status}:\n${tail}`);
      const summary = /tests: (\d+), pass: (\d+), error: (\d+)/.exec(r.out);
      assert.ok(summary, `no test summary from the VM:\n${tail}`);
      assert.equal(Number(summary[3]), 0, `VM reported errors:\n${tail}`);
      assert.equal(Number(summary[1]), names.length, `the VM ran ${summary[1]} tests, ${file} declares ${names.length}`);
      for (const name of names) assert.ok(r.out.includes(`  ${name}`), `test "${name}" did not run:\n${tail}`);
    });
  }
});
