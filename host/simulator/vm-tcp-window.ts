/**
 * The firmware's socket in the simulator receives data as TCP segments, at most one every 10 ms, as the board's lwIP
 * stack hands it one segment per receive callback. Installed in the VM process by vm-preload.ts.
 *
 * Why: the DeviceScript CLI hands every chunk Node reads to the VM at once, and the runtime allocates each one as a
 * buffer in the program's 64 KB heap, and starts a fiber for it, before any firmware code runs. Two shapes of burst
 * exhausted the heap that way in the simulator although the board never receives more than a segment at a time
 * (ESP-IDF's default TCP_MSS is 1,440 bytes), and the firmware's own defence (a hard cap on received bytes waiting,
 * session.ts) never got to run:
 * - one large chunk (up to 64 KB per Node read): a burst of commands written at once, or one large message;
 * - many small chunks in a row: aedes writes each PUBLISH of a burst on its own, and Node handed 21 chunks of 178 B
 *   to the VM within 5 ms (measured), each a buffer and a fiber waiting for the VM's next turn. With the machine
 *   loaded more of them queued before that turn, and 2 of 9 runs of the burst test ran out of heap (Dec 5, two CPU
 *   hogs on the 2 cores).
 * So the VM gets at most one segment (the bytes received so far, up to 1,440, small chunks joined) per 10 ms; the
 * first after a quiet spell passes at once. While bytes wait here the socket is paused, so the rest waits in the
 * kernel (TCP flow control) as it does on the board. `end`/`close` follow the last byte.
 */
import type { Socket } from "node:net";

/** ESP-IDF's default TCP maximum segment size (CONFIG_LWIP_TCP_MSS). */
export const TCP_SEGMENT = 1440;
/**
 * Least time between two segments handed to the VM. The VM process runs the program from a timer that fires at least
 * every 5 ms while the gateway runs (its publisher waits 5 ms at most): 10 ms gives the firmware a turn between two
 * segments. Measured: with pieces of 5,744 bytes every 2 or 10 ms, bursts of 46 KB still ran the heap out (three
 * pieces queued are 17 KB, about what the gateway leaves free); 144 KB/s is plenty for commands and PUBACKs.
 */
export const SEGMENT_GAP_MS = 10;

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export function paceReceivedData(sock: Socket, window = TCP_SEGMENT): void {
  const emit: Emit = sock.emit.bind(sock);
  /** Received bytes not yet handed to the VM, and the `end`/`close` that must follow them, in order. */
  const queue: Array<{ event: string | symbol; args: unknown[] }> = [];
  /** A segment went to the VM less than SEGMENT_GAP_MS ago: what arrives now waits in `queue`. */
  let pacing = false;

  /** Up to `window` bytes from the data at the queue's front, small chunks joined. */
  const segment = (): Buffer => {
    const parts: Buffer[] = [];
    let n = 0;
    while (n < window && queue.length > 0 && queue[0].event === "data") {
      const buf = queue[0].args[0] as Buffer;
      const take = Math.min(buf.length, window - n);
      parts.push(buf.subarray(0, take));
      n += take;
      if (take < buf.length) queue[0].args[0] = buf.subarray(take);
      else queue.shift();
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  };

  const step = (): void => {
    while (queue.length > 0 && queue[0].event !== "data") {
      const { event, args } = queue.shift()!;
      emit(event, ...args);
    }
    if (queue.length === 0) {
      pacing = false;
      if (!sock.destroyed) sock.resume();
      return;
    }
    emit("data", segment());
    // a timer, not setImmediate: the VM runs its fibers from timers, and the firmware must get to read (and to
    // drop a flooding connection) between two segments, as it does on the board
    setTimeout(step, SEGMENT_GAP_MS);
  };

  sock.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    // errors and the rest are not data: they pass at once
    if (event !== "data" && event !== "end" && event !== "close") return emit(event, ...args);
    if (!pacing && event !== "data") return emit(event, ...args);
    queue.push({ event, args });
    if (!pacing) {
      pacing = true;
      step();
    }
    if (queue.length > 0) sock.pause();
    return true;
  }) as typeof sock.emit;
}
