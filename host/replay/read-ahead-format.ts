/**
 * The packed record the read-ahead worker hands to the replay thread (one transferable buffer per batch):
 * f64 t (NaN = none), u32 id, u8 flags, u8 data length, u8 remote dlc, u8 bus index (255 = none), then the data bytes.
 */
export const FLAG = { ext: 1, rtr: 2, fd: 4, brs: 8, esi: 16, err: 32 } as const;
export const HEADER = 16;
export const NO_BUS = 255;

export type WorkerMessage =
  | { type: "frames"; buffer: ArrayBuffer; count: number; newBuses: string[] }
  | { type: "bad"; message: string }
  | { type: "end" }
  | { type: "fail"; message: string; name: string };
