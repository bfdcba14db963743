/**
 * jacdac-ts, loaded the one way that works in CommonJS under Node: its websocket transport looks for a global
 * `WebSocket`, which Node 20 does not have, so the `ws` package is installed there first (`websocket-polyfill` crashes).
 */
import WebSocket from "ws";
import { log } from "../log";

const g = globalThis as unknown as { WebSocket?: unknown };
if (!g.WebSocket) g.WebSocket = WebSocket;

// jacdac-ts reports its transport's life ("web: connecting") through console.debug, which Node writes to stdout,
// where vgw's data goes. Route it to the logger's debug level instead.
console.debug = (...args: unknown[]) => log.debug(args.map(String).join(" "));

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const jd = require("jacdac-ts") as typeof import("jacdac-ts");
