/**
 * Runs a DeviceScript test file in the VM (`devs run FILE --test --test-self-exit`), in its own process group that
 * is killed whole on timeout. No devtools server and no ports are needed. The output has its ANSI colours stripped
 * so that test names can be matched.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

const DEVS = join(resolve(__dirname, "../../.."), "node_modules", ".bin", "devs");

export interface VmRun {
  code: number | null;
  output: string;
}

/** `cwd` is the DeviceScript project the file belongs to; `timeoutMs` bounds compile + run in wall-clock time. */
export function runDevsTest(file: string, cwd: string, timeoutMs: number): Promise<VmRun> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(DEVS, ["run", file, "--test", "--test-self-exit", "-T", "60000"], {
      cwd,
      detached: true,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      reject(new Error(`devs run ${file} did not finish within ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      // eslint-disable-next-line no-control-regex
      resolveRun({ code, output: output.replace(/\x1b\[[0-9;]*m/g, "") });
    });
  });
}
