/**
 * `vgw dump`: prints frames from one or more CAN interfaces as they arrive, in candump's columns by default
 * (`  can0  123   [4]  DE AD BE EF`), or one JSON object per line. Error frames are always shown, decoded into
 * can-utils' error classes. Ends on Ctrl-C, after `-n` frames or `--timeout` seconds, with a summary on stderr.
 * --j1939 adds a line for each reassembled J1939 multi-packet message, transport fault and DM1 (host/j1939/view.ts).
 * --isotp PAIRS and --obd add a line for each ISO-TP message reassembled on those ID pairs, OBD-II payloads decoded,
 * or failed, named (host/diag/isotp-view.ts); --no-frames prints those lines alone.
 */
import type { Command } from "commander";
import type { Frame } from "../../frame/frame";
import { bytesToHex } from "../../frame/frame";
import { UsageError } from "../../frame/errors";
import { describeErrorFrame } from "../../frame/error-frame";
import { CandumpText } from "../../frame/candump-text";
import { log } from "../../host/log";
import { filtersOption, interruptSignal, nonNegativeInteger, parseInterfaces, positiveNumber, parseSize, RECEIVE_BUFFER_HELP } from "../options";
import { Capture, dropsHint, dropsText, totalDropped } from "../../host/bus/capture";
import { loadDecoder, type FrameDecoder } from "../../can-db/annotate";
import { writeStdout } from "../stdout";
import { J1939View } from "../../host/j1939/view";
import type { IsoTpLine } from "../../host/diag/isotp-view";
import { diagViews, ISOTP_HELP, OBD_HELP } from "./decode";

interface DumpOptions {
  interface: string;
  filter?: string;
  rcvbuf?: number;
  format: string;
  dbc?: string;
  count?: number;
  timeout?: number;
  timestamp?: string;
  j1939?: boolean;
  isotp?: string;
  obd?: boolean;
  /** false with --no-frames. */
  frames?: boolean;
}

/** A J1939 or ISO-TP line in dump's forms: after the frames' interface column, or as one JSON object with "t" and "bus". */
export function viewDumpLine(l: IsoTpLine, format: string): string {
  if (format === "jsonl") return JSON.stringify({ t: l.t, bus: l.bus, ...l.json });
  return `  ${l.bus ?? ""}  ${l.text}`;
}

/** One JSON object per frame; decoded signals under the same keys `vgw decode --format jsonl` uses. */
export function frameJson(f: Frame, decoder?: FrameDecoder): string {
  const o: Record<string, unknown> = { t: f.t, bus: f.bus, id: f.id, ext: f.ext };
  if (f.rtr) Object.assign(o, { rtr: true, dlc: f.dlc ?? 0 });
  if (f.fd) Object.assign(o, { fd: true, brs: f.brs, esi: f.esi });
  if (f.err) Object.assign(o, { err: true, error: describeErrorFrame(f) });
  o.data = bytesToHex(f.data);
  if (decoder && !f.err) Object.assign(o, decoder.json(f));
  return JSON.stringify(o);
}

export async function dump(opts: DumpOptions): Promise<void> {
  const interfaces = parseInterfaces(opts.interface);
  if (opts.format !== "text" && opts.format !== "jsonl") throw new UsageError(`--format must be text or jsonl, got '${opts.format}'`);
  const stampMode = (opts.timestamp ?? "none") as "none" | "a" | "d" | "z";
  if (!["none", "a", "d", "z"].includes(stampMode)) throw new UsageError(`-t must be a, d or z, got '${opts.timestamp}'`);
  const decoder = opts.dbc ? await loadDecoder(opts.dbc) : undefined;
  const views = diagViews(opts);
  if (opts.frames === false && !opts.j1939 && views.length === 0) throw new UsageError("--no-frames needs --j1939, --isotp or --obd: there would be nothing to print");
  const capture = await Capture.open(interfaces, { command: "dump", filters: filtersOption(opts.filter), receiveBuffer: opts.rcvbuf });
  const { signal, dispose } = interruptSignal(opts.timeout);
  capture.stopOn(signal);
  const text = new CandumpText(interfaces, stampMode);
  const j1939 = opts.j1939 ? new J1939View(decoder) : undefined;
  let frames = 0;
  let errors = 0;
  // Lines are written in batches for throughput, and a timer writes what is pending every 50 ms: a person is
  // watching, and no clock is read per frame (slow in a VM).
  let out: string[] = [];
  let outputGone = false;
  const write = async () => {
    if (out.length === 0) return;
    const text = out.join("\n") + "\n";
    out = [];
    if (!(await writeStdout(text))) outputGone = true;
  };
  const ticker = setInterval(() => void write(), 50);
  try {
    receive: for await (const batch of capture.batches()) {
      for (const f of batch) {
        frames++;
        if (f.err) errors++;
        if (opts.frames !== false) out.push(opts.format === "jsonl" ? frameJson(f, decoder) : decoder && !f.err ? `${text.format(f)}  ${decoder.text(f)}` : text.format(f));
        if (j1939) for (const l of j1939.frame(f)) out.push(viewDumpLine(l, opts.format));
        for (const v of views) for (const l of v.frame(f)) out.push(viewDumpLine(l, opts.format));
        if (opts.count !== undefined && frames >= opts.count) break receive;
      }
      if (out.length >= 256) await write();
      if (outputGone) break;
    }
    if (j1939) for (const l of j1939.finish()) out.push(viewDumpLine(l, opts.format));
    for (const v of views) for (const l of v.finish()) out.push(viewDumpLine(l, opts.format));
    await write();
  } finally {
    clearInterval(ticker);
    dispose();
    const drops = await capture.close();
    log.info(`dump: ${frames} frames, ${errors} error frames${totalDropped(drops) > 0 ? `; ${dropsText(drops)}` : ""}`);
    if (j1939) log.info(`dump: ${j1939.summary()}`);
    for (const v of views) log.info(`dump: ${v.summary()}`);
    const hint = dropsHint(drops);
    if (hint) log.info(`dump: hint: ${hint}`);
  }
}

export function registerDump(program: Command): void {
  program
    .command("dump")
    .description("print CAN frames from one or more interfaces as they arrive (candump's columns; signals with --dbc)")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .option("--filter <list>", "kernel acceptance filters as candump writes them: 123:7FF, 12345678:9FFFFFFF, 123~7FF (inverted)")
    .option("--rcvbuf <size>", RECEIVE_BUFFER_HELP, parseSize)
    .option("--format <format>", "text (candump columns) or jsonl", "text")
    .option("--dbc <file>", "decode frames with this DBC and print the signals beside each frame")
    .option("-t, --timestamp <mode>", "prefix a timestamp as candump -t does: a absolute, d delta, z from zero")
    .option("-n, --count <n>", "stop after n frames", nonNegativeInteger("--count"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .option("--j1939", "reassemble J1939 multi-packet messages (BAM, RTS/CTS, ETP) and decode DM1: a j1939 line after the frame that completes one")
    .option("--isotp <pairs>", ISOTP_HELP)
    .option("--obd", OBD_HELP)
    .option("--no-frames", "print only the lines of --j1939, --isotp and --obd, not the frames")
    .addHelpText(
      "after",
      `
Examples:
  vgw dump -i can0                              all frames, candump style
  vgw dump -i can0,can1 --filter 123:7FF,200~700   two interfaces, kernel filters
  vgw dump -i can0 --dbc car.dbc                 decoded signals beside each frame
  vgw dump -i vcan0 --format jsonl -n 100        100 frames as JSON lines
  vgw dump -i can0 --j1939 --dbc truck.dbc       J1939 multi-packet messages and DM1 beside the frames
  vgw dump -i can0 --obd --no-frames             OBD-II requests and answers, decoded (PID names, units, DTCs, VIN)
  vgw dump -i can0 --isotp 7E0:7E8               reassembled ISO-TP (UDS) messages beside the frames
Error frames are always shown, with their can-utils error classes, and counted in the summary on stderr.`,
    )
    .action(async (opts: DumpOptions) => dump(opts));
}
