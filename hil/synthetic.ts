/**
 * Synthetic bus load for scenarios that need a known rate rather than a recording (the soak at rated load, the
 * 4,000 frames/s performance run): `ids` periodic messages sharing `rate` frames/s, round-robin, so every ID has the
 * period ids.length / rate. Every frame's data differs from the previous frame of its ID (a frame counter in the last
 * three bytes), so a lost, repeated or reordered frame is visible bit-for-bit, while the first bytes ramp slowly
 * (one step per 16 frames of the ID), as physical signals do, so a downsampled signal can be judged with a tolerance.
 * With `hold: { ID: n }` that ID's data changes only every n of its frames (what send-on-change filters exist for).
 */
import { makeFrame, type Frame } from "../frame/frame";
import { isExtKey, keyId } from "../can-db/frame-key";
import type { SyntheticLoad } from "./scenario";

const BATCH = 256;

export function syntheticFrameCount(load: SyntheticLoad): number {
  return Math.floor((load.rate * load.durationMs) / 1000);
}

/** The load as batches of frames with trace times `t` in seconds from 0. */
export async function* syntheticFrames(load: SyntheticLoad): AsyncGenerator<Frame[]> {
  const total = syntheticFrameCount(load);
  const n = load.keys.length;
  let batch: Frame[] = [];
  for (let i = 0; i < total; i++) {
    const key = load.keys[i % n];
    const id = keyId(key);
    const k = Math.floor(Math.floor(i / n) / (load.hold.get(key) ?? 1));
    const len = load.fd ? 64 : 8;
    const data = new Uint8Array(len);
    data[1] = (k >>> 4) & 0xff;
    data[2] = (k >>> 12) & 0xff;
    data[3] = i % n;
    for (let b = 4; b < len - 3; b++) data[b] = (k * 7 + b * 13 + id) & 0xff;
    data[len - 3] = (k >>> 16) & 0xff;
    data[len - 2] = (k >>> 8) & 0xff;
    data[len - 1] = k & 0xff;
    batch.push(makeFrame({ id, ext: isExtKey(key), fd: load.fd, brs: load.fd, data, t: i / load.rate }));
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}
