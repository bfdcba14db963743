/**
 * Child processes that must never outlive vgw: each runs in its own process group (so the grandchildren that
 * `devs` forks die with it), its output is kept line by line for diagnostics, and every group still alive when
 * Node exits (normally, on an uncaught error, on Ctrl-C) is killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { log } from "./log";

export interface ChildOptions {
  /** Name used in log lines and errors, e.g. `devtools`. */
  name: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with every complete stdout/stderr line (ANSI colours removed). */
  onLine?: (line: string) => void;
  /** How many recent output lines to keep for error messages. */
  keepLines?: number;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The most recent output lines, oldest first. */
  readonly recent: string[];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** True until the process exits. */
  readonly running: boolean;
  /**
   * `signal` (default SIGTERM) to the whole group, SIGKILL after `graceMs`; resolves when the leader has exited.
   * Idempotent. `stop(0, "SIGKILL")` is a crash: the process gets no chance to close anything itself.
   */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a group kill is.
  process.on("exit", () => {
    for (const cp of live) killGroup(cp, "SIGKILL");
  });
  // A signal's default action ends Node without 'exit' handlers, so take it over, unless the program has its own
  // handler (the demo stops gracefully and prints its summary; its process.exit then runs the hook above).
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (process.listenerCount(sig) > 1) return;
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

function killGroup(cp: ChildProcess, signal: NodeJS.Signals): void {
  if (cp.pid === undefined) return;
  try {
    process.kill(-cp.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1B\[[0-9;]*m/g;

/** Starts `command args` in a new process group. Throws if it cannot be spawned at all. */
export function startChild(command: string, args: string[], options: ChildOptions): Child {
  installExitHook();
  const cp = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (cp.pid === undefined) {
    // the reason (ENOENT...) follows as an 'error' event; unheard, it would crash the process instead of this throw
    cp.once("error", () => undefined);
    throw new Error(`${options.name}: could not start '${command}'`);
  }
  live.add(cp);
  const keep = options.keepLines ?? 200;
  const recent: string[] = [];
  let running = true;
  const onLine = (line: string): void => {
    const clean = line.replace(ANSI, "");
    recent.push(clean);
    if (recent.length > keep) recent.splice(0, recent.length - keep);
    log.debug(`[${options.name}] ${clean}`);
    options.onLine?.(clean);
  };
  for (const stream of [cp.stdout, cp.stderr]) {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) onLine(l);
    });
    stream?.on("end", () => {
      if (partial) onLine(partial);
      partial = "";
    });
  }
  const exited = new Promise<number | string>((resolve) => {
    cp.on("exit", (code, signal) => {
      running = false;
      live.delete(cp);
      // The leader is gone; make sure nothing it forked lingers.
      killGroup(cp, "SIGKILL");
      resolve(code ?? signal ?? "unknown");
    });
    cp.on("error", (e) => {
      running = false;
      live.delete(cp);
      onLine(`spawn error: ${e.message}`);
      resolve("error");
    });
  });
  const pid = cp.pid;
  return {
    name: options.name,
    pid,
    recent,
    exited,
    get running() {
      return running;
    },
    async stop(graceMs = 2000, signal: NodeJS.Signals = "SIGTERM") {
      if (!running) return;
      killGroup(cp, signal);
      const timer = setTimeout(() => killGroup(cp, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
