/**
 * `vgw record`: writes frames from one or more interfaces into a trace file, the format chosen by the extension
 * (host/trace registry: .log .asc .blf .trc .jsonl, .gz of any). Optional rotation by size or time starts a new
 * numbered file (`drive-000.log`, `drive-001.log` ...). On Ctrl-C / SIGTERM (or -n / --timeout) the file is closed
 * properly and a summary goes to stderr: frames per file, error frames, and every drop that was counted.
 */
import { statSync } from "node:fs";
import type { Command } from "commander";
import type { Frame } from "../../../can-db/frame";
import { UsageError } from "../../../can-db/errors";
import { openTraceWriter, type TraceWriter } from "../../trace";
import { log } from "../../log";
import {
  filtersOption,
  interruptSignal,
  mergeBuses,
  nonNegativeInteger,
  openBuses,
  parseInterfaces,
  positiveNumber,
  closeOnAbort,
} from "./can-options";

interface RecordOptions {
  interface: string;
  output: string;
  filter?: string;
  rotateSize?: number;
  rotateTime?: number;
  count?: number;
  timeout?: number;
}

/** `10M` -> 10485760; plain numbers are bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`bad size '${text}': use bytes or a suffix k, M, G (e.g. 10M)`);
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  const n = Math.floor(Number(m[1]) * scale);
  if (n <= 0) throw new UsageError(`size must be positive, got '${text}'`);
  return n;
}

/** `60`, `90s`, `5m`, `1h` -> seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`bad duration '${text}': use seconds or a suffix s, m, h (e.g. 5m)`);
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? "s") as "s" | "m" | "h"];
  if (n <= 0) throw new UsageError(`duration must be positive, got '${text}'`);
  return n;
}

/** `drive.log.gz`, 3 -> `drive-003.log.gz`: the number goes before the format's extension so the registry still finds it. */
export function rotatedName(path: string, index: number): string {
  const m = /^(.*?)((?:\.[A-Za-z0-9]+)?(?:\.gz)?)$/i.exec(path) as RegExpExecArray;
  return `${m[1]}-${String(index).padStart(3, "0")}${m[2]}`;
}

/**
 * Frames are written in batches: at most this many, or what arrived in this many ms. Small batches keep each stretch
 * of encoding on the receive thread short, so the socket's buffer (a few hundred frames) does not overflow meanwhile
 * (measured in the VM: 2,000-frame batches lost more at 16k frames/s than 256-frame ones).
 */
const BATCH_FRAMES = 256;
const BATCH_MS = 100;

export async function record(opts: RecordOptions): Promise<void> {
  const interfaces = parseInterfaces(opts.interface);
  const rotating = opts.rotateSize !== undefined || opts.rotateTime !== undefined;
  let fileIndex = 0;
  const files: Array<{ path: string; frames: number; dropped: number }> = [];
  const openNext = (): TraceWriter => openTraceWriter(rotating ? rotatedName(opts.output, fileIndex++) : opts.output);
  // Open the first file before the buses: a bad extension is a usage error, reported before anything is captured.
  let writer = openNext();
  let fileStarted = Date.now();
  let buses;
  try {
    buses = await openBuses(interfaces, { filters: filtersOption(opts.filter) });
  } catch (e) {
    await writer.close();
    throw e;
  }
  // Scripts (and the SocketCAN tests) wait for this line before putting frames on the bus.
  log.debug(`record: listening on ${interfaces.join(",")}`);
  const merged = mergeBuses(buses);
  const { signal, dispose } = interruptSignal(opts.timeout);
  closeOnAbort(signal, buses);
  let frames = 0;
  let errors = 0;
  let batch: Frame[] = [];
  let batchStarted = Date.now();
  const closeWriter = async () => {
    await writer.close();
    files.push({ path: writer.path, frames: writer.framesWritten, dropped: writer.framesDropped });
  };
  // Flushes are chained: the timer's flush and the loop's flush must never interleave around a rotation.
  let chain: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => (chain = chain.then(flushNow));
  const flushNow = async () => {
    const frames = batch;
    batch = [];
    if (frames.length > 0) await writer.write(frames);
    batchStarted = Date.now();
    if (!rotating) return;
    const tooBig = opts.rotateSize !== undefined && writer.path !== "-" && fileSize(writer.path) >= opts.rotateSize;
    const tooOld = opts.rotateTime !== undefined && Date.now() - fileStarted >= opts.rotateTime * 1000;
    if (tooBig || tooOld) {
      await closeWriter();
      writer = openNext();
      fileStarted = Date.now();
    }
  };
  // A quiet bus still gets its batch written and its time rotation done.
  const ticker = setInterval(() => {
    if (Date.now() - batchStarted >= BATCH_MS) void flush();
  }, BATCH_MS / 2);
  try {
    receive: for await (const burst of merged.batches) {
      for (const f of burst) {
        frames++;
        if (f.err) errors++;
        batch.push(f);
        if (opts.count !== undefined && frames >= opts.count) break receive;
      }
      // No clock read per frame (a clock read is a slow emulated device access in a VM); the ticker flushes by time.
      if (batch.length >= BATCH_FRAMES) await flush();
    }
  } finally {
    clearInterval(ticker);
    dispose();
    const counters = buses.map((b) => b.counters?.() ?? {});
    await Promise.all(buses.map((b) => b.close()));
    await flush();
    await closeWriter();
    const queueDropped = counters.reduce((n, c) => n + (c.queueDropped ?? 0) + (c.dropped ?? 0), merged.dropped());
    const kernelDropped = counters.reduce((n, c) => n + (c.interfaceRxDropped ?? 0), 0);
    const written = files.reduce((n, f) => n + f.frames, 0);
    const formatDropped = files.reduce((n, f) => n + f.dropped, 0);
    const where = files.length === 1 ? files[0].path : `${files.length} files (${files[0].path} .. ${files[files.length - 1].path})`;
    log.info(
      `record: ${frames} frames received, ${written} written to ${where}; ${errors} error frames; ` +
        `dropped: ${queueDropped} by vgw (reader behind), ${kernelDropped} by the interface (rx_dropped), ` +
        `${formatDropped} not representable in the format`,
    );
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export function registerRecord(program: Command): void {
  program
    .command("record")
    .description("record CAN frames from one or more interfaces into a trace file (format by extension)")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .requiredOption("-o, --output <file>", "trace file: .log (candump -l), .asc, .blf, .trc, .jsonl, optionally .gz; - for stdout")
    .option("--filter <list>", "kernel acceptance filters as candump writes them: 123:7FF,200~700")
    .option("--rotate-size <size>", "start a new numbered file when this size is reached (e.g. 10M)", parseSize)
    .option("--rotate-time <duration>", "start a new numbered file after this long (e.g. 90s, 5m, 1h)", parseDuration)
    .option("-n, --count <n>", "stop after n frames", nonNegativeInteger("--count"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .addHelpText(
      "after",
      `
Examples:
  vgw record -i can0 -o drive.log                      candump -l format until Ctrl-C
  vgw record -i can0,can1 -o drive.blf                 two interfaces into one Vector BLF
  vgw record -i can0 -o drive.log.gz --rotate-size 50M drive-000.log.gz, drive-001.log.gz, ...
  vgw record -i vcan0 -o cap.asc --timeout 10          ten seconds into Vector ASC
The summary on stderr counts frames, error frames and every drop (by vgw, by the interface, by the format).`,
    )
    .action(async (opts: RecordOptions) => record(opts));
}
