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
import { loadDbcFile } from "../../can-db/load";
import { Decoder } from "../../can-db/decoder";
import { openTraceReader, resolveFormat, type TraceReader } from "../../host/trace";
import { log } from "../../host/log";
import { interruptSignal } from "../options";
import { chunkedStdout, type ChunkedStdout } from "../stdout";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { DecodeWorkerData, DecodeWorkerMessage, DecodeWorkerResult } from "./decode-worker";
import { SignalPrinter, signalsJson, signalsText } from "../../can-db/annotate";
import { emptyDatabase } from "../../can-db/model";
import { UsageError } from "../../frame/errors";
import { announceStdin, noFramesHint, stopReason } from "../trace-input";
import { J1939View } from "../../host/j1939/view";
import { IsoTpView, parseIsoTpPairs } from "../../host/diag/isotp-view";
import { DecodedLines, UNDECODABLE, UNKNOWN } from "../decoded-lines";

export { DecodedLines, UNDECODABLE, UNKNOWN };

/** Bytes of output gathered before one write to stdout. */
const OUTPUT_CHUNK = 256 << 10;

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
  /** --threads N: decode a candump file on N worker threads. */
  threads?: string;
}

/** Input bytes per chunk handed to a worker thread (about 22k candump lines, 8 MB of jsonl back). */
const WORKER_CHUNK = 1 << 20;

/**
 * How many worker threads decode this trace (--threads): candump files (plain or gzipped) only; stdin, other formats,
 * --strict and the views of --j1939/--isotp/--obd (which need every frame in order on one thread) are decoded on the
 * main thread. Not the default: on the 2 shared cores measured (docs/performance.md) threads cost more CPU than they
 * saved, and the wall time grew; they pay where cores are free.
 */
function decodeThreads(trace: string, format: string, threads: string | undefined): number {
  if (threads === undefined) return 0;
  const n = Number(threads);
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new UsageError(`--threads must be a whole number from 0 to 64, not '${threads}'`);
  if (n > 0 && (trace === "-" || format !== "candump")) {
    log.warn(`warning: --threads works on candump files only; decoding ${trace === "-" ? "stdin" : `this ${format} file`} on one thread`);
    return 0;
  }
  return n;
}

/**
 * `vgw decode` of a candump file on worker threads (decode-worker.ts): the main thread cuts the input into chunks of
 * whole lines, hands them round-robin to the workers, and writes their printed bytes and reports their bad lines in
 * input order, so the output, the warnings and the counts are those of the single-threaded loop. A million frames
 * of jsonl is 367 MB of printing: one thread could not do it at a million frames a second.
 */
async function decodeInWorkers(
  reader: TraceReader,
  data: DecodeWorkerData,
  threads: number,
  stdout: ChunkedStdout,
): Promise<{ frames: number; unknown: number; undecodable: number; outputGone: boolean }> {
  let failure: Error | undefined;
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(join(__dirname, "decode-worker.js"), { workerData: data });
    const waiting: Array<{ resolve: (r: DecodeWorkerResult) => void; reject: (e: Error) => void }> = [];
    const fail = (e: Error) => {
      failure ??= e;
      for (const p of waiting.splice(0)) p.reject(e);
    };
    w.on("message", (r: DecodeWorkerResult) => waiting.shift()?.resolve(r));
    w.on("error", fail);
    w.on("exit", (code) => {
      if (waiting.length > 0) fail(new Error(`a decode worker thread stopped (exit code ${code})`));
    });
    return {
      run(chunk: Uint8Array): Promise<DecodeWorkerResult> {
        if (failure) return Promise.reject(failure);
        return new Promise((resolve, reject) => {
          waiting.push({ resolve, reject });
          w.postMessage({ chunk } satisfies DecodeWorkerMessage, [chunk.buffer as ArrayBuffer]);
        });
      },
      /** Gives a written output buffer back to the worker that printed it. */
      recycle(buffer: ArrayBuffer): void {
        if (!failure) w.postMessage({ recycle: buffer } satisfies DecodeWorkerMessage, [buffer]);
      },
      stop: () => w.terminate(),
    };
  });
  const total = { frames: 0, unknown: 0, undecodable: 0, outputGone: false };
  let line = 0;
  // Results in input order; two chunks per worker in flight keep each busy while the main thread writes.
  const pending: Array<Promise<DecodeWorkerResult & { worker: number }>> = [];
  // Input buffers back from the workers, to copy the next chunks into.
  const inputs: ArrayBuffer[] = [];
  const settle = async (r: DecodeWorkerResult & { worker: number }) => {
    for (const [l, reason] of r.bad) reader.bad(line + l, reason);
    line += r.lines;
    total.frames += r.frames;
    total.unknown += r.unknown;
    total.undecodable += r.undecodable;
    inputs.push(r.input.buffer as ArrayBuffer);
    const out = r.out.buffer as ArrayBuffer;
    if (!total.outputGone && !(await stdout.write(r.out, () => workers[r.worker].recycle(out)))) total.outputGone = true;
  };
  try {
    let next = 0;
    // The reader yields the line that straddles two reads as a piece of its own: pieces are gathered up to half a
    // chunk, so that every worker gets work of about the same size.
    let parts: Buffer[] = [];
    let partBytes = 0;
    const send = () => {
      // The worker gets its own copy, moved to it: the reader's buffers are views of its reads.
      let store = inputs.pop();
      if (store === undefined || store.byteLength < partBytes) store = new ArrayBuffer(Math.max(partBytes, 2 * WORKER_CHUNK));
      const copy = new Uint8Array(store, 0, partBytes);
      let at = 0;
      for (const b of parts) {
        copy.set(b, at);
        at += b.length;
      }
      parts = [];
      partBytes = 0;
      const worker = next++ % workers.length;
      pending.push(workers[worker].run(copy).then((r) => ({ ...r, worker })));
    };
    for await (const chunk of reader.lineChunks(WORKER_CHUNK)) {
      parts.push(chunk);
      partBytes += chunk.length;
      if (partBytes < WORKER_CHUNK / 2) continue;
      send();
      while (pending.length >= 2 * workers.length) await settle(await pending.shift()!);
      if (total.outputGone) break;
    }
    if (partBytes > 0 && !total.outputGone) send();
    while (pending.length > 0 && !total.outputGone) await settle(await pending.shift()!);
  } finally {
    // Rejections of chunks no longer waited for (output gone, or an error above) are not unhandled.
    for (const p of pending) p.catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
  }
  return total;
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
    const stdout = chunkedStdout();
    const threads = decodeThreads(trace, reader.format.name, opts.threads);
    if (threads > 0 && (!opts.dbc || opts.frames === false || j1939 || views.length > 0 || opts.strict)) {
      throw new UsageError("--threads decodes frames with a DBC only: not with --strict, --j1939, --isotp, --obd or --no-frames");
    }
    if (threads > 0) {
      const r = await decodeInWorkers(reader, { dbc: opts.dbc!, choices, jsonl, file: trace }, threads, stdout);
      frames = r.frames;
      unknown = r.unknown;
      undecodable = r.undecodable;
      outputGone = r.outputGone;
    } else for await (const batch of reader) {
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
      if (lines.length >= OUTPUT_CHUNK && !(await stdout.write(lines.take()))) {
        outputGone = true;
        break;
      }
    }
    if (j1939 && !outputGone) for (const l of j1939.finish()) lines.viewLine(l, jsonl);
    if (!outputGone) for (const v of views) for (const l of v.finish()) lines.viewLine(l, jsonl);
    if (!outputGone && lines.length > 0 && !(await stdout.write(lines.take()))) outputGone = true;
    if (!outputGone && !(await stdout.flush())) outputGone = true;
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
    .option("--threads <n>", "decode a candump file on n worker threads, the output in order (pays where cores are free; default: the main thread)")
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
