/**
 * The `vgw` entry point. Each subcommand lives in its own module under `commands/` and registers itself on the
 * program; this file only wires them and maps failures to exit codes: 0 ok, 1 runtime error, 2 usage error.
 * Data goes to stdout, diagnostics to stderr.
 */
import { Command, CommanderError } from "commander";
import { UsageError } from "../frame/errors";
import { log } from "../host/log";
import { version } from "../package.json";
import { registerConvert } from "./commands/convert";
import { registerDecode } from "./commands/decode";
import { registerEncode } from "./commands/encode";
import { registerDbc } from "./commands/dbc";
import { registerDump } from "./commands/dump";
import { registerRecord } from "./commands/record";
import { registerReplay } from "./commands/replay";
import { registerSend } from "./commands/send";
import { registerMonitor } from "./commands/monitor";
import { registerStats } from "./commands/stats";
import { registerTail } from "./commands/tail";
import { registerDemo } from "./commands/demo";
import { registerHil } from "./commands/hil";
import { registerPolicy } from "./commands/policy";
import { registerIngest } from "./commands/ingest";
import { registerExport } from "./commands/export";

// One line per subcommand, in the order `vgw --help` lists them.
const COMMANDS: Array<(program: Command) => void> = [
  registerConvert,
  registerDecode,
  registerEncode,
  registerDbc,
  registerDump,
  registerRecord,
  registerReplay,
  registerSend,
  registerMonitor,
  registerStats,
  registerTail,
  registerDemo,
  registerHil,
  registerPolicy,
  registerIngest,
  registerExport,
];

export function buildProgram(): Command {
  const program = new Command("vgw")
    .description("vehicle gateway toolkit: CAN over SocketCAN, DBC decoding, trace files, a CAN-to-MQTT gateway and its HIL harness")
    .version(version)
    .showHelpAfterError("(run with --help for usage and examples)")
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
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
