/** candump filter syntax and the kernel's matching rule (the same cases run against the real kernel in vm.test.ts). */
import { strict as assert } from "node:assert";
import { makeFrame, parseFrame } from "../../frame/frame";
import { UsageError } from "../../frame/errors";
import { acceptFrame, parseFilters } from "../../host/bus/filter";

const accepts = (filter: string, frame: string) => acceptFrame(parseFilters(filter), parseFrame(frame));

describe("filters (candump syntax)", () => {
  it("parses id:mask, id~mask and the EFF flag in the mask", () => {
    assert.deepEqual(parseFilters("123:7FF,100~700"), [{ id: 0x123, mask: 0x7ff }, { id: 0x100, mask: 0x700, invert: true }]);
    assert.deepEqual(parseFilters("12345678:9FFFFFFF"), [{ id: 0x12345678, mask: 0x1fffffff, ext: true }]);
    assert.deepEqual(parseFilters("123:800007FF"), [{ id: 0x123, mask: 0x7ff, ext: false }]);
  });

  it("matches as the kernel does: an 11-bit mask also matches 29-bit frames with those low bits", () => {
    assert.equal(accepts("123:7FF", "123#00"), true);
    assert.equal(accepts("123:7FF", "124#00"), false);
    assert.equal(accepts("123:7FF", "00000123#00"), true);
    assert.equal(accepts("123:800007FF", "00000123#00"), false);
    assert.equal(accepts("12345678:9FFFFFFF", "12345678#00"), true);
    assert.equal(accepts("00000678:9FFFFFFF", "678#00"), false);
  });

  it("inverts, ORs several filters, and never filters error frames", () => {
    assert.equal(accepts("100~700", "123#00"), false);
    assert.equal(accepts("100~700", "223#00"), true);
    assert.equal(accepts("200:7FF,300:7FF", "300#"), true);
    assert.equal(acceptFrame(parseFilters("200:7FF"), makeFrame({ id: 0x40, err: true, data: new Uint8Array(8) })), true);
  });

  it("rejects malformed filters with the item named", () => {
    assert.throws(() => parseFilters("123"), (e: Error) => e instanceof UsageError && /'123'/.test(e.message));
    assert.throws(() => parseFilters("12G:7FF"), UsageError);
    assert.throws(() => parseFilters("40000123:7FF"), /RTR/);
  });
});
