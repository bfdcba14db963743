/**
 * Bus: the one abstraction every CAN source and sink in vgw implements (python-can's BusABC model).
 * Implementations: SocketCAN (`can0`, `vcan0`; over vgw's raw CAN socket, host/bus/native), virtual (`virtual:name`,
 * in-process), simulated gateway (`sim`: the CanBus service hosted for the firmware in the DeviceScript simulator),
 * MQTT (`mqtt://host/device`: a remote gateway seen through the broker). `openBus(spec)` picks one by the spec string.
 */
import type { Frame } from "../../frame/frame";
import type { PackedBatch } from "../../frame/packed";

/**
 * What a bus counted since it opened, for summaries. Every bus counts frames both ways and the received frames it
 * dropped itself; the rest only where the bus can know it (SocketCAN: the kernel's and the interface's drops).
 */
export interface BusCounters {
  /** Frames received. */
  rx: number;
  /** Frames sent. */
  tx: number;
  /** Received frames vgw dropped because the reader fell behind (a bounded receive queue was full). */
  queueDropped: number;
  /** Sends retried because the driver's transmit queue was full. */
  txRetries?: number;
  /** Sends that failed after their retries. */
  txFailed?: number;
  /** Error frames received, and how many of them reported bus-off. */
  errorFrames?: number;
  busOff?: number;
  /** Frames the kernel dropped for this socket: its receive buffer was full (SocketCAN's SO_MEMINFO). */
  socketDropped?: number;
  /** Frames the interface dropped (its rx_dropped statistic) since the bus opened. */
  interfaceRxDropped?: number;
}

/**
 * Packed receive: every chunk the driver received, as packed records (frame/packed.ts), with how many of them are
 * error frames. Runs in the driver's callback, so it must not throw.
 */
export type PackedListener = (batch: PackedBatch, errorFrames: number) => void;

export interface Bus extends AsyncIterable<Frame> {
  /** The spec it was opened with, e.g. `vcan0`. */
  readonly name: string;
  /** Sends one frame; rejects with BusError when the bus cannot take it. */
  send(frame: Frame): Promise<void>;
  /**
   * Optional: sends frames in this order as one burst, without a promise and an event-loop turn per frame (the ISO-TP
   * sender's consecutive frames). Same checks and errors as send(); frames before a failing one have been sent.
   */
  sendBatch?(frames: readonly Frame[]): Promise<void>;
  /** Stops receiving; pending iterators end. Idempotent. */
  close(): Promise<void>;
  /**
   * Received frames in bursts, as the driver delivered them: one promise per burst instead of one per frame, for
   * readers on the receive hot path. Optional; do not mix with the per-frame iterator on the same bus.
   */
  batches?(): AsyncIterable<Frame[]>;
  /** What the bus counted so far; still readable after close(). */
  counters(): BusCounters;
  /**
   * Optional: hands every chunk received from now on to `listener` packed, as the driver delivered it, instead of as
   * Frame objects (`vgw record` passes them to its writer thread untouched). Iteration and `batches()` then deliver
   * nothing and end when the bus closes. Only a bus whose driver receives packed (native SocketCAN) has it.
   */
  listenPacked?(listener: PackedListener): void;
}

export type BusOpener = (spec: string, options: BusOptions) => Promise<Bus>;

export interface BusOptions {
  /** Receive own transmitted frames too (SocketCAN loopback). */
  receiveOwn?: boolean;
  /** Kernel or in-process acceptance filters. */
  filters?: BusFilter[];
  /**
   * The bus is only sent on (replay, send): a bus receives from the moment it is open, unless this is set; then a
   * SocketCAN bus opens no receive path until someone iterates it, and nothing piles up unread.
   */
  transmitOnly?: boolean;
  /**
   * SocketCAN: the kernel socket buffer to ask for, in bytes (candump -r). A bigger one absorbs longer bursts; the
   * kernel caps it at net.core.rmem_max unless the process may override that (CAP_NET_ADMIN).
   */
  receiveBuffer?: number;
}

/** Accept when (frame.id & mask) === (id & mask); `invert` accepts everything else; `ext` restricts to 29-bit frames. */
export interface BusFilter {
  id: number;
  mask: number;
  ext?: boolean;
  invert?: boolean;
}

/** Registry of bus kinds, keyed by the spec's prefix (`virtual:`, `sim`, `mqtt:`); a bare name is a SocketCAN interface. */
const openers = new Map<string, BusOpener>();

export function registerBus(prefix: string, opener: BusOpener): void {
  openers.set(prefix, opener);
}

/**
 * A prefix that ends in `:` or `/` (`virtual:`, `mqtt://`) takes every spec that starts with it; a bare word (`sim`)
 * takes only itself and itself with a query (`sim?broker=...`), so an interface named `simcan0` still goes to SocketCAN.
 */
function takes(prefix: string, spec: string): boolean {
  if (prefix.endsWith(":") || prefix.endsWith("/")) return spec.startsWith(prefix);
  return spec === prefix || spec.startsWith(prefix + "?");
}

export async function openBus(spec: string, options: BusOptions = {}): Promise<Bus> {
  for (const [prefix, opener] of openers) {
    if (prefix !== "" && takes(prefix, spec)) return opener(spec, options);
  }
  const fallback = openers.get("");
  if (!fallback) throw new Error(`no bus kind handles '${spec}'`);
  return fallback(spec, options);
}
