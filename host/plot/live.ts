/**
 * A plot of the last N seconds of a bus: frames go in as they arrive, and `figure(now)` draws the window ending at
 * `now` (seconds on the frames' clock, passed in so tests can choose it). Samples older than the window are dropped
 * as the window moves, so memory is bounded by the bus's rate times the window.
 */
import type { Frame } from "../../frame/frame";
import type { Database } from "../../can-db/model";
import { panesOf, type PaneMode } from "./figure";
import type { Figure } from "./render";
import type { PatternMatch } from "./select";
import { SeriesExtractor } from "./series";

export interface LiveOptions {
  windowSeconds: number;
  source: string;
  width?: number;
  paneHeight?: number;
}

export class LiveWindow {
  readonly extractor: SeriesExtractor;

  constructor(
    db: Database,
    private readonly matches: PatternMatch[],
    private readonly mode: PaneMode,
    private readonly options: LiveOptions,
  ) {
    this.extractor = new SeriesExtractor(
      db,
      matches.flatMap((m) => m.signals),
    );
  }

  add(frames: readonly Frame[]): void {
    this.extractor.add(frames);
  }

  /** The window ending at `now`; the axis reads seconds before now (-N .. 0). */
  figure(now: number): Figure {
    const x0 = now - this.options.windowSeconds;
    for (const s of this.extractor.series) s.samples.dropBefore(x0);
    const frames = this.extractor.counts.frames.toLocaleString("en-US");
    return {
      title: `${this.options.source} (live): ${this.matches.map((m) => m.pattern).join("  ")}`,
      subtitle: `last ${this.options.windowSeconds} s before ${new Date(now * 1000).toISOString()}; ${frames} frames received`,
      xLabel: "time (s) before now",
      origin: now,
      x0,
      x1: now,
      end: now,
      panes: panesOf(this.matches, this.extractor, this.mode),
      width: this.options.width,
      paneHeight: this.options.paneHeight,
    };
  }
}
