/**
 * The firmware's socket in the simulator receives a large chunk as TCP segments, one every 10 ms, as the board's
 * lwIP stack hands it one segment per receive callback. Installed in the VM process by vm-preload.ts.
 *
 * Why: the DeviceScript CLI hands every chunk Node reads (up to 64 KB) to the VM as one buffer, allocated in the
 * program's 64 KB heap before any firmware code runs. A burst of commands or one large message then exhausts the heap
 * in the simulator although the board never receives more than a segment at a time (ESP-IDF's default TCP_MSS is
 * 1,440 bytes), and the firmware's own defence (a hard cap on received bytes waiting, session.ts) never gets to run.
 * Chunks of at most a segment pass through untouched; larger ones are split, the socket is paused while the pieces
 * are delivered, and `end`/`close` wait for the last piece.
 */
import type { Socket } from "node:net";

/** ESP-IDF's default TCP maximum segment size (CONFIG_LWIP_TCP_MSS). */
export const TCP_SEGMENT = 1440;
/**
 * Between two pieces of a chunk larger than a segment (smaller ones pass at once). The VM process runs the program
 * from a timer that fires at least every 5 ms while the gateway runs (its publisher waits 5 ms at most): 10 ms gives
 * the firmware a turn between two pieces. Measured: with pieces of 5,744 bytes every 2 or 10 ms, bursts of 46 KB still
 * ran the heap out (three pieces queued are 17 KB, about what the gateway leaves free); 144 KB/s is plenty for
 * commands and PUBACKs.
 */
const PIECE_GAP_MS = 10;

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export function paceReceivedData(sock: Socket, window = TCP_SEGMENT): void {
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
