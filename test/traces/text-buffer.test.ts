/**
 * The byte writers of text (frame/text-buffer.ts, writeFrameText, signalValueText) against the string forms they
 * replace: every trace file and `vgw decode` line must stay byte for byte what `toFixed(6)`, `toString(16)`,
 * `padStart` and `String(Number(v.toPrecision(15)))` print. Random values plus the hard cases (ties at the sixth
 * decimal, carries into the whole seconds, exponent forms, -0, NaN).
 */
import { strict as assert } from "assert";
import { formatFrame, makeFrame, writeFrameText } from "../../frame/frame";
import { TextBuffer } from "../../frame/text-buffer";
import { signalValueText } from "../../can-db/annotate";
import { seededRandom } from "../candb/helpers";

function printed(write: (out: TextBuffer) => void): string {
  const out = new TextBuffer(64);
  write(out);
  return out.take().toString("utf8");
}

describe("TextBuffer: text written as bytes", () => {
  const rnd = seededRandom(7);

  it("fixed6 prints t.toFixed(6).padStart(width), ties and carries included", () => {
    const values = [0, -0, 0.5e-6, 1.5e-6, 2.5e-7, 1.0000005, 0.9999995, 0.9999996, 123.4567895, 1e-7, 5e-324, 8.9999999e9, 9e9, 1e10 + 0.5, -1.5, NaN, Infinity, 1e21];
    for (let i = 0; i < 20000; i++) {
      values.push(rnd() * 10, 1.7e9 + rnd() * 1e4, Math.round(rnd() * 1e9) / 1e6 + 0.0000005, rnd() * 1e-3);
    }
    for (const v of values) {
      for (const width of [0, 11]) assert.equal(printed((o) => o.fixed6(v, width)), v.toFixed(6).padStart(width), `${v} width ${width}`);
    }
  });

  it("decimal, integer and hex print String(n).padStart and n.toString(16)", () => {
    for (let i = 0; i < 20000; i++) {
      const n = Math.floor(rnd() * 2 ** (1 + Math.floor(rnd() * 52)));
      assert.equal(printed((o) => o.decimal(n, 5)), String(n).padStart(5));
      assert.equal(printed((o) => o.integer(-n)), String(-n));
      const h = n % 2 ** 32;
      assert.equal(printed((o) => o.hex(h, 3)), h.toString(16).toUpperCase().padStart(3, "0"));
      assert.equal(printed((o) => o.hex(h, 1, true)), h.toString(16));
    }
    assert.equal(printed((o) => o.integer(-0)), "0");
    assert.equal(printed((o) => o.integer(1e21)), "1e+21");
  });

  it("gridDecimal prints String(v) or nothing", () => {
    let used = 0;
    for (let i = 0; i < 50000; i++) {
      const places = 1 + Math.floor(rnd() * 6);
      const factor = [0.01, 0.1, 0.5, 0.25, 0.0625, 0.001, 0.03125, 1e-6][i % 8];
      const offset = [0, -40, 0.5, -273.15, 1000][i % 5];
      const v = (Math.floor(rnd() * 2 ** 20) - 2 ** 19) * factor + offset;
      const text = printed((o) => {
        if (o.gridDecimal(v, places)) used++;
        else o.text(String(v));
      });
      assert.equal(text, String(v), `${v} at ${places} places`);
    }
    assert.ok(used > 10000, `the grid form was taken ${used} times`);
    // candump times: 6 places, 16 significant digits
    let times = 0;
    for (let i = 0; i < 50000; i++) {
      const t = Math.round((1e9 + rnd() * 2e9) * 1e6) / 1e6 + (i % 7 === 0 ? 1e-7 : 0);
      assert.equal(printed((o) => (o.gridDecimal(t, 6) && ++times > 0) || o.text(String(t))), String(t), String(t));
    }
    assert.ok(times > 40000, `the grid form was taken for ${times} times of 50000`);
    // at the limit: |N| just below and above 2^52 at every number of places, and values between grid points
    for (let i = 0; i < 50000; i++) {
      const places = 1 + (i % 9);
      const n = 2 ** 52 - Math.floor(rnd() * 2 ** 20) + (i % 3 === 0 ? 2 ** 19 : 0);
      const v = ((i % 2 ? -1 : 1) * n) / 10 ** places + (i % 11 === 0 ? 10 ** -places / 3 : 0);
      assert.equal(printed((o) => o.gridDecimal(v, places) || o.text(String(v))), String(v), `${v} at ${places} places`);
    }
    // 15 digits at most when asked (the text form rounds to 15)
    assert.equal(printed((o) => o.gridDecimal(1700000000.123456, 6, 1e15)), "");
  });

  it("decimal prints String(n).padStart(width) on both sides of 2^31", () => {
    for (let i = 0; i < 20000; i++) {
      const n = [Math.floor(rnd() * 10 ** (1 + (i % 12))), 2 ** 31 - 1 - (i % 3), 2 ** 31 + (i % 3), i % 11][i % 4];
      const width = i % 5 === 0 ? 12 : 0;
      assert.equal(printed((o) => o.decimal(n, width)), String(n).padStart(width));
    }
  });

  it("text writes UTF-8, as a stream writes a string", () => {
    for (const s of ["can0", "ça", "€ 1", "x".repeat(100) + "é"]) assert.equal(printed((o) => o.text(s)), s);
  });

  it("grows past its slab and keeps views it handed out", () => {
    const out = new TextBuffer(16);
    out.text("first");
    const first = out.take();
    for (let i = 0; i < 1000; i++) out.decimal(i);
    assert.equal(first.toString(), "first");
    assert.equal(out.take().toString(), Array.from({ length: 1000 }, (_, i) => String(i)).join(""));
  });

  it("writeFrameText prints formatFrame", () => {
    for (let i = 0; i < 5000; i++) {
      const kind = i % 5;
      const data = Uint8Array.from({ length: kind === 3 ? [0, 12, 64][i % 3] : Math.floor(rnd() * 9) }, () => rnd() * 256);
      const f =
        kind === 0
          ? makeFrame({ id: Math.floor(rnd() * 0x800), data })
          : kind === 1
            ? makeFrame({ id: Math.floor(rnd() * 0x20000000), ext: true, data })
            : kind === 2
              ? makeFrame({ id: Math.floor(rnd() * 0x800), rtr: true, dlc: i % 2 ? Math.floor(rnd() * 9) : undefined })
              : kind === 3
                ? makeFrame({ id: 0x123, fd: true, brs: rnd() < 0.5, esi: rnd() < 0.5, data })
                : makeFrame({ id: Math.floor(rnd() * 0x400), err: true, data: new Uint8Array(8) });
      assert.equal(printed((o) => writeFrameText(o, f)), formatFrame(f));
    }
  });

  it("signalValueText rounds to 15 significant digits like String(Number(v.toPrecision(15)))", () => {
    const values = [0.1 + 0.2, 52.480000000000004, 1e-7, 1e21, 123456789012345.6, -0, 2 ** 53 + 2, 1 / 3];
    for (let i = 0; i < 50000; i++) values.push((Math.floor(rnd() * 1e6) - 5e5) * [0.01, 0.1, 0.05, 1e-3][i % 4] + [0, -40, 0.5][i % 3], rnd() * 10 ** (Math.floor(rnd() * 30) - 10));
    for (const v of values) assert.equal(signalValueText(v), String(Number(v.toPrecision(15))), String(v));
  });
});
