/**
 * A compiled policy on a running gateway, all real: the firmware's bytecode in the DeviceScript VM, the host's CanBus
 * server, an aedes broker, and `vgw policy` as a separate process.
 * - `vgw policy --publish` sends the filters and rules as commands; the gateway accepts both, and then forwards
 *   exactly the selected messages (the rest counted in the status as filtered, the on-change repeat as downsampled).
 * - The same policy deployed as settings (the `.env` lines `vgw policy` prints) at boot: no setting refused, same result.
 *
 * The devtools server has fixed ports: run under `flock /tmp/vgw-devtools.lock` (scripts/test.sh does).
 */
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { makeFrame, type Frame } from "../../frame/frame";
import { loadDbcFile } from "../../can-db/load";
import { compilePolicy } from "../../can-db/policy";
import { loadPolicyFile } from "../../can-db/policy-file";
import { frameKey } from "../../can-db/frame-key";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import type { FrameBatch } from "../../host/gateway/uplink";
import { settingsEnv } from "../../cli/commands/policy";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import { sleep, waitFor } from "../support/wait";

const ROOT = resolve(__dirname, "../../..");
const FIX = join(ROOT, "test/fixtures/policy");
const DEVICE = "policy1";

function vgwPolicy(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    // async spawn: the broker runs in this process and must keep serving while the command talks to it
    const child = spawn(process.execPath, ["bin/vgw", "policy", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`vgw policy did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe("policy on a running gateway (firmware in the simulator, aedes)", function () {
  this.timeout(180_000);
  let broker: HilBroker;
  let fx: GatewayFixture;
  const abs = loadDbcFile(join(FIX, "abs.dbc"));
  const compiled = compilePolicy(loadPolicyFile(join(FIX, "abs.policy.yaml")), abs);
  const selected = compiled.rows.filter((r) => r.uplink).map((r) => r.key).sort((a, b) => a - b);

  // one frame of every DBC message, of the selected ID outside the DBC, and of IDs nobody selected
  const frames: Frame[] = [];
  for (const r of compiled.rows) frames.push(makeFrame({ id: r.id, ext: r.ext, data: Uint8Array.from([r.id & 0xff, 1, 2, 3]) }));
  frames.push(makeFrame({ id: 0x7e0, data: Uint8Array.from([2, 1, 0]) }));
  frames.push(makeFrame({ id: 0x340, ext: true, data: Uint8Array.from([9]) })); // the extended twin of a selected standard ID
  // 0x7E8 has onChange: the same data again is downsampled
  frames.push(makeFrame({ id: 0x7e8, data: Uint8Array.from([0xe8, 1, 2, 3]) }));
  const filtered = frames.length - selected.length - 1;

  /** Sends the frames; resolves with the keys that reached the broker and the status counters' increase. */
  async function deliveredKeys(): Promise<{ keys: number[]; flt: number; ds: number }> {
    const before = await fx.status();
    const keys: number[] = [];
    const onBatch = (batch: FrameBatch) => {
      for (const f of batch.frames) keys.push(frameKey(f.id, f.ext));
    };
    fx.receiver.on("batch", onBatch);
    try {
      await fx.gw.bus.sendMany(frames);
      await waitFor(() => keys.length >= selected.length, 15_000, () => `${selected.length} frames at the broker (got ${keys.length})`);
      const after = await fx.status((s) => (s.rx ?? 0) >= (before.rx ?? 0) + frames.length, 10_000);
      await sleep(300); // more than the batch window: anything admitted by mistake would have arrived
      return { keys: keys.sort((a, b) => a - b), flt: (after.flt ?? 0) - (before.flt ?? 0), ds: (after.ds ?? 0) - (before.ds ?? 0) };
    } finally {
      fx.receiver.removeListener("batch", onBatch);
    }
  }

  before(async () => {
    broker = await openBroker({ kind: "aedes" });
    fx = await startGatewayFixture({ broker: broker.url, device: DEVICE });
  });
  after(async () => {
    await fx?.stop();
    await broker?.close();
  });

  it("vgw policy --publish: both commands accepted; then only the selected messages arrive", async () => {
    const r = await vgwPolicy(["--dbc", join(FIX, "abs.dbc"), join(FIX, "abs.policy.yaml"), "--publish", `${broker.url}/vgw/${DEVICE}`], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "filter: ok\nrate: ok\n");
    assert.match(r.stderr, /txAllow and txRate are not sent/);
    const got = await deliveredKeys();
    assert.deepEqual(got.keys, selected);
    assert.equal(got.flt, filtered);
    assert.equal(got.ds, 1);
  });

  it("the same policy deployed as settings at boot: no setting refused, the same frames arrive", async () => {
    const settings: Record<string, unknown> = {};
    for (const line of settingsEnv(compiled.settings, "e2e").split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const eq = line.indexOf("=");
      settings[line.slice(0, eq)] = JSON.parse(line.slice(eq + 1));
    }
    const lines = fx.firmwareLines.length;
    await fx.gw.reboot(settings);
    await fx.status(() => true, 30_000);
    const refused = fx.firmwareLines.slice(lines).filter((l) => /setting (canFilters|rateRules|txAllow|txRate)/.test(l));
    assert.deepEqual(refused, []);
    const got = await deliveredKeys();
    assert.deepEqual(got.keys, selected);
    assert.equal(got.flt, filtered);
    assert.equal(got.ds, 1);
  });
});
