/**
 * What the ingest tests share: publishers speaking the gateway's protocol (docs/protocol.md, encodeBatch as the
 * firmware encodes), the frames they sent, and a check that a store holds each of them exactly once.
 */
import { strict as assert } from "assert";
import { join } from "node:path";
import { encode } from "cbor-x";
import { makeFrame, sameFrame, type Frame } from "../../frame/frame";
import { encodeBatch, PROTOCOL_VERSION } from "../../host/gateway/uplink";
import { exportFrames } from "../../host/ingest/export";
import type { Store } from "../../host/ingest/store";
import { readAllFrames } from "../../host/trace";

export const CANDUMP = join(__dirname, "../../../test/fixtures/traces/candump.log");

/** Frames as a gateway stamps them: uptime in whole ms, no channel. */
export function asGatewayFrames(frames: Frame[], startMs = 1000): Frame[] {
  const t0 = frames[0]?.t ?? 0;
  return frames.map((f) => makeFrame({ ...f, bus: undefined, t: (startMs + Math.round(((f.t ?? 0) - t0) * 1000)) / 1000 }));
}

export async function candumpFrames(): Promise<Frame[]> {
  return asGatewayFrames(await readAllFrames(CANDUMP));
}

/** Every kind of frame the protocol carries: classic, extended, remote, FD with BRS/ESI, error. */
export function mixedFrames(n: number, startMs = 5000): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) {
    const t = (startMs + i) / 1000;
    switch (i % 6) {
      case 0: out.push(makeFrame({ id: 0x123, data: Uint8Array.of(i & 0xff, 1, 2, 3), t })); break;
      case 1: out.push(makeFrame({ id: 0x18fef100 + (i % 7), ext: true, data: Uint8Array.of(0xff, i & 0xff, 0, 0, 0, 0, 0, 0x80), t })); break;
      case 2: out.push(makeFrame({ id: 0x7df, rtr: true, dlc: i % 9, t })); break;
      case 3: out.push(makeFrame({ id: 0x456, fd: true, brs: true, data: new Uint8Array(64).map((_, k) => (k * 7 + i) & 0xff), t })); break;
      case 4: out.push(makeFrame({ id: 0x1abcdef0, ext: true, fd: true, esi: true, data: new Uint8Array(12).fill(i & 0xff), t })); break;
      default: out.push(makeFrame({ id: 0x4, err: true, data: Uint8Array.of(0, 0, 0x80, 0, 0, 0, 0, 0), t })); break;
    }
  }
  return out;
}

export interface Published {
  topic: string;
  payload: Uint8Array;
}

/** One gateway's batches: `size` frames each, numbered from 0 in one boot. */
export function batchesOf(device: string, boot: number, frames: Frame[], size: number, prefix = "vgw"): Array<Published & { seq: number; frames: Frame[] }> {
  const out: Array<Published & { seq: number; frames: Frame[] }> = [];
  for (let i = 0, seq = 0; i < frames.length; i += size, seq++) {
    const part = frames.slice(i, i + size);
    out.push({ topic: `${prefix}/${device}/frames`, payload: encodeBatch(boot, seq, part), seq, frames: part });
  }
  return out;
}

/** Payloads a store must reject, never store as frames: garbage, a future protocol version, records that lie. */
export function badPayloads(device: string): Published[] {
  const topic = `vgw/${device}/frames`;
  const good = encodeBatch(1, 0, mixedFrames(3));
  return [
    { topic, payload: Buffer.from("this is not CBOR at all \xff\xfe") },
    { topic, payload: encode({ v: PROTOCOL_VERSION + 1, b: 1, s: 1, t: 0, n: 0, f: Buffer.alloc(0) }) },
    { topic, payload: encode({ v: PROTOCOL_VERSION, b: 1, s: 2, t: 0, n: 5, f: Buffer.from([0x00, 0x23]) }) },
    { topic, payload: good.subarray(0, good.length - 3) },
  ];
}

/** Exports `device` from the store and checks it is `expected`, frame by frame (content and gateway time). */
export async function assertStoredOnce(store: Store, device: string, expected: Frame[]): Promise<void> {
  const got: Frame[] = [];
  for await (const page of exportFrames(store, { device }, "can0")) got.push(...page);
  assert.equal(got.length, expected.length, `${device}: ${got.length} frames stored, ${expected.length} sent`);
  for (let i = 0; i < expected.length; i++) {
    if (!sameFrame(got[i], expected[i]) || got[i].t !== expected[i].t) {
      assert.fail(`${device}: frame ${i} differs: stored ${JSON.stringify({ ...got[i], data: Buffer.from(got[i].data).toString("hex") })}, sent ${JSON.stringify({ ...expected[i], data: Buffer.from(expected[i].data).toString("hex") })}`);
    }
  }
}
