/**
 * A real mosquitto for tests, locked down as a deployment would be: a throwaway CA and server certificate made with
 * `openssl`, a password file made with `mosquitto_passwd`, no anonymous access. Two listeners on ephemeral ports:
 * TLS + password, and plain TCP + password (for clients that cannot do TLS). Everything lives in a temp dir that
 * stop() removes; the broker runs in its own process group and dies with the test process.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { canConnect, freePort } from "../../host/tcp";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startChild, type Child } from "../../host/process";
import { waitFor } from "./wait";

export interface SecureMosquitto {
  /** mqtts://user:pass@127.0.0.1:port?ca=... */
  tlsUrl: string;
  /** mqtt://user:pass@127.0.0.1:port */
  plainUrl: string;
  tlsPort: number;
  plainPort: number;
  username: string;
  password: string;
  caFile: string;
  /** Kills the broker (as a crash would); start() brings it back on the same ports. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], cwd: string): void {
  try {
    execFileSync(cmd, args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

/** Makes the CA, the server certificate (for 127.0.0.1 and localhost) and the password file in `dir`. */
function makeCredentials(dir: string, username: string, password: string): void {
  run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vgw test CA", "-keyout", "ca.key", "-out", "ca.crt"], dir);
  run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"], dir);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("openssl", ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt"], dir);
  writeFileSync(join(dir, "passwd"), "");
  run("mosquitto_passwd", ["-b", join(dir, "passwd"), username, password], dir);
  // Started as root, mosquitto drops to its own user, which must still read these throwaway files.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
}

export async function startSecureMosquitto(username = "gateway", password = "s3cret-pw"): Promise<SecureMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), "vgw-mosquitto-"));
  makeCredentials(dir, username, password);
  const tlsPort = await freePort();
  const plainPort = await freePort();
  writeFileSync(
    join(dir, "mosquitto.conf"),
    [
      "per_listener_settings false",
      "allow_anonymous false",
      `password_file ${join(dir, "passwd")}`,
      "persistence false",
      // as docs/firmware.md (Throughput) asks of a gateway's broker
      "set_tcp_nodelay true",
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${join(dir, "ca.crt")}`,
      `certfile ${join(dir, "server.crt")}`,
      `keyfile ${join(dir, "server.key")}`,
      `listener ${plainPort} 127.0.0.1`,
      "",
    ].join("\n"),
  );
  let child: Child | undefined;
  const start = async (): Promise<void> => {
    if (child?.running) return;
    const c = startChild("mosquitto", ["-c", join(dir, "mosquitto.conf")], { name: "mosquitto" });
    child = c;
    let up = false;
    await waitFor(() => {
      void Promise.all([canConnect(tlsPort), canConnect(plainPort)]).then((r) => (up = r[0] && r[1]));
      if (!c.running) throw new Error(`mosquitto exited at start: ${c.recent.join(" | ")}`);
      return up;
    }, 10_000, "mosquitto to listen", 100);
  };
  const kill = async (): Promise<void> => {
    await child?.stop(500);
  };
  await start();
  const creds = `${encodeURIComponent(username)}:${encodeURIComponent(password)}`;
  const caFile = join(dir, "ca.crt");
  return {
    tlsUrl: `mqtts://${creds}@127.0.0.1:${tlsPort}?ca=${encodeURIComponent(caFile)}`,
    plainUrl: `mqtt://${creds}@127.0.0.1:${plainPort}`,
    tlsPort,
    plainPort,
    username,
    password,
    caFile,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
