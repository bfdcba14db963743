/**
 * Stored frames back as frames: the stored flags are the protocol's record flags, `t` is the gateway's uptime
 * stamp in seconds (exactly as the gateway sent it), so a trace written from them holds what the gateway saw.
 */
import { makeFrame, type Frame } from "../../frame/frame";
import { FLAG_BRS, FLAG_ERR, FLAG_ESI, FLAG_EXT, FLAG_FD, FLAG_RTR } from "../gateway/canbus-records";
import type { ExportQuery, Store, StoredFrame } from "./store";

export function storedToFrame(s: StoredFrame, bus: string): Frame {
  const rtr = (s.flags & FLAG_RTR) !== 0;
  return makeFrame({
    id: s.id,
    ext: (s.flags & FLAG_EXT) !== 0,
    rtr,
    fd: (s.flags & FLAG_FD) !== 0,
    brs: (s.flags & FLAG_BRS) !== 0,
    esi: (s.flags & FLAG_ESI) !== 0,
    err: (s.flags & FLAG_ERR) !== 0,
    dlc: rtr ? (s.dlc ?? 0) : undefined,
    data: rtr ? undefined : s.data,
    t: s.tMs / 1000,
    bus,
  });
}

/** The frames of one device in stored order, page by page. */
export async function* exportFrames(store: Store, query: ExportQuery, bus: string): AsyncGenerator<Frame[]> {
  for await (const page of store.readFrames(query)) yield page.map((s) => storedToFrame(s, bus));
}
