/**
 * Which signals a plot draws: glob patterns over `Message.Signal` names (cantools plot's form), matched with
 * picomatch. A pattern without a dot matches the signal name in every message (`'*Speed*'`), one with a dot the full
 * `Message.Signal` name (`'Engine*.Rpm'`). Matching ignores case unless asked not to, as cantools plot does.
 */
import picomatch from "picomatch";
import { UsageError } from "../../frame/errors";
import type { Database, MessageDef, SignalDef } from "../../can-db/model";

/** One signal chosen for plotting. */
export interface PlotSignal {
  /** `Message.Signal`: the name in legends and in error messages. */
  key: string;
  message: MessageDef;
  signal: SignalDef;
  /** Index of the signal in `message.signals` (the decoder's fast path writes values at this index). */
  index: number;
  /** The signal has a value table: it is drawn by raw value as steps, the axis labelled with the table's labels. */
  enumerated: boolean;
}

/** The signals one pattern matched, in database order. */
export interface PatternMatch {
  pattern: string;
  signals: PlotSignal[];
}

export interface SelectOptions {
  caseSensitive?: boolean;
}

/**
 * Matches every pattern against the database. A pattern that matches nothing is a usage error naming it, so a typo
 * does not give an empty pane. A signal matched by several patterns is plotted under each of them.
 */
export function selectSignals(db: Database, patterns: string[], options: SelectOptions = {}): PatternMatch[] {
  if (patterns.length === 0) throw new UsageError("no signal pattern given: name signals as 'Message.Signal' (globs allowed, e.g. 'Engine.*')");
  const all: PlotSignal[] = [];
  for (const message of db.messages) {
    if (message.pseudo) continue;
    message.signals.forEach((signal, index) => {
      all.push({ key: `${message.name}.${signal.name}`, message, signal, index, enumerated: (signal.choices?.size ?? 0) > 0 });
    });
  }
  return patterns.map((pattern) => {
    const matches = picomatch(pattern, { nocase: !options.caseSensitive, dot: true });
    const byName = !pattern.includes(".");
    const signals = all.filter((s) => matches(byName ? s.signal.name : s.key));
    if (signals.length === 0) {
      throw new UsageError(`no signal matches '${pattern}' in ${db.file ?? "the database"} (patterns are 'Message.Signal' globs; 'vgw dbc ${db.file ?? "FILE"}' lists the signals)`);
    }
    return { pattern, signals };
  });
}
