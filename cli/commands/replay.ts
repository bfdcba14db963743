/**
 * `vgw replay`: plays a trace file onto one or more buses with the original timing (scaled by --speed), on an
 * absolute monotonic schedule (host/replay/scheduler.ts), so a one-hour trace ends within milliseconds of one hour.
 * Frames go to `-i` unless `--map SRC=DST` routes their recorded channel elsewhere. A progress bar on a terminal,
 * a summary on stderr at the end or on Ctrl-C: frames, late frames, lateness p50/p99/max, end-time drift.
 */
import type { Command } from "commander";
import type { Frame } from "../../frame/frame";
import { UsageError } from "../../frame/errors";
import type { Bus } from "../../host/bus";
import { acceptFrame } from "../../host/bus/filter";
import { openTraceReader } from "../../host/trace";
import { log } from "../../host/log";
import { MonotonicClock } from "../../host/replay/clock";
import { replayFrames, type ReplaySummary } from "../../host/replay/scheduler";
import { readAhead } from "../../host/replay/read-ahead";
import { filtersOption, interruptSignal, nonNegativeInteger, parseInterfaces, positiveNumber } from "../options";
import { openBuses } from "../../host/bus/merge";

interface ReplayCliOptions {
  interface?: string;
  speed: number;
  loop: number;
  map?: string[];
  filter?: string;
  timing: boolean;
  progress?: boolean;
}

/** `can0=vcan0` pairs -> channel -> bus spec. */
export function parseMap(items: string[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of items ?? []) {
    for (const pair of item.split(",")) {
      const m = /^([^=]+)=([^=]+)$/.exec(pair.trim());
      if (!m) throw new UsageError(`bad --map '${pair}': expected SRC=DST, e.g. can0=vcan0`);
      map.set(m[1], m[2]);
    }
  }
  return map;
}

export function formatSummary(s: ReplaySummary): string {
  const ms = (x: number) => (x * 1000).toFixed(3);
  return (
    `replay: ${s.frames} frames in ${s.elapsed.toFixed(3)} s (${s.loops} loop${s.loops === 1 ? "" : "s"})` +
    `${s.aborted ? ", interrupted" : ""}; late (>1 ms): ${s.late}; lateness ms p50 ${ms(s.lateness.p50)} ` +
    `p99 ${ms(s.lateness.p99)} max ${ms(s.lateness.max)}; end drift ${ms(s.drift)} ms` +
    (s.untimed ? `; ${s.untimed} frames without timestamp sent back to back` : "")
  );
}

async function countFrames(path: string): Promise<number> {
  let n = 0;
  for await (const batch of openTraceReader(path, { onError: () => undefined })) n += batch.length;
  return n;
}

export async function replay(file: string, opts: ReplayCliOptions): Promise<ReplaySummary> {
  const map = parseMap(opts.map);
  const defaultTarget = opts.interface ? parseInterfaces(opts.interface) : [];
  if (defaultTarget.length === 0 && map.size === 0) throw new UsageError("no target bus: give -i vcan0 and/or --map can0=vcan0");
  const filters = filtersOption(opts.filter);
  // Open the trace first: a missing file or unknown extension is reported before any bus is touched.
  openTraceReader(file);
  const specs = [...new Set([...defaultTarget, ...map.values()])];
  const buses = await openBuses(specs, { transmitOnly: true });
  const bySpec = new Map<string, Bus>(specs.map((s, i) => [s, buses[i]]));
  const defaults = defaultTarget.map((s) => bySpec.get(s) as Bus);
  const routes = new Map<string, Bus[]>([...map].map(([src, dst]) => [src, [bySpec.get(dst) as Bus]]));
  let unrouted = 0;
  let filtered = 0;
  let skipped = 0;
  const send = async (f: Frame) => {
    if (!acceptFrame(filters, f)) {
      filtered++;
      return;
    }
    const targets = (f.bus !== undefined && routes.get(f.bus)) || defaults;
    if (targets.length === 0) {
      unrouted++;
      return;
    }
    for (const bus of targets) await bus.send(f);
  };

  const showProgress = opts.progress ?? process.stderr.isTTY === true;
  const total = showProgress ? (await countFrames(file)) * Math.max(opts.loop, 1) : 0;
  // cli-progress is loaded only when a bar is shown (it is not needed in scripts and CI).
  const cliProgress = showProgress ? await import("cli-progress") : undefined;
  const bar = cliProgress
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: "replay [{bar}] {percentage}% | {value}/{total} frames | {eta_formatted} left", etaBuffer: 200 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(opts.loop === 0 ? 0 : total, 0);
  const { signal, dispose } = interruptSignal();
  let summary: ReplaySummary;
  try {
    summary = await replayFrames(
      () => readAhead(file, { onBadLine: () => skipped++ }),
      {
        clock: new MonotonicClock(),
        send,
        speed: opts.speed,
        loops: opts.loop,
        timing: opts.timing,
        signal,
        onProgress: bar ? (n) => bar.update(n) : undefined,
      },
    );
  } finally {
    bar?.stop();
    dispose();
    const retries = buses.reduce((n, b) => n + (b.counters().txRetries ?? 0), 0);
    await Promise.all(buses.map((b) => b.close()));
    if (retries > 0) log.info(`replay: ${retries} send retries on a full TX queue`);
  }
  log.info(formatSummary(summary));
  const notes: string[] = [];
  if (skipped) notes.push(`${skipped / Math.max(summary.loops, 1)} bad trace lines skipped per loop`);
  if (filtered) notes.push(`${filtered} frames filtered out`);
  if (unrouted) notes.push(`${unrouted} frames not sent: their channel has no --map entry and no -i was given`);
  if (notes.length) log.info(`replay: ${notes.join("; ")}`);
  return summary;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerReplay(program: Command): void {
  program
    .command("replay")
    .description("play a trace file onto CAN buses with its original timing (monotonic, drift-free schedule)")
    .argument("<file>", "trace file (.log .asc .blf .trc .mf4 .jsonl, optionally .gz)")
    .option("-i, --interface <list>", "bus(es) for frames whose channel has no --map entry: can0, vcan0, virtual:name")
    .option("--speed <x>", "time scale: 2 plays twice as fast, 0.5 at half speed", positiveNumber("--speed"), 1)
    .option("--loop <n>", "play the trace n times (0 = until Ctrl-C)", nonNegativeInteger("--loop"), 1)
    .option("--map <src=dst>", "send frames recorded on channel src to bus dst (repeatable, or comma-separated)", collect, [])
    .option("--filter <list>", "only frames these filters accept (candump syntax: 123:7FF,200~700)")
    .option("--no-timing", "ignore timestamps: send as fast as the bus takes frames")
    .option("--no-progress", "no progress bar even on a terminal")
    .addHelpText(
      "after",
      `
Examples:
  vgw replay drive.log -i vcan0                       original timing onto vcan0
  vgw replay drive.asc --map 1=can0,2=can1             ASC channels 1 and 2 onto two interfaces
  vgw replay drive.blf -i can0 --speed 10 --loop 3     ten times faster, three times over
  vgw replay drive.log -i vcan0 --filter 100:700 --no-timing
The summary (stderr) reports late frames (>1 ms), lateness p50/p99/max and the drift of the last frame.`,
    )
    .action(async (file: string, opts: ReplayCliOptions) => {
      await replay(file, opts);
    });
}
