/** Error frame decoding in can-utils' words, and counting. */
import { strict as assert } from "node:assert";
import { makeFrame } from "../../frame/frame";
import { describeErrorFrame, ErrorCounters } from "../../frame/error-frame";

const err = (id: number, data: number[]) => makeFrame({ id, err: true, data: Uint8Array.from(data) });

describe("error frames", () => {
  it("names classes and details as candump -e does", () => {
    assert.equal(describeErrorFrame(err(0x040, [0, 0, 0, 0, 0, 0, 0, 0])), "bus-off");
    assert.equal(describeErrorFrame(err(0x004, [0, 0x30, 0, 0, 0, 0, 0, 0])), "controller-problem{rx-error-passive,tx-error-passive}");
    assert.equal(describeErrorFrame(err(0x088, [0, 0, 0x04, 0x0a, 0, 0, 0, 0])), "protocol-violation{bit-stuffing-error,data-section} bus-error");
    assert.equal(describeErrorFrame(err(0x220, [0, 0, 0, 0, 0, 0, 0x80, 0x10])), "no-acknowledgement-on-tx error-counter-tx-rx{tx=128,rx=16}");
    assert.equal(describeErrorFrame(err(0x010, [0, 0, 0, 0, 0x07, 0, 0, 0])), "transceiver-status{CANH-short-to-GND}");
  });

  it("counts by class, bus-off separately", () => {
    const c = new ErrorCounters();
    c.add(err(0x040, [0, 0, 0, 0, 0, 0, 0, 0]));
    c.add(err(0x044, [0, 0x20, 0, 0, 0, 0, 0, 0]));
    assert.equal(c.total, 2);
    assert.equal(c.busOff, 2);
    assert.equal(c.byClass.get("controller-problem"), 1);
  });
});
