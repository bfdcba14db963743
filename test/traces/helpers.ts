import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Frame } from "../../frame/frame";
import { FD_LENGTHS, makeFrame } from "../../frame/frame";

/** Trace fixtures live in the source tree (test/fixtures/traces); tests run from dist/test/traces. */
export const FIXTURES = path.resolve(__dirname, "../../../test/fixtures/traces");

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "vgw-trace-"));
}

/** A tiny deterministic PRNG (mulberry32), so generated traces are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every kind of frame every format can hold: 11/29-bit, lengths 0..8, remote with and without a length, CAN FD at
 * every length with each BRS/ESI combination, error frames (CAN_ERR_BUSERROR, and CAN_ERR_CRTL for candump), on
 * two channels ("1", "2" as Vector/PEAK number them), at absolute microsecond times.
 */
export function sampleFrames(options: { otherErrorClasses?: boolean } = {}): Frame[] {
  const rnd = prng(42);
  const frames: Frame[] = [];
  let t = 1700000000.123456;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  const push = (init: Parameters<typeof makeFrame>[0]) => {
    t += Math.round(rnd() * 5000 + 1) / 1e6;
    frames.push(makeFrame({ ...init, t: Math.round(t * 1e6) / 1e6, bus: rnd() < 0.5 ? "1" : "2" }));
  };
  for (let len = 0; len <= 8; len++) {
    push({ id: Math.floor(rnd() * 0x800), data: bytes(len) });
    push({ id: Math.floor(rnd() * 0x20000000), ext: true, data: bytes(len) });
  }
  push({ id: 0x7ff, data: bytes(8) });
  push({ id: 0x1fffffff, ext: true, data: bytes(8) });
  push({ id: 0x123, rtr: true });
  push({ id: 0x124, rtr: true, dlc: 8 });
  push({ id: 0x1abcdef, ext: true, rtr: true, dlc: 3 });
  for (const len of FD_LENGTHS) {
    push({ id: Math.floor(rnd() * 0x800), fd: true, brs: len % 2 === 0, esi: len % 3 === 0, data: bytes(len) });
    push({ id: Math.floor(rnd() * 0x20000000), ext: true, fd: true, brs: true, data: bytes(len) });
  }
  push({ id: 0x80, err: true, data: new Uint8Array(8) });
  if (options.otherErrorClasses) push({ id: 0x04, err: true, data: Uint8Array.from([0, 4, 0, 0, 0, 0, 0, 0]) });
  return frames;
}
