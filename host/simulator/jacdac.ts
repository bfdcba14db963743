/**
 * jacdac-ts, loaded the one way that works in CommonJS under Node: its websocket transport looks for a global
 * `WebSocket`, which Node 20 does not have, so the `ws` package is installed there first (`websocket-polyfill` crashes).
 */
import WebSocket from "ws";
import { log } from "../log";

/**
 * `ws` with its sends of one tick written to the socket together: the CanBus server sends a Jacdac packet (16 frames)
 * per websocket message, and one `write` system call per message was the largest CPU cost of the host process at
 * 100k frames/s (bench/gateway.ts, docs/performance.md). Corked until the event loop's next turn: the order is
 * unchanged and the delay a fraction of a millisecond.
 */
class CorkedWebSocket extends WebSocket {}
const send = WebSocket.prototype.send as (...args: unknown[]) => void;
(CorkedWebSocket.prototype as unknown as { send: (...args: unknown[]) => void }).send = function (
  this: WebSocket & { corked?: boolean; _socket?: import("node:net").Socket },
  ...args: unknown[]
): void {
  const sock = this._socket;
  if (sock && !this.corked) {
    this.corked = true;
    sock.cork();
    // setImmediate, not nextTick: the server awaits each send, and a nextTick runs between two of them
    setImmediate(() => {
      this.corked = false;
      sock.uncork();
    });
  }
  send.apply(this, args);
};

const g = globalThis as unknown as { WebSocket?: unknown };
if (!g.WebSocket) g.WebSocket = CorkedWebSocket;

// jacdac-ts reports its transport's life ("web: connecting") through console.debug, which Node writes to stdout,
// where vgw's data goes. Route it to the logger's debug level instead.
console.debug = (...args: unknown[]) => log.debug(args.map(String).join(" "));

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const jd = require("jacdac-ts") as typeof import("jacdac-ts");
