/**
 * Runs the MCP2515 driver and CanBus-server tests in the DeviceScript VM (`devs run FILE --test --test-self-exit`)
 * against the register-level MCP2515 model, and checks that every expected test ran and passed.
 * The VM needs no devtools server and no ports.
 */
import { strict as assert } from "node:assert";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevsTest, type VmRun } from "../support/devs";

const FIRMWARE = join(__dirname, "..", "..", "..", "firmware");
/**
 * `devs run` always writes its bytecode to `.devicescript/bin/` of the project it runs in (its --out-dir option is
 * broken in 2.16.4), where the simulator runner reads the gateway's build. So the tests run in a throwaway copy of
 * the firmware project holding only what they need: the config, the service specs, the driver and its tests.
 */
let project = "";

function makeProject(): string {
  const dir = mkdtempSync(join(tmpdir(), "vgw-mcp2515-"));
  cpSync(join(FIRMWARE, "devsconfig.json"), join(dir, "devsconfig.json"));
  cpSync(join(FIRMWARE, "services"), join(dir, "services"), { recursive: true });
  cpSync(join(FIRMWARE, "src", "mcp2515"), join(dir, "src", "mcp2515"), { recursive: true });
  for (const f of readdirSync(join(FIRMWARE, "test"))) {
    if (f.startsWith("mcp2515")) cpSync(join(FIRMWARE, "test", f), join(dir, "test", f));
  }
  return dir;
}
/** Wall-clock bound for one VM run (compile + tests); the VM's own per-run timeout is set below it. */
const RUN_TIMEOUT_MS = 150_000;

function assertRan(run: VmRun, file: string, names: string[]) {
  assert.equal(run.code, 0, `devs run ${file} exited ${run.code}\n${run.output}`);
  for (const name of names) assert.ok(run.output.includes(`  ${name}\n`), `test "${name}" did not run\n${run.output}`);
  const summary = /tests: (\d+), pass: (\d+), error: (\d+)/.exec(run.output);
  assert.ok(summary, `no test summary in the VM output\n${run.output}`);
  assert.equal(Number(summary[1]), names.length, `expected ${names.length} tests in ${file}\n${run.output}`);
  assert.equal(Number(summary[3]), 0, run.output);
  assert.equal(summary[1], summary[2]);
}

describe("firmware: MCP2515 driver in the DeviceScript VM", function () {
  this.timeout(RUN_TIMEOUT_MS + 10_000);

  before(() => {
    project = makeProject();
  });

  after(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it("driver against the register model: timing, init, modes, receive, filters, transmit, errors", async () => {
    const file = "test/mcp2515-driver.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "every table row recomputes to its bit rate and documented sample point",
      "16 MHz 500 kbit/s is 16 TQ sampled at 87.5 %",
      "8 MHz 1 Mbit/s and unknown pairs are refused with a reason",
      "segment rules of the data sheet are enforced when decoding",
      "init programs CNF, interrupts, rollover, accept-all and enters listen-only",
      "8 MHz crystal at 250 kbit/s gets its own CNF values",
      "bad options are refused before the chip is touched",
      "a missing chip (MISO stuck high) is reported, not ignored",
      "normal, loopback and listen-only are confirmed through CANSTAT",
      "a mode change the chip never confirms is an error",
      "configure() changes bit rate and filters through configuration mode and back",
      "standard, extended and remote frames through both buffers",
      "DLC above 8 delivers 8 bytes",
      "third frame before service overflows into RX1OVR and is counted",
      "without rollover the second frame overflows RXB0",
      "standard and extended acceptance filters accept and reject",
      "filters that do not fit two masks are refused with the hardware's shape",
      "standard, extended and remote frames reach the bus; TXnIF counts them",
      "priorities go out highest first; equal priority waits its turn",
      "listen-only refuses to transmit; bad frames are refused before the chip",
      "loopback returns transmitted frames as received and keeps them off the bus",
      "error counters drive error-passive and back",
      "message errors (MERRF) are counted",
      "bus-off is detected, pending frames aborted, and the chip's own recovery noticed",
      "bus-off that outlasts busOffRestartMs is ended by reset and re-initialisation",
      "alone on the bus: errors counted, error-passive, the frame aborted after txTimeoutMs",
      "startMcp2515 services the INT line in the background",
      "transmits from another fiber interleave safely with the service loop",
      "stop() then a new loop: exactly one loop services the chip",
      "with INT high the loop still restarts a chip stuck in bus-off",
    ]);
  });

  it("register model self-test: the SPI instruction set as the data sheet describes it", async () => {
    const file = "test/mcp2515-model-selftest.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "RESET values and the CANSTAT/CANCTRL mirrors at xEh/xFh",
      "READ auto-increments the address",
      "configuration registers are locked outside configuration mode",
      "a mode request shows in CANSTAT one transfer later",
      "BIT MODIFY masks on bit-modifiable registers and writes whole bytes elsewhere",
      "LOAD TX BUFFER at D0 and RTS; READ STATUS shows TXREQ and TXnIF",
      "ABAT aborts pending buffers and sets ABTF",
      "READ RX BUFFER at D0 clears only its RXnIF; RX STATUS reports type and filter",
      "standard filters with EID mask bits filter the first two data bytes",
    ]);
  });

  it("hardware filters from key filters accept exactly what the key filters accept", async () => {
    const file = "test/mcp2515-keyfilters.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "standard only (mask bit 31 set, value bit 31 clear)",
      "extended only, J1939 PGN-style mask",
      "either kind (mask bit 31 clear) becomes a standard and an extended filter",
      "two groups: standard exact IDs and extended ranges",
      "no filters: everything passes",
      "filter sets the chip cannot hold, or that match nothing, are refused",
    ]);
  });

  it("board bring-up check: passes on a working chip, names the fault on broken ones", async () => {
    const file = "test/mcp2515-check.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "a working chip passes every step and is left stopped",
      "no chip: the first step fails with the register values read",
      "a data line that drops bit 0 on the way to the chip fails the loopback step",
    ]);
  });

  it("board settings: bad values refused with the setting's name", async () => {
    const file = "test/mcp2515-settings.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "a missing pin setting is named",
      "a pin that is not a whole number is refused",
      "hardware filters the chip cannot hold are refused before any pin is opened",
      "a GPIO the board does not expose is named with its setting",
    ]);
  });

  it("CanBus server on the driver, through the generated client", async () => {
    const file = "test/mcp2515-server.ts";
    assertRan(await runDevsTest(file, project, RUN_TIMEOUT_MS), file, [
      "binds; starts stopped and listen-only; joins the bus when the client enables it",
      "received frames arrive as packed records in frames reports",
      "40 frames arrive complete and in order, in reports of whole records of at most 236 bytes",
      "transmit commands are refused and counted in listen-only mode",
      "in normal mode packed records reach the bus in order and are counted",
      "30 transmit commands while the loop services the chip: each frame sent once, in order",
      "a malformed record is counted and stops its packet; FD is refused",
      "bit rate: supported values reprogram CNF, others are ignored",
      "a frame lost by the chip is counted in rx_overflow",
      "bus-off shows in bus_state and the counters; recovery returns to error-active",
      "disabling leaves the bus",
      "enabling again rejoins in the mode last set",
      "a full report queue drops and counts frames instead of growing",
      "40 queued frames are flushed as reports of whole records, at most 236 bytes, in order",
      "enabling without a chip leaves the server stopped and says why",
      "an SPI failure during a register write is kept in lastError, never thrown to the Jacdac handler",
    ]);
  });
});
