/**
 * Settings as the gateway stores them (host/gateway/device-settings.ts): long lists in parts that each fit one
 * Jacdac settings packet, read back whole as the firmware reads them (firmware/test/config.test.ts checks the
 * firmware's side; test/policy/signals.e2e.test.ts deploys a 50-row table through the simulator).
 */
import { strict as assert } from "node:assert";
import { fromDeviceSettings, PART_BYTES, SETTING_PARTS, toDeviceSettings } from "../../host/gateway/device-settings";
import { VgwError } from "../../frame/errors";
import { seededRandom } from "../candb/helpers";

describe("gateway settings in parts", () => {
  it("splits lists into parts of at most PART_BYTES, ends them with an empty part, and reads them back whole (property)", () => {
    const random = seededRandom(6);
    let split = 0;
    for (let round = 0; round < 200; round++) {
      const rows = Array.from({ length: Math.floor(random() * 64) }, () =>
        // mostly small numbers, as real rows have, some up to 31 bits
        Array.from({ length: 11 }, () => Math.floor(random() * 2 ** (1 + Math.floor(random() ** 3 * 31))) * (random() < 0.2 ? -1 : 1)),
      );
      const keys = Array.from({ length: Math.floor(random() * 32) }, () => Math.floor(random() * 2 ** 32));
      const settings = { deviceId: "gw1", sigTable: rows, sigOnly: keys, canFilters: [[0x100, 0x7ff]], batchBytes: 2560 };
      let stored: Record<string, unknown>;
      try {
        stored = toDeviceSettings(settings);
      } catch (e) {
        // only a table that needs more keys than the gateway reads is refused, saying so
        assert.ok(e instanceof VgwError && /need \d+ settings keys; the gateway reads 32/.test(e.message), String(e));
        continue;
      }
      for (const [key, value] of Object.entries(stored)) {
        assert.ok(key.length <= 13, `key ${key}: devs takes keys of at most 13 characters`);
        assert.ok(JSON.stringify(value).length <= PART_BYTES, `${key}: ${JSON.stringify(value).length} bytes`);
      }
      // the part after the last is empty, unless every key is used
      const parts = Object.keys(stored).filter((k) => /^sigTable\d*$/.test(k) && (stored[k] as unknown[]).length > 0).length;
      if (parts < SETTING_PARTS) assert.deepEqual(stored[`sigTable${Math.max(parts, 1) + 1}`], []);
      assert.deepEqual(fromDeviceSettings(stored), settings);
      if ("sigTable3" in stored) split++;
    }
    assert.ok(split >= 100, `${split} of 200 tables took three parts or more`);
  });

  it("reads parts as the firmware does: up to the first empty one; a part that is not a list stands for the whole", () => {
    const stored = { sigTable: [[1], [2]], sigTable2: [[3]], sigTable3: [], sigTable4: [[9]], mqttPort: 1883 };
    assert.deepEqual(fromDeviceSettings(stored), { sigTable: [[1], [2], [3]], mqttPort: 1883 });
    assert.deepEqual(fromDeviceSettings({ sigTable2: [[3]], sigTable: [[1]] }), { sigTable: [[1], [3]] }, "parts in any order");
    assert.deepEqual(fromDeviceSettings({ sigTable: [[1]], sigTable2: "x" }), { sigTable: "x" });
    // settings whose names end in a digit but have no list before them are settings of their own
    assert.deepEqual(fromDeviceSettings({ port2: [1] }), { port2: [1] });
  });

  it("a short list is one key plus the empty part that hides an earlier deploy's longer list", () => {
    assert.deepEqual(toDeviceSettings({ canFilters: [[0x100, 0x7ff]], mqttHost: "h" }), { canFilters: [[0x100, 0x7ff]], canFilters2: [], mqttHost: "h" });
  });

  it("refuses what the gateway cannot read: an entry longer than a part, or more parts than it reads", () => {
    assert.throws(() => toDeviceSettings({ sigTable: [Array.from({ length: 40 }, () => 123456789)] }), /setting sigTable: an entry of \d+ bytes does not fit one settings packet/);
    const rows = Array.from({ length: 64 }, () => Array.from({ length: 11 }, () => -2147483647));
    assert.throws(() => toDeviceSettings({ sigTable: rows }), /setting sigTable: \d+ bytes of JSON need \d+ settings keys; the gateway reads 32/);
  });
});
