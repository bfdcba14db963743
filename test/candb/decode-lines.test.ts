/**
 * `vgw decode` prints most frames straight from the decoder's arrays (DecodedLines.decode, SignalPrinter.direct) and
 * the rest through the signals object; both must print the same bytes. For every DBC fixture: frames of every
 * message (complete, short, longer, random payloads, both ID kinds), unknown IDs, error and remote frames, in jsonl
 * and text, with and without value-table labels, each compared with the object path's line.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { makeFrame, type Frame } from "../../frame/frame";
import { loadDbcFile } from "../../can-db/load";
import { Decoder } from "../../can-db/decoder";
import { SignalPrinter } from "../../can-db/annotate";
import { DecodedLines, UNDECODABLE, UNKNOWN } from "../../cli/commands/decode";
import { DBC_DIR, dbcFixtures, seededRandom } from "./helpers";

describe("vgw decode: lines printed from the decoder's arrays equal the lines printed from the signals object", function () {
  this.timeout(120_000);
  for (const file of dbcFixtures()) {
    it(basename(file), () => {
      const db = loadDbcFile(join(DBC_DIR, file));
      const decoder = new Decoder(db);
      const printer = new SignalPrinter(db);
      const rnd = seededRandom(basename(file).length * 7919 + 1);
      const messages = db.messages.filter((m) => !m.pseudo);
      const frames: Frame[] = [];
      for (let k = 0; k < 1500; k++) {
        const t = k % 5 === 0 ? undefined : 1700000000 + k * 0.000137 + (k % 3 === 0 ? 0.5 : 0);
        const bus = k % 7 === 0 ? undefined : k % 2 ? "can0" : "vcan\u00e41";
        const m = messages.length > 0 && k % 10 !== 0 ? messages[Math.floor(rnd() * messages.length)] : undefined;
        const id = m ? m.id : Math.floor(rnd() * 0x800);
        const ext = m ? m.ext : rnd() < 0.3;
        const kind = rnd();
        const len = m ? (kind < 0.8 ? m.length : kind < 0.9 ? Math.max(0, m.length - 1 - Math.floor(rnd() * 3)) : Math.min(64, m.length + 4)) : 8;
        const fd = len > 8 || (m?.fd ?? false);
        const data = Uint8Array.from({ length: fd && ![0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64].includes(len) ? 64 : len }, () =>
          Math.floor(rnd() * 256),
        );
        if (k % 97 === 0) frames.push(makeFrame({ id: 0x80, err: true, data: new Uint8Array(8), t, bus }));
        else if (k % 89 === 0) frames.push(makeFrame({ id, ext, rtr: true, t, bus }));
        else frames.push(makeFrame({ id: ext ? id & 0x1fffffff : id & 0x7ff, ext, fd, data, t, bus }));
      }
      let direct = 0;
      for (const choices of [false, true]) {
        for (const jsonl of [true, false]) {
          const fast = new DecodedLines(printer);
          const slow = new DecodedLines(printer);
          for (const f of frames) {
            const outcome = fast.decode(f, decoder, { choices }, jsonl);
            const d = decoder.decode(f, { choices });
            if (jsonl) slow.json(f, d);
            else slow.text(f, d);
            assert.equal(outcome & UNKNOWN ? 1 : 0, d.message === null ? 1 : 0);
            assert.equal(outcome & UNDECODABLE ? 1 : 0, d.error !== undefined ? 1 : 0);
            const a = fast.take().toString("utf8");
            const b = slow.take().toString("utf8");
            assert.equal(a, b, `${choices ? "--choices " : ""}${jsonl ? "jsonl" : "text"}`);
            if (d.message !== null && d.error === undefined) direct++;
          }
        }
      }
      if (messages.length > 0) assert.ok(direct > 0);
    });
  }
});
