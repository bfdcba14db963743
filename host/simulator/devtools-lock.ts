/**
 * One DeviceScript simulator per machine: devtools listens on fixed ports (8081-8083), so every program that starts
 * one takes turns through one lock file, the same one `flock /tmp/vgw-devtools.lock <command>` takes.
 *
 * Node has no flock(2), so the lock is held by a `flock` child process that waits on our pipe: it takes the lock,
 * says so, and keeps it until the pipe closes (release(), or this process dying for any reason). When an ancestor
 * already holds the lock (the command was started under `flock /tmp/vgw-devtools.lock ...`), taking it again would wait
 * for ourselves forever: /proc/locks tells, and then there is nothing to do.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { BusError } from "../../frame/errors";
import { log } from "../log";

export const DEVTOOLS_LOCK = process.env.VGW_DEVTOOLS_LOCK ?? "/tmp/vgw-devtools.lock";

/** PIDs holding a flock(2) lock on `path`, from /proc/locks (`1: FLOCK ADVISORY WRITE 1234 08:01:5678 0 EOF`). */
function lockHolders(path: string): number[] {
  let ino: number;
  try {
    ino = statSync(path).ino;
  } catch {
    return [];
  }
  const holders: number[] = [];
  for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    // Blocked waiters are listed with "->": only holders count.
    if (f[1] !== "FLOCK" || f.includes("->")) continue;
    const dev = f[5]?.split(":");
    if (dev && Number(dev[2]) === ino) holders.push(Number(f[4]));
  }
  return holders;
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return out;
}

export interface DevtoolsLock {
  release(): void;
}

/** Takes the simulator lock, waiting at most `timeoutMs` for another run to finish. */
export async function acquireDevtoolsLock(timeoutMs = 15 * 60_000): Promise<DevtoolsLock> {
  closeSync(openSync(DEVTOOLS_LOCK, "a"));
  const mine = ancestors();
  if (lockHolders(DEVTOOLS_LOCK).some((pid) => mine.has(pid))) return { release: () => {} };
  const holder = spawn("flock", ["-w", String(Math.ceil(timeoutMs / 1000)), DEVTOOLS_LOCK, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const waitingNote = setTimeout(() => log.info(`waiting for another DeviceScript simulator run to finish (lock ${DEVTOOLS_LOCK})...`), 1000);
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (d: Buffer) => d.toString().includes("locked") && resolve());
      holder.once("error", (e) => reject(new BusError(`cannot run flock to take ${DEVTOOLS_LOCK}: ${e.message}`)));
      holder.once("exit", (code) => reject(new BusError(`gave up waiting for ${DEVTOOLS_LOCK} after ${timeoutMs} ms (exit ${code}): another simulator run holds it`)));
    });
  } finally {
    clearTimeout(waitingNote);
  }
  // The holder must not keep our event loop alive; its pipe closes when we exit, which releases the lock.
  holder.stdout.destroy();
  holder.stderr.destroy();
  holder.unref();
  (holder.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    release: () => {
      holder.stdin.end();
    },
  };
}
