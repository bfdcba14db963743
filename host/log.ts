/**
 * The one logger of vgw's library code: diagnostics go to stderr, never stdout (stdout carries data).
 * Level from VGW_LOG (error, warn, info, debug); default info. Tests may replace the sink.
 */
export type Level = "error" | "warn" | "info" | "debug";
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  level: Level;
  sink: (line: string) => void;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

function envLevel(): Level {
  const v = process.env.VGW_LOG as Level | undefined;
  return v && v in ORDER ? v : "info";
}

export const log: Logger = {
  level: envLevel(),
  sink: (line) => process.stderr.write(line + "\n"),
  error(msg) {
    this.sink(msg);
  },
  warn(msg) {
    if (ORDER[this.level] >= ORDER.warn) this.sink(msg);
  },
  info(msg) {
    if (ORDER[this.level] >= ORDER.info) this.sink(msg);
  },
  debug(msg) {
    if (ORDER[this.level] >= ORDER.debug) this.sink(msg);
  },
};
