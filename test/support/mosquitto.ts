/**
 * A real mosquitto for tests, locked down as a deployment would be: a throwaway CA and server certificate made with
 * `openssl`, a password file made with `mosquitto_passwd`, no anonymous access. Two listeners on ephemeral ports:
 * TLS + password, and plain TCP + password (for clients that cannot do TLS). The broker is started by the project's
 * one mosquitto launcher (host/gateway/broker.ts), in its own process group, and dies with the test process; the
 * credentials live in a temp dir that stop() removes.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMosquitto, type MosquittoProcess } from "../../host/gateway/broker";

export interface SecureMosquitto {
  /** mqtts://user:pass@127.0.0.1:port?ca=... */
  tlsUrl: string;
  /** mqtt://user:pass@127.0.0.1:port */
  plainUrl: string;
  username: string;
  password: string;
  caFile: string;
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
  const dir = mkdtempSync(join(tmpdir(), "vgw-mosquitto-creds-"));
  let broker: MosquittoProcess;
  try {
    makeCredentials(dir, username, password);
    broker = await startMosquitto({
      passwordFile: join(dir, "passwd"),
      tls: { caFile: join(dir, "ca.crt"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") },
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const creds = `${encodeURIComponent(username)}:${encodeURIComponent(password)}`;
  const caFile = join(dir, "ca.crt");
  return {
    tlsUrl: `mqtts://${creds}@127.0.0.1:${broker.tlsPort}?ca=${encodeURIComponent(caFile)}`,
    plainUrl: `mqtt://${creds}@127.0.0.1:${broker.port}`,
    username,
    password,
    caFile,
    async stop() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
