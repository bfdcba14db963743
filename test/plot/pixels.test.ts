/**
 * vgw plot's drawings checked by their pixels: the HTML page rendered by headless Chromium (Debian's chromium) and
 * the PNG decoded with pngjs must both show the generated square wave where it belongs: in the middle of every high
 * half the series colour sits at the high level's height (upper part of the pane), in every low half at the low
 * level's (lower part), and the value table's labels are drawn beside the axis. Then the live mode on a `virtual:`
 * bus: frames sent on the bus appear in the file it keeps rewriting.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { PNG } from "pngjs";
import { plotLive, plotTrace, type PlotOptions } from "../../cli/commands/plot";
import { PALETTE, type PaneLayout, type Rendered } from "../../host/plot/render";
import { openBus } from "../../host/bus";
import { log } from "../../host/log";
import { HALF, HIGH, LOW, squareFrame, T0, writeFixture } from "./fixture";
import { waitFor, within } from "../support/wait";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));

function options(over: Partial<PlotOptions>): PlotOptions {
  return { dbc: "", output: "-", pane: "pattern", width: 1000, height: 180, window: 30, refresh: 1, ...over };
}

interface Image {
  width: number;
  height: number;
  data: Buffer;
}

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function isColour(img: Image, x: number, y: number, c: number[], tolerance = 10): boolean {
  const i = (y * img.width + x) * 4;
  return Math.abs(img.data[i] - c[0]) <= tolerance && Math.abs(img.data[i + 1] - c[1]) <= tolerance && Math.abs(img.data[i + 2] - c[2]) <= tolerance;
}

/** Rows of column x inside the pane's plot area whose pixel has colour c. */
function rowsOf(img: Image, pane: PaneLayout, x: number, c: number[]): number[] {
  const rows: number[] = [];
  for (let y = Math.ceil(pane.top) + 1; y < pane.top + pane.height - 1; y++) if (isColour(img, x, y, c)) rows.push(y);
  return rows;
}

/** Dark (text) pixels in a box. */
function darkPixels(img: Image, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(img.height, y1); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(img.width, x1); x++) {
      const i = (y * img.width + x) * 4;
      if (img.data[i] < 120 && img.data[i + 1] < 120 && img.data[i + 2] < 120) n++;
    }
  }
  return n;
}

/**
 * The square wave where it must be, in both panes (Square.Level as a line, Square.State as labelled steps): for the
 * middle of each half second-pair, the series colour only at the expected level, in the expected half of the pane.
 */
function checkSquareWave(img: Image, r: Rendered, what: string): void {
  assert.ok(img.width >= r.width && img.height >= r.height, `${what}: image ${img.width}x${img.height}, drawing ${r.width}x${r.height}`);
  const blue = rgb(PALETTE[0]);
  const [level, state] = r.panes;
  assert.deepEqual([level.traces[0].label, state.traces[0].label], ["Square.Level", "Square.State"]);
  const px = (p: PaneLayout, s: number) => Math.round(p.left + ((T0 + s - r.x0) / (r.x1 - r.x0)) * p.width);
  const py = (p: PaneLayout, v: number) => p.top + ((p.yMax - v) / (p.yMax - p.yMin)) * p.height;
  let checked = 0;
  for (let half = 0; half * HALF + HALF / 2 < 20; half++) {
    const high = half % 2 === 1;
    const s = half * HALF + HALF / 2;
    for (const [pane, value] of [
      [level, high ? HIGH : LOW],
      [state, high ? 1 : 0],
    ] as Array<[PaneLayout, number]>) {
      const x = px(pane, s);
      const rows = rowsOf(img, pane, x, blue);
      const want = py(pane, value);
      assert.ok(rows.length > 0, `${what}: ${pane.title} at ${s} s (x=${x}): no pixel of ${PALETTE[0]}`);
      for (const y of rows) assert.ok(Math.abs(y - want) <= 2.5, `${what}: ${pane.title} at ${s} s: pixel at y=${y}, the ${high ? "high" : "low"} level is at ${want.toFixed(1)}`);
      const middle = pane.top + pane.height / 2;
      assert.ok(high ? rows[0] < middle : rows[0] > middle, `${what}: ${pane.title} at ${s} s: ${high ? "high in the upper" : "low in the lower"} part of the pane`);
      checked++;
    }
  }
  assert.equal(checked, 20);
  // The value table's labels beside the axis, at the levels they name: "On (1)" and "Off (0)".
  for (const v of [0, 1]) {
    const y = py(state, v);
    const n = darkPixels(img, state.left - 60, y - 9, state.left - 4, y + 5);
    assert.ok(n > 25, `${what}: only ${n} dark pixels where the label of ${v} must be written`);
  }
  // And nothing in the gap between the two (the labels are at the levels, not anywhere).
  const between = darkPixels(img, state.left - 60, py(state, 0.5) - 4, state.left - 4, py(state, 0.5) + 4);
  assert.equal(between, 0, `${what}: text between the two labels`);
}

describe("plot drawings, checked by their pixels", function () {
  this.timeout(120000);
  let dir: string;
  let files: { dbc: string; trace: string };
  const sink = log.sink;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-plot-pixels-"));
    files = await writeFixture(dir, 20);
    log.sink = () => undefined;
  });
  after(() => {
    log.sink = sink;
    if (!process.env.VGW_KEEP_PLOT) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the HTML page in headless Chromium shows the square wave and the value labels", async () => {
    if (!CHROMIUM) throw new Error("chromium is not installed (scripts/setup-test.sh installs it: apt-get install chromium)");
    const html = path.join(dir, "square.html");
    const r = await plotTrace(files.trace, ["Square.Level", "Square.State"], options({ dbc: files.dbc, output: html }));
    const shot = path.join(dir, "shot.png");
    const flags = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      "--force-device-scale-factor=1",
      `--user-data-dir=${path.join(dir, "profile")}`,
    ];
    const run = spawnSync(CHROMIUM, [...flags, `--window-size=${r.width},${r.height}`, `--screenshot=${shot}`, `file://${html}`], { timeout: 60000, encoding: "utf8" });
    assert.ok(fs.existsSync(shot), `no screenshot: ${run.stderr}`);
    checkSquareWave(PNG.sync.read(fs.readFileSync(shot)), r, "chromium");
    const dom = spawnSync(CHROMIUM, [...flags, "--dump-dom", `file://${html}`], { timeout: 60000, encoding: "utf8" });
    assert.match(dom.stdout, />Square\.Level \[V\]<\/text>/);
    assert.match(dom.stdout, />On \(1\)<\/text>/);
    assert.match(dom.stdout, />Off \(0\)<\/text>/);
    assert.equal((dom.stdout.match(/>On<\/text>/g) ?? []).length, 5, "a label on every high plateau");
  });

  it("the PNG shows the same square wave and labels", async () => {
    const out = path.join(dir, "square.png");
    const r = await plotTrace(files.trace, ["Square.Level", "Square.State"], options({ dbc: files.dbc, output: out }));
    const img = PNG.sync.read(fs.readFileSync(out));
    assert.deepEqual([img.width, img.height], [r.width, r.height]);
    checkSquareWave(img, r, "png");
  });

  it("live on a virtual: bus, the file shows the frames sent and keeps being rewritten", async () => {
    const out = path.join(dir, "live.html");
    const stop = new AbortController();
    const wire = `virtual:plot-live-${process.pid}`;
    const running = plotLive(["Square.State"], options({ dbc: files.dbc, output: out, interface: wire, window: 10, refresh: 0.2 }), stop.signal);
    const sender = await openBus(wire);
    try {
      // The first drawing is written once the capture listens: from then on frames sent are received.
      await waitFor(() => fs.existsSync(out), 20000, "the first live drawing");
      const first = fs.readFileSync(out, "utf8");
      assert.match(first, /0 frames received/);
      for (let i = 0; i < 300; i++) await sender.send({ ...squareFrame(i * 20, 0), t: undefined });
      await waitFor(() => /300 frames received/.test(fs.readFileSync(out, "utf8")), 20000, "a drawing with the 300 frames");
      const page = fs.readFileSync(out, "utf8");
      assert.match(page, /<meta http-equiv="refresh" content="0\.2">/);
      assert.match(page, />Square\.State<\/text>/);
      assert.match(page, />On \(1\)<\/text>/);
      assert.match(page, />Off \(0\)<\/text>/);
      assert.match(page, /<path d="M[\d.]+ [\d.]+(H[\d.]+V[\d.]+)+/, "the steps drawn");
    } finally {
      stop.abort();
      await sender.close();
    }
    const live = await within(running, 20000, "the live plot to stop");
    assert.equal(live.extractor.counts.frames, 300);
    assert.equal(live.extractor.counts.used, 300);
    assert.equal(live.extractor.seriesOf("Square.State")!.samples.length, 300);
  });
});
