/**
 * TCP probes on the local machine, shared by everything that starts a server and waits for it: the simulator runner,
 * the HIL brokers, the test brokers and the gateway benchmark.
 */
import { connect, createServer, type AddressInfo } from "node:net";

/** A TCP port on 127.0.0.1 that was free a moment ago, for a server that is started with its port given. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** True when something accepts a TCP connection on host:port now (the connection is closed at once). */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
