/**
 * `vgw decode --dbc FILE [--format text|jsonl] [--choices] [--strict] [TRACE|-]`: decodes every frame of a trace
 * (any format the trace registry knows, by extension) or of candump text on stdin, against a DBC.
 *
 * jsonl, one object per frame (the contract in DESIGN.md):
 *   {"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}}
 * unknown ID: "message":null,"signals":{}; a frame that cannot be decoded adds "error"; integers beyond 2^53 are
 * decimal strings; only signals present under the frame's multiplexer values appear.
 * Bad input lines are reported on stderr (file:line) and skipped, or stop the run with --strict; the summary on
 * stderr counts frames, unknown IDs, undecodable frames and skipped lines.
 */
import { Option, type Command } from "commander";
import { formatFrame, type Frame } from "../../frame/frame";
import { loadDbcFile } from "../../can-db/load";
import { Decoder, type DecodedFrame, type SignalValue } from "../../can-db/decoder";
import { openTraceReader, resolveFormat } from "../../host/trace";
import { log } from "../../host/log";
import { interruptSignal } from "../options";
import { writeStdout } from "../stdout";
import { signalsText, signalValueJson, unitsOf, type UnitOf } from "../../can-db/annotate";
import { announceStdin, noFramesHint, stopReason } from "../trace-input";

interface DecodeCommandOptions {
  dbc: string;
  format: string;
  choices?: boolean;
  strict?: boolean;
  from?: string;
}

/** One decoded frame as a jsonl line (DESIGN.md contract). */
export function decodedJson(f: Frame, d: DecodedFrame): string {
  let s = "{";
  if (f.t !== undefined) s += `"t":${jsonNumber(f.t)},`;
  if (f.bus !== undefined) s += `"bus":${JSON.stringify(f.bus)},`;
  s += `"id":${f.id},"ext":${f.ext},"message":${d.message === null ? "null" : JSON.stringify(d.message)},"signals":{`;
  let first = true;
  for (const name in d.signals) {
    s += `${first ? "" : ","}${JSON.stringify(name)}:${jsonValue(d.signals[name])}`;
    first = false;
  }
  s += "}";
  if (d.error !== undefined) s += `,"error":${JSON.stringify(d.error)}`;
  return s + "}";
}

function jsonValue(v: SignalValue): string {
  return JSON.stringify(signalValueJson(v));
}

/** JSON has no NaN or Infinity (float signals can carry them): those become strings. */
function jsonNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : `"${v}"`;
}

/** One decoded frame as text: the candump line, then `Message Sig=value unit ...` (dbc-annotate's one form). */
export function decodedText(unit: UnitOf, f: Frame, d: DecodedFrame): string {
  const head = `${f.t !== undefined ? `(${f.t.toFixed(6)}) ` : ""}${f.bus !== undefined ? `${f.bus} ` : ""}${formatFrame(f)}`;
  const signals = signalsText(d, unit);
  return signals ? `${head}  ${signals}` : head;
}

export async function decodeTrace(trace: string, opts: DecodeCommandOptions): Promise<void> {
  resolveFormat(trace, opts.from);
  const db = loadDbcFile(opts.dbc);
  if (!db.messages.some((m) => !m.pseudo)) log.warn(`warning: ${opts.dbc} defines no messages: every frame will be an unknown ID`);
  const dropped = db.warnings.filter((w) => w.severity === "error").length;
  if (dropped) log.warn(`warning: ${opts.dbc}: ${dropped} duplicate definition(s) dropped, the first kept ('vgw dbc --check ${opts.dbc}' lists them)`);
  const decoder = new Decoder(db);
  const unit = unitsOf(db);
  // Ctrl-C on a live pipe ends the input; the frames read so far are printed and the summary still comes.
  const interrupt = interruptSignal();
  try {
    const reader = openTraceReader(trace, { strict: opts.strict, format: opts.from, signal: interrupt.signal });
    announceStdin(trace, reader.format.name);
    const decodeOptions = { choices: opts.choices ?? false };
    const jsonl = opts.format === "jsonl";
    let frames = 0;
    let unknown = 0;
    let undecodable = 0;
    let outputGone = false;
    for await (const batch of reader) {
      const lines: string[] = [];
      for (const f of batch) {
        const d = decoder.decode(f, decodeOptions);
        frames++;
        if (d.message === null) unknown++;
        if (d.error !== undefined) undecodable++;
        lines.push(jsonl ? decodedJson(f, d) : decodedText(unit, f, d));
      }
      if (lines.length && !(await writeStdout(lines.join("\n") + "\n"))) {
        outputGone = true;
        break;
      }
    }
    const parts = [`${frames} frames`, `${frames - unknown} of a known message`, `${unknown} unknown ID`];
    if (undecodable) parts.push(`${undecodable} not fully decodable (see "error")`);
    if (reader.skipped) parts.push(`${reader.skipped} bad lines skipped`);
    if (frames === 0 && reader.skipped > 0 && !reader.format.binary) log.warn(noFramesHint(reader));
    log.info(`decode: ${parts.join(", ")}${stopReason(interrupt.signal, outputGone)}`);
  } finally {
    interrupt.dispose();
  }
}

export function registerDecode(program: Command): void {
  program
    .command("decode")
    .description("decode the frames of a trace (or candump lines on stdin) into signals with a DBC")
    .argument("[trace]", "trace file (.log .asc .trc .blf .jsonl, optionally .gz), or - for candump lines on stdin", "-")
    .requiredOption("--dbc <file>", "the CAN database (DBC)")
    .addOption(new Option("--format <format>", "output").choices(["text", "jsonl"]).default("text"))
    .option("--choices", "print value-table labels (looked up by raw value) instead of numbers")
    .option("--strict", "stop at the first bad input line (exit 1) instead of reporting and skipping it")
    .option("--from <format>", "input format, overriding the extension (name or extension, e.g. asc); stdin too")
    .addHelpText(
      "after",
      `
Input lines on stdin may be candump -l (\`(1.000000) can0 123#11223344\`) or bare frames (\`123#11223344\`, \`123##1<data>\`).
jsonl: {"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}} per frame;
unknown IDs give "message":null, undecodable frames an "error" string, integers beyond 2^53 decimal strings.

Examples:
  vgw decode --dbc vw_mqb.dbc drive.log                  text, one line per frame
  vgw decode --dbc vw_mqb.dbc --format jsonl drive.asc   JSON lines
  candump -L can0 | vgw decode --dbc car.dbc --choices   live, with value-table labels
  echo 1F0#C006E00000000000 | vgw decode --dbc motohawk.dbc -
  vgw decode --dbc vw_mqb.dbc --from asc capture.txt     a trace whose name does not say its format`,
    )
    .action(async (trace: string, opts: DecodeCommandOptions) => decodeTrace(trace, opts));
}
