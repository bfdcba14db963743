/**
 * Library-level checks of the SocketCAN bus, run INSIDE the test VM (or natively where the kernel has CAN) by in-vm.sh:
 *   node dist/test/socketcan/vm-bus-checks.js RESULTS.json
 *   VGW_SOCKETCAN=addon node dist/test/socketcan/vm-bus-checks.js RESULTS.json     the bus over the socketcan package
 * Each check records pass/fail with what was seen; vm.test.ts turns every entry into one mocha test on the host.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { strict as assert } from "node:assert";
import { parseFrame, sameFrame, formatFrame, type Frame } from "../../frame/frame";
import { BusError } from "../../frame/errors";
import { openBus, type Bus } from "../../host/bus";
import type { SocketCanBus } from "../../host/bus/socketcan";
import { SocketCanAddonBus } from "../../host/bus/socketcan-addon";
import { execFileSync } from "node:child_process";
import { log } from "../../host/log";

const results: Record<string, { ok: boolean; detail: string }> = {};

async function check(name: string, body: () => Promise<string | void>): Promise<void> {
  try {
    const detail = await Promise.race([
      body(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timed out after 20 s")), 20000)),
    ]);
    results[name] = { ok: true, detail: detail ?? "" };
  } catch (e) {
    results[name] = { ok: false, detail: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
}

/** Collects what a bus receives; `settle` waits until nothing new arrived for a while. */
function collector(bus: Bus): { frames: Frame[]; settle: (n: number) => Promise<Frame[]> } {
  const frames: Frame[] = [];
  void (async () => {
    for await (const f of bus) frames.push(f);
  })();
  return {
    frames,
    async settle(n: number) {
      const end = Date.now() + 5000;
      while (frames.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200)); // anything extra that should not be there arrives now
      return frames;
    },
  };
}

const texts = (fs: Frame[]) => fs.map(formatFrame).join(" ");

/**
 * Frames (can-utils text) sent by one bus on `iface` and received by another, each opened with the socket VGW_SOCKETCAN
 * names (`sender`/`receiver`: undefined = the run's own); the received frames are checked for time and interface.
 */
async function roundTrip(iface: string, sent: string[], socket: { sender?: string; receiver?: string } = {}): Promise<Frame[]> {
  const open = async (choice: string | undefined) => {
    const before = process.env.VGW_SOCKETCAN;
    if (choice !== undefined) process.env.VGW_SOCKETCAN = choice;
    try {
      return await openBus(iface);
    } finally {
      if (before === undefined) delete process.env.VGW_SOCKETCAN;
      else process.env.VGW_SOCKETCAN = before;
    }
  };
  const a = await open(socket.sender);
  const b = await open(socket.receiver);
  const rx = collector(b);
  for (const f of sent.map(parseFrame)) await a.send(f);
  const got = await rx.settle(sent.length);
  await a.close();
  await b.close();
  const now = Date.now() / 1000;
  for (const f of got) assert.ok(f.t !== undefined && Math.abs(f.t - now) < 10 && f.bus === iface, `t=${f.t} bus=${f.bus}`);
  return got;
}

const CLASSIC = ["123#DEADBEEF", "12345678#1122", "7FF#", "123#R3", "1ABCDEF0#R", "000#0001020304050607"];

/** The checks of the bus over the socketcan package (VGW_SOCKETCAN=addon): everything it can carry, both ways. */
async function addonChecks(): Promise<void> {
  await check("fallback: the bus runs over the socketcan package", async () => {
    const bus = await openBus("vcan0");
    await bus.close();
    assert.ok(bus instanceof SocketCanAddonBus, `a ${bus.constructor.name}`);
  });

  await check("fallback: classic, extended, remote and error frames both ways, with receive timestamps, counted", async () => {
    const sent = [...CLASSIC, "20000044#0020000000000000"];
    const got = await roundTrip("vcan0", sent);
    assert.equal(texts(got), texts(sent.map(parseFrame)));
    const tx = await openBus("vcan0");
    const rx = await openBus("vcan0");
    const c = collector(rx);
    for (const t of ["20000044#0020000000000000", "555#55"]) await tx.send(parseFrame(t));
    await c.settle(2);
    await tx.close();
    await rx.close();
    assert.deepEqual(rx.counters(), { rx: 2, tx: 0, txRetries: 0, txFailed: 0, errorFrames: 1, busOff: 1, queueDropped: 0, interfaceRxDropped: 0 });
    assert.equal(tx.counters().tx, 2);
    return texts(got);
  });

  await check("fallback: CAN FD frames over 8 bytes both ways; BRS goes out (vgw's module sees it), comes back without", async () => {
    const sent = ["123##1" + "A5".repeat(64), "1FFFFFFF##0" + "01".repeat(12)];
    // Sent over the package, received by vgw's own module: BRS arrives.
    const out = await roundTrip("vcan1", sent, { receiver: "native" });
    assert.equal(texts(out), texts(sent.map(parseFrame)));
    // Sent by vgw's module with BRS and ESI, received over the package: FD by length, flags lost (its limit).
    const back = await roundTrip("vcan1", ["456##3" + "11".repeat(16), "456#1122"], { sender: "native" });
    assert.equal(texts(back), `456##0${"11".repeat(16)} 456#1122`);
    return `${texts(out)} | ${texts(back)}`;
  });

  await check("fallback: kernel filters: id/mask, EFF restriction, inverted", kernelFilters);
}

/** Kernel filters, one bus per filter, against frames sent on vcan0. */
async function kernelFilters(): Promise<void> {
  const tx = await openBus("vcan0");
  const a = await openBus("vcan0", { filters: [{ id: 0x123, mask: 0x7ff }] });
  const b = await openBus("vcan0", { filters: [{ id: 0x123, mask: 0x7ff, ext: false }] });
  const c = await openBus("vcan0", { filters: [{ id: 0x100, mask: 0x700, invert: true }] });
  const [ca, cb, cc] = [a, b, c].map(collector);
  for (const t of ["123#01", "124#02", "00000123#03", "1FF#04", "2FF#05"]) await tx.send(parseFrame(t));
  await ca.settle(2);
  await cb.settle(1);
  await cc.settle(3);
  await Promise.all([tx, a, b, c].map((x) => x.close()));
  assert.equal(texts(ca.frames), "123#01 00000123#03");
  assert.equal(texts(cb.frames), "123#01");
  // Inverted filters compare the whole can_id (flags included) in the kernel, yet 00000123 & 700 == 100 matches: rejected.
  assert.equal(texts(cc.frames), "2FF#05");
}

async function main(out: string): Promise<void> {
  if (process.env.VGW_SOCKETCAN === "addon") {
    await addonChecks();
    writeFileSync(out, JSON.stringify(results, null, 1));
    return;
  }
  await check("classic, extended and remote frames both ways, with receive timestamps", async () => {
    const got = await roundTrip("vcan0", CLASSIC);
    assert.equal(texts(got), texts(CLASSIC.map(parseFrame)));
    return texts(got);
  });

  await check("CAN FD frames of every length keep FD, BRS and ESI on receive", async () => {
    // 8 bytes or less too: only the frame's size in the kernel tells FD from classic there.
    const sent = ["123##1" + "A5".repeat(64), "1FFFFFFF##0" + "01".repeat(12), "321##10102", "7FF##3", "456##2" + "11".repeat(8), "456#1122"];
    const got = await roundTrip("vcan1", sent);
    assert.equal(texts(got), texts(sent.map(parseFrame)));
    return texts(got);
  });

  await check("the socketcan addon, receiving beside vgw, sees the same frames (classic, extended, remote, error, FD)", async () => {
    // An independent receiver no one here wrote: the `socketcan` npm addon (node-can), on its own socket. It cannot
    // report FD for frames of 8 bytes or less, nor BRS/ESI (why vgw has its own socket), so those are left out.
    interface AddonMessage { id: number; ext?: boolean; rtr?: boolean; err?: boolean; data: Buffer }
    interface AddonChannel { addListener(e: "onMessage", cb: (m: AddonMessage) => void): void; start(): void; stop(): void }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the addon's typings do not resolve
    const addon = require("socketcan") as { createRawChannel(name: string, timestamps: boolean): AddonChannel };
    const seen: string[] = [];
    const channels = ["vcan0", "vcan1"].map((name) => {
      const ch = addon.createRawChannel(name, true);
      ch.addListener("onMessage", (m) => {
        // The addon strips CAN_ERR_FLAG from an error frame's id; candump's text (and formatFrame) shows it.
        const id = m.err ? ((m.id | 0x20000000) >>> 0).toString(16).toUpperCase().padStart(8, "0") : m.ext ? m.id.toString(16).toUpperCase().padStart(8, "0") : m.id.toString(16).toUpperCase().padStart(3, "0");
        const hex = m.data.toString("hex").toUpperCase();
        seen.push(`${name} ${m.rtr ? `${id}#R${m.data.length}` : m.data.length > 8 ? `${id}##${hex}` : `${id}#${hex}`}`);
      });
      ch.start();
      return ch;
    });
    const ours = await Promise.all(["vcan0", "vcan1"].map((n) => openBus(n)));
    const rx = ours.map(collector);
    const sender = await Promise.all(["vcan0", "vcan1"].map((n) => openBus(n)));
    const sent: Array<[number, string]> = [
      [0, "123#DEADBEEF"], [0, "12345678#1122"], [0, "7FF#"], [0, "123#R3"], [0, "1ABCDEF0#R8"], [0, "20000044#0020000000000000"],
      [1, "123##0" + "A5".repeat(12)], [1, "1FFFFFFF##0" + "5A".repeat(64)], [1, "001#01"],
    ];
    for (const [i, text] of sent) await sender[i].send(parseFrame(text));
    await rx[0].settle(6);
    await rx[1].settle(3);
    for (const ch of channels) ch.stop();
    for (const b of [...ours, ...sender]) await b.close();
    const show = (f: Frame) => {
      const t = formatFrame({ ...f, brs: false, esi: false });
      return f.rtr && f.dlc === 0 ? `${t}0` : t.replace("##0", "##");
    };
    const vgw = rx.flatMap((r, i) => r.frames.map((f) => `${["vcan0", "vcan1"][i]} ${show(f)}`));
    assert.deepEqual(vgw.slice().sort(), seen.slice().sort(), `vgw: ${vgw.join(", ")}\naddon: ${seen.join(", ")}`);
    return `${seen.length} frames, the same: ${seen.join(", ")}`;
  });

  await check("own frames: not received by default, received with receiveOwn; others always receive them", async () => {
    const own = await openBus("vcan0", { receiveOwn: true });
    const plain = await openBus("vcan0");
    const ownRx = collector(own);
    const plainRx = collector(plain);
    await own.send(parseFrame("101#01"));
    await plain.send(parseFrame("102#02"));
    await ownRx.settle(2);
    await plainRx.settle(1);
    await own.close();
    await plain.close();
    assert.equal(texts(ownRx.frames), "101#01 102#02");
    assert.equal(texts(plainRx.frames), "101#01");
    return `receiveOwn saw ${texts(ownRx.frames)}; default saw ${texts(plainRx.frames)}`;
  });

  await check("several interfaces at once, each frame tagged with its interface", async () => {
    const s0 = await openBus("vcan0");
    const s1 = await openBus("vcan1");
    const r0 = await openBus("vcan0");
    const r1 = await openBus("vcan1");
    const c0 = collector(r0);
    const c1 = collector(r1);
    await s0.send(parseFrame("200#00"));
    await s1.send(parseFrame("201#11"));
    await c0.settle(1);
    await c1.settle(1);
    await Promise.all([s0, s1, r0, r1].map((b) => b.close()));
    assert.deepEqual(c0.frames.map((f) => `${f.bus}:${formatFrame(f)}`), ["vcan0:200#00"]);
    assert.deepEqual(c1.frames.map((f) => `${f.bus}:${formatFrame(f)}`), ["vcan1:201#11"]);
  });

  await check("kernel filters: id/mask, EFF restriction, inverted", kernelFilters);

  await check("error frames: received with the error flag, decoded and counted (vcan delivers what a socket sends)", async () => {
    const tx = await openBus("vcan0");
    const rx = await openBus("vcan0");
    const c = collector(rx);
    await tx.send(parseFrame("20000044#0020000000000000"));
    await tx.send(parseFrame("555#55"));
    await c.settle(2);
    const counters = rx.counters();
    await tx.close();
    await rx.close();
    assert.equal(texts(c.frames), "20000044#0020000000000000 555#55");
    assert.equal(c.frames[0].err, true);
    assert.equal(counters.errorFrames, 1);
    assert.equal(counters.busOff, 1);
    return texts(c.frames);
  });

  const expectBusError = async (spec: string, send: Frame | undefined, message: RegExp, hint: RegExp) => {
    let caught: unknown;
    try {
      const bus = await openBus(spec);
      try {
        if (send) await bus.send(send);
      } finally {
        await bus.close();
      }
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BusError, `expected a BusError, got ${String(caught)}`);
    assert.match(caught.message, message);
    assert.match(caught.hint ?? "", hint);
    return caught.message;
  };

  await check("clear error: missing interface", () =>
    expectBusError("vcan9", undefined, /no network interface 'vcan9'/, /ip link add dev vcan9 type vcan/),
  );
  await check("clear error: interface down", () => expectBusError("vcan2", undefined, /'vcan2' is down/, /ip link set vcan2 up/));
  await check("clear error: not a CAN interface", () => expectBusError("lo", undefined, /not a CAN interface/, /ip -br link show type can/));
  await check("clear error: FD frame on a classic interface", () =>
    expectBusError("vcan0", parseFrame("123##1" + "00".repeat(12)), /not in CAN FD mode/, /mtu 72/),
  );

  await check("a bigger socket receive buffer on request (candump -r), beyond net.core.rmem_max when privileged", async () => {
    const plain = await openBus("vcan0");
    const big = await openBus("vcan0", { receiveBuffer: 8 << 20 });
    const sizes = [plain, big].map((b) => (b as SocketCanBus).receiveBufferBytes);
    await plain.close();
    await big.close();
    const rmemMax = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8"));
    assert.ok(rmemMax < 8 << 20, `rmem_max ${rmemMax}: the check needs a cap below 8 MB`);
    assert.ok(sizes[1] >= 8 << 20 && sizes[0] < sizes[1], `default ${sizes[0]}, asked 8 MB: got ${sizes[1]}`);
    return `default ${sizes[0]} bytes; asked for 8 MB: ${sizes[1]} (rmem_max ${rmemMax}; the VM runs as root)`;
  });

  await check("an interface removed while receiving: the bus ends with the kernel's reason, the frames before it kept", async () => {
    execFileSync("sh", ["-c", "ip link add dev vcan3 type vcan && ip link set vcan3 up"]);
    const bus = await openBus("vcan3");
    const tx = await openBus("vcan3", { transmitOnly: true });
    const warnings: string[] = [];
    const sink = log.sink;
    log.sink = (line) => warnings.push(line);
    try {
      const got: Frame[] = [];
      const reading = (async () => {
        for await (const f of bus) got.push(f);
      })();
      await tx.send(parseFrame("123#01"));
      await tx.send(parseFrame("124#02"));
      await new Promise((r) => setTimeout(r, 300));
      await tx.close();
      execFileSync("ip", ["link", "del", "vcan3"]);
      // The iteration must end by itself (candump exits the same way), not hang until the 20 s limit.
      await reading;
      await bus.close();
      assert.equal(texts(got), "123#01 124#02");
      assert.match(warnings.join("\n"), /vcan3: receiving stopped: (No such device|Network is down)/);
      return warnings.join("; ");
    } finally {
      log.sink = sink;
    }
  });

  await check("a frame sent equals the frame received (round trip of every kind through the kernel)", async () => {
    const a = await openBus("vcan1");
    const b = await openBus("vcan1");
    const rx = collector(b);
    const sent = ["000#", "7FF#FFFFFFFFFFFFFFFF", "00000000#", "1FFFFFFF#01", "555#R8", "1234567#R0".replace("1234567", "01234567"), "7FF##1" + "00".repeat(48)].map(parseFrame);
    for (const f of sent) await a.send(f);
    const got = await rx.settle(sent.length);
    await a.close();
    await b.close();
    assert.equal(got.length, sent.length);
    got.forEach((f, i) => assert.ok(sameFrame(f, sent[i]), `${formatFrame(f)} != ${formatFrame(sent[i])}`));
  });

  writeFileSync(out, JSON.stringify(results, null, 1));
}

main(process.argv[2]).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String(e) + "\n");
    process.exit(1);
  },
);
