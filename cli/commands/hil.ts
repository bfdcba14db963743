/**
 * `vgw hil run SCENARIO... [--target sim|board] [--can IFACE] [--broker URL] [--junit FILE] [--html FILE] [--json FILE]`
 *
 * Runs HIL scenarios one after another (the simulator's devtools ports allow one gateway at a time), prints a concise
 * summary to stdout (it is the command's data) with a progress bar on stderr for long replays, writes the reports
 * asked for, and exits 0 only when every expectation of every scenario held; 1 when any failed; 2 on bad usage or a
 * scenario file that does not validate (its error names file, line and key).
 */
import * as fs from "node:fs";
import type { Command } from "commander";
import { SingleBar, Presets } from "cli-progress";
import { UsageError } from "../../frame/errors";
import { positiveNumber } from "../options";
import { log } from "../../host/log";
import { loadScenario, ScenarioError, type Scenario } from "../../hil/scenario";
import { consoleSummary, scenarioReport } from "../../hil/summary";
import { htmlReport, jsonReport, junitXml, type ScenarioReport } from "../../hil/report";
import { writeStdout } from "../stdout";

interface HilRunOptions {
  target?: string;
  can?: string;
  broker?: string;
  junit?: string;
  html?: string;
  json?: string;
  soak?: string;
  device: string;
  prefix: string;
  progress: boolean;
}

const EXAMPLES = `
Examples:
  # every ready scenario against the firmware in the simulator, with reports for CI
  $ vgw hil run hil/scenarios/*.yaml --junit hil-junit.xml --html hil-report.html

  # one scenario against a real gateway wired to can0, both on the rig's broker
  $ vgw hil run hil/scenarios/lossless.yaml --target board --can can0 --broker mqtt://rig-broker:1883 --device gw7

  # the soak at rated load for 60x its CI duration
  $ vgw hil run hil/scenarios/soak.yaml --soak 60 --json soak.json

Exit status: 0 every expectation held, 1 an expectation failed or a run could not be carried out, 2 bad usage or scenario file.
Scenario reference: docs/hil.md.`;

export function registerHil(program: Command): void {
  const hil = program.command("hil").description("hardware-in-the-loop harness: replay traces into a gateway, check what arrives over MQTT");
  hil
    .command("run")
    .description("run scenarios and report; exit 0 only when every expectation holds")
    .argument("<scenario...>", "scenario files (YAML, see docs/hil.md)")
    .option("--target <kind>", "sim (firmware in the DeviceScript VM) or board (a gateway on --can); default: the scenario's, else sim")
    .option("--can <iface>", "board target: the CAN interface the gateway is wired to (can0, vcan0, virtual:NAME)")
    .option("--broker <url>", "use this broker (both harness and gateway reach it) instead of the scenario's own")
    .option("--junit <file>", "write JUnit XML: one testcase per expectation")
    .option("--html <file>", "write a self-contained HTML report with plots")
    .option("--json <file>", "write everything as JSON")
    .option("--device <id>", "the gateway's device id (setting deviceId); the simulated gateway is given it", "hil")
    .option("--prefix <topic>", "the gateway's topic prefix (setting topicPrefix)", "vgw")
    .option("--soak <factor>", "multiply the duration of synthetic loads (long soak runs)")
    .option("--no-progress", "no progress bar")
    .addHelpText("after", EXAMPLES)
    .action(async (files: string[], opts: HilRunOptions) => {
      // Until the run says otherwise this is a failure: a run that never finishes must not look like a pass.
      process.exitCode = 1;
      process.exitCode = await hilRun(files, opts);
    });
}

async function hilRun(files: string[], opts: HilRunOptions): Promise<number> {
  if (opts.target !== undefined && opts.target !== "sim" && opts.target !== "board") throw new UsageError(`--target must be sim or board, got '${opts.target}'`);
  if (opts.target === "board" && !opts.can) throw new UsageError("--target board needs --can IFACE (the interface the gateway is wired to)");
  const soak = opts.soak === undefined ? 1 : positiveNumber("--soak")(opts.soak);
  // Validate every file before running any: a typo in the last scenario should not cost the time of the first.
  const scenarios: Scenario[] = [];
  for (const f of files) {
    try {
      scenarios.push(loadScenario(f));
    } catch (e) {
      if (e instanceof ScenarioError) throw new UsageError(e.message);
      throw e;
    }
  }
  // The runner pulls in the simulator, the brokers and MQTT (~100 ms to load): only `hil run` pays for them.
  const { runScenario } = await import("../../hil/runner");
  const reports: ScenarioReport[] = [];
  for (const sc of scenarios) {
    const target = (opts.target ?? sc.target ?? "sim") as "sim" | "board";
    log.info(`hil: ${sc.name} (${sc.file}) on ${target}`);
    const bar = opts.progress && process.stderr.isTTY ? new SingleBar({ format: "  {step} [{bar}] {value}/{total} frames", hideCursor: true, stream: process.stderr }, Presets.shades_classic) : undefined;
    let barStep = "";
    const startedAt = Date.now();
    const outcome = await runScenario(sc, {
      target,
      can: opts.can,
      broker: opts.broker,
      device: opts.device,
      prefix: opts.prefix,
      loadScale: soak,
      onProgress: (step, sent, total) => {
        if (!bar) return;
        if (step !== barStep) {
          if (barStep) bar.stop();
          barStep = step;
          bar.start(total ?? sent, 0, { step });
        }
        if (total === undefined) bar.setTotal(sent);
        bar.update(sent, { step });
      },
      onFirmwareLine: (line) => log.debug(`firmware: ${line}`),
    });
    if (barStep) bar?.stop();
    reports.push(scenarioReport(outcome, startedAt));
  }
  await writeStdout(consoleSummary(reports) + "\n");
  if (opts.junit) fs.writeFileSync(opts.junit, junitXml(reports));
  if (opts.json) fs.writeFileSync(opts.json, jsonReport(reports));
  if (opts.html) fs.writeFileSync(opts.html, htmlReport(reports));
  return reports.every((r) => r.pass) ? 0 : 1;
}
