/**
 * `vgw plot --dbc FILE TRACE 'Message.Signal*'... [-o out.html|out.svg|out.png]`: signals over time from a trace,
 * decoded with the DBC, drawn as a self-contained HTML page (inline SVG, no script), an SVG or a PNG.
 * `vgw plot --live -i BUS --dbc FILE 'pattern'... -o live.html`: the last N seconds of a bus, the file rewritten every
 * --refresh seconds (the HTML reloads itself in a browser) until Ctrl-C or --duration.
 *
 * The flow: patterns -> signals (host/plot/select.ts), frames -> series (series.ts), series -> figure (figure.ts,
 * live.ts) -> SVG (render.ts, reduced per pixel column) -> file (output.ts, png.ts).
 */
import { Option, type Command } from "commander";
import { UsageError } from "../../frame/errors";
import { loadDbcFile } from "../../can-db/load";
import { openTraceReader } from "../../host/trace";
import { Capture, dropsText, totalDropped } from "../../host/bus/capture";
import { wallClockSeconds } from "../../host/replay/clock";
import { log } from "../../host/log";
import { selectSignals, type PatternMatch } from "../../host/plot/select";
import { SeriesExtractor, type TimeBound } from "../../host/plot/series";
import { PANE_MODES, traceFigure, type PaneMode } from "../../host/plot/figure";
import { LiveWindow } from "../../host/plot/live";
import { plotBytes, plotFormat, replaceFile } from "../../host/plot/output";
import type { Rendered } from "../../host/plot/render";
import { interruptSignal, parseInterfaces, positiveNumber } from "../options";
import { writeStdout } from "../stdout";
import { announceStdin, noFramesHint, stopReason } from "../trace-input";

export interface PlotOptions {
  dbc: string;
  output: string;
  from?: string;
  to?: string;
  pane: PaneMode;
  caseSensitive?: boolean;
  width: number;
  height: number;
  inputFormat?: string;
  live?: boolean;
  interface?: string;
  window: number;
  refresh: number;
  duration?: number;
}

/** `--from`/`--to`: seconds since the first frame (`12.5`), or an absolute time (ISO 8601, e.g. 2026-01-01T10:00:00Z). */
export function parseTimeBound(text: string, name: string): TimeBound {
  if (/^[-+]?\d+(\.\d*)?$/.test(text.trim())) return { seconds: Number(text), absolute: false };
  const ms = /^\d{4}-\d\d-\d\d/.test(text.trim()) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new UsageError(`${name} '${text}' is neither seconds since the first frame (e.g. 12.5) nor an ISO 8601 time (e.g. 2026-01-01T10:00:00Z)`);
  return { seconds: ms / 1000, absolute: true };
}

function timeRange(opts: PlotOptions): { from?: TimeBound; to?: TimeBound } {
  const from = opts.from === undefined ? undefined : parseTimeBound(opts.from, "--from");
  const to = opts.to === undefined ? undefined : parseTimeBound(opts.to, "--to");
  if (from && to && from.absolute === to.absolute && to.seconds <= from.seconds) throw new UsageError(`--to (${opts.to}) must be later than --from (${opts.from})`);
  return { from, to };
}

async function write(output: string, bytes: Buffer): Promise<boolean> {
  if (output === "-") return writeStdout(bytes);
  await replaceFile(output, bytes);
  return true;
}

function drawnText(r: Rendered): string {
  const traces = r.panes.flatMap((p) => p.traces);
  const samples = traces.reduce((n, t) => n + t.samples, 0);
  const points = traces.reduce((n, t) => n + t.points, 0);
  return `${r.panes.length} pane(s), ${traces.length} series, ${samples} samples drawn as ${points} points`;
}

/** Warns about every selected signal that never appeared: its message was not on the bus, or not in the range. */
function warnEmpty(matches: PatternMatch[], r: Rendered): void {
  const empty = new Set(r.panes.flatMap((p) => p.traces.filter((t) => t.samples === 0).map((t) => t.label)));
  for (const key of empty) {
    const m = matches.flatMap((x) => x.signals).find((s) => s.key === key);
    log.warn(`warning: no samples of ${key}${m ? ` (message ${m.message.name}, ID 0x${m.message.id.toString(16).toUpperCase()})` : ""} in the input or time range`);
  }
}

export async function plotTrace(trace: string, patterns: string[], opts: PlotOptions): Promise<Rendered> {
  const format = plotFormat(opts.output);
  const range = timeRange(opts);
  const db = loadDbcFile(opts.dbc);
  const matches = selectSignals(db, patterns, { caseSensitive: opts.caseSensitive });
  const extractor = new SeriesExtractor(
    db,
    matches.flatMap((m) => m.signals),
    range,
  );
  const interrupt = interruptSignal();
  try {
    const reader = openTraceReader(trace, { format: opts.inputFormat, signal: interrupt.signal });
    announceStdin(trace, reader.format.name);
    for await (const batch of reader) extractor.add(batch);
    extractor.finish();
    const [from, to] = extractor.range;
    if (extractor.first !== undefined && extractor.last !== undefined && (from > extractor.last || to < extractor.first)) {
      const span = extractor.indexTime ? `frames 0 to ${extractor.last}` : `${new Date(extractor.first * 1000).toISOString()} to ${new Date(extractor.last * 1000).toISOString()} (${(extractor.last - extractor.first).toFixed(3)} s)`;
      log.warn(`warning: the time range is outside the input, which spans ${span}`);
    }
    if (extractor.counts.frames === 0 && reader.skipped > 0 && !reader.format.binary) log.warn(noFramesHint(reader));
    const fig = traceFigure(matches, extractor, opts.pane, { source: trace === "-" ? "stdin" : trace, width: opts.width, paneHeight: opts.height });
    const { bytes, rendered } = await plotBytes(fig, format);
    const written = await write(opts.output, bytes);
    warnEmpty(matches, rendered);
    const c = extractor.counts;
    const parts = [`${c.frames} frames`, `${c.used} of plotted messages in range`];
    if (c.outOfRange) parts.push(`${c.outOfRange} outside the time range`);
    if (c.noData) parts.push(`${c.noData} error or remote frames`);
    if (c.infinite) parts.push(`${c.infinite} infinite values left out`);
    if (reader.skipped) parts.push(`${reader.skipped} bad lines skipped`);
    const where = opts.output === "-" ? "stdout" : opts.output;
    log.info(`plot: ${parts.join(", ")}; ${drawnText(rendered)}; ${written ? `wrote ${where} (${bytes.length} bytes)` : "output closed"}${stopReason(interrupt.signal, !written)}`);
    return rendered;
  } finally {
    interrupt.dispose();
  }
}

/**
 * The live plot: receives from the buses, and every `refresh` seconds redraws the last `window` seconds into the
 * output file. Ends on Ctrl-C/SIGTERM, after `duration` seconds, or when `stop` fires (tests); the last drawing is
 * written then too.
 */
export async function plotLive(patterns: string[], opts: PlotOptions, stop?: AbortSignal, now: () => number = wallClockSeconds): Promise<LiveWindow> {
  const format = plotFormat(opts.output);
  if (opts.output === "-") throw new UsageError("--live rewrites a file: give one with -o (e.g. -o live.html, then open it in a browser)");
  if (opts.from !== undefined || opts.to !== undefined) throw new UsageError("--from/--to are for traces; --live shows the last --window seconds");
  const interfaces = parseInterfaces(opts.interface);
  const db = loadDbcFile(opts.dbc);
  const matches = selectSignals(db, patterns, { caseSensitive: opts.caseSensitive });
  const live = new LiveWindow(db, matches, opts.pane, { windowSeconds: opts.window, source: interfaces.join(","), width: opts.width, paneHeight: opts.height });
  const capture = await Capture.open(interfaces, { command: "plot" });
  const interrupt = interruptSignal(opts.duration, stop);
  capture.stopOn(interrupt.signal);
  let drawing = Promise.resolve();
  let draws = 0;
  const draw = async () => {
    const { bytes } = await plotBytes(live.figure(now()), format, { refreshSeconds: format === "html" ? opts.refresh : undefined });
    await replaceFile(opts.output, bytes);
    draws++;
  };
  // One drawing at a time: a slow PNG must not pile up behind the timer.
  const tick = () => {
    drawing = drawing.then(draw).catch((e) => {
      log.error(`plot: ${e instanceof Error ? e.message : String(e)}`);
      interrupt.dispose();
      capture.stop();
    });
  };
  log.info(`plot: live on ${interfaces.join(",")}, writing ${opts.output} every ${opts.refresh} s (last ${opts.window} s); Ctrl-C stops`);
  tick();
  const timer = setInterval(tick, opts.refresh * 1000);
  try {
    for await (const batch of capture.batches()) live.add(batch);
  } finally {
    clearInterval(timer);
    interrupt.dispose();
    const drops = await capture.close();
    tick();
    await drawing;
    const c = live.extractor.counts;
    log.info(`plot: ${c.frames} frames received, ${c.used} of plotted messages; ${draws} drawings of ${opts.output}${totalDropped(drops) > 0 ? `; ${dropsText(drops)}` : ""}`);
  }
  return live;
}

export function registerPlot(program: Command): void {
  program
    .command("plot")
    .description("plot signals over time from a trace (or live from a bus) as self-contained HTML, SVG or PNG")
    .argument("<inputs...>", "TRACE then signal patterns ('Message.Signal', globs); with --live only patterns")
    .requiredOption("--dbc <file>", "the CAN database (DBC)")
    .option("-o, --output <file>", "output file: .html (inline SVG, no script), .svg or .png; - writes HTML to stdout", "-")
    .option("--from <time>", "start: seconds since the first frame (12.5) or an ISO 8601 time")
    .option("--to <time>", "end: seconds since the first frame or an ISO 8601 time")
    .addOption(new Option("--pane <mode>", "panes: one per pattern, one per signal, or all signals in one").choices(PANE_MODES).default("pattern"))
    .option("--case-sensitive", "match patterns with case (default: case ignored, as cantools plot does)")
    .option("--width <px>", "image width in pixels", positiveNumber("--width"), 1200)
    .option("--height <px>", "height of each pane's plot area in pixels", positiveNumber("--height"), 200)
    .option("--input-format <format>", "trace format, overriding the extension (name or extension, e.g. asc); stdin too")
    .option("--live", "plot a bus live instead of a trace (needs -i and -o)")
    .option("-i, --interface <list>", "live: interfaces, comma-separated: can0, vcan0, virtual:name")
    .option("--window <s>", "live: seconds shown", positiveNumber("--window"), 30)
    .option("--refresh <s>", "live: seconds between redraws (and the page's reload period)", positiveNumber("--refresh"), 1)
    .option("--duration <s>", "live: stop after this many seconds", positiveNumber("--duration"))
    .addHelpText(
      "after",
      `
Patterns are globs over Message.Signal ('Engine.*', '*.Speed*'); a pattern without a dot matches signal names in
every message. Each pattern gets a pane (--pane signal: one per signal; --pane one: all together). Value-table
signals are drawn as steps by raw value, labelled with the table's text. Long traces are reduced to the first,
smallest, largest and last sample of each pixel column (the plot says so), so a million frames plot in about a second.

Examples:
  vgw plot --dbc car.dbc drive.log 'Engine.Rpm' 'Gear*' -o drive.html
  vgw plot --dbc car.dbc drive.blf '*Speed*' --from 10 --to 70 -o speed.png
  vgw plot --dbc car.dbc drive.asc 'Doors.*' --pane signal -o doors.svg
  vgw plot --live -i can0 --dbc car.dbc 'Engine.*' -o live.html --window 60    then open live.html in a browser`,
    )
    .action(async (inputs: string[], opts: PlotOptions) => {
      if (opts.live) {
        await plotLive(inputs, opts);
        return;
      }
      if (opts.interface) throw new UsageError("-i is for --live; to plot a trace give its file first");
      if (inputs.length < 2) throw new UsageError("give a trace and at least one signal pattern: vgw plot --dbc car.dbc drive.log 'Engine.*'");
      await plotTrace(inputs[0], inputs.slice(1), opts);
    });
}
