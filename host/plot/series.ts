/**
 * Signal values over time, pulled out of frames for a plot: one `Samples` column pair (time, value) per selected
 * signal, filled by the decoder's fast path (`CompiledMessage.decodeInto`, no object per frame), so a million-frame
 * trace costs a few typed-array writes per frame.
 *
 * Times are the frames' own (seconds, usually since the epoch); a frame without a time (bare `123#...` lines) takes
 * its position in the input instead, and `indexTime` says so for the axis label. Value-table signals keep their raw
 * value (their labels are looked up by raw value); every other signal its physical value.
 */
import type { Frame } from "../../frame/frame";
import { Decoder, type CompiledMessage } from "../../can-db/decoder";
import type { Database, MessageDef } from "../../can-db/model";
import type { PlotSignal } from "./select";
import { downsample } from "./downsample";

/**
 * Samples kept before the oldest are folded together: 2M samples (32 MB) per signal. Past that, a signal's samples are
 * reduced in place to the first, smallest, largest and last of each of COMPACT_COLUMNS time slices (downsample.ts),
 * so memory stays bounded on any trace length. The slices are about 15 times narrower than a pixel column of a
 * 1200-pixel plot, so what is drawn is unchanged but for an extreme that falls within a slice straddling two pixel
 * columns, which may show one pixel over; the smallest and largest value overall are always kept.
 */
export const COMPACT_AT = 1 << 21;
export const COMPACT_COLUMNS = 16384;

/** Growable (time, value) columns; `start` lets a live window drop old samples without copying every time. */
export class Samples {
  t: Float64Array;
  v: Float64Array;
  start = 0;
  end = 0;
  /** Samples folded away by compaction: counted, so the plot can say how many it drew from. */
  folded = 0;

  constructor(
    capacity = 1024,
    private readonly compactAt = COMPACT_AT,
  ) {
    this.t = new Float64Array(Math.min(capacity, compactAt));
    this.v = new Float64Array(Math.min(capacity, compactAt));
  }

  get length(): number {
    return this.end - this.start;
  }

  /** Every sample pushed and still in the window, folded ones included. */
  get count(): number {
    return this.length + this.folded;
  }

  push(t: number, v: number): void {
    if (this.end === this.t.length) {
      if (this.end - this.start >= this.compactAt) this.compact();
      if (this.end === this.t.length) this.grow();
    }
    this.t[this.end] = t;
    this.v[this.end] = v;
    this.end++;
  }

  /**
   * Drops the samples before time `t` but the last of them (samples are in arrival order; a live window trims from
   * the front): the value the signal held at `t` still shows from the window's left edge.
   */
  dropBefore(t: number): void {
    while (this.start + 1 < this.end && this.t[this.start + 1] <= t) this.start++;
  }

  private compact(): void {
    const n = this.end - this.start;
    const r = downsample(this.t, this.v, this.start, this.end, this.t[this.start], this.t[this.end - 1], COMPACT_COLUMNS);
    this.t.set(r.t, 0);
    this.v.set(r.v, 0);
    this.start = 0;
    this.end = r.t.length;
    this.folded += n - r.t.length;
  }

  private grow(): void {
    const n = this.end - this.start;
    // Reclaim the dropped front first; double only when more than half is still in use.
    let capacity = n * 2 > this.t.length ? this.t.length * 2 : this.t.length;
    // Up to the compaction bound; beyond it only when compaction could not reduce (too few distinct slices).
    if (capacity > this.compactAt && n < this.compactAt) capacity = this.compactAt;
    const t = new Float64Array(capacity);
    const v = new Float64Array(capacity);
    t.set(this.t.subarray(this.start, this.end));
    v.set(this.v.subarray(this.start, this.end));
    this.t = t;
    this.v = v;
    this.start = 0;
    this.end = n;
  }
}

/** One plotted signal and its samples. */
export interface SignalSeries {
  signal: PlotSignal;
  samples: Samples;
}

/** Where a time bound is measured from: seconds after the first frame, or an absolute time (epoch seconds). */
export interface TimeBound {
  seconds: number;
  absolute: boolean;
}

export interface ExtractOptions {
  from?: TimeBound;
  to?: TimeBound;
}

/** What the extraction saw, for the summary line: every frame is counted somewhere. */
export interface ExtractCounts {
  frames: number;
  /** Frames of a message that has a selected signal, inside the time range. */
  used: number;
  /** Frames outside the time range. */
  outOfRange: number;
  /** Error and remote frames: no signal values. */
  noData: number;
  /** Values left out because they are infinite (a float signal's bit pattern): no axis can hold them. */
  infinite: number;
}

interface MessageGroup {
  compiled: CompiledMessage;
  /** Selected signals of this message: index into the decoder's output, raw (value table) or physical, and the series. */
  picks: Array<{ index: number; raw: boolean; series: SignalSeries; before: { t: number; v: number } | undefined; seen: boolean }>;
}

/**
 * Feeds frames in, gets one series per selected signal out. A signal's last value before `from` is carried to `from`
 * (a value-table state set earlier still shows at the left edge), so the range starts with what the bus held then.
 */
export class SeriesExtractor {
  readonly series: SignalSeries[];
  readonly counts: ExtractCounts = { frames: 0, used: 0, outOfRange: 0, noData: 0, infinite: 0 };
  /** Time of the first frame (the origin of relative bounds and of the time axis); undefined before any frame. */
  first: number | undefined;
  /** Time of the last frame read. */
  last: number | undefined;
  /** Frames carried no time: times are positions in the input. */
  indexTime = false;
  private readonly decoder: Decoder;
  private readonly groups = new Map<MessageDef, MessageGroup | null>();
  private raw = new Float64Array(64);
  private phys = new Float64Array(64);
  private fromT = -Infinity;
  private toT = Infinity;

  constructor(
    db: Database,
    signals: PlotSignal[],
    private readonly options: ExtractOptions = {},
  ) {
    this.decoder = new Decoder(db);
    this.series = [];
    const byKey = new Map<string, SignalSeries>();
    for (const s of signals) {
      // A signal two patterns matched is one series (one set of samples) shown in two panes.
      let series = byKey.get(s.key);
      if (!series) {
        series = { signal: s, samples: new Samples() };
        byKey.set(s.key, series);
        this.series.push(series);
      }
      let group = this.groups.get(s.message);
      if (!group) {
        const compiled = this.decoder.compile(s.message);
        group = { compiled, picks: [] };
        this.groups.set(s.message, group);
        if (compiled.signals.length > this.raw.length) {
          this.raw = new Float64Array(compiled.signals.length);
          this.phys = new Float64Array(compiled.signals.length);
        }
      }
      if (!group.picks.some((p) => p.series === series)) {
        group.picks.push({ index: s.index, raw: s.enumerated && s.signal.valueType === "integer", series, before: undefined, seen: false });
      }
    }
  }

  /** The series of a `Message.Signal` key. */
  seriesOf(key: string): SignalSeries | undefined {
    return this.series.find((s) => s.signal.key === key);
  }

  /** The time range resolved against the first frame: [from, to] in frame time. */
  get range(): [number, number] {
    return [this.fromT, this.toT];
  }

  add(frames: readonly Frame[]): void {
    const raw = this.raw;
    const phys = this.phys;
    for (const f of frames) {
      const n = this.counts.frames++;
      let t = f.t;
      if (t === undefined) {
        this.indexTime = true;
        t = n;
      }
      if (this.first === undefined) this.start(t);
      this.last = t;
      if (f.err || f.rtr) {
        this.counts.noData++;
        continue;
      }
      const m = this.decoder.lookup(f.id, f.ext);
      if (m === undefined) continue;
      const group = this.groups.get(m);
      if (group === undefined) {
        this.groups.set(m, null);
        continue;
      }
      if (group === null) continue;
      if (t > this.toT) {
        this.counts.outOfRange++;
        continue;
      }
      group.compiled.decodeInto(f.data, raw, phys);
      if (t < this.fromT) {
        this.counts.outOfRange++;
        for (const p of group.picks) {
          const v = p.raw ? raw[p.index] : phys[p.index];
          if (v === v && v !== Infinity && v !== -Infinity) p.before = { t, v };
        }
        continue;
      }
      this.counts.used++;
      for (const p of group.picks) {
        const v = p.raw ? raw[p.index] : phys[p.index];
        // NaN: the signal is not in this frame (inactive multiplexed signal, frame too short).
        if (v !== v) continue;
        if (v === Infinity || v === -Infinity) {
          this.counts.infinite++;
          continue;
        }
        if (!p.seen) {
          p.seen = true;
          if (p.before) p.series.samples.push(this.fromT, p.before.v);
        }
        p.series.samples.push(t, v);
      }
    }
  }

  /** Ends the input: a signal that only changed before `from` still shows its value at `from`. */
  finish(): void {
    for (const group of this.groups.values()) {
      if (!group) continue;
      for (const p of group.picks) {
        // Not past the input's end: nothing says the value still held there.
        if (!p.seen && p.before && this.fromT !== -Infinity && this.last !== undefined && this.fromT <= this.last) {
          p.seen = true;
          p.series.samples.push(this.fromT, p.before.v);
        }
      }
    }
  }

  private start(t: number): void {
    this.first = t;
    const resolve = (b: TimeBound | undefined, none: number) => (b === undefined ? none : b.absolute ? b.seconds : t + b.seconds);
    this.fromT = resolve(this.options.from, -Infinity);
    this.toT = resolve(this.options.to, Infinity);
  }
}
