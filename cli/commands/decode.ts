/**
 * `vgw decode --dbc FILE [--format text|jsonl] [--choices] [--strict] [--j1939] [TRACE|-]`: decodes every frame of a trace
 * (any format the trace registry knows, by extension) or of candump text on stdin, against a DBC.
 *
 * jsonl, one object per frame (the contract in DESIGN.md):
 *   {"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}}
 * unknown ID: "message":null,"signals":{}; a frame that cannot be decoded adds "error"; integers beyond 2^53 are
 * decimal strings; only signals present under the frame's multiplexer values appear.
 * Bad input lines are reported on stderr (file:line) and skipped, or stop the run with --strict; the summary on
 * stderr counts frames, unknown IDs, undecodable frames and skipped lines.
 * --j1939 adds a line after the frame that completes a J1939 multi-packet message (or ends one with a fault), and
 * after every DM1 (host/j1939/view.ts); the DBC is then optional. --isotp PAIRS and --obd add a line for each ISO-TP
 * message reassembled on those ID pairs (OBD-II payloads decoded) or failed, named (host/diag/isotp-view.ts);
 * --no-frames prints those lines alone.
 */
import { Option, type Command } from "commander";
import { writeFrameText, type Frame } from "../../frame/frame";
import { NEWLINE, SPACE, TextBuffer } from "../../frame/text-buffer";
import { loadDbcFile } from "../../can-db/load";
import { Decoder, type CompiledMessage, type DecodedFrame, type DecodeOptions } from "../../can-db/decoder";
import { openTraceReader, resolveFormat } from "../../host/trace";
import { ChannelText } from "../../host/trace/channel";
import { log } from "../../host/log";
import { interruptSignal } from "../options";
import { writeStdout } from "../stdout";
import { SignalPrinter, signalsJson, signalsText, type DirectForms } from "../../can-db/annotate";
import { emptyDatabase } from "../../can-db/model";
import { UsageError } from "../../frame/errors";
import { announceStdin, noFramesHint, stopReason } from "../trace-input";
import { J1939View } from "../../host/j1939/view";
import { IsoTpView, parseIsoTpPairs, type IsoTpLine } from "../../host/diag/isotp-view";

/** Bytes of output gathered before one write to stdout. */
const OUTPUT_CHUNK = 256 << 10;

/** `DecodedLines.decode`'s outcome bits: the frame's ID is unknown; it could not be (fully) decoded. */
export const UNKNOWN = 1;
export const UNDECODABLE = 2;

const T_KEY = Buffer.from(`"t":`);
const ID_KEY = Buffer.from(`"id":`);
const EXT_TRUE = Buffer.from(`,"ext":true,`);
const EXT_FALSE = Buffer.from(`,"ext":false,`);

interface DecodeCommandOptions {
  dbc?: string;
  format: string;
  choices?: boolean;
  strict?: boolean;
  from?: string;
  j1939?: boolean;
  isotp?: string;
  obd?: boolean;
  /** false with --no-frames: only the lines of --j1939, --isotp, --obd. */
  frames?: boolean;
}

/**
 * Prints decoded frames as `vgw decode` lines, into bytes (TextBuffer): the output, not the decoding, was what
 * limited the command, so names, keys and channels are encoded once and numbers written without strings where exact.
 */
export class DecodedLines {
  private readonly out = new TextBuffer();
  private readonly busJson = new ChannelText((bus) => `"bus":${JSON.stringify(bus)},`);
  private readonly busText = new ChannelText((bus) => `${bus} `);
  /** `decode`'s look-up by (ID, kind), for `directFor` with `directChoices`. */
  private readonly directs = new Map<number, { cm: CompiledMessage; forms: DirectForms; length: number } | null>();
  private directFor: Decoder | undefined;
  private directChoices = false;
  /** The decoder's output for frames printed straight from it (`decode`). */
  private raw = new Float64Array(64);
  private phys = new Float64Array(64);

  constructor(private readonly printer: SignalPrinter) {}

  get length(): number {
    return this.out.length;
  }

  /** The lines printed since the last take(). */
  take(): Buffer {
    return this.out.take();
  }

  /**
   * Decodes a frame and prints its line (`json` or `text` of `decoder.decode(f, options)`); returns UNKNOWN and/or
   * UNDECODABLE, or 0. A complete data frame of a known message is decoded into arrays and printed from them
   * (SignalPrinter.direct), with no signals object per frame; everything else (unknown IDs, short, error and remote
   * frames, value-table labels) goes through the object. Both give the same bytes.
   */
  decode(f: Frame, decoder: Decoder, options: DecodeOptions, jsonl: boolean): number {
    const choices = options.choices ?? false;
    if (decoder !== this.directFor || choices !== this.directChoices) {
      this.directs.clear();
      this.directFor = decoder;
      this.directChoices = choices;
    }
    // One look-up per frame: the message's decoder and printed forms by (ID, kind), null when the object path prints it.
    const key = f.id * 2 + (f.ext ? 1 : 0);
    let direct = this.directs.get(key);
    if (direct === undefined) {
      const cm = decoder.compiledFor(f.id, f.ext);
      const forms = cm && this.printer.direct(cm, choices);
      direct = cm && forms ? { cm, forms, length: cm.def.length } : null;
      // Bounded: a trace of random 29-bit IDs must not grow this without end.
      if (this.directs.size >= 65536) this.directs.clear();
      this.directs.set(key, direct);
    }
    if (direct !== null && !f.err && !f.rtr && f.data.length >= direct.length) {
      const n = direct.cm.signals.length;
      if (n > this.raw.length) {
        this.raw = new Float64Array(n);
        this.phys = new Float64Array(n);
      }
      direct.cm.decodeInto(f.data, this.raw, this.phys);
      if (jsonl) this.jsonDirect(f, direct.forms, this.raw, this.phys);
      else this.textDirect(f, direct.forms, this.raw, this.phys);
      return 0;
    }
    const d = decoder.decode(f, options);
    if (jsonl) this.json(f, d);
    else this.text(f, d);
    return (d.message === null ? UNKNOWN : 0) | (d.error !== undefined ? UNDECODABLE : 0);
  }

  /** One jsonl line (DESIGN.md contract): {"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}} */
  json(f: Frame, d: DecodedFrame): void {
    this.jsonStart(f);
    this.printer.json(this.out, d);
    this.out.byte(0x7d);
    this.out.byte(NEWLINE);
  }

  /** `json` for a complete frame of a message the printer prints straight from the decoder's arrays (SignalPrinter.direct). */
  private jsonDirect(f: Frame, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    this.jsonStart(f);
    this.printer.jsonDirect(this.out, p, raw, phys);
    this.out.byte(0x7d);
    this.out.byte(NEWLINE);
  }

  /** `{"t":...,"bus":...,"id":...,"ext":...,` */
  private jsonStart(f: Frame): void {
    const out = this.out;
    out.byte(0x7b);
    if (f.t !== undefined) {
      out.bytes(T_KEY);
      // JSON has no NaN or Infinity: those become strings.
      if (Number.isInteger(f.t)) out.integer(f.t);
      else if (!out.gridDecimal(f.t, 6)) out.text(Number.isFinite(f.t) ? String(f.t) : `"${f.t}"`);
      out.byte(0x2c);
    }
    if (f.bus !== undefined) out.bytes(this.busJson.get(f.bus));
    out.bytes(ID_KEY);
    out.integer(f.id);
    out.bytes(f.ext ? EXT_TRUE : EXT_FALSE);
  }

  /** One text line: the candump line, then `Message Sig=value unit ...` (dbc-annotate's one form). */
  text(f: Frame, d: DecodedFrame): void {
    this.textStart(f);
    if (d.message !== null || d.error) {
      this.out.byte(SPACE);
      this.out.byte(SPACE);
      this.printer.text(this.out, d);
    }
    this.out.byte(NEWLINE);
  }

  /** `text` for a complete frame of a message the printer prints straight from the decoder's arrays. */
  private textDirect(f: Frame, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    this.textStart(f);
    this.out.byte(SPACE);
    this.out.byte(SPACE);
    this.printer.textDirect(this.out, p, raw, phys);
    this.out.byte(NEWLINE);
  }

  /** The candump line: `(t) bus ID#DATA` */
  private textStart(f: Frame): void {
    const out = this.out;
    if (f.t !== undefined) {
      out.byte(0x28);
      out.fixed6(f.t, 0);
      out.byte(0x29);
      out.byte(SPACE);
    }
    if (f.bus !== undefined) out.bytes(this.busText.get(f.bus));
    writeFrameText(out, f);
  }

  /** A line of a view (J1939: reassembled message, transport fault, DM1; ISO-TP: message or failure) as text or JSON. */
  viewLine(l: IsoTpLine, json: boolean): void {
    if (json) this.viewJson(l);
    else this.viewText(l);
  }

  /** The same time/bus prefix as frames, then the line's text. */
  private viewText(l: IsoTpLine): void {
    const out = this.out;
    if (l.t !== undefined) {
      out.byte(0x28);
      out.fixed6(l.t, 0);
      out.text(") ");
    }
    if (l.bus !== undefined) out.bytes(this.busText.get(l.bus));
    out.text(l.text);
    out.byte(NEWLINE);
  }

  /** A view's line as JSON: "t" and "bus" first, as frames have them. */
  private viewJson(l: IsoTpLine): void {
    const o: Record<string, unknown> = {};
    if (l.t !== undefined) o.t = l.t;
    if (l.bus !== undefined) o.bus = l.bus;
    this.out.text(JSON.stringify(Object.assign(o, l.json)));
    this.out.byte(NEWLINE);
  }
}

export const ISOTP_HELP =
  "reassemble ISO-TP messages on these pairs of hex IDs, REQUEST:RESPONSE, comma-separated (7E0:7E8,18DA10F1:18DAF110): an isotp line after the frame that completes one, or names how it failed";
export const OBD_HELP = "watch the OBD-II pairs (7DF, 7E0-7E7 <-> 7E8-7EF; 29-bit 18DB33F1, 18DAxxF1 <-> 18DAF1xx) and decode their messages: services, PIDs with names and units, DTCs, VIN";

/** The ISO-TP view of --isotp and --obd (none without them). */
export function diagViews(opts: { isotp?: string; obd?: boolean }): IsoTpView[] {
  if (!opts.isotp && !opts.obd) return [];
  return [new IsoTpView(opts.isotp ? parseIsoTpPairs(opts.isotp) : [], opts.obd ?? false)];
}

export async function decodeTrace(trace: string, opts: DecodeCommandOptions): Promise<void> {
  resolveFormat(trace, opts.from);
  if (!opts.dbc && !opts.j1939 && !opts.isotp && !opts.obd) throw new UsageError("--dbc is required (only --j1939, --isotp and --obd work without a DBC)");
  const views = diagViews(opts);
  if (opts.frames === false && !opts.j1939 && views.length === 0) throw new UsageError("--no-frames needs --j1939, --isotp or --obd: there would be nothing to print");
  const db = opts.dbc ? loadDbcFile(opts.dbc) : emptyDatabase();
  if (opts.dbc && !db.messages.some((m) => !m.pseudo)) log.warn(`warning: ${opts.dbc} defines no messages: every frame will be an unknown ID`);
  const dropped = db.warnings.filter((w) => w.severity === "error").length;
  if (dropped) log.warn(`warning: ${opts.dbc}: ${dropped} duplicate definition(s) dropped, the first kept ('vgw dbc --check ${opts.dbc}' lists them)`);
  const decoder = new Decoder(db);
  const printer = new SignalPrinter(db);
  const choices = opts.choices ?? false;
  const j1939 = opts.j1939
    ? new J1939View(
        opts.dbc
          ? { text: (f) => signalsText(decoder.decode(f, { choices }), printer), json: (f) => signalsJson(decoder.decode(f, { choices })) }
          : undefined,
      )
    : undefined;
  // Ctrl-C on a live pipe ends the input; the frames read so far are printed and the summary still comes.
  const interrupt = interruptSignal();
  try {
    const reader = openTraceReader(trace, { strict: opts.strict, format: opts.from, signal: interrupt.signal });
    announceStdin(trace, reader.format.name);
    const decodeOptions = { choices };
    const jsonl = opts.format === "jsonl";
    let frames = 0;
    let unknown = 0;
    let undecodable = 0;
    let outputGone = false;
    const lines = new DecodedLines(printer);
    for await (const batch of reader) {
      for (const f of batch) {
        frames++;
        if (opts.frames !== false) {
          const outcome = lines.decode(f, decoder, decodeOptions, jsonl);
          if (outcome & UNKNOWN) unknown++;
          if (outcome & UNDECODABLE) undecodable++;
        } else {
          const d = decoder.decode(f, decodeOptions);
          if (d.message === null) unknown++;
          if (d.error !== undefined) undecodable++;
        }
        if (j1939) for (const l of j1939.frame(f)) lines.viewLine(l, jsonl);
        for (const v of views) for (const l of v.frame(f)) lines.viewLine(l, jsonl);
      }
      // stdout gets big chunks: one write (and one wait for the pipe) per 256 KB, not per batch or line.
      if (lines.length >= OUTPUT_CHUNK && !(await writeStdout(lines.take()))) {
        outputGone = true;
        break;
      }
    }
    if (j1939 && !outputGone) for (const l of j1939.finish()) lines.viewLine(l, jsonl);
    if (!outputGone) for (const v of views) for (const l of v.finish()) lines.viewLine(l, jsonl);
    if (!outputGone && lines.length > 0 && !(await writeStdout(lines.take()))) outputGone = true;
    const parts = [`${frames} frames`, `${frames - unknown} of a known message`, `${unknown} unknown ID`];
    if (undecodable) parts.push(`${undecodable} not fully decodable (see "error")`);
    if (reader.skipped) parts.push(`${reader.skipped} bad lines skipped`);
    if (frames === 0 && reader.skipped > 0 && !reader.format.binary) log.warn(noFramesHint(reader));
    log.info(`decode: ${parts.join(", ")}${stopReason(interrupt.signal, outputGone)}`);
    if (j1939) log.info(`decode: ${j1939.summary()}`);
    for (const v of views) log.info(`decode: ${v.summary()}`);
  } finally {
    interrupt.dispose();
  }
}

export function registerDecode(program: Command): void {
  program
    .command("decode")
    .description("decode the frames of a trace (or candump lines on stdin) into signals with a DBC")
    .argument("[trace]", "trace file (.log .asc .trc .blf .mf4 .jsonl, optionally .gz), or - for candump lines on stdin", "-")
    .option("--dbc <file>", "the CAN database (DBC); required unless --j1939")
    .addOption(new Option("--format <format>", "output").choices(["text", "jsonl"]).default("text"))
    .option("--choices", "print value-table labels (looked up by raw value) instead of numbers")
    .option("--strict", "stop at the first bad input line (exit 1) instead of reporting and skipping it")
    .option("--from <format>", "input format, overriding the extension (name or extension, e.g. asc); stdin too")
    .option("--j1939", "reassemble J1939 multi-packet messages (BAM, RTS/CTS, ETP) and decode DM1: a j1939 line after the frame that completes one")
    .option("--isotp <pairs>", ISOTP_HELP)
    .option("--obd", OBD_HELP)
    .option("--no-frames", "print only the lines of --j1939, --isotp and --obd, not the frames")
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
  vgw decode --dbc vw_mqb.dbc --from asc capture.txt     a trace whose name does not say its format
  vgw decode --j1939 --dbc truck.dbc truck.log          J1939: reassembled messages and DM1 beside the frames
  vgw decode --j1939 truck.log                          J1939 transport and DM1 without a DBC
  vgw decode --obd --no-frames obd.log                  OBD-II requests and answers, decoded, without the frames
  vgw decode --isotp 7E0:7E8 --format jsonl uds.log     reassembled ISO-TP (UDS) messages beside the frames`,
    )
    .action(async (trace: string, opts: DecodeCommandOptions) => decodeTrace(trace, opts));
}
