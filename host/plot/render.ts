/**
 * Draws a figure (panes of signals over a shared time axis) as one SVG: legend and units per pane, value-table
 * signals as steps labelled with their table's text, and every series reduced to at most four points per pixel column
 * first (downsample.ts), so the file stays small whatever the trace's length. The SVG uses presentation attributes
 * only (no CSS, no script), so a browser, an image viewer and the PNG rasteriser (png.ts) all draw it the same.
 *
 * Written by hand rather than with a charting library: the libraries kept on npm (uPlot, Chart.js, Plotly) draw in a
 * browser with a script, which a self-contained file, a PNG and a file written from the command line cannot run.
 */
import type { ValueTable } from "../../can-db/model";
import { downsample, type Reduced } from "./downsample";
import type { Samples } from "./series";

/** One signal in a pane. */
export interface PlotTrace {
  /** `Message.Signal`. */
  label: string;
  unit: string;
  /** Hold each value until the next sample (value-table signals); otherwise points are joined by straight lines. */
  step: boolean;
  /** Labels by raw value: the samples are raw values and the axis shows the labels. */
  choices?: ValueTable;
  samples: Samples;
}

export interface PlotPane {
  title: string;
  traces: PlotTrace[];
}

export interface Figure {
  title: string;
  /** A line under the title: the source, the time origin. */
  subtitle: string;
  xLabel: string;
  /** The time axis shows `t - origin`. */
  origin: number;
  /** The axis range, in sample time. */
  x0: number;
  x1: number;
  /** Where held values end (the last frame read, or now on a live bus): step traces extend to it. */
  end: number;
  panes: PlotPane[];
  /** Pixels; defaults 1200 wide, 200 high per pane's plot area. */
  width?: number;
  paneHeight?: number;
}

/** Where a trace was drawn, for tests and the summary line. */
export interface TraceLayout {
  label: string;
  color: string;
  /** Samples in range, and the points drawn for them. */
  samples: number;
  points: number;
  reduced: boolean;
}

/** A pane's plot area in SVG pixels and its value range: y = top + (yMax - v) / (yMax - yMin) * height. */
export interface PaneLayout {
  title: string;
  left: number;
  top: number;
  width: number;
  height: number;
  yMin: number;
  yMax: number;
  traces: TraceLayout[];
}

export interface Rendered {
  svg: string;
  width: number;
  height: number;
  /** The time axis: sample time x0 is at each pane's left edge, x1 at its right. */
  x0: number;
  x1: number;
  panes: PaneLayout[];
}

/** Series colours (matplotlib's first six, as in the HIL report); tests look for these exact pixels. */
export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const TICK_FONT = 11;
/** Average glyph width of the tick font, for laying out text without measuring it. */
const CHAR_W = 6.6;
const LEGEND_ROW = 20;
const BELOW_PANE = 22;
const RIGHT = 16;
const HEADER = 52;
/** At most this many plateau labels per trace (more would be unreadable anyway). */
const MAX_STEP_LABELS = 300;

export function escapeXml(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex -- control characters are not allowed in XML at all
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "?")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
  );
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, n = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(6)));
}

const thousands = (n: number) => n.toLocaleString("en-US");

interface PreparedTrace {
  trace: PlotTrace;
  color: string;
  reduced: Reduced;
}

interface PreparedPane {
  pane: PlotPane;
  traces: PreparedTrace[];
  yMin: number;
  yMax: number;
  /** Tick positions and their text. */
  ticks: Array<[number, string]>;
}

export function renderSvg(fig: Figure): Rendered {
  const W = fig.width ?? 1200;
  const PH = fig.paneHeight ?? 200;
  const x0 = fig.x0;
  const x1 = fig.x1 > fig.x0 ? fig.x1 : fig.x0 + 1;
  // Tick text decides the left margin, and the margin the plot's width in pixel columns, the unit of reduction.
  const panes = fig.panes.map((pane) => preparePane(pane, x0, x1));
  const longest = Math.max(4, ...panes.flatMap((p) => p.ticks.map(([, text]) => text.length)));
  const L = Math.round(Math.min(240, Math.max(64, 30 + longest * CHAR_W)));
  const PW = Math.max(50, W - L - RIGHT);
  for (const p of panes) reduceTraces(p, x0, x1, PW);
  const H = HEADER + panes.length * (LEGEND_ROW + PH + BELOW_PANE) + 36;
  const px = (t: number) => L + ((t - x0) / (x1 - x0)) * PW;
  const out: string[] = [];
  const layouts: PaneLayout[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" font-size="${TICK_FONT}">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${L}" y="22" font-size="16" font-weight="bold" fill="#222222">${escapeXml(fig.title)}</text>`,
    `<text x="${L}" y="40" fill="#555555">${escapeXml(fig.subtitle)}</text>`,
  );
  const xTicks = niceTicks(x0 - fig.origin, x1 - fig.origin, Math.max(3, Math.round(PW / 110)));
  let totalSamples = 0;
  let anyReduced = false;
  panes.forEach((p, n) => {
    const top = HEADER + n * (LEGEND_ROW + PH + BELOW_PANE) + LEGEND_ROW;
    const bottom = top + PH;
    const py = (v: number) => top + ((p.yMax - v) / (p.yMax - p.yMin)) * PH;
    out.push(`<g>`);
    // Grid and ticks.
    for (const xt of xTicks) {
      const x = px(xt + fig.origin).toFixed(1);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#e4e4e4" stroke-width="1"/>`);
      out.push(`<text x="${x}" y="${bottom + 14}" text-anchor="middle" fill="#333333">${fmt(xt)}</text>`);
    }
    for (const [v, text] of p.ticks) {
      const y = py(v).toFixed(1);
      out.push(`<line x1="${L}" y1="${y}" x2="${L + PW}" y2="${y}" stroke="#e4e4e4" stroke-width="1"/>`);
      out.push(`<text x="${L - 5}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end" fill="#333333">${escapeXml(text)}</text>`);
    }
    out.push(`<rect x="${L}" y="${top}" width="${PW}" height="${PH}" fill="none" stroke="#888888" stroke-width="1"/>`);
    // The axis name: the pane's units.
    const units = [...new Set(p.traces.map((t) => t.trace.unit).filter((u) => u !== ""))];
    if (units.length > 0) {
      const cy = top + PH / 2;
      out.push(`<text x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})" fill="#333333">${escapeXml(units.join(", "))}</text>`);
    }
    // Legend row above the plot area: colour, name, unit; then how much was reduced.
    let lx = L;
    const legendY = top - 6;
    const traceLayouts: TraceLayout[] = [];
    let samples = 0;
    let points = 0;
    for (const pt of p.traces) {
      const name = pt.trace.unit ? `${pt.trace.label} [${pt.trace.unit}]` : pt.trace.label;
      out.push(`<line x1="${lx}" y1="${legendY - 4}" x2="${lx + 16}" y2="${legendY - 4}" stroke="${pt.color}" stroke-width="3"/>`);
      out.push(`<text x="${lx + 20}" y="${legendY}" fill="#222222">${escapeXml(name)}</text>`);
      lx += 20 + name.length * CHAR_W + 16;
      // Samples folded while reading (series.ts, bounded memory) were in range too: they count as drawn from.
      const from = pt.reduced.input + pt.trace.samples.folded;
      const reduced = pt.reduced.reduced || pt.trace.samples.folded > 0;
      samples += from;
      points += pt.reduced.t.length;
      traceLayouts.push({ label: pt.trace.label, color: pt.color, samples: from, points: pt.reduced.t.length, reduced });
    }
    totalSamples += samples;
    if (traceLayouts.some((t) => t.reduced)) {
      anyReduced = true;
      out.push(`<text x="${L + PW}" y="${legendY}" text-anchor="end" fill="#777777">${thousands(samples)} samples drawn as ${thousands(points)} points (min/max per pixel column)</text>`);
    }
    if (p.traces.every((t) => t.reduced.t.length === 0)) {
      out.push(`<text x="${L + PW / 2}" y="${top + PH / 2}" text-anchor="middle" fill="#999999">no samples in this time range</text>`);
    }
    // The series, clipped to the plot area.
    out.push(`<clipPath id="pane${n}"><rect x="${L}" y="${top}" width="${PW}" height="${PH}"/></clipPath><g clip-path="url(#pane${n})">`);
    for (const pt of p.traces) out.push(traceSvg(pt, px, py, Math.min(fig.end, x1)));
    out.push(`</g>`);
    for (const pt of p.traces) if (pt.trace.choices && pt.trace.step) out.push(stepLabels(pt, px, py, Math.min(fig.end, x1), L, L + PW, top));
    out.push(`</g>`);
    layouts.push({ title: p.pane.title, left: L, top, width: PW, height: PH, yMin: p.yMin, yMax: p.yMax, traces: traceLayouts });
  });
  const lastBottom = HEADER + panes.length * (LEGEND_ROW + PH + BELOW_PANE);
  out.push(`<text x="${L + PW / 2}" y="${lastBottom + 4}" text-anchor="middle" fill="#333333">${escapeXml(fig.xLabel)}</text>`);
  const note = anyReduced
    ? `${thousands(totalSamples)} samples; series longer than the plot is wide are drawn from the first, smallest, largest and last sample of each pixel column (extremes exact)`
    : `${thousands(totalSamples)} samples, every one drawn`;
  out.push(`<text x="${L}" y="${lastBottom + 24}" fill="#777777">${escapeXml(note)}</text>`);
  out.push(`</svg>`);
  return { svg: out.join("\n"), width: W, height: H, x0, x1, panes: layouts };
}

/** The pane's value range (the samples inside the time range, and the value a step trace holds when it starts) and ticks. */
function preparePane(pane: PlotPane, x0: number, x1: number): PreparedPane {
  let lo = Infinity;
  let hi = -Infinity;
  for (const trace of pane.traces) {
    const { t, v, start, end } = trace.samples;
    for (let i = start; i < end; i++) {
      const inside = t[i] >= x0 && t[i] <= x1;
      const heldIn = trace.step && t[i] < x0 && (i + 1 === end || t[i + 1] > x0);
      if (!inside && !heldIn) continue;
      if (v[i] < lo) lo = v[i];
      if (v[i] > hi) hi = v[i];
    }
  }
  const enumerated = pane.traces.length > 0 && pane.traces.every((t) => t.choices !== undefined);
  if (lo === Infinity) {
    lo = 0;
    hi = 1;
  }
  const span = hi - lo;
  const pad = enumerated ? Math.max(0.5, span * 0.08) : span > 0 ? span * 0.06 : Math.max(1, Math.abs(hi) * 0.1);
  const yMin = lo - pad;
  const yMax = hi + pad;
  let ticks: Array<[number, string]>;
  if (enumerated) {
    // The labels of every value the tables name inside the range (raw values); thinned when there are too many.
    const labels = new Map<number, string>();
    for (const trace of pane.traces) for (const [raw, text] of trace.choices ?? []) if (raw >= yMin && raw <= yMax && !labels.has(raw)) labels.set(raw, text);
    const keys = [...labels.keys()].sort((a, b) => a - b);
    const every = Math.ceil(keys.length / 12);
    ticks = keys.filter((_, i) => i % every === 0).map((k) => [k, `${labels.get(k)} (${k})`]);
  } else {
    ticks = niceTicks(yMin, yMax, 5).map((v) => [v, fmt(v)]);
  }
  return { pane, traces: [], yMin, yMax, ticks };
}

/** Each trace of the pane reduced to `columns` pixel columns. */
function reduceTraces(p: PreparedPane, x0: number, x1: number, columns: number): void {
  p.traces = p.pane.traces.map((trace, i) => {
    const s = trace.samples;
    return { trace, color: PALETTE[i % PALETTE.length], reduced: downsample(s.t, s.v, s.start, s.end, x0, x1, columns) };
  });
}

/** Series are 2 px wide: any 2 px band fully covers at least one pixel row, so the exact colour is always on screen. */
function traceSvg(pt: PreparedTrace, px: (t: number) => number, py: (v: number) => number, end: number): string {
  const { t, v } = pt.reduced;
  if (t.length === 0) return "";
  const parts: string[] = [];
  if (pt.trace.step) {
    parts.push(`M${px(t[0]).toFixed(1)} ${py(v[0]).toFixed(1)}`);
    for (let i = 1; i < t.length; i++) parts.push(`H${px(t[i]).toFixed(1)}V${py(v[i]).toFixed(1)}`);
    if (end > t[t.length - 1]) parts.push(`H${px(end).toFixed(1)}`);
  } else {
    if (t.length === 1) return `<circle cx="${px(t[0]).toFixed(1)}" cy="${py(v[0]).toFixed(1)}" r="2.5" fill="${pt.color}"/>`;
    parts.push(`M${px(t[0]).toFixed(1)} ${py(v[0]).toFixed(1)}`);
    for (let i = 1; i < t.length; i++) parts.push(`L${px(t[i]).toFixed(1)} ${py(v[i]).toFixed(1)}`);
  }
  return `<path d="${parts.join("")}" fill="none" stroke="${pt.color}" stroke-width="2" stroke-linejoin="round"/>`;
}

/** The value table's text on each plateau wide enough to hold it, just above the line. */
function stepLabels(pt: PreparedTrace, px: (t: number) => number, py: (v: number) => number, end: number, left: number, right: number, top: number): string {
  const { t, v } = pt.reduced;
  const out: string[] = [];
  let i = 0;
  while (i < t.length && out.length < MAX_STEP_LABELS) {
    let j = i + 1;
    while (j < t.length && v[j] === v[i]) j++;
    const from = Math.max(left, px(t[i]));
    const to = Math.min(right, px(j < t.length ? t[j] : Math.max(end, t[t.length - 1])));
    const text = pt.trace.choices?.get(v[i]);
    if (text !== undefined && to - from >= text.length * CHAR_W + 8) {
      const y = Math.max(top + 12, py(v[i]) - 4);
      out.push(`<text x="${(from + 4).toFixed(1)}" y="${y.toFixed(1)}" fill="${pt.color}">${escapeXml(text)}</text>`);
    }
    i = j;
  }
  return out.join("\n");
}

/** A self-contained page around the SVG: no script, nothing fetched; `refreshSeconds` makes a browser reload it (live mode). */
export function htmlPage(r: Rendered, title: string, refreshSeconds?: number): string {
  const refresh = refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">\n` : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
${refresh}<title>${escapeXml(title)}</title>
<style>body { margin: 0; background: #ffffff; } svg { display: block; }</style>
</head>
<body>
${r.svg}
</body>
</html>
`;
}
