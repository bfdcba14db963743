/**
 * Preloaded into the simulator's VM process (`node --require`, host/simulator/simulator.ts): the program's socket
 * (the firmware's MQTT connection, TCP or TLS) receives data a TCP segment at a time (vm-tcp-window.ts says why).
 * Never imported by library code: it replaces `net.createConnection` and `tls.connect` for the whole process.
 */
// default imports: the module objects themselves, whose functions the CLI's `require("net")` then sees replaced
import net from "node:net";
import tls from "node:tls";
import { paceReceivedData } from "./vm-tcp-window";

/**
 * Only the program's own sockets are paced: the CLI opens them with an options object (`{ host, port }`). The VM's
 * link to the devtools server (ports 8081-8083, the Jacdac bus carrying the CAN frames) must stay as fast as it is.
 */
function isProgramSocket(args: unknown[]): boolean {
  const o = args[0] as { port?: unknown } | undefined;
  if (!o || typeof o !== "object") return false;
  const port = Number(o.port);
  return !(port >= 8081 && port <= 8083);
}

const createConnection = net.createConnection;
(net as { createConnection: unknown }).createConnection = function (...args: unknown[]): net.Socket {
  const sock = (createConnection as (...a: unknown[]) => net.Socket).apply(net, args);
  if (isProgramSocket(args)) paceReceivedData(sock);
  return sock;
};
const tlsConnect = tls.connect;
(tls as { connect: unknown }).connect = function (...args: unknown[]): tls.TLSSocket {
  const sock = (tlsConnect as (...a: unknown[]) => tls.TLSSocket).apply(tls, args);
  if (isProgramSocket(args)) paceReceivedData(sock);
  return sock;
};
