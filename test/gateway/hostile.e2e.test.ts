/**
 * The gateway firmware (real bytecode in the DeviceScript VM, the host's CanBus server on the devtools bus) against a
 * hostile network: a raw-MQTT server that breaks the protocol (3.1.1 and MQTT 5) in every way docs/firmware.md "Threat
 * model" lists, one violation per connection, and real brokers (aedes, which falls back to 3.1.1; mosquitto at 3.1.1
 * and at MQTT 5) carrying a burst of commands and a 100 KB message. The gateway
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
import { jd } from "../../host/simulator/jacdac";
import { startGatewayFixture, type GatewayFixture } from "../support/gateway";
import {
  CONNECT,
  PUBLISH,
  SUBSCRIBE,
  RawMqttServer,
  connack,
  connack5,
  connectLevel,
  publish,
  publish5,
  puback,
  readPublish,
  suback,
  suback5,
  type RawConnection,
  type RawPacket,
} from "../support/raw-mqtt";
import { sleep, waitFor, within } from "../support/wait";

const DEVICE = "hb1";
const SECRET_KEY = "$mqttPass";
const SECRET = "s3cret-pass-9";
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

describe("gateway against a hostile raw MQTT 3.1.1 broker (firmware in the simulator)", function () {
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
      // MQTT 3.1.1 only: the raw server below answers in 3.1.1 (the MQTT 5 suite follows)
      settings: { canMode: "normal", insecure: true, txAllow: [[ALLOWED, 0x7ff]], txRate: 50, statusPeriod: 1000, mqttV5: false },
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

describe("gateway against a hostile raw MQTT 5 broker (firmware in the simulator)", function () {
  this.timeout(300_000);
  let srv: RawMqttServer;
  let gw: SimulatedGateway;
  const lines: string[] = [];
  let crashed = "";
  let boot = 0;
  let upOffset = 0;
  let nextId = 1;
  const exp = (aheadMs = 20_000): number => (Date.now() + upOffset + aheadMs) % 2 ** 32;
  const allowedTx = (id = nextId++): Uint8Array => encodeCommand({ op: "tx", id, boot, exp: exp(), frame: makeFrame({ id: ALLOWED, data: Uint8Array.from([id & 0xff]) }) });
  const transmitted = (): number => gw.server.counters.txFrames + gw.server.counters.txFailed;

  before(async () => {
    srv = await RawMqttServer.start();
    gw = await startSimulatedGateway({
      broker: srv.url,
      device: DEVICE,
      // mqttV5 is the default: not set. The password under the `$` key (docs/firmware.md, Threat model: secrets)
      settings: { canMode: "normal", insecure: true, txAllow: [[ALLOWED, 0x7ff]], txRate: 50, statusPeriod: 1000, mqttUser: "gw", [SECRET_KEY]: SECRET },
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

  /** The gateway's next connection and its CONNECT. */
  async function connection(): Promise<{ c: RawConnection; connect: RawPacket }> {
    const c = await srv.accept(20_000);
    const connect = await c.next((p) => p.type === CONNECT, 10_000, "CONNECT");
    return { c, connect };
  }

  /** Statuses (and every QoS 1 PUBLISH acknowledged) in the MQTT 5 form when `v5`. */
  async function status(c: RawConnection, v5: boolean, pred: (s: GatewayStatus) => boolean = () => true, from = 0): Promise<GatewayStatus> {
    let found: GatewayStatus | undefined;
    await c.next(
      (p: RawPacket) => {
        if (p.type !== PUBLISH) return false;
        const pub = readPublish(p, v5);
        if (pub.pid && !(p as { acked?: boolean }).acked) {
          (p as { acked?: boolean }).acked = true;
          c.write(puback(pub.pid));
        }
        if (!pub.topic.endsWith("/status")) return false;
        const st = decodeStatus(pub.payload);
        if (!st.online || !pred(st)) return false;
        found = st;
        return true;
      },
      15_000,
      "a status",
      from,
    );
    boot = found!.boot!;
    upOffset = found!.up! - Date.now();
    return found!;
  }

  /** CONNACK (MQTT 5, `props` raw), SUBACK, and the first status. */
  async function handshake5(c: RawConnection, props: Buffer = Buffer.alloc(0)): Promise<GatewayStatus> {
    c.write(connack5(0, props));
    const sub = await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    // MQTT 5 SUBSCRIBE: packet id, an empty property block, the topic, options QoS 1
    assert.equal(sub.body[2], 0, "an empty SUBSCRIBE property block");
    c.write(suback5(sub.body.readUInt16BE(0), 1));
    return await status(c, true, () => true, c.packets.indexOf(sub));
  }

  async function closedByGateway(c: RawConnection, what: string, ms = 8000): Promise<void> {
    await within(c.closedP, ms, `the gateway to close the connection after ${what}`);
    assert.equal(crashed, "", "the firmware did not stop");
  }

  it("connects with MQTT 5: Session Expiry 0, Receive Maximum 4, Maximum Packet Size 4096; status mq 5; commands run", async () => {
    const { c, connect } = await connection();
    assert.equal(connectLevel(connect), 5);
    // after "MQTT", level, flags, keep-alive: the property block (13 bytes)
    assert.equal(connect.body.subarray(10, 24).toString("hex"), "0d" + "1100000000" + "210004" + "2700001000");
    const s = await handshake5(c);
    assert.equal(s.mq, 5);
    const from = c.packets.length;
    c.write(publish5(CMD, allowedTx(), 2, 21, Buffer.from("2600016b000176", "hex")));
    const res = await c.next((q) => q.type === PUBLISH && readPublish(q, true).topic.endsWith("/result"), 10_000, "a result", from);
    const pub = readPublish(res, true);
    c.write(puback(pub.pid));
    const r = decodeResult(pub.payload);
    assert.deepEqual([r.ok, r.reason], [true, "ok"]);
    // the command's PUBACK (reason code 0: the 4-byte form)
    await c.next((q) => q.type === 4 && q.body.readUInt16BE(0) === 21, 5000, "the command's PUBACK", from);
    await waitFor(() => gw.server.counters.txFrames === 1, 5000, "the frame on the bus");
    c.close();
  });

  const afterConnack = (bytes: () => Buffer) => async (c: RawConnection): Promise<void> => {
    c.write(connack5());
    await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    c.write(bytes());
  };
  const violations5: Array<[string, (c: RawConnection) => Promise<void>]> = [
    ["a PUBLISH whose property length runs past the packet", afterConnack(() => publish5(CMD, allowedTx(), 2, 31, Buffer.alloc(0), 200))],
    ["a PUBLISH with an unknown property (0x50)", afterConnack(() => publish5(CMD, allowedTx(), 2, 32, Buffer.from("5001", "hex")))],
    ["a PUBLISH with a Topic Alias (the gateway allows none)", afterConnack(() => publish5(CMD, allowedTx(), 2, 33, Buffer.from("230001", "hex")))],
    ["a string property running past its property block", afterConnack(() => publish5(CMD, allowedTx(), 2, 34, Buffer.from("030040", "hex")))],
    ["a CONNACK whose property length runs past the packet", async (c) => c.write(Buffer.from("20030000ff", "hex"))],
    ["a CONNACK with an unknown property", async (c) => c.write(connack5(0, Buffer.from("7f00", "hex")))],
    ["a CONNACK with Receive Maximum twice (3, then 512)", async (c) => c.write(connack5(0, Buffer.from("210003210200", "hex")))],
    ["a 3.1.1 CONNACK accepting the MQTT 5 CONNECT", async (c) => c.write(connack())],
  ];
  for (const [what, send] of violations5) {
    it(`closes the connection on ${what}, counts it, transmits nothing`, async () => {
      const before = transmitted();
      const { c } = await connection();
      await send(c);
      await closedByGateway(c, what);
      assert.equal(transmitted(), before, "nothing reached the CAN bus");
    });
  }

  it("counts the violations (pv); a CONNACK with failure reason 0x87: no session, the next CONNECT is MQTT 5 again", async () => {
    let { c } = await connection();
    c.write(connack5(0x87, Buffer.from("1f00026e6f", "hex")));
    await closedByGateway(c, "CONNACK 0x87");
    ({ c } = await connection().then((x) => {
      assert.equal(connectLevel(x.connect), 5, "a refusal for another reason is no fallback");
      return x;
    }));
    const s = await handshake5(c);
    assert.ok((s.pv ?? 0) >= violations5.length, `pv counts the MQTT 5 violations: ${s.pv}`);
    c.close();
  });

  it("a DISCONNECT from the broker with a reason code ends the connection; not a violation", async () => {
    let { c } = await connection();
    const s0 = await handshake5(c);
    c.write(Buffer.from("e00793051f0002726d", "hex"));
    await closedByGateway(c, "DISCONNECT 0x93");
    ({ c } = await connection());
    const s = await handshake5(c);
    assert.equal(s.pv, s0.pv, "pv unchanged");
    c.close();
  });

  it("honours the broker's Receive Maximum: never more unacknowledged QoS 1 PUBLISHes than it allows", async () => {
    const { c } = await connection();
    // Receive Maximum 3; the statuses come every second, acknowledged only at the end
    c.write(connack5(0, Buffer.from("210003", "hex")));
    const sub = await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    c.write(suback5(sub.body.readUInt16BE(0), 1));
    const unacked = (): RawPacket[] => c.packets.filter((p) => p.type === PUBLISH && (p.flags & 6) === 2);
    await waitFor(() => unacked().length >= 3, 10_000, "three QoS 1 PUBLISHes");
    await sleep(3500);
    assert.equal(unacked().length, 3, "no fourth QoS 1 PUBLISH while three are unacknowledged");
    for (const p of unacked()) c.write(puback(readPublish(p, true).pid));
    await waitFor(() => unacked().length > 3, 10_000, "a status after the PUBACKs");
    c.close();
  });

  it("falls back to MQTT 3.1.1 when the broker answers return code 1, and when it closes before CONNACK", async () => {
    let { c } = await connection();
    c.write(connack(1));
    await closedByGateway(c, "CONNACK return code 1");
    let x = await connection();
    assert.equal(connectLevel(x.connect), 4, "3.1.1 after return code 1");
    c = x.c;
    c.write(connack());
    const sub = await c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
    c.write(suback(sub.body.readUInt16BE(0), 1));
    const s = await status(c, false, () => true, c.packets.indexOf(sub));
    assert.equal(s.mq, 4);
    // a new boot tries MQTT 5 again (rebooted while connected: no reconnect of the old boot is left queued); a
    // broker that closes the connection instead of answering
    await gw.reboot();
    c.close();
    // the reboot stops the program on purpose
    crashed = "";
    x = await connection();
    assert.equal(connectLevel(x.connect), 5, "MQTT 5 first after a reboot");
    x.c.close();
    x = await connection();
    assert.equal(connectLevel(x.connect), 4, "3.1.1 after a close before CONNACK");
    x.c.close();
    assert.equal(crashed, "");
    assert.equal(transmitted(), 1, "only the positive control reached the CAN bus");
  });

  it("after falling back, tries MQTT 5 again on the 17th connection (V5_RETRY = 16: a broker upgraded without a gateway reboot is found)", async () => {
    // From wherever the earlier tests left the count: accept 3.1.1 connections until the gateway tries MQTT 5.
    const accept311 = async (x: { c: RawConnection }): Promise<void> => {
      // a CONNACK makes it a successful connection (the backoff restarts at its minimum); then the broker goes away
      x.c.write(connack());
      await x.c.next((p) => p.type === SUBSCRIBE, 10_000, "SUBSCRIBE");
      x.c.close();
    };
    let x = await connection();
    for (let i = 0; connectLevel(x.connect) !== 5; i++) {
      assert.ok(i <= 16, "MQTT 5 tried within 17 connections");
      await accept311(x);
      x = await connection();
    }
    // refused: the fallback starts; exactly 16 connections speak 3.1.1, the 17th MQTT 5 again
    x.c.write(connack(1));
    await closedByGateway(x.c, "CONNACK return code 1");
    const levels: number[] = [];
    for (let i = 0; i < 17; i++) {
      x = await connection();
      levels.push(connectLevel(x.connect));
      if (i < 16) await accept311(x);
    }
    assert.deepEqual(levels, [...Array(16).fill(4), 5]);
    await handshake5(x.c);
    x.c.close();
    assert.equal(crashed, "");
  });

  it("the `$mqttPass` setting: sent in CONNECT, and readable by any other client of the Jacdac settings service (Get)", async () => {
    // the firmware read it: the password is in the CONNECT it sends
    const { c, connect } = await connection();
    assert.ok(connect.body.includes(Buffer.from(SECRET)), "the CONNECT carries the password from $mqttPass");
    c.close();
    // another client on the device's Jacdac bus (here: jacdac-ts on the devtools bus, as any bus client)
    const manager = gw.sim.bus.services({ serviceClass: jd.SRV_DEVICE_SCRIPT_MANAGER, lost: false })[0];
    const service = manager?.device.services({ serviceClass: jd.SRV_SETTINGS })[0];
    assert.ok(service, "the VM's settings service");
    const settings = new jd.SettingsClient(service);
    // Get of a plain key answers its value (any bus client can read it)
    const user = await settings.getValue("mqttUser");
    assert.equal(user ? Buffer.from(user).toString("utf8") : "", JSON.stringify("gw"), "Get answers a plain key");
    const got = await settings.getValue(SECRET_KEY);
    const text = got ? Buffer.from(got).toString("utf8") : "";
    log.info(`settings Get ${SECRET_KEY}: ${got === undefined ? "no answer" : `${got.length} bytes`}`);
    // Measured: the runtime answers Get of a `$` key with its value, so `$` hides a key from listings at most and
    // the Jacdac bus must be trusted (docs/firmware.md, Threat model). This fails when a runtime starts hiding it:
    // then the threat model can say so.
    assert.equal(text, JSON.stringify(SECRET), "Get of $mqttPass answers the password (as the runtime does today)");
  });
});

/**
 * aedes (1.2) answers an MQTT 5 CONNECT with a 3.1.1 CONNACK, return code 1 (measured), so the gateway falls back to
 * 3.1.1; mosquitto speaks either, the gateway's `mqttV5` setting chooses.
 */
const BROKERS = [
  { kind: "aedes", v5: true, mq: 4 },
  { kind: "mosquitto", v5: false, mq: 4 },
  { kind: "mosquitto", v5: true, mq: 5 },
] as const;

for (const { kind, v5, mq } of BROKERS) describe(`gateway under a command burst and a 100 KB message through ${kind}, MQTT ${mq === 5 ? "5" : "3.1.1"} (firmware in the simulator)`, function () {
  this.timeout(300_000);
  let broker: HilBroker;
  let fx: GatewayFixture;
  const name = `${kind}${mq === 5 ? "-v5" : ""}`;

  before(async () => {
    broker = await openBroker({ kind });
    fx = await startGatewayFixture({ broker: broker.url, device: `hb-${name}`, settings: { canMode: "normal", insecure: true, txAllow: [[ALLOWED, 0x7ff]], mqttV5: v5 } });
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
    assert.equal(settled.mq, mq, "the protocol in use");
    // MQTT 5 does not hold the burst back here: mosquitto 2.0.11 had up to 186 of 300 messages published at once
    // unacknowledged to a subscriber announcing Receive Maximum 4 (measured, docs/firmware.md); the gateway sheds or
    // drops as with 3.1.1, counted
    await fx.publishCommand(new Uint8Array(100 * 1024));
    let s: GatewayStatus;
    if (mq === 5) {
      // over the gateway's Maximum Packet Size: the broker drops the message for this client instead of sending it;
      // a command published after it is answered on the same connection
      const probe = paddedCommand(155, st.boot!, (settled.up! + 20_000) % 2 ** 32, 9999);
      const got = new Promise<CommandResult>((resolve) => {
        const f = (dev: string, r: CommandResult): void => {
          if (dev === fx.device && r.id === 9999) {
            fx.receiver.removeListener("result", f);
            resolve(r);
          }
        };
        fx.receiver.on("result", f);
      });
      await fx.publishCommand(probe);
      await within(got, 30_000, "the result of the command after the 100 KB message");
      s = await fx.status(undefined, 30_000);
      assert.equal(s.drop?.flood ?? 0, settled.drop?.flood ?? 0, "no connection dropped for the 100 KB message");
      assert.equal(s.rc, settled.rc, "the connection was kept");
    } else {
      // MQTT 3.1.1 has no Maximum Packet Size: the 100 KB packet reaches the gateway and drops its connection, counted
      s = await fx.status((x) => (x.drop?.flood ?? 0) > (settled.drop?.flood ?? 0), 30_000);
    }
    assert.equal(s.mq, mq);
    assert.equal(fx.crashed, undefined);
    assert.equal(fx.gw.server.counters.txFrames + fx.gw.server.counters.txFailed, 0, "nothing reached the CAN bus");
    log.info(`${name} burst: ${answered.size} answered; status after it ${JSON.stringify(settled.drop)} rc ${settled.rc}; after 100 KB ${JSON.stringify(s.drop)} rc ${s.rc}, mq ${s.mq}`);
  });
});
