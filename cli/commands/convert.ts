/**
 * `vgw convert IN OUT`: copies the frames of one trace into another, formats chosen by extension (registry in
 * host/trace), streaming in constant memory. Bad input lines are reported on stderr and skipped (or stop the run
 * with --strict); the summary on stderr says how many frames went through and how many lines were skipped.
 */
import * as path from "path";
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { listFormats, openTraceReader, openTraceWriter, resolveFormat } from "../../host/trace";
import { log } from "../../host/log";
import { interruptSignal } from "../options";
import { announceStdin, noFramesHint, stopReason } from "../trace-input";

interface ConvertOptions {
  strict?: boolean;
  from?: string;
  to?: string;
}

export async function convert(input: string, output: string, opts: ConvertOptions): Promise<void> {
  if (input !== "-" && output !== "-" && path.resolve(input) === path.resolve(output)) {
    throw new UsageError(`input and output are the same file: ${input}`);
  }
  // Usage errors (unknown formats) before any file is opened or created.
  resolveFormat(input, opts.from);
  resolveFormat(output, opts.to);
  // Ctrl-C (`candump -L can0 | vgw convert - cap.blf`) ends the input, not the process: the output is then closed
  // properly (BLF header counts, gzip trailer) instead of being left cut off.
  const interrupt = interruptSignal();
  try {
    const reader = openTraceReader(input, { strict: opts.strict, format: opts.from, signal: interrupt.signal });
    const writer = openTraceWriter(output, { format: opts.to });
    announceStdin(input, reader.format.name);
    const started = process.hrtime.bigint();
    try {
      // Same format in and out (candump to candump): lines already in the writer's exact form are copied as bytes.
      const copyLines = reader.format === writer.format ? writer.writeCopied : undefined;
      if (copyLines && reader.forCopy) {
        for await (const batch of reader.forCopy) {
          await (Array.isArray(batch) ? writer.write(batch) : copyLines(batch));
          if (writer.outputGone) break;
        }
      } else {
        for await (const batch of reader) {
          await writer.write(batch);
          if (writer.outputGone) break;
        }
      }
    } finally {
      // Close even after a strict-mode stop, so what was converted up to the bad line is on disk.
      await writer.close();
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const parts = [`${reader.framesRead} frames read (${reader.format.name})`, `${writer.framesWritten} written (${writer.format.name})`];
    if (reader.skipped > 0) parts.push(`${reader.skipped} bad lines skipped`);
    if (writer.framesDropped > 0) parts.push(`${writer.framesDropped} frames dropped: not representable in ${writer.format.name}`);
    if (reader.framesRead === 0 && reader.skipped > 0 && !reader.format.binary) log.warn(noFramesHint(reader));
    log.info(`convert: ${parts.join(", ")} in ${seconds.toFixed(2)} s${stopReason(interrupt.signal, writer.outputGone)}`);
  } finally {
    interrupt.dispose();
  }
}

export function registerConvert(program: Command): void {
  const formats = listFormats()
    .map((f) => `  ${f.extensions.join(" ").padEnd(16)} ${f.description}`)
    .join("\n");
  program
    .command("convert")
    .description("convert a CAN trace between formats (chosen by extension; .gz of any format is read and written transparently)")
    .argument("<in>", "input trace, or - for candump text on stdin")
    .argument("<out>", "output trace, or - for candump -l text on stdout")
    .option("--strict", "stop at the first bad line (exit 1) instead of reporting and skipping it")
    .option("--from <format>", "input format, overriding the extension (name or extension, e.g. asc)")
    .option("--to <format>", "output format, overriding the extension")
    .addHelpText(
      "after",
      `
Formats:
${formats}

gzip input is recognised by its bytes (also on stdin); output ending in .gz is compressed. Ctrl-C ends the input:
what was read is written and the output closed properly (BLF counts, gzip trailer).

Examples:
  vgw convert drive.asc drive.log            Vector ASC to candump -l
  vgw convert drive.log.gz drive.blf         gzip-compressed candump log to Vector BLF
  candump -L can0 | vgw convert - cap.trc    live capture to PEAK TRC 2.1
  vgw convert --strict drive.trc -           print a TRC as candump text; stop at the first bad line`,
    )
    .action(async (input: string, output: string, opts: ConvertOptions) => convert(input, output, opts));
}
