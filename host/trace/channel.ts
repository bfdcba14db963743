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
