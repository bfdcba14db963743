/**
 * What `vgw decode` and `vgw convert` tell the user about the trace they read: why the run ended early, and what to
 * try when nothing in the input could be read (wrong format, binary junk).
 */
import type { TraceReader } from "../host/trace";
import { log } from "../host/log";

/** Reading "-" from a terminal looks like a hang unless the user is told what the command waits for. */
export function announceStdin(path: string, format: string): void {
  if (path === "-" && process.stdin.isTTY) log.info(`reading ${format} lines from the terminal: type or paste them, Ctrl-D ends`);
}

/** Appended to a summary line: why the run stopped before the end of its input, or "". */
export function stopReason(interrupt: AbortSignal, outputGone: boolean): string {
  if (interrupt.aborted) return " (stopped by Ctrl-C)";
  if (outputGone) return " (stopped: the reader of stdout went away)";
  return "";
}

/** For a text trace in which every line was bad: most often the input is in another format than its name says. */
export function noFramesHint(reader: TraceReader): string {
  const what = reader.path === "-" ? "stdin" : reader.path;
  return (
    `no frame could be read from ${what} as ${reader.format.name} (${reader.format.description}); ` +
    `if it is another format, name it with --from (run vgw convert --help for the list)`
  );
}
