/**
 * `vgw record`: writes frames from one or more interfaces into a trace file, the format chosen by the extension
 * (host/trace registry: .log .asc .blf .trc .mf4 .jsonl, .gz of any). Optional rotation by size or time starts a new
 * numbered file (`drive-000.log`, `drive-001.log` ...). On Ctrl-C / SIGTERM (or -n / --timeout) the file is closed
 * properly and a summary goes to stderr: frames per file, error frames, and every drop that was counted.
 * On SocketCAN, frames are received on the bus's native thread and arrive here packed; encoding and writing run on a
 * writer thread (host/record/pipeline.ts); every other thread runs below the receive threads (thread-priority.ts).
 * --j1939 (with an optional --dbc) prints each reassembled J1939 multi-packet message, transport fault and DM1 on stdout
 * while recording, in `vgw decode`'s text form; the file still gets every frame, as received.
 */
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { log } from "../../host/log";
import { TraceWriterThread } from "../../host/record/pipeline";
import { headOfBatch, type PackedBatch } from "../../frame/packed";
import { favourReceiveThreads } from "../../host/record/thread-priority";
import type { FileSummary } from "../../host/record/rotating-writer";
import type { Frame } from "../../frame/frame";
import { Capture, dropsHint, dropsText, type DropCounts } from "../../host/bus/capture";
import { unpackFrames } from "../../frame/packed";
import { loadDecoder } from "../../can-db/annotate";
import { J1939View, type J1939Line } from "../../host/j1939/view";
import { writeStdout } from "../stdout";
import { filtersOption, interruptSignal, nonNegativeInteger, parseInterfaces, positiveNumber, parseSize, RECEIVE_BUFFER_HELP } from "../options";

interface RecordOptions {
  interface: string;
  output: string;
  filter?: string;
  rcvbuf?: number;
  rotateSize?: number;
  rotateTime?: number;
  count?: number;
  timeout?: number;
  j1939?: boolean;
  dbc?: string;
  /** Called once every bus is open and receiving: frames sent from then on are recorded (scripts and tests wait on it). */
  onListening?: () => void;
  /** Ends the recording like Ctrl-C (the summary is printed, the files are completed). */
  signal?: AbortSignal;
}

export { rotatedName } from "../../host/record/rotating-writer";

/** `60`, `90s`, `5m`, `1h` -> seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`bad duration '${text}': use seconds or a suffix s, m, h (e.g. 5m)`);
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? "s") as "s" | "m" | "h"];
  if (n <= 0) throw new UsageError(`duration must be positive, got '${text}'`);
  return n;
}

/** A quiet bus still gets its last frames handed to the writer within this long. */
const FLUSH_MS = 50;

/** A J1939 line as `vgw decode` prints it: `(t) bus text`. */
function j1939Text(l: J1939Line): string {
  return `${l.t !== undefined ? `(${l.t.toFixed(6)}) ` : ""}${l.bus !== undefined ? `${l.bus} ` : ""}${l.text}`;
}

export async function record(opts: RecordOptions): Promise<void> {
  const interfaces = parseInterfaces(opts.interface);
  if (opts.dbc && !opts.j1939) throw new UsageError("--dbc only decodes the --j1939 lines: add --j1939");
  if (opts.j1939 && opts.output === "-") throw new UsageError("--j1939 prints on stdout: write the recording to a file (-o FILE)");
  const j1939 = opts.j1939 ? new J1939View(opts.dbc ? await loadDecoder(opts.dbc) : undefined) : undefined;
  // Lines are gathered in the receive callbacks (which cannot wait) and written by the flush timer.
  let j1939Lines: string[] = [];
  const j1939Take = (f: Frame) => {
    for (const l of j1939!.frame(f)) j1939Lines.push(j1939Text(l));
  };
  const j1939Flush = async () => {
    if (j1939Lines.length === 0) return;
    const text = j1939Lines.join("\n") + "\n";
    j1939Lines = [];
    await writeStdout(text);
  };
  // The writer thread opens the first file before the buses: a bad extension (usage error) or an unwritable folder is
  // reported before anything is captured.
  const out = await TraceWriterThread.start({ output: opts.output, rotateSize: opts.rotateSize, rotateTime: opts.rotateTime });
  let capture: Capture;
  try {
    capture = await Capture.open(interfaces, { command: "record", filters: filtersOption(opts.filter), receiveBuffer: opts.rcvbuf });
  } catch (e) {
    await out.close();
    throw e;
  }
  opts.onListening?.();
  const { signal, dispose } = interruptSignal(opts.timeout, opts.signal);
  capture.stopOn(signal);
  const stop = () => capture.stop();
  // A failed writer (disk full) ends the capture like Ctrl-C; close() below then throws its error.
  out.onFail = stop;
  // stdout's reader went away (`vgw record -o - | head`): nothing more can be delivered.
  out.onOutputGone = stop;
  let frames = 0;
  let errors = 0;
  let stopped = false;
  // -n: once the count is reached, nothing more is taken and the buses are closed.
  const stopAtCount = () => {
    if (opts.count !== undefined && frames >= opts.count) {
      stopped = true;
      stop();
    }
  };
  // Every frame of every bus, in arrival order; the receiving thread's whole job. Nothing here may throw (it runs in
  // the buses' receive callbacks).
  const take = (f: Frame) => {
    if (stopped) return;
    frames++;
    if (f.err) errors++;
    out.add(f);
    if (j1939) j1939Take(f);
    stopAtCount();
  };
  // A bus that receives packed (native SocketCAN) delivers chunks from its receive thread; they go to the writer thread
  // as they are.
  const takePacked = (chunk: PackedBatch, errorFrames: number) => {
    if (stopped) return;
    if (opts.count !== undefined && frames + chunk.count > opts.count) {
      const head = headOfBatch(chunk, opts.count - frames);
      chunk = head.batch;
      errorFrames = head.errors;
    }
    frames += chunk.count;
    errors += errorFrames;
    // Before the chunk goes to the writer thread (its buffer moves there).
    if (j1939) for (const f of unpackFrames(chunk)) j1939Take(f);
    out.addPacked(chunk);
    stopAtCount();
  };
  // No clock read per frame (a clock read is a slow emulated device access in a VM): a timer hands over a quiet bus's frames.
  const ticker = setInterval(() => {
    out.flush();
    if (j1939) void j1939Flush();
  }, FLUSH_MS);
  const receiving = opts.count !== 0 ? capture.deliver(take, takePacked) : Promise.resolve();
  // The receive threads started in deliver(): from here on they run ahead of every other thread of the process.
  if (capture.receivesPacked) log.debug(`record: ${favourReceiveThreads()} threads lowered below the receive threads`);
  let files: FileSummary[] = [];
  try {
    await receiving;
  } finally {
    clearInterval(ticker);
    dispose();
    const busDrops = await capture.close();
    if (j1939) {
      for (const l of j1939.finish()) j1939Lines.push(j1939Text(l));
      await j1939Flush();
    }
    let failure: unknown;
    try {
      files = await out.close();
    } catch (e) {
      failure = e;
    }
    const drops: DropCounts = { ...busDrops, writer: out.dropped };
    const written = files.reduce((n, f) => n + f.frames, 0);
    const formatDropped = files.reduce((n, f) => n + f.dropped, 0);
    const where = out.outputGone
      ? "stdout before its reader closed it (the rest was not written)"
      : files.length <= 1
        ? (files[0]?.path ?? opts.output)
        : `${files.length} files (${files[0].path} .. ${files[files.length - 1].path})`;
    log.info(
      `record: ${frames} frames received, ${failure ? "the file was not completed" : `${written} written to ${where}`}; ${errors} error frames; ` +
        `${dropsText(drops)}, ${formatDropped} not representable in the format`,
    );
    if (j1939) log.info(`record: ${j1939.summary()}`);
    const hint = dropsHint(drops);
    if (hint) log.info(`record: hint: ${hint}`);
    // eslint-disable-next-line no-unsafe-finally -- the writer's failure is the command's error, after the summary
    if (failure) throw failure;
  }
}

export function registerRecord(program: Command): void {
  program
    .command("record")
    .description("record CAN frames from one or more interfaces into a trace file (format by extension)")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .requiredOption("-o, --output <file>", "trace file: .log (candump -l), .asc, .blf, .trc, .mf4, .jsonl, optionally .gz (not .mf4); - for stdout")
    .option("--filter <list>", "kernel acceptance filters as candump writes them: 123:7FF,200~700")
    .option("--rcvbuf <size>", RECEIVE_BUFFER_HELP, parseSize)
    .option("--rotate-size <size>", "start a new numbered file when this size is reached (e.g. 10M)", parseSize)
    .option("--rotate-time <duration>", "start a new numbered file after this long (e.g. 90s, 5m, 1h)", parseDuration)
    .option("-n, --count <n>", "stop after n frames", nonNegativeInteger("--count"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .option("--j1939", "print reassembled J1939 multi-packet messages, transport faults and DM1 on stdout while recording")
    .option("--dbc <file>", "with --j1939: decode the reassembled messages with this DBC")
    .addHelpText(
      "after",
      `
Examples:
  vgw record -i can0 -o drive.log                      candump -l format until Ctrl-C
  vgw record -i can0,can1 -o drive.blf                 two interfaces into one Vector BLF
  vgw record -i can0 -o drive.log.gz --rotate-size 50M drive-000.log.gz, drive-001.log.gz, ...
  vgw record -i vcan0 -o cap.asc --timeout 10          ten seconds into Vector ASC
  vgw record -i can0 -o truck.log --j1939 --dbc truck.dbc   J1939 messages and DM1 on stdout while recording
The summary on stderr counts frames, error frames and every drop (by vgw: reader or writer behind; by the interface;
by the format). Encoding and writing run on a second thread, so receiving is not held up by the file.`,
    )
    .action(async (opts: RecordOptions) => record(opts));
}
