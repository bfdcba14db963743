/**
 * SocketCAN bus (`can0`, `vcan0`, any Linux CAN netdev) over the `socketcan` addon (node-can 4.0.7). This is the only
 * module that imports `socketcan`.
 *
 * What the addon gives, and how the gaps are bridged (details in docs/socketcan.md):
 * - classic, extended, remote and error frames both ways; CAN FD sending with BRS; receive timestamps (SIOCGSTAMP, us).
 * - FD on receive: the addon hands over data bytes only, not the FD flag nor BRS/ESI. A frame with more than 8 bytes is
 *   known to be FD; an FD frame of 8 bytes or less is indistinguishable from a classic one. ESI cannot be sent.
 * - remote frames: the addon returns the requested length as that many data bytes; we turn it back into `dlc`.
 * - errors: the addon reports no errno at all ("Error while creating channel", send() == -1), so each failure is
 *   diagnosed from /proc and /sys (missing interface, not CAN, down, no AF_CAN, FD on a classic interface).
 * - own frames: the addon cannot set CAN_RAW_RECV_OWN_MSGS, so `receiveOwn` sends through a second socket whose frames
 *   this socket then receives through the kernel's loopback, which is exactly what RECV_OWN_MSGS delivers.
 * - kernel drops: SO_RXQ_OVFL is not exposed; the interface's rx_dropped counter (sysfs) is reported instead.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Frame } from "../../can-db/frame";
import { CAN_ERR_FLAG, isValidFdLength } from "../../can-db/frame";
import { BusError } from "../../can-db/errors";
import type { Bus, BusFilter, BusOptions } from "./bus";
import { CAN_EFF_FLAG } from "./filter";
import { RxQueue } from "./rx-queue";
import { ErrorCounters } from "./error-frame";
import { log } from "../log";

/** The slice of the addon's RawChannel this module uses (its own typings reference an unresolvable module). */
interface AddonMessage {
  id: number;
  ext?: boolean;
  rtr?: boolean;
  err?: boolean;
  data: Buffer;
  ts_sec?: number;
  ts_usec?: number;
  fd_brs?: boolean;
}
interface AddonChannel {
  addListener(event: "onMessage" | "onStopped", cb: (msg: AddonMessage) => void): void;
  start(): void;
  stop(): void;
  send(msg: AddonMessage): number;
  sendFD(msg: AddonMessage): number;
  setRxFilters(filters: Array<{ id: number; mask: number; invert: boolean }>): void;
}
interface Addon {
  createRawChannelWithOptions(name: string, options: { timestamps?: boolean; non_block_send?: boolean }): AddonChannel;
}

const ARPHRD_CAN = 280;
const IFF_UP = 0x1;
const CANFD_MTU = 72;
/** A full TX queue is retried this many times, waiting 1, 2, 4 ... ms (about 0.5 s in all) before giving up. */
const TX_RETRIES = 9;
const EMPTY = new Uint8Array(0);

function sysfs(iface: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${iface}/${file}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

function isVirtual(iface: string): boolean {
  return iface.startsWith("vcan") || sysfs(iface, "device") === undefined;
}

function upHint(iface: string): string {
  return isVirtual(iface) && iface.startsWith("vcan")
    ? `sudo ip link set ${iface} up`
    : `sudo ip link set ${iface} up type can bitrate 500000`;
}

function kernelHasCan(): boolean | undefined {
  try {
    return /^CAN_RAW\b/m.test(readFileSync("/proc/net/protocols", "utf8"));
  } catch {
    return undefined;
  }
}

/** Why an interface cannot be used, as a BusError with the command that fixes it; undefined when it looks usable. */
export function diagnoseInterface(iface: string): BusError | undefined {
  if (!existsSync(`/sys/class/net/${iface}`)) {
    if (kernelHasCan() === false) {
      return new BusError(
        `no CAN interface '${iface}', and this kernel has no SocketCAN (AF_CAN) loaded`,
        `sudo modprobe can_raw   (the kernel needs CONFIG_CAN and CONFIG_CAN_RAW; then create or plug the interface)`,
      );
    }
    const hint = iface.startsWith("vcan")
      ? `sudo modprobe vcan && sudo ip link add dev ${iface} type vcan && sudo ip link set ${iface} up`
      : `list interfaces with 'ip -br link'; a USB adapter appears as can0 once plugged in`;
    return new BusError(`no network interface '${iface}'`, hint);
  }
  const type = Number(sysfs(iface, "type"));
  if (type !== ARPHRD_CAN) return new BusError(`'${iface}' is not a CAN interface (link type ${type})`, "list CAN interfaces with 'ip -br link show type can'");
  const flags = Number(sysfs(iface, "flags"));
  if (!(flags & IFF_UP)) return new BusError(`CAN interface '${iface}' is down`, upHint(iface));
  return undefined;
}

let addonPromise: Promise<Addon> | undefined;
function loadAddon(): Promise<Addon> {
  // Loaded on first use, so hosts where the native addon did not build can still run every other bus kind.
  addonPromise ??= import("socketcan").then(
    (m) => m as unknown as Addon,
    (e: unknown) => {
      addonPromise = undefined;
      throw new BusError("the socketcan addon is not available", "npm rebuild socketcan (needs python3, make and a C++ compiler)", { cause: e });
    },
  );
  return addonPromise;
}

function openChannel(addon: Addon, iface: string): AddonChannel {
  try {
    return addon.createRawChannelWithOptions(iface, { timestamps: true, non_block_send: true });
  } catch (e) {
    const why = diagnoseInterface(iface);
    if (why) throw why;
    if (kernelHasCan() === false) {
      throw new BusError(`cannot open a CAN socket on '${iface}': this kernel has no SocketCAN (AF_CAN)`, "sudo modprobe can_raw", { cause: e });
    }
    throw new BusError(
      `cannot open a raw CAN socket on '${iface}' although the interface exists and is up: most likely a permission or sandbox restriction`,
      "run outside the container/sandbox, or as a user allowed to create AF_CAN sockets",
      { cause: e },
    );
  }
}

/** Kernel filter form: flag bits in id/mask select 11- or 29-bit frames (see filter.ts). */
function toKernelFilter(f: BusFilter): { id: number; mask: number; invert: boolean } {
  let id = f.id >>> 0;
  let mask = f.mask >>> 0;
  if (f.ext !== undefined) {
    mask = (mask | CAN_EFF_FLAG) >>> 0;
    if (f.ext) id = (id | CAN_EFF_FLAG) >>> 0;
  }
  return { id, mask, invert: f.invert ?? false };
}

export class SocketCanBus implements Bus {
  private readonly queue = new RxQueue();
  private listener: ((frame: Frame) => void) | undefined;
  private closed = false;
  private readonly fdCapable: boolean;
  private readonly rxDroppedAtOpen: number;
  readonly errors = new ErrorCounters();
  rx = 0;
  tx = 0;
  txRetries = 0;
  txFailed = 0;

  constructor(
    readonly name: string,
    private readonly rxChannel: AddonChannel,
    private readonly txChannel: AddonChannel,
  ) {
    this.fdCapable = Number(sysfs(name, "mtu")) === CANFD_MTU;
    this.rxDroppedAtOpen = Number(sysfs(name, "statistics/rx_dropped") ?? 0);
    rxChannel.addListener("onMessage", (msg) => this.onMessage(msg));
    rxChannel.addListener("onStopped", () => {
      if (!this.closed) log.warn(`warning: ${name}: the interface stopped delivering frames (went away or reported an error)`);
      this.queue.end();
    });
    rxChannel.start();
    if (txChannel !== rxChannel) txChannel.start();
  }

  /**
   * The receive hot path. Frames come from the kernel, so they are built as plain objects without makeFrame's
   * validation (it would cost more than the rest of the path); the addon's fresh Buffer is used as the data as is.
   */
  private onMessage(msg: AddonMessage): void {
    const t = msg.ts_sec !== undefined ? msg.ts_sec + (msg.ts_usec ?? 0) / 1e6 : Date.now() / 1000;
    const data = msg.data;
    let frame: Frame;
    if (msg.err) {
      frame = { id: (msg.id & ~CAN_ERR_FLAG) >>> 0, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data, t, bus: this.name };
      this.errors.add(frame);
    } else if (msg.rtr) {
      frame = { id: msg.id, ext: !!msg.ext, rtr: true, fd: false, brs: false, esi: false, err: false, data: EMPTY, dlc: Math.min(data.length, 8), t, bus: this.name };
    } else {
      frame = { id: msg.id, ext: !!msg.ext, rtr: false, fd: data.length > 8, brs: false, esi: false, err: false, data, t, bus: this.name };
    }
    this.rx++;
    if (this.listener) this.listener(frame);
    else this.queue.push(frame);
  }

  /**
   * Hands every frame received from now on to `listener`, synchronously in the addon's receive callback, instead of
   * queueing it for iteration. For a consumer whose work per frame is a few stores (vgw record packs each frame for
   * its writer thread): it saves the queue, the wake-up and the async iteration per burst, which under an emulated CPU
   * decide whether the socket's buffer overflows. `batches()` and iteration still yield what was queued before and
   * end when the bus closes or stops. The listener must not throw (it runs inside the addon's callback).
   */
  listen(listener: (frame: Frame) => void): void {
    this.listener = listener;
  }

  async send(frame: Frame): Promise<void> {
    if (this.closed) throw new BusError(`${this.name} is closed`);
    if (frame.fd && !this.fdCapable) {
      throw new BusError(
        `${this.name} is not in CAN FD mode, cannot send the FD frame`,
        this.name.startsWith("vcan")
          ? `sudo ip link set ${this.name} mtu 72`
          : `sudo ip link set ${this.name} down && sudo ip link set ${this.name} up type can bitrate 500000 dbitrate 2000000 fd on`,
      );
    }
    if (frame.fd && !isValidFdLength(frame.data.length)) throw new BusError(`CAN FD length ${frame.data.length} is not valid`);
    if (frame.esi) log.debug(`${this.name}: the ESI flag cannot be sent through the socketcan addon; sent without it`);
    for (let attempt = 0; ; attempt++) {
      if (this.transmit(frame)) {
        this.tx++;
        return;
      }
      if (attempt >= TX_RETRIES) break;
      // ENOBUFS: the driver's queue is full (a busy or unacknowledged bus). Back off and retry, counting each retry.
      this.txRetries++;
      await new Promise((resolve) => setTimeout(resolve, 1 << attempt));
    }
    this.txFailed++;
    throw diagnoseInterface(this.name) ??
      new BusError(
        `${this.name}: transmit queue full (ENOBUFS) for 0.5 s; is another node acknowledging frames and is the bitrate right?`,
        `check 'ip -details -statistics link show ${this.name}'; a longer queue helps bursts: sudo ip link set ${this.name} txqueuelen 1000`,
      );
  }

  /** One non-blocking write; false when the kernel refused it (the addon hides errno). */
  private transmit(frame: Frame): boolean {
    const ch = this.txChannel;
    if (frame.fd) return ch.sendFD({ id: frame.id, ext: frame.ext, fd_brs: frame.brs, data: Buffer.from(frame.data) }) > 0;
    if (frame.err) return ch.send({ id: (frame.id | CAN_ERR_FLAG) >>> 0, data: Buffer.from(frame.data) }) > 0;
    if (frame.rtr) return ch.send({ id: frame.id, ext: frame.ext, rtr: true, data: Buffer.alloc(frame.dlc ?? 0) }) > 0;
    return ch.send({ id: frame.id, ext: frame.ext, data: Buffer.from(frame.data) }) > 0;
  }

  counters(): Record<string, number> {
    const rxDropped = Number(sysfs(this.name, "statistics/rx_dropped") ?? this.rxDroppedAtOpen) - this.rxDroppedAtOpen;
    return {
      rx: this.rx,
      tx: this.tx,
      txRetries: this.txRetries,
      txFailed: this.txFailed,
      errorFrames: this.errors.total,
      busOff: this.errors.busOff,
      queueDropped: this.queue.dropped,
      interfaceRxDropped: rxDropped,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rxChannel.stop();
    if (this.txChannel !== this.rxChannel) this.txChannel.stop();
    this.queue.end();
  }

  batches(): AsyncIterable<Frame[]> {
    return this.queue.batches();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.queue[Symbol.asyncIterator]();
  }
}

export async function openSocketCanBus(spec: string, options: BusOptions): Promise<Bus> {
  const iface = spec;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface)) throw new BusError(`'${spec}' is not an interface name`, "e.g. -i can0 or -i vcan0");
  const why = diagnoseInterface(iface);
  if (why) throw why;
  const addon = await loadAddon();
  const rx = openChannel(addon, iface);
  if (options.filters && options.filters.length > 0) rx.setRxFilters(options.filters.map(toKernelFilter));
  const tx = options.receiveOwn ? openChannel(addon, iface) : rx;
  return new SocketCanBus(iface, rx, tx);
}
