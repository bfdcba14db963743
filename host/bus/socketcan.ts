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
 * When vgw's module is not built, the `socketcan` npm package stands in (socketcan-addon.ts; VGW_SOCKETCAN chooses);
 * why vgw has its own module is in docs/socketcan.md.
 */
import type { Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { Bus, BusCounters, BusOptions, PackedListener } from "./bus";
import { loadCanRaw, type CanRaw, type CanRawHandle } from "./can-raw";
import { badInterfaceName, CAN_ERR_MASK, diagnoseInterface, kernelCanId, openError, toKernelFilters } from "./can-interface";
import { SocketCanBusBase } from "./socketcan-base";
import { unpackFrames, type PackedBatch } from "../../frame/packed";
import { log } from "../log";

const EMPTY = new Uint8Array(0);
const CANFD_BRS = 0x01;
const CANFD_ESI = 0x02;
/** CANFD_FDF: the flag that marks a canfd_frame as FD for the kernel (it is set on every FD frame sent). */
const CANFD_FDF = 0x04;
/** sizeof(struct can_frame) and sizeof(struct canfd_frame): the sizes written for classic and FD frames. */
const CAN_MTU = 16;
const CANFD_SLOT = 72;

export class SocketCanBus extends SocketCanBusBase {
  private packedListener: PackedListener | undefined;
  private receiving = false;
  /** Resolves when the receive thread has delivered its last chunk. */
  private readonly ended: Promise<void>;
  private markEnded: () => void = () => undefined;
  private readonly buses: string[];
  /** The native counters, read just before the socket is closed (they cannot be read after). */
  private countersAtClose: [number, number] = [0, 0];
  /** sendBatch's frames as kernel structs, kept from one burst to the next. */
  private txSlots = new Uint8Array(0);
  private txWords = new Uint32Array(0);
  private txSizes = new Uint8Array(0);

  constructor(
    name: string,
    private readonly raw: CanRaw,
    private readonly handle: CanRawHandle,
    private readonly filters: Uint32Array,
  ) {
    super(name);
    this.buses = [name];
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

  /**
   * A burst in one system call (the module's sendmmsg), after the same checks as send(): the frames go into kernel
   * struct canfd_frame slots here. What the kernel does not take (a full transmit queue) goes on frame by frame, with
   * send()'s retries and diagnosis.
   */
  override async sendBatch(frames: readonly Frame[]): Promise<void> {
    if (!this.raw.sendBatch || frames.length < 2) return super.sendBatch(frames);
    for (const f of frames) this.check(f);
    const n = frames.length;
    if (this.txSlots.length < n * CANFD_SLOT) {
      this.txSlots = new Uint8Array(n * CANFD_SLOT);
      this.txWords = new Uint32Array(this.txSlots.buffer);
      this.txSizes = new Uint8Array(n);
    }
    const slots = this.txSlots;
    for (let i = 0; i < n; i++) {
      const f = frames[i];
      const o = i * CANFD_SLOT;
      const data = f.rtr ? EMPTY : f.data;
      this.txWords[o >> 2] = kernelCanId(f);
      slots[o + 4] = f.rtr ? (f.dlc ?? 0) : data.length;
      slots[o + 5] = f.fd ? CANFD_FDF | (f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0) : 0;
      slots[o + 6] = 0;
      slots[o + 7] = 0;
      slots.set(data, o + 8);
      slots.fill(0, o + 8 + data.length, o + 8 + (f.fd ? 64 : 8)); // no bytes of an earlier burst beyond the length
      this.txSizes[i] = f.fd ? CANFD_SLOT : CAN_MTU;
    }
    const r = this.raw.sendBatch(this.handle, slots, this.txSizes.subarray(0, n));
    const sent = r > 0 ? r : 0;
    this.tx += sent;
    if (sent < n) await super.sendBatch(frames.slice(sent));
  }

  protected write(frame: Frame): number {
    const fdFlags = frame.fd ? (frame.brs ? CANFD_BRS : 0) | (frame.esi ? CANFD_ESI : 0) : -1;
    return this.raw.send(this.handle, kernelCanId(frame), fdFlags, frame.rtr ? EMPTY : frame.data, frame.rtr ? (frame.dlc ?? 0) : 0);
  }

  protected strerror(errno: number): string {
    return this.raw.strerror(errno);
  }

  /** The kernel socket buffer in bytes (BusOptions.receiveBuffer asks for a size). */
  get receiveBufferBytes(): number {
    return this.closed ? 0 : this.raw.receiveBuffer(this.handle);
  }

  /** Adds the module's counts: the kernel's drops for this socket, and chunks dropped before JS took them. */
  override counters(): BusCounters {
    const [socketDropped, receiverDropped] = this.closed ? this.countersAtClose : this.raw.counters(this.handle);
    const c = super.counters();
    return { ...c, queueDropped: c.queueDropped + receiverDropped, socketDropped };
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
}

/**
 * Which socket a SocketCAN bus uses, from VGW_SOCKETCAN: `native` only vgw's module (host/bus/native), `addon` only the
 * `socketcan` package; unset, vgw's module, or the package when the module is not built (said once on stderr).
 */
function socketChoice(): "native" | "addon" | "auto" {
  const v = process.env.VGW_SOCKETCAN;
  if (v === undefined || v === "") return "auto";
  if (v === "native" || v === "addon") return v;
  throw new BusError(`VGW_SOCKETCAN is '${v}'; it must be native (vgw's module) or addon (the socketcan package)`);
}

let fallbackAnnounced = false;

export async function openSocketCanBus(spec: string, options: BusOptions): Promise<Bus> {
  const iface = spec;
  const why = badInterfaceName(iface) ?? diagnoseInterface(iface);
  if (why) throw why;
  const choice = socketChoice();
  let raw: CanRaw;
  if (choice === "addon") return (await import("./socketcan-addon")).openSocketCanAddonBus(iface, options);
  try {
    raw = loadCanRaw();
  } catch (e) {
    if (choice === "native") throw e;
    const addon = await import("./socketcan-addon");
    const hint = e instanceof BusError ? e.hint : undefined;
    if (!addon.addonAvailable()) {
      throw new BusError("vgw's SocketCAN module (host/bus/native) is not built or does not load, and the socketcan package that stands in for it is not installed either", hint, {
        cause: e,
      });
    }
    if (!fallbackAnnounced) {
      fallbackAnnounced = true;
      log.warn(
        "warning: vgw's SocketCAN module (host/bus/native) is not built or does not load; using the socketcan package instead " +
          "(slower: one system call and one object per frame; on receive no BRS/ESI and no FD flag on FD frames of 8 bytes or less; no kernel drop count)" +
          (hint ? `\n  hint: ${hint}` : ""),
      );
    }
    return addon.openSocketCanAddonBus(iface, options);
  }
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
