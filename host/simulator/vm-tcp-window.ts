/**
 * The firmware's socket in the simulator receives data at most a TCP segment's worth (1,440 B, in at most four pieces)
 * every 10 ms, as the board's lwIP stack hands it a segment per receive callback. Installed in the VM process by
 * vm-preload.ts.
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
 * So what reaches the VM is budgeted per gap of 10 ms: at most 1,440 B in at most four pieces. Within the budget a
 * chunk passes at once, so the PUBACKs the gateway waits for (one every few ms, a few bytes each) are not delayed:
 * delaying every chunk after the first by up to a gap filled the gateway's 12 KB outbox with unacknowledged batches
 * under load (2 of 14 loaded runs of the 15k frames/s end-to-end test dropped frames). Beyond the budget, what arrives
 * waits here, joined, and goes as one segment per gap; meanwhile the socket is paused, so the rest waits in the
 * kernel (TCP flow control) as it does on the board. `end`/`close` follow the last byte.
 */
import type { Socket } from "node:net";

/** ESP-IDF's default TCP maximum segment size (CONFIG_LWIP_TCP_MSS): the bytes the VM gets per gap. */
export const TCP_SEGMENT = 1440;
/** The pieces (each a buffer and a fiber in the VM's heap) the VM gets per gap. */
export const PIECES_PER_GAP = 4;
/**
 * The budget's period. The VM process runs the program from a timer that fires at least every 5 ms while the gateway
 * runs (its publisher waits 5 ms at most): 10 ms gives the firmware a turn between two budgets. Measured: with pieces
 * of 5,744 bytes every 2 or 10 ms, bursts of 46 KB still ran the heap out (three pieces queued are 17 KB, about what
 * the gateway leaves free); 144 KB/s is plenty for commands and PUBACKs.
 */
export const SEGMENT_GAP_MS = 10;

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export function paceReceivedData(sock: Socket, window = TCP_SEGMENT, piecesPerGap = PIECES_PER_GAP): void {
  const emit: Emit = sock.emit.bind(sock);
  /** Received bytes not yet handed to the VM, and the `end`/`close` that must follow them, in order. */
  const queue: Array<{ event: string | symbol; args: unknown[] }> = [];
  /** The current gap's timer; none after a quiet spell, when the next chunk starts a gap. */
  let gap: NodeJS.Timeout | undefined;
  /** What the VM got in the current gap (nothing after a quiet spell). */
  let bytes = 0;
  let pieces = 0;
  let paused = false;

  const give = (buf: Buffer): void => {
    if (!gap) gap = setTimeout(endGap, SEGMENT_GAP_MS);
    bytes += buf.length;
    pieces++;
    emit("data", buf);
  };

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

  /** The queue's front: its `end`/`close` if no data precedes them, else one joined segment, which starts a gap. */
  const next = (): void => {
    while (queue.length > 0 && queue[0].event !== "data") {
      const { event, args } = queue.shift()!;
      emit(event, ...args);
    }
    if (queue.length > 0) give(segment());
    if (queue.length === 0 && paused && !sock.destroyed) {
      paused = false;
      sock.resume();
    }
  };

  // a timer, not setImmediate: the VM runs its fibers from timers, and the firmware must get to read (and to drop a
  // flooding connection) between two budgets, as it does between two TCP segments on the board
  function endGap(): void {
    gap = undefined;
    bytes = pieces = 0;
    next();
  }

  sock.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    // errors and the rest are not data: they pass at once
    if (event !== "data" && event !== "end" && event !== "close") return emit(event, ...args);
    if (queue.length === 0) {
      if (event !== "data") return emit(event, ...args);
      const buf = args[0] as Buffer;
      if (pieces < piecesPerGap && bytes + buf.length <= window) {
        give(buf);
        return true;
      }
    }
    queue.push({ event, args });
    if (!paused) {
      paused = true;
      sock.pause();
    }
    // after a quiet spell the first segment goes at once
    if (!gap) next();
    return true;
  }) as typeof sock.emit;
}
