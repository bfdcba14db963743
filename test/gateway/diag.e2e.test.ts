/**
 * Diagnostics through the gateway, end to end and all real: the firmware's bytecode in the DeviceScript VM, an aedes
 * broker, and the simulated ECU (host/diag/ecu-sim.ts, ISO-TP on the simulator's CAN wire) answering what the
 * gateway transmits. Run under `flock /tmp/vgw-devtools.lock`.
 */
import { strict as assert } from "assert";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { makeFrame, type Frame } from "../../frame/frame";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import type { BusOptions } from "../../host/bus";
import { startEcus, type RunningEcus } from "../../host/diag/bus-links";
import { loadEcuConfig } from "../../host/diag/ecu-sim";
import type { DiagEntry } from "../../host/gateway/uplink";
import { WireTap } from "../../hil/ecu";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import { waitFor } from "../support/wait";
import { rng } from "../support/fuzz";

const VIN = "1HGCM82633A004352";
const VGW = path.resolve(__dirname, "../../../bin/vgw");

/** `vgw ARGS` as its own process, as a technician runs it. */
function vgw(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VGW, "diag", ...args], { timeout: 120_000 }, (e, out, err) => {
      const code = e ? (typeof (e as { code?: unknown }).code === "number" ? ((e as { code: number }).code) : -1) : 0;
      resolve({ code, out, err });
    });
  });
}
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString("hex").toUpperCase();

describe("gateway diagnostics end to end: firmware in the simulator, simulated ECU on its CAN wire", function () {
  this.timeout(300_000);
  let broker: HilBroker;
  let fx: GatewayFixture;
  let ecus: RunningEcus;
  /** Every frame the gateway transmitted. */
  const wire: Frame[] = [];

  before(async () => {
    broker = await openBroker({ kind: "aedes" });
    fx = await startGatewayFixture({
      broker: broker.url,
      device: "diag1",
      settings: {
        canMode: "normal",
        insecure: true,
        diagAllow: [
          [0x7df, 0x7e8, 0x7e0],
          [0x7e0, 0x7e8],
        ],
        diagRate: 50,
        txAllow: [[0x123, 0x7ff]],
      },
    });
    const taps = new Set<WireTap>();
    const previous = fx.gw.server.onTransmit;
    fx.gw.server.onTransmit = (frames) => {
      previous(frames);
      wire.push(...frames);
      for (const f of frames) for (const t of taps) t.hear(f);
    };
    const put = (frame: Frame): void => void fx.gw.bus.send(frame);
    const configs = loadEcuConfig();
    // ReadDTCInformation "works" 8 s: responsePending twice, then the answer (the slow-ECU test below)
    configs[0].uds.slow.set(0x19, 8000);
    ecus = await startEcus(async (options: BusOptions) => new WireTap(options, put, taps), configs);
  });
  after(async () => {
    await ecus?.close();
    await fx?.stop();
    await broker?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed" && fx) process.stderr.write(`firmware output (last 30 lines):\n  ${fx.firmwareLines.slice(-30).join("\n  ")}\n`);
  });

  async function diag(req: number, res: number, request: string) {
    const st = await fx.status();
    return await fx.command({ op: "diag", boot: st.boot!, exp: st.up! + 20_000, req, res, data: Buffer.from(request, "hex") }, 15_000);
  }

  it("reads an OBD-II PID, the VIN (multi-frame, flow control) and a UDS DID through the command topic", async () => {
    const rpm = await diag(0x7df, 0x7e8, "010C");
    assert.deepEqual([rpm.ok, rpm.reason, hex(rpm.data)], [true, "ok", "410C2710"]);
    const vin = await diag(0x7df, 0x7e8, "0902");
    assert.deepEqual([vin.ok, hex(vin.data)], [true, "490201" + Buffer.from(VIN).toString("hex").toUpperCase()]);
    const did = await diag(0x7e0, 0x7e8, "22F190");
    assert.deepEqual([did.ok, hex(did.data)], [true, "62F190" + Buffer.from(VIN).toString("hex").toUpperCase()]);
    // a negative response comes back as data
    const neg = await diag(0x7e0, 0x7e8, "22F1A0");
    assert.deepEqual([neg.ok, hex(neg.data)], [true, "7F2231"]);
    // the flow control of the VIN went to the pair's fc id 0x7E0
    assert.ok(wire.some((f) => f.id === 0x7e0 && f.data[0] === 0x30), "a flow control frame on 0x7E0");
  });

  it("a slow ECU (responsePending for 8 s) holds neither the status, nor a tx, nor a second diag's refusal", async () => {
    let settled = "";
    const slow = diag(0x7e0, 0x7e8, "1902FF").then((r) => {
      settled = "diag";
      return r;
    });
    await waitFor(() => wire.some((f) => f.id === 0x7e0 && f.data[1] === 0x19), 30_000, "the ReadDTCInformation request on the wire");
    // the ECU is working on it: the gateway still answers everything else
    const st = await fx.status();
    assert.equal(st.online, true);
    const tx = await fx.command({ op: "tx", boot: st.boot!, exp: st.up! + 20_000, frame: makeFrame({ id: 0x123, data: Uint8Array.of(1, 2, 3) }) }, 15_000);
    assert.deepEqual([tx.ok, tx.reason], [true, "ok"]);
    const second = await diag(0x7df, 0x7e8, "010C");
    assert.deepEqual([second.ok, second.reason], [false, "busy"], second.msg);
    assert.equal(settled, "", "the slow exchange was still under way while status, tx and the refusal came back");
    const x = await slow;
    assert.deepEqual([x.ok, x.reason], [true, "ok"], x.msg);
    assert.equal(hex(x.data).slice(0, 4), "5902");
    // and the channel is free again
    assert.equal(hex((await diag(0x7df, 0x7e8, "010C")).data), "410C2710");
    assert.equal(fx.crashed, undefined);
  });

  it("refuses write, session, routine and clear requests and an unlisted pair; none reaches the bus", async () => {
    const before = wire.length;
    for (const r of ["2EF19001", "1003", "31010203", "04", "14FFFFFF"]) {
      const x = await diag(0x7e0, 0x7e8, r);
      assert.deepEqual([x.ok, x.reason], [false, "not-allowed"], r);
    }
    const pair = await diag(0x7e1, 0x7e9, "010C");
    assert.equal(pair.reason, "not-allowed");
    assert.equal(wire.length, before, "nothing transmitted");
  });

  it("polls a list and publishes the responses on P/diag; the status counts them", async () => {
    const got: DiagEntry[] = [];
    const on = (dev: string, b: { entries: DiagEntry[] }): void => void (dev === "diag1" && got.push(...b.entries));
    fx.receiver.on("diag", on);
    try {
      const st = await fx.status();
      const list: Array<[number, number, number, Uint8Array]> = [
        [0x7df, 0x7e8, 100, Buffer.from("010C", "hex")],
        [0x7df, 0x7e8, 250, Buffer.from("010D", "hex")],
      ];
      const r = await fx.command({ op: "poll", boot: st.boot!, exp: st.up! + 20_000, on: true, list });
      assert.deepEqual([r.ok, r.reason], [true, "ok"]);
      await waitFor(() => got.filter((e) => e.index === 1).length >= 3, 60_000, "three responses to poll entry 1");
      const st2 = await fx.status();
      const off = await fx.command({ op: "poll", boot: st2.boot!, exp: st2.up! + 20_000, on: false });
      assert.equal(off.reason, "ok");
      for (const e of got) assert.equal(hex(e.data), e.index === 0 ? "410C2710" : "410D3C", JSON.stringify(e));
      assert.ok(got.filter((e) => e.index === 0).length >= 5);
      const diagStatus = (await fx.status((s) => (s.raw.diag as { poll: number }).poll === 0)).raw.diag as Record<string, number>;
      assert.ok(diagStatus.pub >= got.length, JSON.stringify(diagStatus));
      assert.equal(diagStatus.drop, 0);
    } finally {
      fx.receiver.removeListener("diag", on);
    }
  });

  it("a hostile sender flooding the response id: named outcomes, at most one flow control per request, still publishing", async () => {
    const r = rng(7);
    const flood: Frame[] = [];
    for (let i = 0; i < 400; i++) {
      const data = Uint8Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256));
      if (i % 4 === 0 && data.length === 8) data.set([0x10, 0x40, 0x49, 0x02], 0);
      flood.push(makeFrame({ id: 0x7e8, data }));
    }
    const codes = new Set(["ok", "timeout", "wrong-sn", "overflow", "bad-frame", "rate-limited"]);
    for (let round = 0; round < 4; round++) {
      const before = wire.length;
      const flooding = fx.gw.bus.sendMany(flood);
      const x = await diag(0x7df, 0x7e8, round % 2 ? "0902" : "010C");
      await flooding;
      assert.ok(codes.has(x.reason), `${x.reason}: ${x.msg}`);
      const sent = wire.slice(before);
      assert.ok(sent.filter((f) => f.data[0] === 0x30).length <= 1, `flow controls: ${sent.map((f) => hex(f.data)).join(" ")}`);
      assert.ok(sent.length <= 2);
    }
    // the gateway lives on and answers correctly again
    const after = await diag(0x7df, 0x7e8, "010C");
    assert.equal(hex(after.data), "410C2710");
    assert.equal(fx.crashed, undefined);
  });

  // last: the command-line tool's ids come from a clock, far above the fixture's (the gateway runs ids increasing)
  it("vgw diag -i mqtt://broker/device: obd and uds through the gateway's diag command", async () => {
    const spec = `${broker.url}/diag1`;
    const rpm = await vgw("-i", spec, "obd", "read", "0C");
    assert.equal(rpm.code, 0, rpm.err);
    assert.equal(rpm.out.trim(), "7E8  0C Engine speed: 2500 rpm");
    const vin = await vgw("-i", spec, "--json", "obd", "vin");
    assert.equal(vin.code, 0, vin.err);
    assert.deepEqual(JSON.parse(vin.out).answers, [{ ecu: "7E8", vin: VIN }]);
    const did = await vgw("-i", spec, "uds", "read-did", "F190");
    assert.equal(did.code, 0, did.err);
    assert.match(did.out, new RegExp(`F190 .*"${VIN}"`));
    // the gateway's refusal is named, exit 1
    const clear = await vgw("-i", spec, "uds", "clear-dtc");
    assert.equal(clear.code, 1);
    assert.match(clear.err, /refused the request: not-allowed/);
    // a pair diagAllow does not list
    const other = await vgw("-i", spec, "--tx", "7E1", "uds", "read-did", "F190");
    assert.equal(other.code, 1);
    assert.match(other.err, /not-allowed/);
  });
});
