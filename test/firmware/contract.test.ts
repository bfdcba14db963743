/**
 * The wire contract between the firmware and the host, checked on real bytes: the firmware's batch coder (running in
 * the DeviceScript VM) encodes a fixed set of frames; the host's decoder (host/gateway/uplink.ts) must give back the
 * same frames, and the host's reference encoder must produce the very same bytes (docs/protocol.md fixes every choice).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { strict as assert } from "node:assert";
import { makeFrame, formatFrame, type Frame } from "../../frame/frame";
import { decode } from "cbor-x";
import { decodeBatch, encodeBatch } from "../../host/gateway/uplink";

const ROOT = resolve(__dirname, "../../..");
const FIRMWARE = join(ROOT, "firmware");
const DEVS = join(ROOT, "node_modules/@devicescript/cli/built/devicescript-cli.cjs");
// generated into the untracked build folder, so its `../src` imports resolve to the firmware sources
const GEN_DIR = join(FIRMWARE, ".devicescript", "gen");
const GEN = join(GEN_DIR, "contract.test.ts");

const BOOT = 0x5eed1234;
const SEQ = 42;

/** Frames of every kind, with repeats, byte changes, length changes and time steps (t in seconds). */
function sampleFrames(): Frame[] {
  const out: Frame[] = [];
  let t = 12.345;
  for (let i = 0; i < 120; i++) {
    const kind = i % 6;
    if (i % 9 === 0) t += (i % 4) * 0.001 + (i % 27 === 0 ? 0.2 : 0);
    const data = new Uint8Array(kind === 3 ? [12, 16, 64][i % 3] : (i % 7) + 2 > 8 ? 8 : (i % 7) + 2);
    for (let j = 0; j < data.length; j++) data[j] = (j < 2 ? i >> 2 : j * 3) & 0xff;
    if (kind === 0) out.push(makeFrame({ id: 0x100 + (i % 5), data: data.slice(0, 8), t }));
    else if (kind === 1) out.push(makeFrame({ id: 0x18fef100 + (i % 3), ext: true, data: data.slice(0, 8), t }));
    else if (kind === 2) out.push(makeFrame({ id: 0x7df, rtr: true, dlc: i % 9, t }));
    else if (kind === 3) out.push(makeFrame({ id: 0x555, fd: true, brs: i % 2 === 0, data, t }));
    else if (kind === 4) out.push(makeFrame({ id: 0x123, data: new Uint8Array([1, 2, 3, 4]), t }));
    else out.push(makeFrame({ id: 0x7ff, data: data.slice(0, 1 + (i % 8)), t }));
  }
  return out;
}

function flagsOf(f: Frame): number {
  return (f.ext ? 1 : 0) | (f.rtr ? 2 : 0) | (f.fd ? 4 : 0) | (f.brs ? 8 : 0) | (f.esi ? 16 : 0) | (f.err ? 32 : 0);
}

function vmProgram(frames: Frame[]): string {
  const rows = frames.map((f) => {
    const len = f.rtr ? (f.dlc ?? 0) : f.data.length;
    return `[${f.id}, ${flagsOf(f)}, ${len}, "${Buffer.from(f.data).toString("hex")}", ${Math.round((f.t ?? 0) * 1000)}]`;
  });
  return `import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"
import { addFrame, BatchEncoder } from "../../src/batch"
const FRAMES: any[][] = [
${rows.join(",\n")}
]
describe("contract", () => {
    test("encode", async () => {
        const enc = new BatchEncoder(8192)
        for (let i = 0; i < FRAMES.length; i++) {
            const r = FRAMES[i]
            addFrame(enc, r[0], r[1], Buffer.from(r[3], "hex"), 0, r[2], r[4])
            if (i % 20 === 0) await ds.sleep(0)
        }
        const out = Buffer.alloc(enc.payloadSize(${BOOT}, ${SEQ}))
        enc.writePayload(out, 0, ${BOOT}, ${SEQ})
        const hexText = out.toString("hex")
        for (let i = 0; i < hexText.length; i += 200) console.log("HEX " + hexText.slice(i, i + 200))
    })
})
`;
}

describe("firmware <-> host wire contract (docs/protocol.md)", function () {
  this.timeout(200_000);
  let payload: Buffer;
  const frames = sampleFrames();

  before(function () {
    mkdirSync(GEN_DIR, { recursive: true });
    writeFileSync(GEN, vmProgram(frames));
    try {
      const r = spawnSync(process.execPath, [DEVS, "run", GEN, "--test", "--test-self-exit", "-T", "120000"], {
        cwd: FIRMWARE,
        encoding: "utf8",
        timeout: 180_000,
        killSignal: "SIGKILL",
      });
      const out = (r.stdout ?? "") + (r.stderr ?? "");
      assert.equal(r.status, 0, `the VM run failed:\n${out.split("\n").slice(-30).join("\n")}`);
      // eslint-disable-next-line no-control-regex
      const hex = [...out.replace(/\u001b\[[0-9;]*m/g, "").matchAll(/HEX ([0-9a-f]+)/g)].map((m) => m[1]).join("");
      assert.ok(hex.length > 0, `no batch printed by the VM:\n${out.slice(-2000)}`);
      payload = Buffer.from(hex, "hex");
    } finally {
      rmSync(GEN, { force: true });
    }
  });

  it("the host decodes the firmware's batch into the same frames", () => {
    const batch = decodeBatch(payload);
    assert.equal(batch.boot, BOOT);
    assert.equal(batch.seq, SEQ);
    assert.equal(batch.frames.length, frames.length);
    for (let i = 0; i < frames.length; i++) {
      const want = frames[i];
      const got = batch.frames[i];
      assert.equal(formatFrame(got), formatFrame(want), `frame ${i}`);
      assert.equal(got.dlc, want.dlc, `frame ${i} requested length`);
      assert.equal(Math.round((got.t ?? 0) * 1000), Math.round((want.t ?? 0) * 1000), `frame ${i} time`);
    }
  });

  it("the host's reference encoder writes the same records as the firmware", () => {
    // the map around them may differ in form only (cbor-x writes map heads as B9 00 nn; the firmware's shortest A6)
    const host = decode(Buffer.from(encodeBatch(BOOT, SEQ, frames))) as Record<string, unknown>;
    const fw = decode(payload) as Record<string, unknown>;
    assert.equal(payload[0], 0xa6, "the firmware writes a 6-pair map head in its shortest form");
    for (const k of ["v", "b", "s", "t", "n"]) assert.equal(host[k], fw[k], `key ${k}`);
    assert.equal(Buffer.from(host.f as Uint8Array).toString("hex"), Buffer.from(fw.f as Uint8Array).toString("hex"));
  });
});
