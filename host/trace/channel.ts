/**
 * One rule for channel names across formats. Vector (ASC, BLF) and PEAK (TRC) number channels from 1; SocketCAN
 * names them from 0. A frame read from ASC/BLF/TRC keeps the file's own number as `bus` ("1"), so what a user sees
 * matches CANoe/PCAN-View; converting to candump maps channel N to `can<N-1>` (as can-utils asc2log does), and the
 * reverse maps `can<K>`/`vcan<K>` to channel K+1 (as log2asc does for its first interface).
 */

/** 1-based channel number for Vector/PEAK formats. */
export function channelNumber(bus: string | undefined): number {
  if (bus === undefined || bus === "") return 1;
  if (/^\d+$/.test(bus)) return Math.max(1, Number(bus));
  const m = /(\d+)$/.exec(bus);
  return m ? Number(m[1]) + 1 : 1;
}

/** SocketCAN-style name for candump: keeps names, maps a bare channel number N to can<N-1>. */
export function candumpChannel(bus: string | undefined): string {
  if (bus === undefined || bus === "") return "can0";
  if (/^\d+$/.test(bus)) return `can${Math.max(0, Number(bus) - 1)}`;
  return bus;
}

/**
 * A channel's text as the bytes a writer puts in every line, made once per channel name instead of once per frame
 * (a trace has a handful of channels and millions of frames).
 */
export class ChannelText {
  private lastBus: string | undefined = undefined;
  private lastBytes: Buffer | undefined;
  private readonly known = new Map<string | undefined, Buffer>();

  constructor(private readonly name: (bus: string | undefined) => string | number) {}

  get(bus: string | undefined): Buffer {
    if (bus === this.lastBus && this.lastBytes) return this.lastBytes;
    let bytes = this.known.get(bus);
    if (!bytes) {
      // Bounded: a file with a new channel name on every line must not grow this without end.
      if (this.known.size >= 1024) this.known.clear();
      bytes = Buffer.from(String(this.name(bus)), "utf8");
      this.known.set(bus, bytes);
    }
    this.lastBus = bus;
    this.lastBytes = bytes;
    return bytes;
  }
}

/** `channelNumber`, remembered per channel name (the binary writers' hot path). */
export class ChannelNumbers {
  private readonly known = new Map<string | undefined, number>();
  get(bus: string | undefined): number {
    let n = this.known.get(bus);
    if (n === undefined) {
      // Bounded: a file with a new channel name on every line must not grow this without end.
      if (this.known.size >= 1024) this.known.clear();
      n = channelNumber(bus);
      this.known.set(bus, n);
    }
    return n;
  }
}
