/**
 * `vgw diag` against the simulated ECU on a `virtual:` bus, over ISO-TP: every command, values decoded to names and
 * units, the VIN in a multi-frame answer, DTCs, every negative response, responsePending, functional answers from
 * two ECUs. The same against vcan0 in a real kernel, as two processes, is in vm.test.ts.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { main } from "../../cli/main";
import { log } from "../../host/log";
import { openBus } from "../../host/bus";
import { startEcus, type RunningEcus } from "../../host/diag/bus-links";
import { loadEcuConfig, parseEcuConfig } from "../../host/diag/ecu-sim";
import { formatFrame, parseFrame, type Frame } from "../../frame/frame";
import { within } from "../support/wait";

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `vgw diag ...` in this process (a virtual bus lives in one process), capturing stdout and the log. */
async function vgw(...args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const write = process.stdout.write;
  const sink = log.sink;
  process.stdout.write = ((chunk: string | Uint8Array, cb?: unknown) => {
    out.push(String(chunk));
    if (typeof cb === "function") (cb as () => void)();
    return true;
  }) as typeof process.stdout.write;
  log.sink = (l) => err.push(l);
  try {
    const code = await within(main(["node", "vgw", "diag", ...args]), 30_000, `vgw diag ${args.join(" ")}`);
    return { code, out: out.join(""), err: err.join("\n") };
  } finally {
    process.stdout.write = write;
    log.sink = sink;
    process.exitCode = undefined;
  }
}

describe("vgw diag against the simulated ECU on a virtual bus (ISO-TP)", function () {
  this.timeout(60_000);
  let ecus: RunningEcus | undefined;
  let bus = "";
  let n = 0;
  const start = async (text?: string) => {
    bus = `virtual:diag-${++n}`;
    ecus = await startEcus(bus, text ? parseEcuConfig(text, "test.yaml") : loadEcuConfig());
  };
  afterEach(async () => {
    await ecus?.close();
    ecus = undefined;
  });

  it("obd pids: the supported PIDs by name, following the bitmaps' next-range bits", async () => {
    await start();
    const r = await vgw("-i", bus, "obd", "pids");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split("\n");
    assert.equal(lines[0], "7E8  01 Monitor status since DTCs cleared");
    assert.ok(lines.includes("7E8  0C Engine speed"), r.out);
    assert.ok(lines.includes("7E8  5C Engine oil temperature"), r.out);
    assert.equal(lines.length, 15);
  });

  it("obd read: values decoded to names and units (one request for several PIDs), text and JSON", async () => {
    await start();
    const r = await vgw("-i", bus, "obd", "read", "0C", "0D", "05", "42", "51", "2F");
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.trim().split("\n"), [
      "7E8  0C Engine speed: 2500 rpm",
      "7E8  0D Vehicle speed: 60 km/h",
      "7E8  05 Engine coolant temperature: 90 °C",
      "7E8  42 Control module voltage: 13.8 V",
      "7E8  51 Fuel type: gasoline",
      "7E8  2F Fuel tank level input: 72.55 %",
    ]);
    const j = await vgw("-i", bus, "--json", "obd", "read", "engine speed");
    assert.deepEqual(JSON.parse(j.out), {
      answers: [{ ecu: "7E8", pids: [{ pid: 12, name: "Engine speed", values: [{ name: "Engine speed", value: 2500, unit: "rpm" }] }] }],
      refusals: [],
    });
  });

  it("obd vin: 20 bytes in a multi-frame answer (first frame, flow control, consecutive frames on the wire)", async () => {
    await start();
    const tap = await openBus(bus);
    const seen: Frame[] = [];
    const reading = (async () => {
      for await (const f of tap) seen.push(f);
    })();
    try {
      const r = await vgw("-i", bus, "obd", "vin");
      assert.equal(r.out, "7E8  VIN 1HGCM82633A004352\n", r.err);
    } finally {
      await tap.close();
      await reading;
    }
    const wire = seen.map(formatFrame);
    assert.deepEqual(wire, [
      "7DF#020902CCCCCCCCCC",
      "7E8#1014490201314847",
      "7E0#300000CCCCCCCCCC",
      "7E8#21434D3832363333",
      "7E8#2241303034333532",
    ]);
  });

  it("obd dtc (stored, pending, permanent) and clear: permanent DTCs survive, a running engine refuses", async () => {
    await start();
    assert.equal((await vgw("-i", bus, "obd", "dtc")).out, "7E8  stored: P0301 P0420\n");
    assert.equal((await vgw("-i", bus, "obd", "dtc", "--pending")).out, "7E8  pending: P0171\n");
    assert.equal((await vgw("-i", bus, "obd", "dtc", "--permanent")).out, "7E8  permanent: P0420\n");
    assert.equal((await vgw("-i", bus, "obd", "clear")).out, "7E8  DTCs and stored values cleared\n");
    assert.equal((await vgw("-i", bus, "obd", "dtc")).out, "7E8  stored: none\n");
    assert.equal((await vgw("-i", bus, "obd", "dtc", "--permanent")).out, "7E8  permanent: P0420\n");
    // The monitor status (PID 01) follows: MIL off, no DTCs.
    assert.match((await vgw("-i", bus, "obd", "read", "01")).out, /01 Monitor status since DTCs cleared: MIL off, DTC count 0, /);
    await ecus!.close();
    await start("engineRunning: true\ndtcs: { stored: [P0300] }\n");
    const refused = await vgw("-i", bus, "obd", "clear");
    assert.equal(refused.out, "7E8  refused: conditionsNotCorrect (0x22)\n");
    assert.equal(refused.code, 1);
  });

  it("obd: answers of two ECUs to one functional request; --expect 1 stops at the first; --tx asks one ECU", async () => {
    await start("ecus:\n  - { name: engine, pids: { 0x0D: 60 } }\n  - { name: abs, pids: { 0x0D: 61 } }\n");
    assert.deepEqual((await vgw("-i", bus, "obd", "read", "0D")).out.trim().split("\n"), ["7E8  0D Vehicle speed: 60 km/h", "7E9  0D Vehicle speed: 61 km/h"]);
    const t0 = Date.now();
    const one = await vgw("-i", bus, "--timeout", "5000", "--expect", "1", "obd", "read", "0D");
    assert.equal(one.out.trim().split("\n").length, 1);
    assert.ok(Date.now() - t0 < 4000, `--expect 1 waited ${Date.now() - t0} ms`);
    assert.equal((await vgw("-i", bus, "--tx", "7E1", "obd", "read", "0D")).out, "7E9  0D Vehicle speed: 61 km/h\n");
  });

  it("obd: no answer is a clear error (exit 1)", async () => {
    await start();
    const r = await vgw("-i", "virtual:nobody-here", "--timeout", "100", "obd", "read", "0C");
    assert.equal(r.code, 1);
    assert.match(r.err, /no ECU answered within 100 ms on virtual:nobody-here/);
  });

  it("uds read-did, session, tester-present, reset, read-dtc, clear-dtc", async () => {
    await start();
    const did = await vgw("-i", bus, "uds", "read-did", "F190", "F187");
    assert.deepEqual(did.out.trim().split("\n"), ['F190 VIN: "1HGCM82633A004352" (31 48 47 43 4D 38 32 36 33 33 41 30 30 34 33 35 32)', "F187 VehicleManufacturerSparePartNumber: (01 02 03 04 05)"]);
    assert.equal((await vgw("-i", bus, "uds", "session", "3")).out, "session 3 extendedDiagnosticSession (P2 50 ms, P2* 5000 ms)\n");
    assert.equal((await vgw("-i", bus, "uds", "read-did", "F186")).out, "F186 ActiveDiagnosticSession: (03)\n");
    assert.equal((await vgw("-i", bus, "uds", "tester-present")).out, "tester present: ok\n");
    assert.equal((await vgw("-i", bus, "uds", "--suppress", "tester-present")).out, "tester present: ok\n");
    assert.equal((await vgw("-i", bus, "uds", "reset", "1")).out, "ECU reset: hardReset\n");
    assert.equal((await vgw("-i", bus, "uds", "read-did", "F186")).out, "F186 ActiveDiagnosticSession: (01)\n");
    const dtc = await vgw("-i", bus, "uds", "read-dtc", "08");
    assert.deepEqual(dtc.out.trim().split("\n"), [
      "availability mask 0xFF, 2 DTC(s)",
      "P0301-00  0x030100  status 0x2F  testFailed, testFailedThisOperationCycle, pendingDTC, confirmedDTC, testFailedSinceLastClear",
      "P0420-00  0x042000  status 0x08  confirmedDTC",
    ]);
    const j = JSON.parse((await vgw("-i", bus, "--json", "uds", "read-dtc")).out);
    assert.deepEqual(j.dtcs[2], { dtc: 0xc10087, code: "U0100-87", status: 0x24, statusBits: ["pendingDTC", "testFailedSinceLastClear"] });
    assert.equal((await vgw("-i", bus, "uds", "clear-dtc")).out, "DTCs cleared (group 0xFFFFFF)\n");
    assert.equal((await vgw("-i", bus, "uds", "read-dtc")).out, "availability mask 0xFF, 0 DTC(s)\n");
    assert.equal((await vgw("-i", bus, "uds", "raw", "3E00")).out, "7E00\n");
  });

  it("uds: every negative response the ECU gives, named, exit 1", async () => {
    await start("engineRunning: true\nuds:\n  dids: { 0xF1A0: { text: x, sessions: [3] }, 0xF1A1: { text: y, secured: true } }\n  dtcs: [{ code: P0301, status: 9 }]\n  services: { 0x11: { sessions: [3] } }\n");
    const cases: Array<[string[], string]> = [
      [["uds", "raw", "2701"], "0x11 serviceNotSupported"],
      [["uds", "session", "5"], "0x12 subFunctionNotSupported"],
      [["uds", "raw", "22F1"], "0x13 incorrectMessageLengthOrInvalidFormat"],
      [["uds", "clear-dtc"], "0x22 conditionsNotCorrect"],
      [["uds", "read-did", "1234"], "0x31 requestOutOfRange"],
      [["uds", "read-did", "F1A0"], "0x31 requestOutOfRange"],
      [["uds", "clear-dtc", "123456"], "0x31 requestOutOfRange"],
      [["uds", "read-did", "F1A1"], "0x33 securityAccessDenied"],
      [["uds", "reset", "1"], "0x7F serviceNotSupportedInActiveSession"],
    ];
    for (const [args, named] of cases) {
      const r = await vgw("-i", bus, ...args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.err}`);
      assert.ok(r.err.includes(`negative response ${named}`), `${args.join(" ")}: ${r.err}`);
    }
    // In the extended session the same two succeed.
    assert.equal((await vgw("-i", bus, "uds", "--session", "3", "read-did", "F1A0")).out, 'F1A0: "x" (78)\n');
    assert.equal((await vgw("-i", bus, "uds", "--session", "3", "reset", "1")).code, 0);
    const j = JSON.parse((await vgw("-i", bus, "--json", "uds", "read-did", "F1A1")).out);
    assert.deepEqual(j.dids, [{ did: "F1A1", name: null, error: { nrc: 0x33, name: "securityAccessDenied" } }]);
  });

  it("uds --unlock: SecurityAccess before the request; a wrong key is named", async () => {
    await start();
    assert.match((await vgw("-i", bus, "uds", "--unlock", "5A5AA5A5", "read-did", "F1A1")).err, /negative response 0x7F serviceNotSupportedInActiveSession/);
    assert.equal((await vgw("-i", bus, "uds", "--session", "3", "--unlock", "5A5AA5A5", "read-did", "F1A1")).out, 'F1A1: "secret" (73 65 63 72 65 74)\n');
    const wrong = await vgw("-i", bus, "uds", "--session", "3", "--unlock", "1", "read-did", "F1A1");
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /SecurityAccess: negative response 0x35 invalidKey/);
  });

  it("uds: responsePending (0x78) keeps the tester waiting past P2; without it P2 runs out", async () => {
    await start("uds:\n  p2ServerMs: 20\n  p2StarServerMs: 200\n  slow: { 0x19: 500, 0x22: 300 }\n");
    const r = await vgw("-i", bus, "--p2", "150", "uds", "read-dtc");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /the ECU asked for more time [3-9] time\(s\) \(responsePending\)/);
    assert.ok(ecus!.ecus[0].counters.responsePending >= 3);
    await ecus!.close();
    // The same 300 ms of work, but the ECU's P2server is long enough that it sends no 0x78: the tester's P2 of 150 ms expires.
    await start("uds:\n  p2ServerMs: 1000\n  slow: { 0x22: 300 }\n");
    const late = await vgw("-i", bus, "--p2", "150", "uds", "read-did", "F190");
    assert.equal(late.code, 1);
    assert.match(late.err, /ReadDataByIdentifier: no response within 150 ms \(P2\)/);
  });

  it("a malformed answer (wrong ISO-TP sequence number) ends that request with a named error; the next one works", async () => {
    // A hand-made ECU on raw frames: the first answer's consecutive frame skips a sequence number, the second is right.
    const wire = await openBus("virtual:broken-ecu");
    let answered = 0;
    const serving = (async () => {
      for await (const f of wire) {
        if (f.id === 0x7e0 && f.data[0] === 0x03 && f.data[1] === 0x22) {
          await wire.send(parseFrame("7E8#100B62F190414243"));
        } else if (f.id === 0x7e0 && f.data[0] === 0x30) {
          await wire.send(parseFrame(answered++ === 0 ? "7E8#2244454647484950" : "7E8#2144454647484950"));
        }
      }
    })();
    try {
      const bad = await vgw("-i", "virtual:broken-ecu", "uds", "read-did", "F190");
      assert.equal(bad.code, 1);
      assert.match(bad.err, /ReadDataByIdentifier: the response was lost: isotp wrong-sn/);
      const good = await vgw("-i", "virtual:broken-ecu", "uds", "read-did", "F190");
      assert.equal(good.out, 'F190 VIN: "ABCDEFGH" (41 42 43 44 45 46 47 48)\n', good.err);
    } finally {
      await wire.close();
      await serving;
    }
  });

  it("29-bit addressing (--ext): 18DB33F1 functional, 18DA10F1 / 18DAF110 physical", async () => {
    await start("ext: true\nvin: EXT29BIT00000001\npids: { 0x0D: 42 }\n");
    assert.equal((await vgw("-i", bus, "--ext", "obd", "read", "0D")).out, "18DAF110  0D Vehicle speed: 42 km/h\n");
    assert.equal((await vgw("-i", bus, "--ext", "obd", "vin")).out, "18DAF110  VIN EXT29BIT00000001\n");
    assert.match((await vgw("-i", bus, "--ext", "uds", "session", "3")).out, /^session 3 extendedDiagnosticSession/);
  });

  it("vgw diag ecu --config: a bad file is named with its line (exit 2 for usage, 1 for the file)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-ecu-"));
    try {
      const f = path.join(dir, "ecu.yaml");
      fs.writeFileSync(f, "name: x\npids:\n  0x0C: fast\n");
      const r = await vgw("ecu", "-i", "virtual:cfg", "--config", f, "--duration", "1");
      assert.equal(r.code, 1);
      assert.ok(r.err.includes(`${f}:3: pids.0x0C: expected bytes as hex like "0102" or "01 02", got "fast"`), r.err);
      const u = await vgw("-i", "virtual:cfg", "uds", "read-did");
      assert.equal(u.code, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
