/**
 * The gateway firmware (real bytecode in the DeviceScript VM, the host's CanBus server on the devtools bus) against a
 * hostile network: a raw-MQTT server that breaks the protocol in every way docs/firmware.md "Threat model" lists, one
 * violation per connection, and real brokers (aedes, mosquitto, MQTT 3.1.1) carrying a burst of commands and a 100 KB message. The gateway
 * must close each broken connection, reconnect, stay up, and transmit nothing but the one allowed command of the
 * positive control (the CanBus server's transmit counters are checked, not the firmware's word for it).
 *
 * Runs under `flock /tmp/vgw-devtools.lock` (fixed devtools ports), like the other simulator suites.
 */
import { strict as assert } from "assert";
import { decode, encode } from "cbor-x";
import { makeFrame } from "../../frame/frame";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { startSimulatedGateway, type SimulatedGateway } from "../../host/simulator/gateway";
import { decodeResult, decodeStatus, encodeCommand, type CommandResult, type GatewayStatus } from "../../host/gateway/uplink";
import { log } from "../../host/log";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import {
  CONNECT,
  PUBLISH,
  SUBSCRIBE,
  RawMqttServer,
  connack,
  publish,
  puback,
  readPublish,
  suback,
  type RawConnection,
  type RawPacket,
} from "../support/raw-mqtt";
import { sleep, waitFor, within } from "../support/wait";

const DEVICE = "hb1";
const CMD = `vgw/${DEVICE}/cmd`;
const ALLOWED = 0x123;

/**
 * A tx command of exactly `size` bytes for a frame the allowlist refuses: an FD frame of 64 bytes, padded to size with
 * an unknown field (refused as bad-field before any other check; it is the bytes that matter here).
 */
function paddedCommand(size: number, boot: number, exp: number, n: number): Uint8Array {
  const tx = decode(encodeCommand({ op: "tx", id: n, boot, exp, frame: makeFrame({ id: 0x456, fd: true, data: new Uint8Array(64) }) })) as Record<string, unknown>;
  for (let len = 1; len < size; len++) {
    const c = encode({ ...tx, pad: "x".repeat(len) });
    if (c.length === size) return c;
  }
  throw new Error(`no command of ${size} bytes`);
}

describe("gateway against a hostile raw-MQTT broker (firmware in the simulator)", function () {
  this.timeout(300_000);
  let srv: RawMqttServer;
  let gw: SimulatedGateway;
  const lines: string[] = [];
  let boot = 0;
  /** uptime - Date.now(), from the last status. */
  let upOffset = 0;
  let nextId = 1;
  let crashed = "";

  const exp = (aheadMs = 20_000): number => (Date.now() + upOffset + aheadMs) % 2 ** 32;
  const allowedTx = (id = nextId++): Uint8Array => encodeCommand({ op: "tx", id, boot, exp: exp(), frame: makeFrame({ id: ALLOWED, data: Uint8Array.from([id & 0xff]) }) });

  before(async () => {
    srv = await RawMqttServer.start();
    gw = await startSimulatedGateway({
      broker: srv.url,
      device: DEVICE,
      settings: { canMode: "normal", insecure: true, txAllow: [[ALLOWED, 0x7ff]], txRate: 50, statusPeriod: 1000 },
      onFirmwareLine: (line) => {
        lines.push(line);
        if (lines.length > 300) lines.shift();
        if (/^stop program|PANIC|Exception/.test(line)) crashed ||= line;
        log.debug(`fw: ${line}`);
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await srv?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed") process.stderr.write(`firmware output (last 30 lines):\n  ${lines.slice(-30).join("\n  ")}\n`);
  });

  /** The gateway's next connection, up to its CONNECT. */
  async function connection(): Promise<RawConnection> {
    const c = await srv.accept(20_000);
    await c.next((p) => p.type === CONNECT, 10_000, "CONNECT");
    return c;
  }

  /** CONNACK, SUBACK with `code`, and the status the gateway publishes then (acknowledged). */
  async function handshake(c: RawConnection, code = 1): Promise<GatewayStatus> {
    c.write(connack());
    const sub = await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    c.write(suback(sub.body.readUInt16BE(0), code));
    // the gateway publishes its status right after SUBSCRIBE, possibly before the SUBACK was written
    return await status(c, () => true, c.packets.indexOf(sub));
  }

  /** The first status (from now on) that satisfies `pred`; every QoS 1 PUBLISH of the gateway is acknowledged. */
  async function status(c: RawConnection, pred: (s: GatewayStatus) => boolean, from = c.packets.length, timeoutMs = 15_000): Promise<GatewayStatus> {
    let found: GatewayStatus | undefined;
    await c.next(
      (p: RawPacket) => {
        if (p.type !== PUBLISH) return false;
        const pub = readPublish(p);
        if (pub.pid && !(p as { acked?: boolean }).acked) {
          (p as { acked?: boolean }).acked = true;
          c.write(puback(pub.pid));
        }
        if (!pub.topic.endsWith("/status")) return false;
        const s = decodeStatus(pub.payload);
        if (!s.online || !pred(s)) return false;
        found = s;
        return true;
      },
      timeoutMs,
      "a status",
      from,
    );
    boot = found!.boot!;
    upOffset = found!.up! - Date.now();
    return found!;
  }

  async function result(c: RawConnection, from: number): Promise<ReturnType<typeof decodeResult>> {
    const p = await c.next((q) => q.type === PUBLISH && readPublish(q).topic.endsWith("/result"), 10_000, "a result", from);
    const pub = readPublish(p);
    c.write(puback(pub.pid));
    return decodeResult(pub.payload);
  }

  async function closedByGateway(c: RawConnection, what: string, ms = 8000): Promise<void> {
    await within(c.closedP, ms, `the gateway to close the connection after ${what}`);
    assert.equal(crashed, "", "the firmware did not stop");
  }

  const transmitted = (): number => gw.server.counters.txFrames + gw.server.counters.txFailed;

  it("positive control: an allowed tx from this broker is transmitted", async () => {
    const c = await connection();
    await handshake(c);
    const from = c.packets.length;
    c.write(publish(CMD, allowedTx(), 2, 1));
    const r = await result(c, from);
    assert.deepEqual([r.ok, r.reason], [true, "ok"]);
    await waitFor(() => gw.server.counters.txFrames === 1, 5000, "the frame on the bus");
    c.close();
  });

  /**
   * CONNACK, then (once the gateway subscribed, i.e. its connection is up and its reconnect backoff reset) `bytes`:
   * a violation that arrives with the CONNACK fails the connect itself and the backoff doubles up to 8 s.
   */
  const afterConnack = (bytes: () => Buffer) => async (c: RawConnection): Promise<void> => {
    c.write(connack());
    await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    c.write(bytes());
  };
  const violations: Array<[string, (c: RawConnection) => Promise<void>]> = [
    ["a PUBLISH before CONNACK", async (c) => c.write(Buffer.concat([publish(CMD, allowedTx(), 2, 2), connack()]))],
    ["a PUBLISH with QoS 3", afterConnack(() => publish(CMD, allowedTx(), 6, 3))],
    ["a PUBLISH with QoS 2 (no PUBREC handling)", afterConnack(() => publish(CMD, allowedTx(), 4, 4))],
    ["a zero-length topic", afterConnack(() => publish("", allowedTx(), 2, 5))],
    ["a 5-byte remaining length", afterConnack(() => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))],
    ["a remaining length of 268,435,455 and then silence", afterConnack(() => Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))],
    ["a PUBREC for nothing", afterConnack(() => Buffer.from([0x50, 0x02, 0x00, 0x07]))],
  ];
  for (const [what, send] of violations) {
    it(`closes the connection on ${what}, transmits nothing`, async () => {
      const before = transmitted();
      const c = await connection();
      await send(c);
      // well inside the keep-alive (30 s, 45 s to time out): the violation itself closes the connection
      await closedByGateway(c, what);
      assert.equal(transmitted(), before, "nothing reached the CAN bus");
    });
  }

  it("refuses a retained command with a reason, transmits nothing", async () => {
    const before = transmitted();
    const c = await connection();
    await handshake(c);
    const from = c.packets.length;
    c.write(publish(CMD, allowedTx(), 3, 9));
    const r = await result(c, from);
    assert.deepEqual([r.ok, r.reason], [false, "retained"]);
    assert.equal(transmitted(), before);
    c.close();
  });

  it("reports a refused subscription (SUBACK 0x80) in the status", async () => {
    const c = await connection();
    const s = await handshake(c, 0x80).then(() => status(c, (x) => x.sub === "refused"));
    assert.equal(s.sub, "refused");
    c.close();
  });

  it("drops the connection on 300 commands of 155 B at once and on a 100 KB PUBLISH; counts them; stays up", async () => {
    const before = transmitted();
    let c = await connection();
    const s0 = await handshake(c);
    const burst = Buffer.concat(Array.from({ length: 300 }, (_, i) => publish(CMD, paddedCommand(155, boot, exp(), 1000 + i), 2, (i % 60000) + 100)));
    const from = c.packets.length;
    c.write(burst);
    // every command is answered (a refusal: the padding is an unknown field) or shed (acknowledged, counted in
    // drop.cmd), or the gateway drops the connection past its cap (drop.flood)
    const results = (): RawPacket[] => c.packets.slice(from).filter((p) => p.type === PUBLISH && readPublish(p).topic.endsWith("/result"));
    const shedBefore = s0.drop?.cmd ?? 0;
    await within(
      Promise.race([c.closedP, status(c, (s) => results().length + (s.drop?.cmd ?? 0) - shedBefore >= 300, from, 60_000)]),
      60_000,
      "the burst to be answered or shed, or the connection dropped",
    );
    for (const p of results()) assert.equal(decodeResult(readPublish(p).payload).ok, false);
    log.info(`raw burst: ${results().length} results, connection ${c.closed ? "dropped" : "kept"}`);
    c.close();
    c = await connection();
    await handshake(c);
    c.write(publish(CMD, new Uint8Array(100 * 1024), 2, 7));
    await closedByGateway(c, "a 100 KB PUBLISH");
    c = await connection();
    const s = await handshake(c);
    assert.ok((s.drop?.flood ?? 0) >= 2, `drop.flood counts the oversize packets: ${JSON.stringify(s.drop)}`);
    assert.ok((s.pv ?? 0) >= violations.length - 1, `pv counts the protocol violations: ${s.pv}`);
    assert.equal(transmitted(), before, "nothing reached the CAN bus");
    // and still answers commands
    const control = c.packets.length;
    c.write(publish(CMD, allowedTx(), 2, 11));
    const r = await result(c, control);
    assert.deepEqual([r.ok, r.reason], [true, "ok"]);
    // the result is published when the transmit command has left the firmware; the host's server counts it on arrival
    await waitFor(() => gw.server.counters.txFrames === 2, 5000, "the second positive control on the bus");
    assert.equal(transmitted(), 2, "exactly the two positive controls reached the CAN bus, nothing else (not even refused)");
    c.close();
  });
});

for (const kind of ["aedes", "mosquitto"] as const) describe(`gateway under a command burst and a 100 KB message through ${kind} (firmware in the simulator)`, function () {
  this.timeout(300_000);
  let broker: HilBroker;
  let fx: GatewayFixture;

  before(async () => {
    broker = await openBroker({ kind });
    fx = await startGatewayFixture({ broker: broker.url, device: `hb-${kind}`, settings: { canMode: "normal", insecure: true, txAllow: [[ALLOWED, 0x7ff]] } });
  });
  after(async () => {
    await fx?.stop();
    await broker?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed" && fx) process.stderr.write(`firmware output (last 30 lines):\n  ${fx.firmwareLines.slice(-30).join("\n  ")}\n`);
  });

  it("300 commands of 155 B published at once, then one 100 KB message: online and answering status, nothing sent", async () => {
    const st = await fx.status();
    const exp = (st.up! + 20_000) % 2 ** 32;
    const answered = new Map<unknown, boolean>();
    const onResult = (dev: string, r: CommandResult): void => {
      if (dev === fx.device && r.op === "tx") answered.set(r.id, r.ok);
    };
    fx.receiver.on("result", onResult);
    let settled: GatewayStatus;
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) => fx.publishCommand(paddedCommand(155, st.boot!, exp, i))));
      // every command is answered (a refusal) or shed (drop.cmd), unless the gateway dropped the connection (drop.flood)
      const deadline = Date.now() + 60_000;
      for (;;) {
        settled = await fx.status(undefined, 30_000);
        const shed = (settled.drop?.cmd ?? 0) - (st.drop?.cmd ?? 0);
        if ((settled.drop?.flood ?? 0) > 0 || answered.size + shed >= 300) break;
        if (Date.now() > deadline) assert.fail(`${answered.size} answered, ${shed} shed of 300, no connection dropped`);
        await sleep(200);
      }
    } finally {
      fx.receiver.removeListener("result", onResult);
    }
    assert.ok([...answered.values()].every((ok) => !ok), "every answered command was refused");
    assert.equal(fx.crashed, undefined);
    await fx.publishCommand(new Uint8Array(100 * 1024));
    // the 100 KB packet always drops its connection, counted
    const s = await fx.status((x) => (x.drop?.flood ?? 0) > (settled.drop?.flood ?? 0), 30_000);
    assert.equal(fx.crashed, undefined);
    assert.equal(fx.gw.server.counters.txFrames + fx.gw.server.counters.txFailed, 0, "nothing reached the CAN bus");
    log.info(`${kind} burst: ${answered.size} answered; status after it ${JSON.stringify(settled.drop)} rc ${settled.rc}; after 100 KB ${JSON.stringify(s.drop)} rc ${s.rc}`);
  });
});
