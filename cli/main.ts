/**
 * The `vgw` entry point. Each subcommand lives in its own module under `commands/` and registers itself on the
 * program; this file only wires them and maps failures to exit codes: 0 ok, 1 runtime error, 2 usage error.
 * Data goes to stdout, diagnostics to stderr.
 */
import { Command, CommanderError } from "commander";
import { UsageError } from "../frame/errors";
import { log } from "../host/log";
import { version } from "../package.json";

type Register = (program: Command) => void;

/**
 * One line per subcommand, in the order `vgw --help` lists them. Each module is loaded only when it is needed: the
 * commands pull in MQTT, the simulator, SocketCAN and the HIL harness, and loading all of them for one `vgw convert`
 * took longer than converting a large trace's first million frames' worth of parsing.
 */
const COMMANDS: Array<[name: string, load: () => Promise<Register>]> = [
  ["convert", async () => (await import("./commands/convert")).registerConvert],
  ["decode", async () => (await import("./commands/decode")).registerDecode],
  ["encode", async () => (await import("./commands/encode")).registerEncode],
  ["dbc", async () => (await import("./commands/dbc")).registerDbc],
  ["dump", async () => (await import("./commands/dump")).registerDump],
  ["record", async () => (await import("./commands/record")).registerRecord],
  ["replay", async () => (await import("./commands/replay")).registerReplay],
  ["send", async () => (await import("./commands/send")).registerSend],
  ["monitor", async () => (await import("./commands/monitor")).registerMonitor],
  ["stats", async () => (await import("./commands/stats")).registerStats],
  ["plot", async () => (await import("./commands/plot")).registerPlot],
  ["tail", async () => (await import("./commands/tail")).registerTail],
  ["demo", async () => (await import("./commands/demo")).registerDemo],
  ["hil", async () => (await import("./commands/hil")).registerHil],
  ["policy", async () => (await import("./commands/policy")).registerPolicy],
  ["ingest", async () => (await import("./commands/ingest")).registerIngest],
  ["export", async () => (await import("./commands/export")).registerExport],
  ["j1939", async () => (await import("./commands/j1939")).registerJ1939],
  ["diag", async () => (await import("./commands/diag")).registerDiag],
  ["isotp", async () => (await import("./commands/isotp")).registerIsotp],
];

/**
 * The program with every subcommand, or with only `command` when that names one (what `vgw <command> ...` needs:
 * its options, its --help); anything else (`vgw --help`, a typo that commander suggests a fix for) gets them all.
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command("vgw")
    .description("vehicle gateway toolkit: CAN over SocketCAN, DBC decoding, trace files, a CAN-to-MQTT gateway and its HIL harness")
    .version(version)
    .showHelpAfterError("(run with --help for usage and examples)")
    .exitOverride();
  const only = COMMANDS.find(([name]) => name === command);
  for (const [, load] of only ? [only] : COMMANDS) (await load())(program);
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv[2]);
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version land here with exit code 0; parse errors were already printed by commander.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      log.error(`vgw: ${e.message}`);
      return 2;
    }
    log.error(`vgw: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.VGW_DEBUG && e instanceof Error) log.error(e.stack ?? "");
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
