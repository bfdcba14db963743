/**
 * Reports of HIL runs: JUnit XML (one testcase per expectation, for CI systems), JSON (everything, for tools), and a
 * self-contained HTML page with plots drawn as inline SVG (latency histogram, cycle times, input vs delivered signal
 * values over time, counters), readable offline and checkable in a headless browser.
 *
 * The XML and SVG are written here by hand: both are a few dozen lines of escaping and coordinates, where a library
 * (junit-report-builder, uPlot) would add a dependency and, for uPlot, a script the page must run before it shows.
 */
import type { CheckResult } from "./checks";
import { niceTicks } from "../host/plot/render";

export interface Series {
  name: string;
  /** [x, y] points, x in seconds since the run started. */
  points: Array<[number, number]>;
}

export interface Plot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** `step` holds each value until the next (sampled signals, counters); `points` draws dots. */
  style: "line" | "step" | "points";
}

export interface Histogram {
  title: string;
  xLabel: string;
  /** Bin lower edges and counts; the last bin is open-ended. */
  edges: number[];
  counts: number[];
}

export interface ScenarioReport {
  name: string;
  file: string;
  description: string;
  target: string;
  startedAt: string;
  durationMs: number;
  pass: boolean;
  /** A run that could not be carried out (setup failed): every expectation counts as failed. */
  error?: string;
  results: CheckResult[];
  /** Headline figures: frames, latency, the harness's own timing error, proxy and broker counters. */
  metrics: Record<string, number>;
  histograms: Histogram[];
  plots: Plot[];
}

export function escapeXml(s: string): string {
  // Control characters other than tab/newline are not allowed in XML 1.0 at all: replace them.
  return s
    // eslint-disable-next-line no-control-regex -- matching control characters is the point here
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "?")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

export function junitXml(reports: ScenarioReport[]): string {
  const tests = reports.reduce((n, r) => n + Math.max(1, r.results.length), 0);
  const failures = reports.reduce((n, r) => n + (r.error ? Math.max(1, r.results.length) : r.results.filter((x) => !x.pass).length), 0);
  const time = reports.reduce((t, r) => t + r.durationMs, 0) / 1000;
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="vgw hil" tests="${tests}" failures="${failures}" time="${time.toFixed(3)}">`];
  for (const r of reports) {
    const cases = r.results.length;
    const failed = r.error ? Math.max(1, cases) : r.results.filter((x) => !x.pass).length;
    out.push(
      `  <testsuite name="${escapeXml(r.name)}" tests="${Math.max(1, cases)}" failures="${failed}" errors="0" time="${(r.durationMs / 1000).toFixed(3)}" timestamp="${escapeXml(r.startedAt)}" file="${escapeXml(r.file)}">`,
    );
    out.push(`    <properties><property name="target" value="${escapeXml(r.target)}"/></properties>`);
    const classname = `hil.${r.name.replace(/[^A-Za-z0-9_-]+/g, "_")}`;
    if (r.error && cases === 0) {
      out.push(`    <testcase classname="${classname}" name="run" time="0"><failure message="${escapeXml(r.error)}" type="run-error">${escapeXml(r.error)}</failure></testcase>`);
    }
    for (const c of r.results) {
      out.push(`    <testcase classname="${classname}" name="${escapeXml(c.name)}" file="${escapeXml(c.origin.file)}" line="${c.origin.line}" time="0">`);
      if (r.error) out.push(`      <failure message="${escapeXml(r.error)}" type="run-error">${escapeXml(r.error)}</failure>`);
      else if (!c.pass) out.push(`      <failure message="${escapeXml(c.message)}" type="${c.kind}">${escapeXml([c.message, ...c.details].join("\n"))}</failure>`);
      else out.push(`      <system-out>${escapeXml(c.message)}</system-out>`);
      out.push(`    </testcase>`);
    }
    out.push(`  </testsuite>`);
  }
  out.push(`</testsuites>`, "");
  return out.join("\n");
}

export function jsonReport(reports: ScenarioReport[]): string {
  return JSON.stringify({ pass: reports.every((r) => r.pass), scenarios: reports }, null, 2) + "\n";
}

// ---- HTML -------------------------------------------------------------------------------------------------------

/** Series colours; a test looks for these exact pixels in a screenshot to know the plots rendered. */
export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const W = 640;
const H = 240;
const M = { l: 60, r: 14, t: 26, b: 40 };
/** A plot with more points than this is thinned (every n-th point) so the page stays small. */
const MAX_POINTS = 4000;

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function frame(title: string, xLabel: string, yLabel: string, xr: [number, number], yr: [number, number], body: string): string {
  const px = (x: number) => M.l + ((x - xr[0]) / (xr[1] - xr[0] || 1)) * (W - M.l - M.r);
  const py = (y: number) => H - M.b - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * (H - M.t - M.b);
  const grid: string[] = [];
  for (const t of niceTicks(xr[0], xr[1], 5)) {
    grid.push(`<line x1="${px(t)}" y1="${M.t}" x2="${px(t)}" y2="${H - M.b}" class="g"/><text x="${px(t)}" y="${H - M.b + 14}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(yr[0], yr[1], 5)) {
    grid.push(`<line x1="${M.l}" y1="${py(t)}" x2="${W - M.r}" y2="${py(t)}" class="g"/><text x="${M.l - 4}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  return (
    `<svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(title)}">` +
    `<text x="${W / 2}" y="16" text-anchor="middle" class="title">${escapeXml(title)}</text>${grid.join("")}` +
    `<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" class="frame"/>` +
    `<text x="${(M.l + W - M.r) / 2}" y="${H - 6}" text-anchor="middle">${escapeXml(xLabel)}</text>` +
    `<text x="12" y="${(M.t + H - M.b) / 2}" text-anchor="middle" transform="rotate(-90 12 ${(M.t + H - M.b) / 2})">${escapeXml(yLabel)}</text>` +
    body.replace(/X\(([-\d.e]+)\)/g, (_, x) => px(Number(x)).toFixed(1)).replace(/Y\(([-\d.e]+)\)/g, (_, y) => py(Number(y)).toFixed(1)) +
    `</svg>`
  );
}

export function histogramSvg(h: Histogram): string {
  const n = h.counts.length;
  const top = Math.max(1, ...h.counts);
  const xr: [number, number] = [h.edges[0], h.edges[n - 1] + (n > 1 ? h.edges[n - 1] - h.edges[n - 2] : 1)];
  const bars = h.counts
    .map((c, i) => {
      if (c === 0) return "";
      const x0 = h.edges[i];
      const x1 = i + 1 < n ? h.edges[i + 1] : xr[1];
      return `<rect x="X(${x0})" y="Y(${c})" width="${((x1 - x0) / (xr[1] - xr[0])) * (W - M.l - M.r)}" height="${(c / top) * (H - M.t - M.b)}" fill="${PALETTE[0]}"/>`;
    })
    .join("");
  return frame(h.title, h.xLabel, "frames", xr, [0, top], bars);
}

export function plotSvg(p: Plot): string {
  const all = p.series.flatMap((s) => s.points);
  if (all.length === 0) return frame(p.title, p.xLabel, p.yLabel, [0, 1], [0, 1], `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`);
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  for (const [x, y] of all) {
    if (x < xlo) xlo = x;
    if (x > xhi) xhi = x;
    if (y < ylo) ylo = y;
    if (y > yhi) yhi = y;
  }
  if (yhi === ylo) {
    yhi += 1;
    ylo -= 1;
  }
  const pad = (yhi - ylo) * 0.05;
  const body: string[] = [];
  p.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length];
    const stride = Math.max(1, Math.ceil(s.points.length / MAX_POINTS));
    const pts = s.points.filter((_, i) => i % stride === 0 || i === s.points.length - 1);
    if (p.style === "points") {
      body.push(pts.map(([x, y]) => `<circle cx="X(${x})" cy="Y(${y})" r="2" fill="${color}"/>`).join(""));
    } else {
      const coords: string[] = [];
      pts.forEach(([x, y], i) => {
        if (p.style === "step" && i > 0) coords.push(`X(${x}),Y(${pts[i - 1][1]})`);
        coords.push(`X(${x}),Y(${y})`);
      });
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="${si === 0 ? 3 : 1.5}" points="${coords.join(" ")}"/>`);
    }
    body.push(`<rect x="${M.l + 8}" y="${M.t + 6 + si * 14}" width="10" height="10" fill="${color}"/><text x="${M.l + 22}" y="${M.t + 15 + si * 14}">${escapeXml(s.name)}</text>`);
  });
  return frame(p.title, p.xLabel, p.yLabel, [xlo, xhi], [ylo - pad, yhi + pad], body.join(""));
}

const CSS = `body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.pass{background:#d8f5d8}.fail{background:#ffd6d6}.verdict{font-weight:bold}
svg.plot{margin:8px 16px 8px 0;background:#fafafa}svg text{font:11px system-ui,sans-serif;fill:#333}svg .title{font-size:13px;font-weight:bold}
svg .g{stroke:#e4e4e4}svg .frame{fill:none;stroke:#999}pre{white-space:pre-wrap;margin:0;font-size:12px}`;

function metricsTable(m: Record<string, number>): string {
  const rows = Object.entries(m).map(([k, v]) => `<tr><th>${escapeXml(k)}</th><td>${Number.isInteger(v) ? v : v.toFixed(3)}</td></tr>`);
  return `<table class="metrics">${rows.join("")}</table>`;
}

export function htmlReport(reports: ScenarioReport[]): string {
  const pass = reports.every((r) => r.pass);
  const total = reports.reduce((n, r) => n + r.results.length, 0);
  const failed = reports.reduce((n, r) => n + r.results.filter((x) => !x.pass).length, 0);
  const parts: string[] = [
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>vgw hil report</title><style>${CSS}</style></head><body>`,
    `<h1>vgw hil: <span id="verdict" class="verdict ${pass ? "pass" : "fail"}">${pass ? "PASS" : "FAIL"}</span></h1>`,
    `<p>${reports.length} scenario(s), ${total} expectation(s), ${failed} failed.</p>`,
  ];
  for (const r of reports) {
    parts.push(`<section class="scenario" data-pass="${r.pass}"><h2>${escapeXml(r.name)} <span class="verdict ${r.pass ? "pass" : "fail"}">${r.pass ? "PASS" : "FAIL"}</span></h2>`);
    parts.push(`<p>${escapeXml(r.description)}</p><p>file <code>${escapeXml(r.file)}</code>, target <b>${escapeXml(r.target)}</b>, started ${escapeXml(r.startedAt)}, ${(r.durationMs / 1000).toFixed(1)} s</p>`);
    if (r.error) parts.push(`<p class="fail">run error: ${escapeXml(r.error)}</p>`);
    parts.push(`<table class="results"><tr><th>expectation</th><th>line</th><th>verdict</th><th>message</th></tr>`);
    for (const c of r.results) {
      parts.push(
        `<tr class="${c.pass ? "pass" : "fail"}"><td>${escapeXml(c.name)}</td><td>${c.origin.line}</td><td>${c.pass ? "pass" : "FAIL"}</td>` +
          `<td><pre>${escapeXml([c.message, ...(c.pass ? [] : c.details)].join("\n"))}</pre></td></tr>`,
      );
    }
    parts.push(`</table>`, metricsTable(r.metrics), `<div class="plots">`);
    for (const h of r.histograms) parts.push(histogramSvg(h));
    for (const p of r.plots) parts.push(plotSvg(p));
    parts.push(`</div></section>`);
  }
  parts.push(`</body></html>`, "");
  return parts.join("\n");
}

/** Bins latencies (ms) into about `bins` equal bins from 0 to the p99.9 (the last bin collects the rest). */
export function latencyHistogram(sortedMs: number[], bins = 30): Histogram {
  const hi = sortedMs.length ? sortedMs[Math.min(sortedMs.length - 1, Math.floor(sortedMs.length * 0.999))] : 1;
  const width = Math.max(hi / bins, 0.01);
  const edges = Array.from({ length: bins + 1 }, (_, i) => i * width);
  const counts = new Array<number>(bins + 1).fill(0);
  for (const v of sortedMs) counts[Math.min(bins, Math.max(0, Math.floor(v / width)))]++;
  return { title: "latency: CAN in -> broker", xLabel: "ms", edges, counts };
}
