/**
 * A Linux CAN interface as both SocketCAN buses see it, whichever socket they use (vgw's own module, socketcan.ts; or
 * the `socketcan` package, socketcan-addon.ts): what /sys and /proc say about it and the command that fixes it, and
 * the kernel's form of ids and filters.
 */
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import type { Frame } from "../../frame/frame";
import { CAN_EFF_MASK, CAN_ERR_FLAG } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import type { BusFilter } from "./bus";
import { CAN_EFF_FLAG, CAN_RTR_FLAG } from "./filter";

const ARPHRD_CAN = 280;
const IFF_UP = 0x1;
const CANFD_MTU = 72;
/** Every error class (can-utils' CAN_ERR_MASK): error frames are received and counted whatever the id filters say. */
export const CAN_ERR_MASK = 0x1fffffff;
const { EAFNOSUPPORT, EPERM, EACCES } = constants.errno;

export function sysfs(iface: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${iface}/${file}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Whether the interface is in CAN FD mode (its MTU is a CAN FD frame's size). */
export function isFdCapable(iface: string): boolean {
  return Number(sysfs(iface, "mtu")) === CANFD_MTU;
}

/** The interface's rx_dropped statistic now (`fallback` when /sys does not have it). */
export function interfaceRxDropped(iface: string, fallback = 0): number {
  return Number(sysfs(iface, "statistics/rx_dropped") ?? fallback);
}

function isVirtual(iface: string): boolean {
  return iface.startsWith("vcan") || sysfs(iface, "device") === undefined;
}

export function upHint(iface: string): string {
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

/** A spec that cannot be an interface name, as a BusError; undefined when it can. */
export function badInterfaceName(spec: string): BusError | undefined {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(spec) ? undefined : new BusError(`'${spec}' is not an interface name`, "e.g. -i can0 or -i vcan0");
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

/** Why a socket could not be opened on an interface that /sys says exists and is up. */
export function openError(iface: string, e: NodeJS.ErrnoException & { syscall?: string }): BusError {
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

/** Kernel filter form, `[id, mask, ...]`: flag bits in id/mask select 11- or 29-bit frames (see filter.ts); CAN_INV_FILTER inverts. */
export function toKernelFilters(filters: readonly BusFilter[] | undefined): Uint32Array {
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

/** A frame's kernel can_id: the identifier with the EFF, RTR or ERR flag. */
export function kernelCanId(frame: Frame): number {
  return frame.err
    ? (frame.id | CAN_ERR_FLAG) >>> 0
    : ((frame.ext ? (frame.id & CAN_EFF_MASK) | CAN_EFF_FLAG : frame.id) | (frame.rtr ? CAN_RTR_FLAG : 0)) >>> 0;
}
