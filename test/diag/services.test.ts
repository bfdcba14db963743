/**
 * UDS and OBD-II services and the simulated ECU joined by in-memory links (test/support/link-pair.ts): the
 * protocol logic alone. The same ECU and testers over ISO-TP on a bus are in diag-cli.test.ts and in the VM suite.
 * Published example exchanges are decoded here too (the differential part: no UDS/OBD reference tool is packaged).
 */
import { strict as assert } from "node:assert";
import { linkPair } from "../support/link-pair";
import { SimulatedEcu, parseEcuConfig, loadEcuConfig } from "../../host/diag/ecu-sim";
import { DiagTimeoutError, NegativeResponseError, UdsClient } from "../../host/diag/uds";
import { ObdClient, parseDtcList, parseVin, splitService01 } from "../../host/diag/obd";
import { decodePid, encodePid, OBD_PIDS, pidText, supportedPids } from "../../can-db/obd-pids";
import { dtcText, parseDtc, udsDtcText } from "../../can-db/dtc-code";
import { nrcName } from "../../host/diag/uds-codes";
import type { MessageLink } from "../../host/diag/link";
import { parseScenario } from "../../hil/scenario";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const h = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ""), "hex"));

/** An ECU serving one end of a link pair; the tester gets the other end. */
function ecuOnLinks(text?: string): { ecu: SimulatedEcu; tester: MessageLink; close: () => Promise<void> } {
  const [tester, ecuSide] = linkPair();
  const ecu = new SimulatedEcu(text ? parseEcuConfig(text, "test.yaml")[0] : loadEcuConfig()[0]);
  const serving = ecu.serve(ecuSide);
  return {
    ecu,
    tester,
    close: async () => {
      ecu.stop();
      await tester.close();
      await ecuSide.close();
      await serving;
    },
  };
}

describe("OBD-II PID table (can-db/obd-pids.ts)", () => {
  it("covers every service 01 PID from 0x00 to 0x60", () => {
    for (let pid = 0; pid <= 0x60; pid++) assert.ok(OBD_PIDS.has(pid), `PID 0x${pid.toString(16)} missing`);
  });

  it("decodes Wikipedia's PID 00 example: BE 1F A8 13 announces 01, 03-07, 0C-11, 13, 15, 1C, 1F and 20", () => {
    assert.deepEqual(
      supportedPids(0, h("BE1FA813")),
      [0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x13, 0x15, 0x1c, 0x1f, 0x20],
    );
  });

  it("decodes CSS Electronics' PID 0D example (7E8 03 41 0D 12: 18 km/h) and the formulas at their ends", () => {
    assert.deepEqual(splitService01(h("410D12"), [0x0d]), [{ pid: 0x0d, name: "Vehicle speed", values: [{ name: "Vehicle speed", value: 18, unit: "km/h" }] }]);
    // Wikipedia's min/max columns: 0C 0..16383.75 rpm, 05 -40..215 °C, 06 -100..99.22 %, 0E -64..63.5 °, 42 0..65.535 V
    const v = (pid: number, data: string) => decodePid(pid, h(data)).values[0].value;
    assert.equal(v(0x0c, "FFFF"), 16383.75);
    assert.equal(v(0x0c, "1AF8"), 1726);
    assert.equal(v(0x05, "00"), -40);
    assert.equal(v(0x05, "FF"), 215);
    assert.equal(v(0x06, "00"), -100);
    assert.equal(v(0x06, "FF"), 99.22);
    assert.equal(v(0x0e, "FF"), 63.5);
    assert.equal(v(0x42, "FFFF"), 65.535);
    assert.equal(v(0x32, "8000"), -8192);
    assert.equal(v(0x5d, "0000"), -210);
    assert.equal(v(0x51, "04"), "diesel");
    assert.equal(v(0x1c, "06"), "EOBD (Europe)");
    assert.equal(pidText(decodePid(0x14, h("5A80"))), "14 Oxygen sensor 1: voltage 0.45 V, short term fuel trim 0 %");
    assert.equal(pidText(decodePid(0x0c, h("2710"))), "0C Engine speed: 2500 rpm");
    assert.equal(pidText(decodePid(0x00, h("BE1FA813"))), "00 PIDs supported [01-20]: 01 03 04 05 06 07 0C 0D 0E 0F 10 11 13 15 1C 1F 20");
  });

  it("encodes physical values back to the same bytes (the simulated ECU's side), clamping beyond the range", () => {
    for (const [pid, hex] of [
      [0x0c, "2710"],
      [0x05, "82"],
      [0x0d, "3C"],
      [0x32, "FC18"],
      [0x10, "04E2"],
    ] as const) {
      const d = decodePid(pid, h(hex));
      assert.equal(Buffer.from(encodePid(pid, d.values.map((x) => x.value as number))).toString("hex").toUpperCase(), hex, `PID ${pid}`);
    }
    assert.deepEqual([...encodePid(0x0d, [300])], [255]);
    assert.deepEqual([...encodePid(0x05, [-100])], [0]);
    assert.throws(() => encodePid(0x14, [0.4]), /takes 2 value\(s\): voltage, short term fuel trim/);
  });

  it("names unknown PIDs and short data without dropping the bytes", () => {
    assert.deepEqual(decodePid(0x99, h("0102")).values, [{ name: "raw", value: "0102", unit: "" }]);
    assert.equal(decodePid(0x0c, h("01")).values[0].value, "01");
  });
});

describe("trouble codes (SAE J2012 text)", () => {
  it("P/C/B/U codes from two bytes and back", () => {
    assert.equal(dtcText(0x0301), "P0301");
    assert.equal(dtcText(0x4035), "C0035");
    assert.equal(dtcText(0x9234), "B1234");
    assert.equal(dtcText(0xc100), "U0100");
    assert.equal(parseDtc("U0100"), 0xc100);
    assert.equal(udsDtcText(0x030113), "P0301-13");
    assert.throws(() => parseDtc("X0301"), /not a trouble code/);
  });

  it("service 03 answers: count first on CAN, 0000 padding skipped", () => {
    assert.deepEqual(parseDtcList(h("43 02 0301 0420")), ["P0301", "P0420"]);
    assert.deepEqual(parseDtcList(h("43 00")), []);
    assert.throws(() => parseDtcList(h("43 03 0301")), /3 DTCs announced, 1 present/);
  });

  it("the VIN of ISO 14229-1's examples (W0L000043MB541326) read from a service 09 answer", () => {
    assert.equal(parseVin(Uint8Array.of(0x49, 0x02, 0x01, ...Buffer.from("W0L000043MB541326"))), "W0L000043MB541326");
  });
});

describe("UDS tester against the simulated ECU (in-memory links)", () => {
  let t: ReturnType<typeof ecuOnLinks> | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("reads DIDs, opens sessions with the server's P2/P2*, keeps them with TesterPresent", async () => {
    t = ecuOnLinks();
    const uds = new UdsClient(t.tester, { p2Ms: 500 });
    assert.equal(Buffer.from(await uds.readDataByIdentifier(0xf190)).toString(), "1HGCM82633A004352");
    assert.deepEqual(await uds.diagnosticSessionControl(3), { session: 3, name: "extendedDiagnosticSession", p2ServerMs: 50, p2StarServerMs: 5000 });
    assert.deepEqual([...(await uds.readDataByIdentifier(0xf186))], [3]);
    await uds.testerPresent();
    assert.equal(await uds.testerPresent({ suppressPositive: true }), undefined);
    assert.equal(t.ecu.counters.silent, 1);
    assert.equal(Buffer.from(await uds.readDataByIdentifier(0xf1a0)).toString(), "extended only");
    assert.deepEqual(await uds.ecuReset(1), { type: 1 });
    assert.equal(t.ecu.session, 1);
  });

  it("names every negative response the ECU gives", async () => {
    t = ecuOnLinks();
    const uds = new UdsClient(t.tester, { p2Ms: 500 });
    const refused = async (p: Promise<unknown>, nrc: number, name: string) => {
      await assert.rejects(p, (e: unknown) => e instanceof NegativeResponseError && e.nrc === nrc && e.nrcName === name && e.message.includes(name));
    };
    await refused(uds.request(h("2EF19000")), 0x11, "serviceNotSupported");
    await refused(uds.request(h("2701")), 0x7f, "serviceNotSupportedInActiveSession");
    await refused(uds.diagnosticSessionControl(0x05), 0x12, "subFunctionNotSupported");
    await refused(uds.request(h("22F1")), 0x13, "incorrectMessageLengthOrInvalidFormat");
    await refused(uds.readDataByIdentifier(0x1234), 0x31, "requestOutOfRange");
    await refused(uds.readDataByIdentifier(0xf1a0), 0x31, "requestOutOfRange"); // extended session only
    await refused(uds.readDataByIdentifier(0xf1a1), 0x33, "securityAccessDenied");
    await refused(uds.ecuReset(1), 0x7f, "serviceNotSupportedInActiveSession");
    await refused(uds.request(h("1905FF")), 0x12, "subFunctionNotSupported");
    assert.equal(uds.counters.negative, 9);
    assert.equal(nrcName(0x78), "requestCorrectlyReceivedResponsePending");
    assert.equal(nrcName(0xf3), "vehicleManufacturerSpecificConditionsNotCorrect");
  });

  it("reads DTCs by status mask with their status bits named, and clears them (refused while the engine runs)", async () => {
    t = ecuOnLinks();
    const uds = new UdsClient(t.tester, { p2Ms: 500 });
    const all = await uds.readDtcByStatusMask(0xff);
    assert.equal(all.availabilityMask, 0xff);
    assert.deepEqual(
      all.dtcs.map((d) => [d.code, d.status, d.statusBits.join("+")]),
      [
        ["P0301-00", 0x2f, "testFailed+testFailedThisOperationCycle+pendingDTC+confirmedDTC+testFailedSinceLastClear"],
        ["P0420-00", 0x08, "confirmedDTC"],
        ["U0100-87", 0x24, "pendingDTC+testFailedSinceLastClear"],
      ],
    );
    assert.deepEqual((await uds.readDtcByStatusMask(0x08)).dtcs.map((d) => d.code), ["P0301-00", "P0420-00"]);
    await uds.clearDiagnosticInformation();
    assert.deepEqual((await uds.readDtcByStatusMask(0xff)).dtcs, []);
    await t.close();
    t = ecuOnLinks("engineRunning: true\nuds: { dtcs: [{ code: P0301, status: 9 }] }\n");
    await assert.rejects(new UdsClient(t.tester).clearDiagnosticInformation(), /conditionsNotCorrect/);
  });

  it("waits through responsePending (0x78) with P2*, and times out after P2 without it", async () => {
    t = ecuOnLinks("uds:\n  p2ServerMs: 20\n  p2StarServerMs: 150\n  slow: { 0x19: 400 }\n");
    const uds = new UdsClient(t.tester, { p2Ms: 100, p2StarMs: 1000 });
    const r = await uds.readDtcByStatusMask(0xff);
    assert.deepEqual(r.dtcs, []);
    // 400 ms of work, a 0x78 every 120 ms (0.8 P2*): four of them, each restarting the tester's P2*.
    assert.ok(uds.counters.responsePending >= 3, JSON.stringify(uds.counters));
    await t.close();
    // Without the ECU's 0x78 the same 400 ms exceeds P2: a named timeout.
    const [tester, ecuSide] = linkPair();
    const late = new UdsClient(tester, { p2Ms: 100 });
    const p = late.readDataByIdentifier(0xf190);
    await ecuSide.receive(1000);
    await assert.rejects(p, (e: unknown) => e instanceof DiagTimeoutError && /no response within 100 ms \(P2\)/.test((e as Error).message));
    await tester.close();
    await ecuSide.close();
  });

  it("SecurityAccess: seed and key unlock a secured DID; wrong keys, a key without a seed and the lockout are named", async () => {
    t = ecuOnLinks("uds:\n  dids: { 0xF1A1: { text: secret, secured: true } }\n  security: { xor: 0x5A5AA5A5, attempts: 2, delayMs: 300 }\n");
    const uds = new UdsClient(t.tester, { p2Ms: 500 });
    const xor = (mask: number) => (seed: Uint8Array) => seed.map((b, i) => b ^ ((mask >>> (8 * (3 - i))) & 0xff));
    const nrc = (code: number) => (e: unknown) => e instanceof NegativeResponseError && e.nrc === code;
    await assert.rejects(uds.readDataByIdentifier(0xf1a1), nrc(0x33));
    await assert.rejects(uds.request(h("270200000000")), nrc(0x24)); // requestSequenceError: no seed asked for
    await assert.rejects(uds.securityAccess(1, xor(0x12345678)), nrc(0x35)); // invalidKey
    await assert.rejects(uds.securityAccess(1, xor(0x12345678)), nrc(0x36)); // exceededNumberOfAttempts
    await assert.rejects(uds.securityAccess(1, xor(0x5a5aa5a5)), nrc(0x37)); // requiredTimeDelayNotExpired
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(await uds.securityAccess(1, xor(0x5a5aa5a5)), true);
    assert.equal(Buffer.from(await uds.readDataByIdentifier(0xf1a1)).toString(), "secret");
    assert.equal(await uds.securityAccess(1, xor(0)), false, "unlocked: the seed is zeros, no key sent");
    await uds.diagnosticSessionControl(3);
    await assert.rejects(uds.readDataByIdentifier(0xf1a1), nrc(0x33), "a new session starts locked");
  });

  it("the session falls back to default after S3 without requests", async () => {
    t = ecuOnLinks("uds: { s3Ms: 100 }\n");
    const uds = new UdsClient(t.tester);
    await uds.diagnosticSessionControl(3);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([...(await uds.readDataByIdentifier(0xf186))], [1]);
  });
});

describe("OBD-II tester against simulated ECUs (in-memory links, functional fan-out)", () => {
  it("collects every ECU's answer until the timeout, or stops at --expect answers", async () => {
    const ecus = parseEcuConfig(
      "ecus:\n  - { name: engine, pids: { 0x0C: 2500, 0x0D: 60 }, vin: ENGINE00000000001, dtcs: { stored: [P0301] } }\n  - { name: gearbox, pids: { 0x0D: 61 }, engineRunning: true }\n",
      "two.yaml",
    ).map((c) => new SimulatedEcu(c));
    // The functional request reaches both ECUs (each on its functional link); each answers on its physical link.
    const pairs = ecus.map(() => linkPair());
    const functionalPairs = ecus.map(() => linkPair());
    const functional: MessageLink = {
      send: async (p) => {
        await Promise.all(functionalPairs.map(([tester]) => tester.send(p)));
      },
      receive: () => Promise.reject(new Error("functional links receive nothing")),
      close: async () => undefined,
    };
    const serving = ecus.map((e, i) => e.serve(pairs[i][1], functionalPairs[i][1]));
    const obd = new ObdClient({ request: functional, responders: pairs.map(([tester], i) => ({ ecu: 0x7e8 + i, link: tester })) }, { timeoutMs: 300 });
    try {
      const speed = await obd.readPids([0x0d, 0x0c]);
      assert.deepEqual(
        speed.answers.map((a) => [a.ecu, a.value.map(pidText)]),
        [
          [0x7e8, ["0D Vehicle speed: 60 km/h", "0C Engine speed: 2500 rpm"]],
          [0x7e9, ["0D Vehicle speed: 61 km/h"]],
        ],
      );
      const sup = await obd.supportedPids();
      assert.deepEqual(sup.answers, [
        { ecu: 0x7e8, value: [0x01, 0x0c, 0x0d] },
        { ecu: 0x7e9, value: [0x01, 0x0d] },
      ]);
      assert.deepEqual((await obd.readVin()).answers, [{ ecu: 0x7e8, value: "ENGINE00000000001" }]);
      assert.deepEqual((await obd.readDtcs("stored")).answers, [
        { ecu: 0x7e8, value: ["P0301"] },
        { ecu: 0x7e9, value: [] },
      ]);
      const cleared = await obd.clearDtcs();
      assert.deepEqual(cleared.answers, [{ ecu: 0x7e8, value: true }]);
      assert.deepEqual(cleared.refusals, [{ ecu: 0x7e9, nrc: 0x22, nrcName: "conditionsNotCorrect" }]);
      assert.deepEqual((await obd.readDtcs("stored")).answers[0].value, []);
      // Functionally addressed: unknown services and unsupported PIDs get silence, not refusals.
      assert.deepEqual(await obd.query(Uint8Array.of(0x05)), { answers: [], refusals: [] });
      assert.deepEqual((await obd.readPids([0x5c])).answers, []);
      // expect: 1 stops at the first answer instead of the 300 ms timeout.
      obd.settings.expect = 1;
      obd.settings.timeoutMs = 5000;
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) assert.equal((await obd.readPids([0x0d])).answers.length, 1);
      assert.ok(Date.now() - t0 < 2000, `20 reads took ${Date.now() - t0} ms`);
    } finally {
      obd.close();
      for (const e of ecus) e.stop();
      for (const [a, b] of [...pairs, ...functionalPairs]) {
        await a.close();
        await b.close();
      }
      await Promise.all(serving);
    }
  });

  it("a physical request gets the NRCs a functional one does not", async () => {
    const [tester, ecuSide] = linkPair();
    const ecu = new SimulatedEcu(loadEcuConfig()[0]);
    const serving = ecu.serve(ecuSide);
    const obd = new ObdClient({ request: tester, responders: [{ ecu: 0x7e8, link: tester }] }, { timeoutMs: 300 });
    try {
      assert.deepEqual((await obd.query(Uint8Array.of(0x05))).refusals, [{ ecu: 0x7e8, nrc: 0x11, nrcName: "serviceNotSupported" }]);
      assert.deepEqual((await obd.query(Uint8Array.of(0x01, 1, 2, 3, 4, 5, 6, 7))).refusals, [{ ecu: 0x7e8, nrc: 0x13, nrcName: "incorrectMessageLengthOrInvalidFormat" }]);
    } finally {
      obd.close();
      ecu.stop();
      await tester.close();
      await ecuSide.close();
      await serving;
    }
  });
});

describe("ECU configuration errors name file, line and key", () => {
  it("rejects bad values with file:line", () => {
    assert.throws(() => parseEcuConfig("name: x\npids:\n  0x0C: [1, 2]\n", "e.yaml"), /e\.yaml:3: pids\.0x0C: PID 0x0C \(Engine speed\) takes 1 value/);
    assert.throws(() => parseEcuConfig("dtcs:\n  stored: [P0301, Q1]\n", "e.yaml"), /e\.yaml:2: dtcs\.stored\.0x01: 'Q1' is not a trouble code/);
    assert.throws(() => parseEcuConfig("colour: red\n", "e.yaml"), /e\.yaml:1: colour: unknown key/);
    assert.throws(() => parseEcuConfig("pids:\n  0x20: 5\n", "e.yaml"), /bitmaps are computed/);
    assert.throws(() => parseEcuConfig("uds:\n  dids:\n    0xF190: { hex: 'zz' }\n", "e.yaml"), /e\.yaml:3: uds\.dids\.0xF190\.hex: expected bytes as hex/);
  });
});

describe("a HIL scenario's ecu: section", () => {
  it("loads the ECU file with the scenario, and names both files and lines when the ECU file is wrong", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-scenario-ecu-"));
    try {
      fs.writeFileSync(path.join(dir, "good.yaml"), "name: engine\npids: { 0x0D: 50 }\n");
      fs.writeFileSync(path.join(dir, "bad.yaml"), "name: engine\npids:\n  0x0D: [1, 2]\n");
      const text = (ecu: string) => `name: x\necu: ${ecu}\nsteps:\n  - wait: 1s\nexpect:\n  - delivery: {}\n`;
      const sc = parseScenario(text("good.yaml"), path.join(dir, "s.yaml"));
      assert.equal(sc.ecu?.configs[0].name, "engine");
      assert.deepEqual([...sc.ecu!.configs[0].pids.get(0x0d)!], [50]);
      assert.throws(
        () => parseScenario(text("bad.yaml"), path.join(dir, "s.yaml")),
        (e: Error) => e.message.startsWith(`${path.join(dir, "s.yaml")}:2: ecu: ${path.join(dir, "bad.yaml")}:3: pids.0x0D: PID 0x0D (Vehicle speed) takes 1 value`),
      );
      assert.throws(() => parseScenario(text("missing.yaml"), path.join(dir, "s.yaml")), /s\.yaml:2: ecu: file not found/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
