/**
 * The packed frame record (frame/packed.ts), the one binary layout of record, replay read-ahead and the native receive
 * path: the C module built on this machine agrees with it, its flag byte is the CanBus service's and the firmware's,
 * and slices unpack to the same frames as the whole batch. (Packing round trips: record-pipeline.test.ts.)
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { formatFrame, parseFrame, sameFrame, type Frame } from "../../frame/frame";
import { FRAME_FLAG, FramePacker, frameFlags, frameOfRecord, packFrames, unpackFrames, unpackSlices } from "../../frame/packed";
import { layoutMismatch, loadCanRaw } from "../../host/bus/can-raw";
import { packRecords } from "../../host/gateway/canbus-records";

const ROOT = path.resolve(__dirname, "../../..");

const TEXTS = ["123#DEADBEEF", "12345678#1122", "7FF#R5", "1ABCDEF0#R", "000#", "321##3" + "A5".repeat(12), "456##0" + "11".repeat(64), "20000044#0020000000000000"];

describe("packed frame record (frame/packed.ts)", () => {
  it("the native SocketCAN module built here packs exactly this layout (C and TypeScript agree)", () => {
    // Loading needs no CAN in the kernel; it fails with the build command when the module is missing.
    const raw = loadCanRaw();
    assert.equal(layoutMismatch(raw.layout), undefined, JSON.stringify(raw.layout));
    assert.equal(layoutMismatch({ ...raw.layout, header: 17, esi: 32 }), "header 17 != 16, esi 32 != 16");
  });

  it("the flag byte is the CanBus service's (canbus.md) and the firmware's (firmware/src/records.ts)", () => {
    const frames = TEXTS.map(parseFrame);
    for (const f of frames) {
      const [packet] = packRecords([f]);
      assert.equal(packet[4], frameFlags(f), formatFrame(f));
      const { dlc: _dlc, ...withoutDlc } = f;
      assert.deepEqual(frameOfRecord(f.id, frameFlags(f), f.data), withoutDlc, formatFrame(f));
    }
    // The firmware is DeviceScript and cannot import host code: its constants are compared as text.
    const src = readFileSync(path.join(ROOT, "firmware/src/records.ts"), "utf8");
    for (const [name, bit] of Object.entries(FRAME_FLAG)) {
      const m = new RegExp(`export const FLAG_${name.toUpperCase()} = (0x[0-9a-f]+)`, "i").exec(src);
      assert.ok(m, `FLAG_${name.toUpperCase()} not in firmware/src/records.ts`);
      assert.equal(Number(m[1]), bit, `FLAG_${name.toUpperCase()}`);
    }
  });

  it("unpacks in slices to the same frames as the whole batch, with times and bus names", () => {
    const frames: Frame[] = Array.from({ length: 150 }, (_, i) => ({ ...parseFrame(TEXTS[i % TEXTS.length]), t: i % 4 ? 100 + i / 8 : undefined, bus: i % 3 ? `can${i % 2}` : undefined }));
    const batch = packFrames(frames);
    assert.equal(batch.bytes, batch.buffer.byteLength, "packFrames sizes the buffer exactly");
    const slices = [...unpackSlices(batch, 64)];
    assert.deepEqual(slices.map((s) => s.length), [64, 64, 22]);
    const whole = unpackFrames(batch);
    [slices.flat(), whole].forEach((got) =>
      got.forEach((g, i) => assert.ok(sameFrame(g, frames[i]) && g.t === frames[i].t && g.bus === frames[i].bus, `#${i}: ${formatFrame(g)} t=${g.t} bus=${g.bus}`)),
    );
  });

  it("a packer keeps its bus table from one batch to the next", () => {
    const packer = new FramePacker();
    packer.add({ ...parseFrame("100#01"), bus: "can0" });
    const first = packer.take();
    packer.add({ ...parseFrame("100#02"), bus: "can1" });
    packer.add({ ...parseFrame("100#03"), bus: "can0" });
    const second = packer.take();
    assert.deepEqual(first.buses, ["can0"]);
    assert.deepEqual(unpackFrames(second).map((f) => f.bus), ["can1", "can0"]);
  });
});
