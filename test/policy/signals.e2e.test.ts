/**
 * Signals extracted by the real firmware, all real: the bytecode in the DeviceScript VM, the host's CanBus server, an
 * aedes broker. A table compiled by `vgw policy` from a DBC and a policy (Motorola signed, Motorola unsigned, a 1-bit
 * flag, Intel 16-bit signals; one message signals-only) is deployed as boot settings; a trace of random frames is
 * replayed; the `P/signals` batches are decoded on the host and compared, sample by sample, with can-db's decode of
 * the replayed frames. Then a policy with rules (deadband, heartbeat, relative deadband, interval): every sample is a
 * replayed value and the rules hold between samples (the HIL check), and the status hash is the table's.
 *
 * The devtools server has fixed ports: run under `flock /tmp/vgw-devtools.lock`.
 */
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { makeFrame, type Frame } from "../../frame/frame";
import { parseDbc } from "../../can-db/dbc-parser";
import { Decoder } from "../../can-db/decoder";
import { compilePolicy, type CompiledPolicy } from "../../can-db/policy";
import { parsePolicy } from "../../can-db/policy-file";
import { frameKey } from "../../can-db/frame-key";
import type { Database } from "../../can-db/model";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { SignalReceiver, SignalTable, type SignalBatch } from "../../host/gateway/signals";
import type { FrameBatch, GatewayStatus } from "../../host/gateway/uplink";
import { settingsEnv } from "../../cli/commands/policy";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import { sleep, waitFor } from "../support/wait";
import { seededRandom } from "../candb/helpers";
import { checkAll } from "../../hil/checks";
import { emptyRecord } from "../../hil/record";
import { parseScenario } from "../../hil/scenario";

const DEVICE = "sig1";
// Motorola signed and unsigned and a flag (as motohawk.dbc), an Intel message, and one whose signals the table omits.
const DBC = `VERSION ""
BU_: PCM1 ABS
BO_ 496 ExampleMessage: 8 PCM1
 SG_ Temperature : 0|12@0- (0.01,250) [229.52|270.47] "degK" ABS
 SG_ AverageRadius : 6|6@0+ (0.1,0) [0|5] "m" ABS
 SG_ Enable : 7|1@0+ (1,0) [0|0] "-" ABS
BO_ 835 Wheels: 8 ABS
 SG_ whlspeed_FL : 0|16@1+ (0.015625,0) [0|100] "m/s" PCM1
 SG_ whlspeed_FR : 16|16@1+ (0.015625,0) [0|100] "m/s" PCM1
 SG_ yaw : 32|16@1- (0.01,-5) [0|0] "deg/s" PCM1
BO_ 2566834709 Ext: 8 ABS
 SG_ level : 8|10@1+ (0.5,-20) [0|0] "%" PCM1
`;

function table(policy: string, db: Database): { compiled: CompiledPolicy; settings: Record<string, unknown>; table: SignalTable } {
  const compiled = compilePolicy(parsePolicy(policy, "e2e.yaml"), db);
  const settings: Record<string, unknown> = {};
  for (const line of settingsEnv(compiled.settings, "e2e").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    settings[line.slice(0, eq)] = JSON.parse(line.slice(eq + 1));
  }
  return { compiled, settings, table: SignalTable.fromPolicy(compiled) };
}

describe("signals on a running gateway (firmware in the simulator, aedes)", function () {
  this.timeout(300_000);
  const db = parseDbc(DBC);
  const decoder = new Decoder(db);
  let broker: HilBroker;
  let fx: GatewayFixture;
  let sigRx: SignalReceiver | undefined;

  /** A replayed trace: random data for the three messages and an unrelated ID, `n` frames. */
  function trace(n: number, seed: number, slowly = false): Frame[] {
    const random = seededRandom(seed);
    const ids: Array<[number, boolean]> = [[0x1f0, false], [0x343, false], [0x18feca15, true], [0x123, false]];
    let wheel = 3000;
    return Array.from({ length: n }, (_, k) => {
      const [id, ext] = ids[k % ids.length];
      const data = Uint8Array.from({ length: 8 }, () => Math.floor(random() * 256));
      if (slowly && id === 0x343) {
        // wheel speeds that drift, so deadbands drop some samples and keep others
        wheel += Math.floor(random() * 40) - 18;
        data[0] = wheel & 0xff;
        data[1] = wheel >> 8;
      }
      return makeFrame({ id, ext, data });
    });
  }

  async function run(policy: string, frames: Frame[], pace = 0): Promise<{ batches: SignalBatch[]; rawKeys: number[]; t: ReturnType<typeof table>; status: Record<string, unknown> }> {
    const t = table(policy, db);
    await sigRx?.detach();
    const lines = fx.firmwareLines.length;
    await fx.gw.reboot(t.settings);
    await fx.status(() => true, 30_000);
    const refused = fx.firmwareLines.slice(lines).filter((l) => /sig|setting/i.test(l) && /refus|invalid|error/i.test(l));
    assert.deepEqual(refused, [], "no setting refused");
    sigRx = await SignalReceiver.attach(fx.client, t.table, { device: DEVICE });
    const batches: SignalBatch[] = [];
    const problems: string[] = [];
    sigRx.on("batch", (b) => batches.push(b));
    sigRx.on("malformed", (_topic, e) => problems.push(e.message));
    const rawKeys: number[] = [];
    const onBatch = (b: FrameBatch) => b.frames.forEach((f) => rawKeys.push(frameKey(f.id, f.ext)));
    fx.receiver.on("batch", onBatch);
    try {
      if (pace) {
        for (const f of frames) {
          await fx.gw.bus.sendMany([f]);
          await sleep(pace);
        }
      } else await fx.gw.bus.sendMany(frames);
      // a reboot started the counters afresh
      const status = await fx.status((s) => (s.rx ?? 0) >= frames.length, 60_000);
      await waitFor(() => (sigRx!.counts.samples >= Number(status.raw.sig ?? 0)) && problems.length === 0, 20_000, () => `the samples the status counts (sig ${String(status.raw.sig)}) at the broker (got ${sigRx!.counts.samples}; ${problems.join("; ")})`);
      await sleep(500);
      const last = await fx.status(() => true, 10_000);
      assert.deepEqual(problems, []);
      return { batches, rawKeys, t, status: last.raw };
    } finally {
      fx.receiver.removeListener("batch", onBatch);
    }
  }

  before(async () => {
    broker = await openBroker({ kind: "aedes" });
    fx = await startGatewayFixture({ broker: broker.url, device: DEVICE });
  });
  after(async () => {
    await sigRx?.detach().catch(() => undefined);
    await fx?.stop();
    await broker?.close();
  });

  it("without rules: every frame's signals arrive, equal to can-db's decode of the replayed frames; sigOnly frames stay local", async () => {
    const frames = trace(400, 14);
    const policy = `
signals:
  - { message: ExampleMessage, raw: false }
  - { message: Wheels }
  - { message: Ext }
`;
    const { batches, rawKeys, t, status } = await run(policy, frames);
    assert.equal(status.sh, t.table.hash, "the status hash is the table's");
    assert.equal(status.serr, undefined);
    // expected: per replayed frame of a message with signals, its signals in table order
    const expected: Array<{ i: number; value: number }> = [];
    for (const f of frames) {
      const d = decoder.decode(f);
      t.compiled.signals.forEach((s, i) => {
        if (s.key === frameKey(f.id, f.ext)) expected.push({ i, value: Number(d.signals[s.signal.name]) });
      });
    }
    const got = batches.flatMap((b) => b.samples.map((s) => ({ i: s.i, value: t.table.physical(s.i, s.raw) })));
    // per signal, in order (the batches interleave signals in arrival order; compare each signal's own sequence)
    for (let i = 0; i < t.table.rows.length; i++) {
      const want = expected.filter((x) => x.i === i).map((x) => x.value);
      const have = got.filter((x) => x.i === i).map((x) => x.value);
      assert.deepEqual(have, want, `signal ${t.table.name(i)}`);
    }
    assert.equal(got.length, expected.length);
    assert.ok(!rawKeys.includes(0x1f0), "ExampleMessage is sigOnly: no raw frames");
    assert.ok(rawKeys.includes(0x343), "Wheels goes both ways");
    assert.ok(!rawKeys.includes(0x123), "the unrelated ID is filtered");
    assert.equal(status.sig, expected.length);
  });

  it("with rules: each sample is a replayed value, deadbands, intervals and heartbeats hold (HIL check)", async () => {
    const frames = trace(240, 7, true);
    const policy = `
signals:
  - { message: Wheels, signals: [ whlspeed_FL ], deadband: 0.5, heartbeat: 400 }
  - { message: Wheels, signals: [ yaw ], relDeadband: "20%" }
  - { message: ExampleMessage, signals: [ Temperature ], interval: 50 }
`;
    const { batches, t } = await run(policy, frames, 3);
    // the HIL check over a record built from this run
    const dir = mkdtempSync(join(tmpdir(), "vgw-sig-e2e-"));
    writeFileSync(join(dir, "e2e.dbc"), DBC);
    writeFileSync(join(dir, "p.yaml"), policy);
    const sc = parseScenario(`dbc: e2e.dbc\ngateway: { signals: p.yaml }\nsteps: []\nexpect: [{ signals: { from: gateway } }]\n`, join(dir, "s.yaml"));
    assert.equal(sc.gateway.signals!.table.hash, t.table.hash);
    const rec = emptyRecord("e2e", "sim", 0);
    frames.forEach((frame, index) => rec.replayed.push({ frame, index, trace: "random", traceT: index, dueAt: index, sentAt: index }));
    for (const b of batches) {
      for (const s of b.samples) rec.signals.push({ message: "", signal: "", value: t.table.physical(s.i, s.raw), raw: s.raw, i: s.i, deviceT: s.t, receivedAt: 0, boot: b.boot, seq: b.seq });
    }
    const r = checkAll(rec, sc, (f) => {
      const d = decoder.decode(f);
      return d.message === null || d.error ? undefined : { message: d.message, signals: d.signals };
    }).results[0];
    assert.equal(r.pass, true, `${r.message}\n${r.details.join("\n")}`);
    const fl = rec.signals.filter((s) => s.i === 0).length;
    const wheelFrames = frames.filter((f) => f.id === 0x343).length;
    assert.ok(fl > 0 && fl < wheelFrames, `the deadband dropped some wheel-speed samples and kept others (${fl} of ${wheelFrames})`);
  });

  it("overloaded with signal and frame batches (50,000 frames/s offered for 4 s): keeps running and accounts for every frame", async () => {
    // Every frame carries signals and goes raw too: the outbox fills with small signal batches between the frame
    // batches. That ran the firmware out of heap at the send copy of a frame batch (bench/gateway.ts part 6) until
    // the outbox kept its entries' records in one buffer. Whether the VM keeps up depends on the machine; what must
    // hold at any load is that it keeps running and every frame is delivered or counted.
    const t = table(`
signals:
  - { message: ExampleMessage }
  - { message: Wheels }
  - { message: Ext }
`, db);
    await sigRx?.detach();
    sigRx = undefined;
    await fx.gw.reboot(t.settings);
    const before = await fx.status(() => true, 30_000);
    const lines = fx.firmwareLines.length;
    const frames = trace(3000, 21);
    const session = fx.session();
    await session.offer(50_000, 4, (n, index) => Array.from({ length: n }, (_, k) => frames[(index + k) % frames.length]));
    const sent = session.check.counts.sent;
    const rx = (s: GatewayStatus): number => (s.rx ?? 0) + (s.drop?.report ?? 0);
    // frames not in batches: filtered (the ID the policy leaves out), downsampled, or for signals only
    const local = (s: GatewayStatus): number => (s.flt ?? 0) + (s.ds ?? 0) + Number(s.raw.sonly ?? 0);
    const settled = (s: GatewayStatus): boolean => rx(s) >= sent && (s.ack ?? 0) + (s.drop?.outbox ?? 0) + local(s) >= (s.rx ?? 0);
    let last: GatewayStatus | undefined;
    let st = await fx.status((x) => settled((last = x)), 120_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; sent ${sent}, the last status: ${JSON.stringify(last?.raw)}`);
    });
    await session.drain(3000);
    const s = session.summary();
    st = await fx.status(() => true, 10_000);
    assert.equal(fx.crashed, undefined);
    assert.deepEqual(fx.firmwareLines.slice(lines).filter((l) => /exception|outofmemory|panic/i.test(l)), []);
    assert.equal(st.boot, before.boot, "the same boot: the program did not restart");
    assert.equal(rx(st), sent, "every frame offered was ingested or counted lost in a report");
    assert.equal(st.rx, (st.ack ?? 0) + (st.drop?.outbox ?? 0) + local(st), "every frame ingested stayed local, was acknowledged in a batch or was counted in drop.outbox");
    assert.equal(s.delivered, st.ack, "the broker delivered what the gateway counts acknowledged");
    assert.equal(s.unexpected, 0);
    assert.ok((st.ack ?? 0) > 0 && Number(st.raw.sig) > 0, "frames and signal samples were published");
  });
});
