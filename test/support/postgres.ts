/**
 * A real PostgreSQL 15 server for tests (Debian's `postgresql` package): a fresh cluster made with initdb in a temp
 * dir, listening on 127.0.0.1 on a free port, its socket in that dir too. As root the server runs as the `postgres`
 * user (initdb refuses root). stop() ends the server and removes the dir.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startChild, type Child } from "../../host/process";
import { canConnect, freePort } from "../../host/tcp";

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** The server's first process (runuser, the parent of postgres and its backends), for CPU figures in benchmarks. */
  pid: number;
  /** A fresh database on this server; returns its URL. */
  createDatabase(name: string): string;
  stop(): Promise<void>;
}

const BIN = "/usr/lib/postgresql/15/bin";

function asServerUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

function run(cmd: string, args: string[]): void {
  const [c, a] = asServerUser(cmd, args);
  try {
    execFileSync(c, a, { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  if (!existsSync(`${BIN}/initdb`)) throw new Error(`PostgreSQL 15 is not installed (no ${BIN}/initdb): apt-get install postgresql (scripts/setup-test.sh does)`);
  const dir = mkdtempSync(join(tmpdir(), "vgw-pg-"));
  chmodSync(dir, 0o700);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
    chownSync(dir, uid, gid);
  }
  let child: Child | undefined;
  try {
    run(`${BIN}/initdb`, ["-D", join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
    const port = await freePort();
    const [c, a] = asServerUser(`${BIN}/postgres`, [
      "-D", join(dir, "data"), "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
      // A throwaway server: durability off costs nothing here and saves the shared disk.
      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ]);
    const started = startChild(c, a, { name: "postgres" });
    child = started;
    const deadline = Date.now() + 30_000;
    while (!(await canConnect(port))) {
      if (!started.running) throw new Error(`postgres exited: ${started.recent.slice(-5).join(" | ")}`);
      if (Date.now() > deadline) throw new Error(`postgres did not listen on ${port} within 30 s: ${started.recent.slice(-5).join(" | ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    return {
      url,
      pid: started.pid,
      createDatabase(name: string): string {
        execFileSync("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", `CREATE DATABASE ${name}`], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
        return `postgres://postgres@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        // A fast shutdown that waits for the server (runuser, the group leader, exits before postgres does).
        try {
          run(`${BIN}/pg_ctl`, ["-D", join(dir, "data"), "-m", "fast", "-w", "-t", "30", "stop"]);
        } catch {
          // already down, or it will be killed with its group below
        }
        await started.stop(5000);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await child?.stop(2000);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
