/**
 * `vgw decode` and `vgw dump` with --isotp PAIRS and --obd: ISO-TP messages reassembled beside (or, with --no-frames,
 * instead of) the frames, OBD-II payloads decoded to PID names and units, broken messages named and the run going on.
 * The trace is test/fixtures/diag/obd-session.log, recorded from `vgw diag` against the simulated ECU
 * (test/diag/make-obd-fixture.ts) with a wrong sequence number and an N_Cr timeout written after it; the live case
 * runs the simulated ECU and `vgw dump` on one `virtual:` bus.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { main } from "../../cli/main";
import { log } from "../../host/log";
import { startEcus } from "../../host/diag/bus-links";
import { DEFAULT_ECU_TEXT, loadEcuConfig, parseEcuConfig } from "../../host/diag/ecu-sim";
import { describeObd, parseIsoTpPairs } from "../../host/diag/isotp-view";
import { within } from "../support/wait";

const TRACE = path.resolve(__dirname, "../../../test/fixtures/diag/obd-session.log");

/** Runs `body` capturing stdout and the log (one capture for every vgw command it runs at once). */
async function captured(body: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = process.stdout.write;
  const sink = log.sink;
  process.stdout.write = ((chunk: string | Uint8Array, cb?: unknown) => {
    out.push(Buffer.from(chunk).toString());
    if (typeof cb === "function") (cb as () => void)();
    return true;
  }) as typeof process.stdout.write;
  log.sink = (l) => err.push(l);
  try {
    await within(body(), 30_000, "vgw");
    return { out: out.join(""), err: err.join("\n") };
  } finally {
    process.stdout.write = write;
    log.sink = sink;
    process.exitCode = undefined;
  }
}

async function vgw(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let code = -1;
  const r = await captured(async () => (code = await main(["node", "vgw", ...args])));
  return { code, ...r };
}

describe("vgw decode / dump --isotp, --obd", function () {
  this.timeout(60_000);

  it("decode --obd --no-frames: requests and answers decoded; wrong-sn and timeout-cr named; the run goes on to the end", async () => {
    const r = await vgw("decode", "--obd", "--no-frames", TRACE);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.trim().split("\n"), [
      "(1000.000000) can0 isotp 7DF [4] 01 0C 0D 05  obd: request 01 0C Engine speed, 0D Vehicle speed, 05 Engine coolant temperature",
      "(1000.013070) can0 isotp 7E8 [8] 41 0C 27 10 0D 3C 05 82  obd: response 01 0C Engine speed: 2500 rpm; 0D Vehicle speed: 60 km/h; 05 Engine coolant temperature: 90 °C",
      "(1000.514949) can0 isotp 7DF [2] 09 02  obd: request 09 02 VIN",
      "(1000.521994) can0 isotp 7E8 [20] 49 02 01 31 48 47 43 4D 38 32 36 33 33 41 30 30 34 33 35 32  obd: response 09 02 VIN 1HGCM82633A004352",
      "(1001.018714) can0 isotp 7DF [1] 03  obd: request 03 stored DTCs",
      "(1001.019049) can0 isotp 7E8 [6] 43 02 03 01 04 20  obd: response 03 stored DTCs: P0301 P0420",
      "(1001.521544) can0 isotp 7E0 [3] 22 F1 90  obd: request 22 (ReadDataByIdentifier) F1 90",
      "(1001.522121) can0 isotp 7E8 [20] 62 F1 90 31 48 47 43 4D 38 32 36 33 33 41 30 30 34 33 35 32  obd: response 22 (ReadDataByIdentifier) F1 90 31 48 47 43 4D 38 32 36 33 33 41 30 30 34 33 35 32",
      "(1010.000000) can0 isotp 7E0 [3] 22 F1 90  obd: request 22 (ReadDataByIdentifier) F1 90",
      "(1010.013000) can0 isotp 7E8 !! wrong-sn: expected sequence number 2, got 3 after 13 of 20 bytes",
      "(1011.013000) can0 isotp 7E0 [3] 22 F1 90  obd: request 22 (ReadDataByIdentifier) F1 90",
      "(1014.025000) can0 isotp 7E8 !! timeout-cr: no consecutive frame within 1000 ms (N_Cr): 13 of 20 bytes received",
      "(1014.025000) can0 isotp 7E8 [3] 41 0D 3C  obd: response 01 0D Vehicle speed: 60 km/h",
    ]);
    assert.match(r.err, /decode: 26 frames/);
    assert.match(r.err, /decode: isotp: 11 messages, errors: 1 wrong-sn, 1 timeout-cr/);
  });

  it("decode --isotp 7E0:7E8 --format jsonl: the frames, and after the one that completes a message its isotp object", async () => {
    const r = await vgw("decode", "--isotp", "7E0:7E8", "--format", "jsonl", TRACE);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.filter((l) => l.isotp === undefined).length, 26, "every frame is still there");
    const isotp = lines.filter((l) => l.isotp !== undefined);
    // 7DF is not in the pair: its three requests are not reassembled, nor decoded (no --obd).
    assert.equal(isotp.length, 10);
    assert.ok(isotp.every((l) => l.obd === undefined));
    const vin = isotp.find((l) => (l.isotp as { length?: number }).length === 20)!;
    assert.deepEqual(vin, { t: 1000.521994, bus: "can0", isotp: { id: 0x7e8, ext: false, length: 20, frames: 3, data: "490201314847434D38323633334130303433353" + "2" } });
    const i = lines.indexOf(vin);
    assert.deepEqual(lines[i - 1], { t: 1000.521994, bus: "can0", id: 0x7e8, ext: false, message: null, signals: {} }, "right after the frame that completed it");
    const errors = isotp.filter((l) => (l.isotp as { error?: string }).error).map((l) => (l.isotp as { error: string }).error);
    assert.deepEqual(errors, ["wrong-sn", "timeout-cr"]);
  });

  it("dump --obd --no-frames on a live bus: the tester's request and the simulated ECU's answer, decoded, as jsonl", async () => {
    const bus = "virtual:isotp-view-live";
    const ecus = await startEcus(bus, loadEcuConfig());
    try {
      const codes: number[] = [];
      const dumped = await captured(async () => {
        const dumping = main(["node", "vgw", "dump", "-i", bus, "--obd", "--no-frames", "--format", "jsonl", "-n", "2"]);
        await new Promise((r) => setTimeout(r, 100));
        codes.push(await main(["node", "vgw", "diag", "-i", bus, "obd", "read", "0D"]));
        codes.push(await dumping);
      });
      assert.deepEqual(codes, [0, 0], dumped.err);
      assert.match(dumped.out, /^7E8 {2}0D Vehicle speed: 60 km\/h$/m, "what the tester printed");
      const objs = dumped.out
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { bus: string; isotp: { id: number }; obd: unknown });
      assert.deepEqual(
        objs.map((o) => [o.bus, o.isotp.id, o.obd]),
        [
          ["isotp-view-live", 0x7df, { request: true, service: 1, pids: [0x0d] }],
          ["isotp-view-live", 0x7e8, { response: true, service: 1, pids: [{ pid: 0x0d, name: "Vehicle speed", values: [{ name: "Vehicle speed", value: 60, unit: "km/h" }] }] }],
        ],
      );
      assert.match(dumped.err, /dump: isotp: 2 messages/);
    } finally {
      await ecus.close();
    }
  });

  it("dump --obd on 29-bit IDs (ISO 15765-4): the functional 18DB33F1 request and the answer on 18DAF110, decoded", async () => {
    const bus = "virtual:isotp-view-29";
    const ecus = await startEcus(bus, parseEcuConfig(`${DEFAULT_ECU_TEXT}\next: true\n`, "<the default ECU on 29-bit IDs>"));
    try {
      const codes: number[] = [];
      const dumped = await captured(async () => {
        const dumping = main(["node", "vgw", "dump", "-i", bus, "--obd", "--no-frames", "--format", "jsonl", "-n", "2"]);
        await new Promise((r) => setTimeout(r, 100));
        codes.push(await main(["node", "vgw", "diag", "-i", bus, "--ext", "obd", "read", "0C"]));
        codes.push(await dumping);
      });
      assert.deepEqual(codes, [0, 0], dumped.err);
      const objs = dumped.out
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { isotp: { id: number; ext: boolean }; obd: { request?: boolean; response?: boolean; pids: unknown[] } });
      assert.deepEqual(objs.map((o) => [o.isotp.id.toString(16), o.isotp.ext, o.obd.request ?? false, o.obd.response ?? false]), [
        ["18db33f1", true, true, false],
        ["18daf110", true, false, true],
      ]);
      assert.deepEqual(objs[0].obd.pids, [0x0c]);
      assert.equal((objs[1].obd.pids[0] as { name: string }).name, "Engine speed");
    } finally {
      await ecus.close();
    }
  });

  it("--isotp pairs: 11- and 29-bit; a bad pair is a usage error naming it", async () => {
    assert.deepEqual(parseIsoTpPairs("7E0:7E8,18DA10F1:18DAF110"), [
      { request: 0x7e0, response: 0x7e8, ext: false },
      { request: 0x18da10f1, response: 0x18daf110, ext: true },
    ]);
    assert.throws(() => parseIsoTpPairs("7E0"), /'7E0' is not a pair of hex IDs/);
    assert.throws(() => parseIsoTpPairs("7E0:7E0"), /names one ID twice/);
    const r = await vgw("decode", "--isotp", "7E0:zz", TRACE);
    assert.equal(r.code, 2);
    assert.match(r.err, /--isotp: '7E0:zz' is not a pair/);
  });

  it("OBD-II payloads: negative responses named, a payload that does not parse says why", () => {
    assert.equal(describeObd(Uint8Array.of(0x7f, 0x04, 0x22), true).text, "negative response to 04: conditionsNotCorrect (0x22)");
    assert.equal(describeObd(Uint8Array.of(0x43, 0x03, 0x01, 0x04), true).text, "malformed: service 0x03: 3 DTCs announced, 1 present");
    assert.equal(describeObd(Uint8Array.of(0x41, 0x0c, 0x1a), true).text, "malformed: PID 0x0C needs 2 data bytes, 1 follow");
  });
});
