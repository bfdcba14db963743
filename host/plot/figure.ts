/**
 * From extracted series to a figure: which signals share a pane, the time axis and its origin, the titles. Shared by
 * `vgw plot` on a trace and on a live bus (live.ts).
 */
import type { PatternMatch } from "./select";
import type { SeriesExtractor, SignalSeries } from "./series";
import type { Figure, PlotPane, PlotTrace } from "./render";

/** How signals are grouped into panes: one per pattern (default), one per signal, or all in one. */
export type PaneMode = "pattern" | "signal" | "one";
export const PANE_MODES: readonly PaneMode[] = ["pattern", "signal", "one"];

export function traceOf(s: SignalSeries): PlotTrace {
  const sig = s.signal.signal;
  return {
    label: s.signal.key,
    unit: s.signal.enumerated ? "" : sig.unit,
    step: s.signal.enumerated,
    choices: s.signal.enumerated ? sig.choices : undefined,
    samples: s.samples,
  };
}

export function panesOf(matches: PatternMatch[], extractor: SeriesExtractor, mode: PaneMode): PlotPane[] {
  const trace = (key: string) => {
    const s = extractor.seriesOf(key);
    if (!s) throw new Error(`internal: no series for ${key}`);
    return traceOf(s);
  };
  if (mode === "pattern") return matches.map((m) => ({ title: m.pattern, traces: m.signals.map((s) => trace(s.key)) }));
  const keys = [...new Set(matches.flatMap((m) => m.signals.map((s) => s.key)))];
  if (mode === "signal") return keys.map((k) => ({ title: k, traces: [trace(k)] }));
  return [{ title: matches.map((m) => m.pattern).join(" "), traces: keys.map(trace) }];
}

export interface TraceFigureOptions {
  source: string;
  width?: number;
  paneHeight?: number;
}

/** The figure of a whole trace: the axis is seconds since the first frame, over the time range asked for (or all). */
export function traceFigure(matches: PatternMatch[], extractor: SeriesExtractor, mode: PaneMode, options: TraceFigureOptions): Figure {
  const first = extractor.first ?? 0;
  const last = extractor.last ?? first;
  const [from, to] = extractor.range;
  const x0 = Number.isFinite(from) ? from : first;
  const x1 = Number.isFinite(to) ? to : last;
  const start = extractor.indexTime ? "" : first > 1e8 ? `, t = 0 at ${new Date(first * 1000).toISOString()}` : "";
  return {
    title: `${options.source}: ${matches.map((m) => m.pattern).join("  ")}`,
    subtitle: `${extractor.counts.frames.toLocaleString("en-US")} frames${start}`,
    xLabel: extractor.indexTime ? "frame number (the input has no timestamps)" : "time (s) since the first frame",
    origin: extractor.indexTime ? 0 : first,
    x0,
    x1,
    end: last,
    panes: panesOf(matches, extractor, mode),
    width: options.width,
    paneHeight: options.paneHeight,
  };
}
