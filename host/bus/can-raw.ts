/**
 * Loads vgw's native raw CAN socket (host/bus/native/can_raw.c, built by `npm install` / scripts/setup.sh with
 * node-gyp) and types it. Only host/bus/socketcan.ts uses it. Loading also checks that the C side packs frames in the
 * packed record layout the TypeScript side reads (frame/packed.ts): a mismatch would garble every frame.
 */
import * as path from "node:path";
import { BusError } from "../../frame/errors";
import { FRAME_FLAG, PACKED_HEADER } from "../../frame/packed";

/** An open socket; opaque to JS. */
export type CanRawHandle = { readonly __canRawHandle: unique symbol };

export interface CanRaw {
  /**
   * Opens and binds a raw socket that receives nothing until `receive`; a `receiveBuffer` above 0 asks for that socket
   * buffer size (as candump -r). Throws an Error with `errno`, `syscall`.
   */
  open(iface: string, receiveOwn: boolean, receiveBuffer: number): CanRawHandle;
  /** The socket's receive buffer in bytes, as set (the kernel caps a request at net.core.rmem_max unless privileged). */
  receiveBuffer(h: CanRawHandle): number;
  /**
   * Sets the kernel filters (`[id, mask, ...]` in the kernel's form; empty = everything) and the error-frame mask, and
   * starts the receive thread. `onChunk` gets packed records (bus index 0); `onEnd` comes once, after the last chunk,
   * with 0 after `close` or the errno that ended receiving (ENETDOWN, ENODEV).
   */
  receive(h: CanRawHandle, filters: Uint32Array, errMask: number, onChunk: (chunk: ArrayBuffer, count: number, errorFrames: number) => void, onEnd: (errno: number) => void): void;
  /** One non-blocking write: 0, or the errno. `fdFlags` -1 sends a classic frame, else CANFD_BRS|CANFD_ESI bits. */
  send(h: CanRawHandle, canId: number, fdFlags: number, data: Uint8Array, remoteDlc: number): number;
  /**
   * Writes the frames in `frames` (struct canfd_frame slots of 72 bytes; `sizes[i]` is slot i's size on the wire,
   * CAN_MTU 16 or CANFD_MTU 72) with sendmmsg: returns how many were sent, or -errno when none was. Absent from a
   * module built before it (socketcan.ts then writes frame by frame).
   */
  sendBatch?(h: CanRawHandle, frames: Uint8Array, sizes: Uint8Array): number;
  /** [frames the kernel dropped for this socket (SO_MEMINFO), frames dropped because JS was too far behind]. */
  counters(h: CanRawHandle): [number, number];
  close(h: CanRawHandle): void;
  strerror(errno: number): string;
  readonly layout: { header: number; ext: number; rtr: number; fd: number; brs: number; esi: number; err: number };
}

/** How a module's packed layout differs from frame/packed.ts (`header 16 != 17`), or undefined when it agrees. */
export function layoutMismatch(layout: CanRaw["layout"]): string | undefined {
  const want: CanRaw["layout"] = { header: PACKED_HEADER, ...FRAME_FLAG };
  const diffs = (Object.keys(want) as Array<keyof CanRaw["layout"]>).filter((k) => layout[k] !== want[k]).map((k) => `${k} ${layout[k]} != ${want[k]}`);
  return diffs.length ? diffs.join(", ") : undefined;
}

/** Where node-gyp puts the module, from dist/host/bus/ or from host/bus/ (ts-node style runs). */
const CANDIDATES = [
  path.join(__dirname, "../../../host/bus/native/build/Release/vgw_can_raw.node"),
  path.join(__dirname, "native/build/Release/vgw_can_raw.node"),
];

let loaded: CanRaw | undefined;

export function loadCanRaw(): CanRaw {
  if (loaded) return loaded;
  let lastError: unknown;
  for (const file of CANDIDATES) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module is loaded with require
      const m = require(file) as CanRaw;
      const why = layoutMismatch(m.layout);
      if (why) throw new Error(`${file} packs frames differently from frame/packed.ts (${why}): rebuild it`);
      loaded = m;
      return m;
    } catch (e) {
      lastError = e;
      if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") break;
    }
  }
  throw new BusError("vgw's SocketCAN module (host/bus/native) is not built or does not load", "npm run build:native   (needs python3, make and a C compiler)", {
    cause: lastError,
  });
}
