/**
 * SocketCAN bus (`can0`, `vcan0`, any Linux CAN netdev) over vgw's own raw CAN socket (host/bus/native/can_raw.c,
 * loaded by can-raw.ts): one socket per bus, as candump and cansend use, for sending and receiving.
 *
 * - classic, extended, remote and error frames both ways; CAN FD both ways with BRS and ESI, an FD frame of 8 bytes or
 *   less included (the kernel hands over the frame's size); receive timestamps (SO_TIMESTAMP, microseconds as candump).
 * - receiving runs on the module's own thread, many frames per system call, and arrives here as packed chunks
 *   (frame/packed.ts layout): `vgw record` forwards them to its writer untouched (`listenPacked`), every
 *   other reader gets Frame objects.
 * - own frames: CAN_RAW_RECV_OWN_MSGS with `receiveOwn`; other sockets on the host always see them (kernel loopback).
 * - errors carry errno; each failure is also diagnosed from /proc and /sys (missing interface, not CAN, down, no AF_CAN,
 *   FD on a classic interface) with the command that fixes it.
 * - drops: the kernel's count for this socket (SO_MEMINFO), the interface's rx_dropped, and anything vgw dropped.
 * The `socketcan` npm addon this replaced is kept as a reference in the tests and the receive benchmark; why it was
 * replaced is in docs/socketcan.md.
 */
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import type { Frame } from "../../frame/frame";
import { CAN_EFF_MASK, CAN_ERR_FLAG, isValidFdLength } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusCounters, BusFilter, BusOptions, PackedListener } from "./bus";
import { CAN_EFF_FLAG, CAN_RTR_FLAG } from "./filter";
import { loadCanRaw, type CanRaw, type CanRawHandle } from "./can-raw";
import { unpackFrames, type PackedBatch } from "../../frame/packed";
import { RxQueue } from "./rx-queue";
import { ErrorCounters } from "../../frame/error-frame";
import { log } from "../log";

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

const CANFD_BRS = 0x01;
const CANFD_ESI = 0x02;
/** Every error class (can-utils' CAN_ERR_MASK): error frames are received and counted whatever the id filters say. */
const CAN_ERR_MASK = 0x1fffffff;
const { EAFNOSUPPORT, EPERM, EACCES, ENETDOWN, ENOBUFS, EAGAIN } = constants.errno;

/** Why a socket could not be opened on an interface that /sys says exists and is up. */
function openError(iface: string, e: NodeJS.ErrnoException & { syscall?: string }): BusError {
  const why = diagnoseInterface(iface);
  if (why) return why;
  if (e.errno === EAFNOSUPPORT || kernelHasCan() === false) {
    return new BusError(`cannot open a CAN socket on '${iface}': this kernel has no SocketCAN (AF_CAN)`, "sudo modprobe can_raw", { cause: e });
  }
  if (e.errno === EPERM || e.errno === EACCES) {
    return new BusError(
      `no permission to open a raw CAN socket on '${iface}' (${e.message})`,
      "run outside the container/sandbox, or as a user allowed to create AF_CAN sockets",
      { cause: e },
    );
  }
  return new BusError(`cannot open a raw CAN socket on '${iface}': ${e.message}`, undefined, { cause: e });
}

/** Kernel filter form: flag bits in id/mask select 11- or 29-bit frames (see filter.ts); CAN_INV_FILTER inverts. */
function toKernelFilters(filters: readonly BusFilter[] | undefined): Uint32Array {
  const out = new Uint32Array((filters?.length ?? 0) * 2);
  filters?.forEach((f, i) => {
    let id = f.id >>> 0;
    let mask = f.mask >>> 0;
    if (f.ext !== undefined) {
      mask = (mask | CAN_EFF_FLAG) >>> 0;
      if (f.ext) id = (id | CAN_EFF_FLAG) >>> 0;
    }
    if (f.invert) id = (id | CAN_ERR_FLAG) >>> 0; // CAN_INV_FILTER has the same bit as CAN_ERR_FLAG
    out[2 * i] = id;
    out[2 * i + 1] = mask;
  });
  return out;
}

export class SocketCanBus implements Bus {
  private readonly queue = new RxQueue();
  private packedListener: PackedListener | undefined;
  private receiving = false;
  private closed = false;
  /** Resolves when the receive thread has delivered its last chunk. */
  private readonly ended: Promise<void>;
  private markEnded: () => void = () => undefined;
  private readonly buses: string[];
  private readonly fdCapable: boolean;
  private readonly rxDroppedAtOpen: number;
  /** The native counters, read just before the socket is closed (they cannot be read after). */
  private countersAtClose: [number, number] = [0, 0];
  readonly errors = new ErrorCounters();
  rx = 0;
  tx = 0;
  txRetries = 0;
  txFailed = 0;

  constructor(
    readonly name: string,
    private readonly raw: CanRaw,
    private readonly handle: CanRawHandle,
    private readonly filters: Uint32Array,
  ) {
    this.buses = [name];
    this.fdCapable = Number(sysfs(name, "mtu")) === CANFD_MTU;
    this.rxDroppedAtOpen = Number(sysfs(name, "statistics/rx_dropped") ?? 0);
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  /** Starts the receive thread (at open, or on first use for a `transmitOnly` bus). */
  startReceiving(): void {
    if (this.receiving || this.closed) return;
    this.receiving = true;
    this.raw.receive(this.handle, this.filters, CAN_ERR_MASK, this.onChunk, this.onEnd);
  }

  /**
   * The receive hot path: one call per chunk of frames (one per wake-up on a quiet bus, up to 64 KB on a busy one),
   * with no work per frame unless the chunk holds error frames (the native side counts them): those are counted by
   * class here; then the chunk goes to `listenPacked`'s consumer as it is, or becomes Frame objects.
   */
  private readonly onChunk = (chunk: ArrayBuffer, count: number, errorFrames: number): void => {
    this.rx += count;
    const batch: PackedBatch = { buffer: chunk, bytes: chunk.byteLength, count, buses: this.buses };
    if (this.packedListener && errorFrames === 0) {
      this.packedListener(batch, 0);
      return;
    }
    const frames = unpackFrames(batch);
    if (errorFrames > 0) for (const f of frames) if (f.err) this.errors.add(f);
    if (this.packedListener) this.packedListener(batch, errorFrames);
    else for (const f of frames) this.queue.push(f);
  };

  private readonly onEnd = (errno: number): void => {
    if (errno !== 0 && !this.closed) log.warn(`warning: ${this.name}: receiving stopped: ${this.raw.strerror(errno)}`);
    this.queue.end();
    this.markEnded();
  };

  /**
   * Hands every chunk received from now on to `listener` as packed records (bus index 0 = this bus), in the receive
   * callback, instead of building Frame objects: `vgw record` passes them to its writer thread untouched. Iteration
   * and `batches()` then end when the bus closes. The listener must not throw (it runs inside the native callback).
   */
  listenPacked(listener: PackedListener): void {
    this.packedListener = listener;
    this.startReceiving();
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
    let errno = 0;
    for (let attempt = 0; ; attempt++) {
      errno = this.transmit(frame);
      if (errno === 0) {
        this.tx++;
        return;
      }
      if ((errno !== ENOBUFS && errno !== EAGAIN) || attempt >= TX_RETRIES) break;
      // ENOBUFS: the driver's queue is full (a busy or unacknowledged bus). Back off and retry, counting each retry.
      this.txRetries++;
      await new Promise((resolve) => setTimeout(resolve, 1 << attempt));
    }
    this.txFailed++;
    if (errno === ENOBUFS || errno === EAGAIN) {
      throw new BusError(
        `${this.name}: transmit queue full (ENOBUFS) for 0.5 s; is another node acknowledging frames and is the bitrate right?`,
        `check 'ip -details -statistics link show ${this.name}'; a longer queue helps bursts: sudo ip link set ${this.name} txqueuelen 1000`,
      );
    }
    throw diagnoseInterface(this.name) ??
      new BusError(`${this.name}: cannot send ${frame.err ? "the error frame" : "the frame"}: ${this.raw.strerror(errno)}`, errno === ENETDOWN ? upHint(this.name) : undefined);
  }

  /** One non-blocking write: 0, or the errno. */
  private transmit(frame: Frame): number {
    const id = frame.err
      ? (frame.id | CAN_ERR_FLAG) >>> 0
      : ((frame.ext ? (frame.id & CAN_EFF_MASK) | CAN_EFF_FLAG : frame.id) | (frame.rtr ? CAN_RTR_FLAG : 0)) >>> 0;
    const fdFlags = frame.fd ? (frame.brs ? CANFD_BRS : 0) | (frame.esi ? CANFD_ESI : 0) : -1;
    return this.raw.send(this.handle, id, fdFlags, frame.rtr ? EMPTY : frame.data, frame.rtr ? (frame.dlc ?? 0) : 0);
  }

  /** The kernel socket buffer in bytes (BusOptions.receiveBuffer asks for a size). */
  get receiveBufferBytes(): number {
    return this.closed ? 0 : this.raw.receiveBuffer(this.handle);
  }

  counters(): BusCounters {
    const rxDropped = Number(sysfs(this.name, "statistics/rx_dropped") ?? this.rxDroppedAtOpen) - this.rxDroppedAtOpen;
    const [socketDropped, receiverDropped] = this.closed ? this.countersAtClose : this.raw.counters(this.handle);
    return {
      rx: this.rx,
      tx: this.tx,
      txRetries: this.txRetries,
      txFailed: this.txFailed,
      errorFrames: this.errors.total,
      busOff: this.errors.busOff,
      queueDropped: this.queue.dropped + receiverDropped,
      socketDropped,
      interfaceRxDropped: rxDropped,
    };
  }

  /** Stops receiving and closes the socket; resolves once every frame received before was delivered. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.countersAtClose = this.raw.counters(this.handle);
    this.raw.close(this.handle);
    if (this.receiving) await this.ended;
    this.queue.end();
  }

  batches(): AsyncIterable<Frame[]> {
    this.startReceiving();
    return this.queue.batches();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    this.startReceiving();
    return this.queue[Symbol.asyncIterator]();
  }
}

export async function openSocketCanBus(spec: string, options: BusOptions): Promise<Bus> {
  const iface = spec;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface)) throw new BusError(`'${spec}' is not an interface name`, "e.g. -i can0 or -i vcan0");
  const why = diagnoseInterface(iface);
  if (why) throw why;
  const raw = loadCanRaw();
  let handle: CanRawHandle;
  try {
    handle = raw.open(iface, options.receiveOwn ?? false, options.receiveBuffer ?? 0);
  } catch (e) {
    throw openError(iface, e as NodeJS.ErrnoException);
  }
  if (options.receiveBuffer) {
    const got = raw.receiveBuffer(handle);
    if (got < options.receiveBuffer) {
      log.warn(
        `warning: ${iface}: socket receive buffer ${got} bytes, not the ${options.receiveBuffer} asked for: net.core.rmem_max caps it ` +
          `(raise it with: sudo sysctl -w net.core.rmem_max=${options.receiveBuffer}, or run with CAP_NET_ADMIN)`,
      );
    } else log.debug(`${iface}: socket receive buffer ${got} bytes`);
  }
  const bus = new SocketCanBus(iface, raw, handle, toKernelFilters(options.filters));
  if (!options.transmitOnly) bus.startReceiving();
  return bus;
}
