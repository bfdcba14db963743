/**
 * `vgw record` started in-process, with a promise that resolves once it listens (frames sent before that are not
 * recorded) and a stop() for the test's `finally`: a test that fails midway must not leave the writer thread running,
 * or mocha never exits.
 */
import { record } from "../../cli/commands/record";

export interface Recording {
  done: Promise<void>;
  listening: Promise<void>;
  /** Ends the recording as Ctrl-C would and waits for it; never throws (the test's own assertion is the failure). */
  stop(): Promise<void>;
}

const running = new Set<Recording>();

/** Stops every recording a test left running (its afterEach): a failed test leaves no writer thread behind. */
export async function stopRecordings(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

export function startRecording(opts: Omit<Parameters<typeof record>[0], "onListening" | "signal">): Recording {
  let onListening!: () => void;
  const listening = new Promise<void>((r) => (onListening = r));
  const abort = new AbortController();
  const done = record({ ...opts, onListening, signal: abort.signal });
  const recording: Recording = {
    done,
    // A recording that fails before it listens must fail the wait too, not leave it pending until its bound.
    listening: Promise.race([listening, done.then(() => undefined)]),
    stop: async () => {
      abort.abort();
      await done.catch(() => undefined);
    },
  };
  running.add(recording);
  void done.then(
    () => running.delete(recording),
    () => running.delete(recording),
  );
  return recording;
}
