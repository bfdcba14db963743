/**
 * Preloaded into the simulator's VM process (`node --require`, host/simulator/simulator.ts): every socket the VM
 * opens (the firmware's MQTT connection, TCP or TLS) receives data a TCP window at a time (vm-tcp-window.ts says why).
 * Never imported by library code: it replaces `net.createConnection` and `tls.connect` for the whole process.
 */
// default imports: the module objects themselves, whose functions the CLI's `require("net")` then sees replaced
import net from "node:net";
import tls from "node:tls";
import { paceReceivedData } from "./vm-tcp-window";

const createConnection = net.createConnection;
(net as { createConnection: unknown }).createConnection = function (...args: unknown[]): net.Socket {
  const sock = (createConnection as (...a: unknown[]) => net.Socket).apply(net, args);
  paceReceivedData(sock);
  return sock;
};
const tlsConnect = tls.connect;
(tls as { connect: unknown }).connect = function (...args: unknown[]): tls.TLSSocket {
  const sock = (tlsConnect as (...a: unknown[]) => tls.TLSSocket).apply(tls, args);
  paceReceivedData(sock);
  return sock;
};
