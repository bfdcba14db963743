/**
 * The firmware's socket in the simulator receives data in pieces no larger than the ESP32's TCP receive window, one
 * piece every 2 ms, as the board's lwIP stack delivers it. Installed in the VM process by vm-preload.ts.
 *
 * Why: the DeviceScript CLI hands every chunk Node reads (up to 64 KB) to the VM as one buffer, allocated in the
 * program's 64 KB heap before any firmware code runs. A burst of commands or one large message then exhausts the heap
 * in the simulator although the board never receives more than a window at a time (lwIP's TCP_WND, 5,744 bytes in the
 * ESP32 runtime's default configuration), and the firmware's own defence (a hard cap on received bytes waiting,
 * session.ts) never gets to run. Chunks of at most a window pass through untouched; larger ones are split, the
 * socket is paused while the pieces are delivered, and `end`/`close` wait for the last piece.
 */
import type { Socket } from "node:net";

/** lwIP's default TCP receive window in the ESP32 runtime (CONFIG_LWIP_TCP_WND_DEFAULT). */
export const TCP_WINDOW = 5744;
/** Between two pieces: at most a window per 2 ms (2.8 MB/s) for chunks larger than a window; smaller ones pass at once. */
const PIECE_GAP_MS = 2;

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export function paceReceivedData(sock: Socket, window = TCP_WINDOW): void {
  const emit: Emit = sock.emit.bind(sock);
  const queue: Array<{ event: string | symbol; args: unknown[] }> = [];
  let draining = false;

  const step = (): void => {
    const next = queue[0];
    if (!next) {
      draining = false;
      if (!sock.destroyed) sock.resume();
      return;
    }
    if (next.event === "data") {
      const buf = next.args[0] as Buffer;
      if (buf.length > window) next.args[0] = buf.subarray(window);
      else queue.shift();
      emit("data", buf.subarray(0, window));
    } else {
      queue.shift();
      emit(next.event, ...next.args);
    }
    // a timer, not setImmediate: the VM runs its fibers from timers, and the firmware must get to read (and to
    // drop a flooding connection) between two pieces, as it does between two TCP segments on the board
    setTimeout(step, PIECE_GAP_MS);
  };

  sock.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    const big = event === "data" && (args[0] as Buffer).length > window;
    if (!draining && !big) return emit(event, ...args);
    if (draining && event !== "data" && event !== "end" && event !== "close") return emit(event, ...args);
    queue.push({ event, args });
    if (!draining) {
      draining = true;
      sock.pause();
      step();
    }
    return true;
  }) as typeof sock.emit;
}
