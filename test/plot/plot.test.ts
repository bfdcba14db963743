/**
 * vgw plot's library on plain data: which signals the patterns pick, the time range, value-table signals as raw
 * steps with their labels, the reduction per pixel column (a property test: every column's extremes survive), and
 * the command's output files and usage errors.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { parseDbc } from "../../can-db/dbc-parser";
import { UsageError } from "../../frame/errors";
import { makeFrame } from "../../frame/frame";
import { selectSignals } from "../../host/plot/select";
import { Samples, SeriesExtractor } from "../../host/plot/series";
import { downsample } from "../../host/plot/downsample";
import { renderSvg } from "../../host/plot/render";
import { traceFigure } from "../../host/plot/figure";
import { LiveWindow } from "../../host/plot/live";
import { plotFormat } from "../../host/plot/output";
import { parseTimeBound, plotTrace, type PlotOptions } from "../../cli/commands/plot";
import { main } from "../../cli/main";
import { log } from "../../host/log";
import { DBC, HIGH, LOW, T0, squareFrames, writeFixture, isHigh, STEP } from "./fixture";

const db = parseDbc(DBC, "square.dbc");
const keys = (patterns: string[], caseSensitive = false) => selectSignals(db, patterns, { caseSensitive }).map((m) => m.signals.map((s) => s.key));

function options(over: Partial<PlotOptions> = {}): PlotOptions {
  return { dbc: "", output: "-", pane: "pattern", width: 1000, height: 200, window: 30, refresh: 1, ...over };
}

describe("plot: signal patterns", () => {
  it("matches globs over Message.Signal, one group per pattern, in database order", () => {
    assert.deepEqual(keys(["Square.*", "Engine.Rpm"]), [["Square.Level", "Square.State", "Square.Mode"], ["Engine.Rpm"]]);
    assert.deepEqual(keys(["?quare.[LS]*"]), [["Square.Level", "Square.State"]]);
    assert.deepEqual(keys(["*.{Rpm,Mode}"]), [["Square.Mode", "Engine.Rpm"]]);
  });

  it("a pattern without a dot matches signal names in every message; case is ignored unless asked", () => {
    assert.deepEqual(keys(["*temp*"]), [["Engine.CoolantTemp"]]);
    assert.deepEqual(keys(["engine.rpm"]), [["Engine.Rpm"]]);
    assert.throws(() => keys(["engine.rpm"], true), (e: Error) => e instanceof UsageError && /no signal matches 'engine\.rpm' in square\.dbc/.test(e.message));
  });

  it("a pattern that matches nothing, or no pattern, is a usage error naming it", () => {
    assert.throws(() => keys(["Square.*", "Nope*"]), /no signal matches 'Nope\*'.*vgw dbc square\.dbc/);
    assert.throws(() => keys([]), UsageError);
  });

  it("marks value-table signals as enumerated", () => {
    const [m] = selectSignals(db, ["Square.*"]);
    assert.deepEqual(
      m.signals.map((s) => [s.signal.name, s.enumerated]),
      [
        ["Level", false],
        ["State", true],
        ["Mode", true],
      ],
    );
  });
});

describe("plot: series and time range", () => {
  const frames = squareFrames(20);
  const extract = (patterns: string[], range = {}) => {
    const sel = selectSignals(db, patterns).flatMap((m) => m.signals);
    const x = new SeriesExtractor(db, sel, range);
    x.add(frames.slice(0, 1000));
    x.add(frames.slice(1000));
    x.finish();
    return x;
  };
  const values = (x: SeriesExtractor, key: string) => {
    const s = x.seriesOf(key)!.samples;
    return { t: [...s.t.subarray(s.start, s.end)], v: [...s.v.subarray(s.start, s.end)] };
  };

  it("physical values for plain signals, one sample per frame of the message", () => {
    const x = extract(["Square.Level", "Engine.Rpm"]);
    const level = values(x, "Square.Level");
    assert.equal(level.t.length, 2000);
    assert.equal(x.counts.frames, 4000);
    assert.equal(x.counts.used, 4000);
    level.t.forEach((t, i) => assert.equal(level.v[i], isHigh(t - T0 + 1e-6) ? HIGH : LOW, `t=${t}`));
    assert.equal(x.first, T0);
  });

  it("value-table signals keep their raw value (labels are by raw value), even with a factor", () => {
    const x = extract(["Square.Mode", "Square.State"]);
    // Mode has factor 2: physical 2 and 4, raw 1 (Eco) and 2 (Sport).
    assert.deepEqual([...new Set(values(x, "Square.Mode").v)].sort(), [1, 2]);
    assert.deepEqual([...new Set(values(x, "Square.State").v)].sort(), [0, 1]);
  });

  it("--from/--to relative to the first frame keep only that span, the held value carried to the start", () => {
    // From 5.005 s (in the low half 4-6 s, between two frames) to 9.005 s.
    const x = extract(["Square.State"], { from: { seconds: 5.005, absolute: false }, to: { seconds: 9.005, absolute: false } });
    const s = values(x, "Square.State");
    assert.equal(s.t[0], T0 + 5.005, "the value held at --from starts the series");
    assert.equal(s.v[0], 0);
    assert.equal(s.t[1], T0 + 5.01);
    assert.ok(s.t.every((t) => t >= T0 + 5.005 && t <= T0 + 9.005), "all inside the range");
    assert.equal(s.t.length, 1 + 400, "the held value, then every frame from 5.01 s to 9.00 s");
    assert.ok(s.t[s.t.length - 1] > T0 + 9.005 - STEP, "up to the last frame before --to");
    assert.ok(x.counts.outOfRange > 0);
    assert.equal(x.counts.used + x.counts.outOfRange, 2000, "every Square frame counted once (Engine frames are not plotted)");
  });

  it("absolute bounds (ISO 8601) and relative ones parse; anything else is a usage error", () => {
    assert.deepEqual(parseTimeBound("12.5", "--from"), { seconds: 12.5, absolute: false });
    assert.deepEqual(parseTimeBound("2023-11-14T22:13:25Z", "--from"), { seconds: T0 + 5, absolute: true });
    assert.throws(() => parseTimeBound("soon", "--from"), /--from 'soon' is neither seconds/);
    const x = extract(["Square.Level"], { from: parseTimeBound("2023-11-14T22:13:25Z", "--from") });
    assert.equal(values(x, "Square.Level").t[0], T0 + 5);
  });

  it("infinite float values are left out and counted; frames without a time are numbered", () => {
    const fdb = parseDbc(fs.readFileSync(path.join(__dirname, "../../../test/fixtures/dbc/floating_point.dbc"), "latin1"), "floating_point.dbc");
    const sel = selectSignals(fdb, ["Message2.Signal1"]).flatMap((m) => m.signals);
    const x = new SeriesExtractor(fdb, sel);
    const frame = (v: number) => {
      const data = Buffer.alloc(8);
      data.writeFloatLE(v, 0);
      return makeFrame({ id: 1025, data });
    };
    x.add([frame(1.5), frame(Infinity), frame(-Infinity), frame(2.5)]);
    const s = x.seriesOf("Message2.Signal1")!.samples;
    assert.deepEqual([...s.v.subarray(s.start, s.end)], [1.5, 2.5]);
    assert.deepEqual([...s.t.subarray(s.start, s.end)], [0, 3]);
    assert.equal(x.counts.infinite, 2);
    assert.equal(x.indexTime, true);
  });

  it("a range with no frame of a signal still shows the value held before it, but not past the input's end", () => {
    const sel = selectSignals(db, ["Square.State"]).flatMap((m) => m.signals);
    // Square stops at 7 s (high from 6 to 8 s), Engine goes on to 20 s.
    const input = frames.filter((f) => f.id !== 0x100 || f.t! < T0 + 7);
    const x = new SeriesExtractor(db, sel, { from: { seconds: 15, absolute: false } });
    x.add(input);
    x.finish();
    assert.deepEqual(values(x, "Square.State"), { t: [T0 + 15], v: [1] });
    const after = new SeriesExtractor(db, sel, { from: { seconds: 100, absolute: false } });
    after.add(input);
    after.finish();
    assert.deepEqual(values(after, "Square.State"), { t: [], v: [] });
  });
});

describe("plot: value-table signals as labelled steps", () => {
  it("draws steps (horizontal then vertical moves), ticks named by the table, labels on wide plateaus", () => {
    const matches = selectSignals(db, ["Square.State"]);
    const x = new SeriesExtractor(db, matches[0].signals);
    x.add(squareFrames(20));
    const r = renderSvg(traceFigure(matches, x, "pattern", { source: "square.log", width: 1000 }));
    assert.match(r.svg, /<text [^>]*>Off \(0\)<\/text>/);
    assert.match(r.svg, /<text [^>]*>On \(1\)<\/text>/);
    // Five low plateaus labelled Off and five high labelled On, each 2 s = about 90 px wide.
    assert.equal((r.svg.match(/>Off<\/text>/g) ?? []).length, 5);
    assert.equal((r.svg.match(/>On<\/text>/g) ?? []).length, 5);
    const d = /<path d="([^"]+)"/.exec(r.svg)![1];
    assert.match(d, /^M[\d.]+ [\d.]+(H[\d.]+V[\d.]+)+/);
    assert.equal(r.panes[0].yMin < 0 && r.panes[0].yMax > 1, true);
  });

  it("a numeric signal is a line with its unit on the axis and in the legend", () => {
    const matches = selectSignals(db, ["Engine.Rpm"]);
    const x = new SeriesExtractor(db, matches[0].signals);
    x.add(squareFrames(5));
    const r = renderSvg(traceFigure(matches, x, "pattern", { source: "square.log" }));
    assert.match(r.svg, />Engine\.Rpm \[rpm\]<\/text>/);
    assert.match(r.svg, /transform="rotate\(-90[^"]*"[^>]*>rpm<\/text>/);
    assert.match(/<path d="([^"]+)"/.exec(r.svg)![1], /^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+$/);
  });

  it("panes: one per pattern, one per signal, or one for all", () => {
    const matches = selectSignals(db, ["Square.*", "Engine.Rpm"]);
    const x = new SeriesExtractor(db, matches.flatMap((m) => m.signals));
    x.add(squareFrames(2));
    const panes = (mode: "pattern" | "signal" | "one") => renderSvg(traceFigure(matches, x, mode, { source: "s" })).panes.map((p) => p.traces.map((t) => t.label));
    assert.deepEqual(panes("pattern"), [["Square.Level", "Square.State", "Square.Mode"], ["Engine.Rpm"]]);
    assert.deepEqual(panes("signal"), [["Square.Level"], ["Square.State"], ["Square.Mode"], ["Engine.Rpm"]]);
    assert.deepEqual(panes("one"), [["Square.Level", "Square.State", "Square.Mode", "Engine.Rpm"]]);
  });
});

describe("plot: reduction per pixel column", () => {
  /** The input's samples in [x0, x1] by column, as the reduction must see them. */
  const columnsOf = (t: number[], v: number[], x0: number, x1: number, columns: number) => {
    const cols = new Map<number, number[]>();
    t.forEach((ti, i) => {
      if (ti < x0 || ti > x1) return;
      const c = Math.min(columns - 1, Math.floor(((ti - x0) * columns) / (x1 - x0)));
      cols.set(c, [...(cols.get(c) ?? []), v[i]]);
    });
    return cols;
  };

  it("keeps every column's smallest and largest value exactly, and only input samples, in time order (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 3000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        (vals, columns, cut) => {
          const t = vals.map((_, i) => i * 0.01);
          const x0 = t[t.length - 1] * cut;
          const x1 = t[t.length - 1] * (1 - cut);
          const r = downsample(Float64Array.from(t), Float64Array.from(vals), 0, t.length, x0, x1 > x0 ? x1 : x0 + 1, columns);
          const hi = x1 > x0 ? x1 : x0 + 1;
          assert.ok(r.t.length <= Math.max(4 * columns + 2, t.length));
          const index = new Map(t.map((ti, i) => [ti, i]));
          for (let k = 0; k < r.t.length; k++) {
            const i = index.get(r.t[k]);
            assert.ok(i !== undefined && vals[i] === r.v[k], "an input sample");
            if (k > 0) assert.ok(r.t[k] > r.t[k - 1], "time order, no duplicates");
          }
          const want = columnsOf(t, vals, x0, hi, columns);
          const got = columnsOf([...r.t], [...r.v], x0, hi, columns);
          for (const [c, vs] of want) {
            const g = got.get(c) ?? [];
            assert.equal(Math.min(...g), Math.min(...vs), `column ${c} min`);
            assert.equal(Math.max(...g), Math.max(...vs), `column ${c} max`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a single-sample spike in a million survives, and the output is at most four points per column", () => {
    const n = 1_000_000;
    const t = new Float64Array(n);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      t[i] = i * 0.001;
      v[i] = Math.sin(i / 1000);
    }
    v[123_457] = 99;
    v[876_543] = -42;
    const r = downsample(t, v, 0, n, 0, t[n - 1], 1000);
    assert.ok(r.reduced);
    assert.equal(r.input, n);
    assert.ok(r.t.length <= 4000, `${r.t.length} points`);
    assert.equal(Math.max(...r.v), 99);
    assert.equal(Math.min(...r.v), -42);
    assert.ok(r.t.includes(t[123_457]) && r.t.includes(t[876_543]));
    assert.equal(r.t[0], 0, "the first sample");
    assert.equal(r.t[r.t.length - 1], t[n - 1], "the last sample");
  });

  it("a long series is folded while it is read (bounded memory), and draws the same columns but at slice edges", () => {
    const n = 1_000_000;
    const full = new Samples(1024, Infinity);
    const folded = new Samples(1024, 100_000);
    for (let i = 0; i < n; i++) {
      const v = i === 333_333 ? 77 : i === 666_667 ? -55 : Math.sin(i / 3000) + Math.sin(i / 7);
      full.push(i * 0.001, v);
      folded.push(i * 0.001, v);
    }
    assert.ok(folded.t.length <= 100_000, `${folded.t.length} stored`);
    assert.equal(folded.count, n, "every sample counted");
    assert.ok(folded.folded > 0);
    const columns = 1000;
    const a = downsample(full.t, full.v, full.start, full.end, 0, (n - 1) * 0.001, columns);
    const b = downsample(folded.t, folded.v, folded.start, folded.end, 0, (n - 1) * 0.001, columns);
    assert.equal(Math.max(...b.v), 77);
    assert.equal(Math.min(...b.v), -55);
    const extremes = (r: typeof a) => {
      const cols = new Map<number, [number, number]>();
      r.t.forEach((t, i) => {
        const c = Math.min(columns - 1, Math.floor((t * columns) / ((n - 1) * 0.001)));
        const [lo, hi] = cols.get(c) ?? [Infinity, -Infinity];
        cols.set(c, [Math.min(lo, r.v[i]), Math.max(hi, r.v[i])]);
      });
      return cols;
    };
    const ea = extremes(a);
    const eb = extremes(b);
    // Where a column's extreme was folded away, it lay in a slice straddling the column's edge, whose own extreme
    // (at least as far out) is drawn in the neighbouring column: nothing is lost, at most moved by one pixel.
    let moved = 0;
    for (const [c, [lo, hi]] of ea) {
      const near = [c - 1, c, c + 1].map((k) => eb.get(k)).filter((x) => x !== undefined);
      assert.ok(Math.max(...near.map((x) => x[1])) >= hi, `column ${c}: max ${hi} lost`);
      assert.ok(Math.min(...near.map((x) => x[0])) <= lo, `column ${c}: min ${lo} lost`);
      const [lo2, hi2] = eb.get(c)!;
      if (lo !== lo2 || hi !== hi2) moved++;
    }
    assert.ok(moved < columns * 0.2, `${moved} of ${columns} columns changed`);
    // The plot counts the folded samples as drawn from.
    const r = renderSvg({ title: "t", subtitle: "", xLabel: "s", origin: 0, x0: 0, x1: (n - 1) * 0.001, end: (n - 1) * 0.001, panes: [{ title: "p", traces: [{ label: "M.S", unit: "", step: false, samples: folded }] }] });
    assert.equal(r.panes[0].traces[0].samples, n);
    assert.match(r.svg, /1,000,000 samples drawn as/);
  });

  it("keeps the nearest sample outside the range on each side, so lines enter and leave at the right height", () => {
    const t = Float64Array.from([0, 1, 2, 3, 4, 5, 6]);
    const v = Float64Array.from([0, 10, 20, 30, 40, 50, 60]);
    const r = downsample(t, v, 0, 7, 2.5, 4.5, 10);
    assert.deepEqual([...r.t], [2, 3, 4, 5]);
    assert.equal(r.reduced, false);
  });

  it("the plot says when it reduced, and draws a reduced series with few points", () => {
    const matches = selectSignals(db, ["Engine.Rpm"]);
    const x = new SeriesExtractor(db, matches[0].signals);
    x.add(squareFrames(100));
    const r = renderSvg(traceFigure(matches, x, "pattern", { source: "s", width: 600 }));
    const tr = r.panes[0].traces[0];
    assert.equal(tr.samples, 10000);
    assert.ok(tr.reduced && tr.points <= 4 * r.panes[0].width + 2, `${tr.points} points`);
    assert.match(r.svg, /10,000 samples drawn as [\d,]+ points \(min\/max per pixel column\)/);
    assert.match(r.svg, /extremes exact/);
  });
});

describe("plot: live window", () => {
  it("shows the last N seconds before now and drops older samples but the one held at the window's start", () => {
    const matches = selectSignals(db, ["Square.State"]);
    const live = new LiveWindow(db, matches, "pattern", { windowSeconds: 3, source: "virtual:x" });
    live.add(squareFrames(10));
    const fig = live.figure(T0 + 10.005);
    assert.equal(fig.x0, T0 + 7.005);
    assert.equal(fig.x1, T0 + 10.005);
    const s = live.extractor.seriesOf("Square.State")!.samples;
    assert.ok(s.t[s.start] < fig.x0 && s.t[s.start + 1] > fig.x0, "one sample before the window: the value it starts with");
    assert.equal(s.length, 300, "7.00 s (held into the window), then 7.01 to 9.99 s");
    const r = renderSvg(fig);
    assert.match(r.svg, /time \(s\) before now/);
    assert.equal(r.panes[0].traces[0].samples, 300);
  });
});

describe("plot: the command", () => {
  let dir: string;
  let files: { dbc: string; trace: string };
  const logged: string[] = [];
  const sink = log.sink;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-plot-"));
    files = await writeFixture(dir, 10);
    log.sink = (line) => logged.push(line);
  });
  after(() => {
    log.sink = sink;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes HTML, SVG and PNG by the output's extension; the HTML fetches nothing and runs no script", async () => {
    for (const ext of ["html", "svg", "png"]) {
      const out = path.join(dir, `out.${ext}`);
      await plotTrace(files.trace, ["Square.*", "Engine.Rpm"], options({ dbc: files.dbc, output: out }));
      assert.ok(fs.statSync(out).size > 1000, ext);
    }
    const html = fs.readFileSync(path.join(dir, "out.html"), "utf8");
    assert.doesNotMatch(html, /<script|<link|<img|@import|url\((?!#)/i);
    assert.deepEqual(html.match(/https?:\/\/[^"]+/g), ["http://www.w3.org/2000/svg"]);
    assert.match(fs.readFileSync(path.join(dir, "out.svg"), "utf8"), /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns/);
    assert.deepEqual([...fs.readFileSync(path.join(dir, "out.png")).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(logged.some((l) => /^plot: 2000 frames, 2000 of plotted messages in range; 2 pane\(s\), 4 series/.test(l)), logged.join("\n"));
  });

  it("exits 2 naming the problem: an unknown pattern, an output it cannot write, no pattern, --live without -o", async () => {
    logged.length = 0;
    const run = (...args: string[]) => main(["node", "vgw", "plot", "--dbc", files.dbc, ...args]);
    assert.equal(await run(files.trace, "Nope.*", "-o", path.join(dir, "x.html")), 2);
    assert.equal(await run(files.trace, "Square.*", "-o", path.join(dir, "x.pdf")), 2);
    assert.equal(await run(files.trace), 2);
    assert.equal(await run("--live", "-i", "virtual:nothing", "Square.*"), 2);
    assert.equal(await run(files.trace, "Square.*", "--from", "5", "--to", "2", "-o", path.join(dir, "x.html")), 2);
    const text = logged.join("\n");
    assert.match(text, /no signal matches 'Nope\.\*'/);
    assert.match(text, /cannot tell the plot format of '.*x\.pdf'/);
    assert.match(text, /give a trace and at least one signal pattern/);
    assert.match(text, /--live rewrites a file/);
    assert.match(text, /--to \(2\) must be later than --from \(5\)/);
    assert.equal(plotFormat("a.HTM"), "html");
  });

  it("warns when the time range lies outside the trace, and carries no value past its end", async () => {
    logged.length = 0;
    const r = await plotTrace(files.trace, ["Square.State"], options({ dbc: files.dbc, output: path.join(dir, "after.svg"), from: "2030-01-01T00:00:00Z" }));
    assert.ok(logged.some((l) => /warning: the time range is outside the input, which spans 2023-11-14T22:13:20\.000Z to .* \(9\.995 s\)/.test(l)), logged.join("\n"));
    assert.equal(r.panes[0].traces[0].samples, 0);
  });

  it("warns about a selected signal that never appeared", async () => {
    logged.length = 0;
    await plotTrace(files.trace, ["Doors.*", "Square.Level"], options({ dbc: files.dbc, output: path.join(dir, "doors.svg") }));
    assert.ok(logged.some((l) => /warning: no samples of Doors\.Open \(message Doors, ID 0x300\)/.test(l)), logged.join("\n"));
    assert.match(fs.readFileSync(path.join(dir, "doors.svg"), "utf8"), /no samples in this time range/);
  });
});
