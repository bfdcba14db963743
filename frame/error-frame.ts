/**
 * Error frames as the Linux CAN drivers report them (linux/can/error.h): the class bits live in the ID, the details
 * in the data bytes. Decoded into can-utils' names (the words `candump -e` prints), so a technician sees the same
 * vocabulary in both tools, and counted per class by `ErrorCounters`.
 */
import type { Frame } from "./frame";

/** Error class bits of the ID (CAN_ERR_*), with candump's names. */
export const ERROR_CLASSES: ReadonlyArray<[number, string]> = [
  [0x001, "tx-timeout"],
  [0x002, "lost-arbitration"],
  [0x004, "controller-problem"],
  [0x008, "protocol-violation"],
  [0x010, "transceiver-status"],
  [0x020, "no-acknowledgement-on-tx"],
  [0x040, "bus-off"],
  [0x080, "bus-error"],
  [0x100, "restarted-after-bus-off"],
  [0x200, "error-counter-tx-rx"],
];
export const CAN_ERR_BUSERROR = 0x080;

/**
 * An error frame read from a trace format that keeps no error class (Vector ASC and BLF, PEAK TRC): a bus error with
 * 8 zero data bytes, as can-utils' asc2log writes one. Each call makes its own data bytes (a caller may change them).
 */
export function busErrorFrame(t: number, bus: string): Frame {
  return { id: CAN_ERR_BUSERROR, ext: false, rtr: false, fd: false, brs: false, esi: false, err: true, data: new Uint8Array(8), t, bus };
}

const CONTROLLER: ReadonlyArray<[number, string]> = [
  [0x01, "rx-overflow"],
  [0x02, "tx-overflow"],
  [0x04, "rx-error-warning"],
  [0x08, "tx-error-warning"],
  [0x10, "rx-error-passive"],
  [0x20, "tx-error-passive"],
  [0x40, "back-to-error-active"],
];
const PROTOCOL_TYPE: ReadonlyArray<[number, string]> = [
  [0x01, "single-bit-error"],
  [0x02, "frame-format-error"],
  [0x04, "bit-stuffing-error"],
  [0x08, "tx-dominant-bit-error"],
  [0x10, "tx-recessive-bit-error"],
  [0x20, "bus-overload"],
  [0x40, "active-error"],
  [0x80, "error-on-tx"],
];
/** Where in the frame a protocol violation happened (data[3] is a code, not bits). */
const PROTOCOL_LOCATION: Readonly<Record<number, string>> = {
  0x03: "start-of-frame",
  0x02: "id.28-to-id.21",
  0x06: "id.20-to-id.18",
  0x04: "substitute-rtr-bit",
  0x05: "id-extension-bit",
  0x07: "id.17-to-id.13",
  0x0f: "id.12-to-id.05",
  0x0e: "id.04-to-id.00",
  0x0c: "rtr-bit",
  0x0d: "reserved-bit-1",
  0x09: "reserved-bit-0",
  0x0b: "data-length-code",
  0x0a: "data-section",
  0x08: "crc-sequence",
  0x18: "crc-delimiter",
  0x19: "ack-slot",
  0x1b: "ack-delimiter",
  0x1a: "end-of-frame",
  0x12: "intermission",
};
const TRANSCEIVER: Readonly<Record<number, string>> = {
  0x04: "CANH-no-wire",
  0x05: "CANH-short-to-BAT",
  0x06: "CANH-short-to-VCC",
  0x07: "CANH-short-to-GND",
  0x40: "CANL-no-wire",
  0x50: "CANL-short-to-BAT",
  0x60: "CANL-short-to-VCC",
  0x70: "CANL-short-to-GND",
  0x80: "CANL-short-to-CANH",
};

function bitNames(value: number, table: ReadonlyArray<[number, string]>): string[] {
  return table.filter(([bit]) => value & bit).map(([, name]) => name);
}

/** The error classes of an error frame, with details in braces: `controller-problem{rx-error-passive}`. */
export function describeErrorFrame(frame: Frame): string {
  const d = frame.data;
  const parts: string[] = [];
  for (const [bit, name] of ERROR_CLASSES) {
    if (!(frame.id & bit)) continue;
    let detail: string[] = [];
    if (bit === 0x002 && d.length > 0 && d[0]) detail = [`at-bit-${d[0]}`];
    if (bit === 0x004 && d.length > 1) detail = bitNames(d[1], CONTROLLER);
    if (bit === 0x008 && d.length > 3) {
      detail = bitNames(d[2], PROTOCOL_TYPE);
      if (PROTOCOL_LOCATION[d[3]]) detail.push(PROTOCOL_LOCATION[d[3]]);
    }
    if (bit === 0x010 && d.length > 4 && TRANSCEIVER[d[4]]) detail = [TRANSCEIVER[d[4]]];
    if (bit === 0x200 && d.length > 7) detail = [`tx=${d[6]}`, `rx=${d[7]}`];
    parts.push(detail.length ? `${name}{${detail.join(",")}}` : name);
  }
  return parts.length ? parts.join(" ") : "no-error-class";
}

/** Counts error frames by class; `busOff` separately because it is the one a technician acts on. */
export class ErrorCounters {
  total = 0;
  readonly byClass = new Map<string, number>();

  add(frame: Frame): void {
    this.total++;
    for (const [bit, name] of ERROR_CLASSES) {
      if (frame.id & bit) this.byClass.set(name, (this.byClass.get(name) ?? 0) + 1);
    }
  }

  get busOff(): number {
    return this.byClass.get("bus-off") ?? 0;
  }
}
