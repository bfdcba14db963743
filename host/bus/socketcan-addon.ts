/**
 * The SocketCAN bus over the `socketcan` npm package (node-can): what stands in when vgw's own module
 * (host/bus/native) is not built, so a machine where it did not build still has a working `vgw` (socketcan.ts picks;
 * VGW_SOCKETCAN=addon forces it). The package's own socket, one per bus, sending and receiving.
 *
 * What it cannot do, compared with vgw's module (docs/socketcan.md has the measurements):
 * - it is slower: one system call and one JS object per received frame, on the main thread;
 * - on receive, an FD frame of 8 bytes or less looks classic, and BRS/ESI are lost (the package does not pass them);
 * - it sends no ESI, has no errno (a failed write is retried as a full queue, then diagnosed from /sys), no receive
 *   of own frames, no socket buffer size, and no kernel drop count.
 * Only this module and socketcan.ts open SocketCAN sockets.
 */
import type { Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusOptions } from "./bus";
import { CAN_ERR_MASK, kernelCanId, openError, toKernelFilters } from "./can-interface";
import { QUEUE_FULL, SocketCanBusBase } from "./socketcan-base";
import { log } from "../log";

/** A received frame as the package hands it over (its native can.cc). */
interface AddonMessage {
  id: number;
  ext?: boolean;
  rtr?: boolean;
  err?: boolean;
  data: Buffer;
  ts_sec?: number;
  ts_usec?: number;
}

interface AddonChannel {
  addListener(event: "onMessage", callback: (m: AddonMessage) => void): void;
  addListener(event: "onStopped", callback: () => void): void;
  start(): void;
  stop(): void;
  /** Returns the bytes written, or -1. */
  send(m: { id: number; ext?: boolean; rtr?: boolean; data: Buffer }): number;
  sendFD(m: { id: number; ext?: boolean; fd_brs?: boolean; data: Buffer }): number;
  setRxFilters(filters: Array<{ id: number; mask: number }>): void;
  setErrorFilters(mask: number): void;
}

interface Addon {
  createRawChannelWithOptions(name: string, options: { timestamps?: boolean; non_block_send?: boolean }): AddonChannel;
}

let addon: Addon | undefined;
let loadError: unknown;

function loadAddon(): Addon | undefined {
  if (addon || loadError) return addon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native package, loaded on demand
    addon = require("socketcan") as Addon;
  } catch (e) {
    loadError = e;
  }
  return addon;
}

/** Whether the `socketcan` package is installed and its native part loads. */
export function addonAvailable(): boolean {
  return loadAddon() !== undefined;
}

export class SocketCanAddonBus extends SocketCanBusBase {
  /** Whether received frames are kept: not on a `transmitOnly` bus until someone reads it. */
  private keeping = false;
  /** The package's receive thread ended (stop() or the interface went away); stop() must not be called again. */
  private stopped = false;

  constructor(
    name: string,
    private readonly channel: AddonChannel,
  ) {
    super(name);
    channel.addListener("onMessage", this.onMessage);
    // The package's receive thread stops by itself when the interface goes away (POLLHUP/POLLERR).
    channel.addListener("onStopped", () => {
      this.stopped = true;
      if (!this.closed) log.warn(`warning: ${this.name}: receiving stopped (the interface went away or down)`);
      this.queue.end();
    });
    // Always started, even on a transmit-only bus: the package closes its socket only when the channel is collected,
    // and a channel that was started and stopped holds nothing that keeps the process alive.
    channel.start();
  }

  /** Keeps received frames from now on (at open, or on first use for a `transmitOnly` bus). */
  startReceiving(): void {
    this.keeping = true;
  }

  private readonly onMessage = (m: AddonMessage): void => {
    if (!this.keeping) return;
    this.rx++;
    const rtr = m.rtr === true;
    const err = m.err === true;
    const frame: Frame = {
      id: m.id,
      ext: m.ext === true && !err,
      rtr,
      // The package hands over only the data: a frame longer than 8 bytes is the only FD frame it can recognise.
      fd: m.data.length > 8,
      brs: false,
      esi: false,
      err,
      data: rtr ? new Uint8Array(0) : new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.length),
      bus: this.name,
    };
    if (rtr) frame.dlc = m.data.length;
    if (m.ts_sec !== undefined) frame.t = m.ts_sec + (m.ts_usec ?? 0) / 1e6;
    if (err) this.errors.add(frame);
    this.queue.push(frame);
  };

  override async send(frame: Frame): Promise<void> {
    if (frame.esi) throw new BusError(`${this.name}: the socketcan package cannot send ESI`, "build vgw's own SocketCAN module: npm run build:native");
    return super.send(frame);
  }

  override async sendBatch(frames: readonly Frame[]): Promise<void> {
    if (frames.some((f) => f.esi)) throw new BusError(`${this.name}: the socketcan package cannot send ESI`, "build vgw's own SocketCAN module: npm run build:native");
    return super.sendBatch(frames);
  }

  /** One non-blocking write: 0, or QUEUE_FULL (the package returns -1 without the errno; a full queue is the usual cause). */
  protected write(frame: Frame): number {
    const data = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.length);
    const written = frame.fd
      ? this.channel.sendFD({ id: kernelCanId(frame), fd_brs: frame.brs, data })
      : this.channel.send({ id: kernelCanId(frame), data: frame.rtr ? Buffer.alloc(frame.dlc ?? 0) : data });
    return written >= 0 ? 0 : QUEUE_FULL;
  }

  protected strerror(): string {
    return "the socketcan package does not say why";
  }

  /** Stops receiving and closes the socket; frames received before stay readable. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.stopped) this.channel.stop();
    this.queue.end();
  }
}

export function openSocketCanAddonBus(iface: string, options: BusOptions): Bus {
  const a = loadAddon();
  if (!a) {
    throw new BusError("the socketcan package is not installed or does not load", "npm install (it builds with node-gyp: needs python3, make and a C compiler)", { cause: loadError });
  }
  if (options.receiveOwn) throw new BusError(`${iface}: receiving own frames needs vgw's own SocketCAN module`, "npm run build:native");
  if (options.receiveBuffer) log.warn(`warning: ${iface}: the socketcan package cannot size the socket receive buffer; --rcvbuf is ignored`);
  let channel: AddonChannel;
  try {
    channel = a.createRawChannelWithOptions(iface, { timestamps: true, non_block_send: true });
  } catch (e) {
    throw openError(iface, e as NodeJS.ErrnoException);
  }
  const filters = toKernelFilters(options.filters);
  // The kernel's form already carries the inversion in the id (CAN_INV_FILTER), so the package passes it on as is.
  const list: Array<{ id: number; mask: number }> = [];
  for (let i = 0; i < filters.length; i += 2) list.push({ id: filters[i], mask: filters[i + 1] });
  if (list.length) channel.setRxFilters(list);
  channel.setErrorFilters(CAN_ERR_MASK);
  const bus = new SocketCanAddonBus(iface, channel);
  if (!options.transmitOnly) bus.startReceiving();
  return bus;
}
