/**
 * Stored frames back as frames: the stored flags are the protocol's record flags, `t` is the gateway's uptime
 * stamp in seconds (exactly as the gateway sent it), so a trace written from them holds what the gateway saw.
 */
import { makeFrame, type Frame } from "../../frame/frame";
import { FRAME_FLAG } from "../../frame/packed";
import type { ExportQuery, Store, StoredFrame } from "./store";

export function storedToFrame(s: StoredFrame, bus: string): Frame {
  const rtr = (s.flags & FRAME_FLAG.rtr) !== 0;
  return makeFrame({
    id: s.id,
    ext: (s.flags & FRAME_FLAG.ext) !== 0,
    rtr,
    fd: (s.flags & FRAME_FLAG.fd) !== 0,
    brs: (s.flags & FRAME_FLAG.brs) !== 0,
    esi: (s.flags & FRAME_FLAG.esi) !== 0,
    err: (s.flags & FRAME_FLAG.err) !== 0,
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
