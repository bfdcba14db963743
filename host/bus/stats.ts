/**
 * Traffic statistics of a CAN bus, per ID and in total: frame counts and rates, cycle time min/avg/max with jitter,
 * bus load from the frame bit lengths, and error frames by class. Shared by `vgw stats` (periodic tables) and
 * `vgw monitor` (live screen). Time comes from the frames' receive timestamps, so it is exact even when the
 * reader is late.
 */
import type { Frame } from "../../frame/frame";
import { ErrorCounters } from "../../frame/error-frame";

export interface IdStats {
  key: string;
  id: number;
  ext: boolean;
  bus: string;
  count: number;
  /** Seconds between consecutive frames of this ID. */
  minGap: number;
  maxGap: number;
  sumGap: number;
  sumGap2: number;
  gaps: number;
  last?: Frame;
  /** Per data byte: receive time of its last change (for highlighting). */
  changedAt: number[];
  lastT: number;
}

/**
 * Bits on the wire without stuff bits (canbusload's default): SOF, arbitration, control, data, CRC, delimiters, ACK,
 * EOF and the 3-bit interframe space. 11-bit data frame: 47 + 8n; 29-bit: 67 + 8n. CAN FD: the arbitration part at the
 * nominal rate and the data phase (data, longer CRC) counted at the nominal rate too unless `dataBitrate` is given.
 */
export function frameBits(f: Frame, bitrate: number, dataBitrate?: number): number {
  if (f.err) return 0;
  const head = f.ext ? 67 : 47;
  const bytes = f.rtr ? 0 : f.data.length;
  if (!f.fd || !dataBitrate) return head + 8 * bytes;
  const dataBits = 8 * bytes + (bytes > 16 ? 21 : 17) + 4;
  return head - 15 + (dataBits * bitrate) / dataBitrate;
}

export class BusStats {
  readonly ids = new Map<string, IdStats>();
  readonly errors = new ErrorCounters();
  frames = 0;
  bits = 0;
  firstT = NaN;
  lastT = NaN;

  constructor(
    readonly bitrate = 500000,
    readonly dataBitrate?: number,
  ) {}

  add(f: Frame): void {
    const t = f.t ?? Date.now() / 1000;
    if (Number.isNaN(this.firstT)) this.firstT = t;
    this.lastT = t;
    if (f.err) {
      this.errors.add(f);
      return;
    }
    this.frames++;
    this.bits += frameBits(f, this.bitrate, this.dataBitrate);
    const key = `${f.bus ?? ""}:${f.ext ? "x" : "s"}${f.id}`;
    let s = this.ids.get(key);
    if (!s) {
      s = { key, id: f.id, ext: f.ext, bus: f.bus ?? "", count: 0, minGap: Infinity, maxGap: 0, sumGap: 0, sumGap2: 0, gaps: 0, changedAt: [], lastT: t };
      this.ids.set(key, s);
    } else {
      const gap = t - s.lastT;
      if (gap < s.minGap) s.minGap = gap;
      if (gap > s.maxGap) s.maxGap = gap;
      s.sumGap += gap;
      s.sumGap2 += gap * gap;
      s.gaps++;
    }
    const prev = s.last?.data;
    // The first frame of an ID sets the baseline; only later differences count as changes.
    if (prev) for (let i = 0; i < f.data.length; i++) if (prev[i] !== f.data[i]) s.changedAt[i] = t;
    s.count++;
    s.last = f;
    s.lastT = t;
  }

  /** Seconds covered by the frames seen (at least `floor`, so a single burst does not divide by ~0). */
  span(floor = 0): number {
    return Number.isNaN(this.firstT) ? floor : Math.max(this.lastT - this.firstT, floor);
  }

  /** Bus load in percent over `seconds`. */
  load(seconds: number): number {
    return seconds > 0 ? (100 * this.bits) / (this.bitrate * seconds) : 0;
  }
}

export function meanGap(s: IdStats): number {
  return s.gaps ? s.sumGap / s.gaps : NaN;
}

/** Standard deviation of the cycle time: the jitter a technician compares with the DBC's GenMsgCycleTime. */
export function jitter(s: IdStats): number {
  if (s.gaps < 2) return NaN;
  const m = s.sumGap / s.gaps;
  return Math.sqrt(Math.max(s.sumGap2 / s.gaps - m * m, 0));
}

export function idText(id: number, ext: boolean): string {
  return id.toString(16).toUpperCase().padStart(ext ? 8 : 3, "0");
}
