/**
 * `vgw isotp`: dump from a trace file and usage errors through the real program (a child process), and send/recv
 * over an in-process `virtual:` bus through the command functions (a virtual bus lives in one process).
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isotpRecv, isotpSend, linkOptions, parseHexPayload } from "../../cli/commands/isotp";
import { within } from "../support/wait";
import { log } from "../../host/log";

const VGW = path.resolve(__dirname, "../../../bin/vgw");

function vgw(args: string[], input?: string) {
  const r = spawnSync("node", [VGW, ...args], { encoding: "utf8", input, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const TRACE = `(1.000000) vcan0 7E0#1015000102030405
(1.001000) vcan0 7E8#300200
(1.002000) vcan0 7E0#2106070809101112
(1.003000) vcan0 7E0#2213141516171819
(1.004000) vcan0 7E8#300200
(1.005000) vcan0 7E0#23202122
(1.006000) vcan0 7E8#037F2278
(1.100000) vcan0 123#1122
(2.000000) vcan0 7E0#1015000102030405
(2.001000) vcan0 7E8#300000
(2.002000) vcan0 7E0#2206070809101112
(3.000000) vcan0 7E0#1015000102030405
`;

describe("vgw isotp", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "vgw-isotp-cli-"));
    writeFileSync(path.join(dir, "t.log"), TRACE);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("dump from a trace: frames in isotpdump's wording, messages on => lines, failures on !! lines, a summary", () => {
    const r = vgw(["isotp", "dump", "-i", path.join(dir, "t.log"), "-s", "7E0", "-d", "7E8"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split("\n").filter(Boolean), [
      " vcan0  7E0  [8]  [FF] ln: 21   data: 00 01 02 03 04 05 ",
      " vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 2 # STmin: 0x00 = 0 ms",
      " vcan0  7E0  [8]  [CF] sn: 1    data: 06 07 08 09 10 11 12 ",
      " vcan0  7E0  [8]  [CF] sn: 2    data: 13 14 15 16 17 18 19 ",
      " vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 2 # STmin: 0x00 = 0 ms",
      " vcan0  7E0  [4]  [CF] sn: 3    data: 20 21 22 ",
      " vcan0  7E0  => ln: 21 in 4 frames: 00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20",
      " vcan0  7E8  [4]  [SF] ln: 3    data: 7F 22 78 ",
      " vcan0  7E8  => ln: 3 in 1 frame: 7F 22 78",
      " vcan0  7E0  [8]  [FF] ln: 21   data: 00 01 02 03 04 05 ",
      " vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 0 = off # STmin: 0x00 = 0 ms",
      " vcan0  7E0  [8]  [CF] sn: 2    data: 06 07 08 09 10 11 12 ",
      " vcan0  7E0  !! wrong-sn: expected sequence number 1, got 2 after 6 of 21 bytes",
      " vcan0  7E0  [8]  [FF] ln: 21   data: 00 01 02 03 04 05 ",
      " vcan0  7E0  !! timeout-cr: no consecutive frame within 1000 ms (N_Cr): 6 of 21 bytes received",
    ]);
    assert.match(r.err, /isotp dump: 11 frames, 2 messages, errors: 1 wrong-sn, 1 timeout-cr/);
  });

  it("dump --format jsonl and -t z", () => {
    const j = vgw(["isotp", "dump", "-i", path.join(dir, "t.log"), "-s", "7E0", "-d", "7E8", "--format", "jsonl", "-n", "7"]);
    assert.equal(j.code, 0, j.err);
    const objs = j.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(objs[0], { t: 1, bus: "vcan0", id: 0x7e0, ext: false, data: "1015000102030405", pdu: { type: "FF", length: 21 } });
    assert.deepEqual(objs[6], { t: 1.005, bus: "vcan0", id: 0x7e0, ext: false, message: "000102030405060708091011121314151617181920", length: 21, frames: 4 });
    const t = vgw(["isotp", "dump", "-i", path.join(dir, "t.log"), "-s", "7E0", "-d", "7E8", "-t", "z", "-n", "2"]);
    assert.deepEqual(t.out.split("\n").slice(0, 2), ["(0.000000)  vcan0  7E0  [8]  [FF] ln: 21   data: 00 01 02 03 04 05 ", "(0.001000)  vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 2 # STmin: 0x00 = 0 ms"]);
  });

  it("usage errors exit 2 with the reason", () => {
    for (const [args, reason] of [
      [["isotp", "send", "-i", "virtual:x", "-s", "800", "-d", "7E8", "01"], /-s 800 exceeds 0x7FF: write 29-bit IDs with 8 digits/],
      [["isotp", "recv", "-i", "virtual:x", "-s", "7E8", "-d", "7E0", "-P", "c"], /-P c checks the padding content: give the expected byte with -p :RX/],
      [["isotp", "send", "-i", "virtual:x", "-s", "7E0", "-d", "7E8", "-L", "72:10:0", "01"], /tx_dl 10 is not/],
      [["isotp", "send", "-i", "virtual:x", "-s", "7E0", "-d", "7E8", "0G"], /'0G' is not hex data/],
      [["isotp", "dump", "-i", "virtual:x", "-s", "7E0", "-d", "7E8", "-x", "100"], /-x takes a byte in hex/],
    ] as Array<[string[], RegExp]>) {
      const r = vgw(args, "");
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, reason);
    }
  });

  it("option parsing follows can-utils: -x addr:rxaddr, -p tx:rx with -P a, -L 72:64:1", () => {
    assert.deepEqual(linkOptions({ interface: "x", source: "18DA10F1", dest: "7E8", extAddress: "10:F1", padding: "CC:AA", paddingCheck: "a", link: "72:64:1" }), {
      txId: 0x18da10f1,
      txExt: true,
      rxId: 0x7e8,
      rxExt: false,
      txAddress: 0x10,
      rxAddress: 0xf1,
      txPadding: 0xcc,
      rxPadding: { length: true, content: 0xaa },
      fd: true,
      txDl: 64,
      brs: true,
    });
    assert.deepEqual(parseHexPayload("11 22\n33.44 5566"), Uint8Array.of(0x11, 0x22, 0x33, 0x44, 0x55, 0x66));
  });

  it("send -> recv over a virtual bus: 3 messages printed as isotprecv prints them", async () => {
    const written: string[] = [];
    const logged: string[] = [];
    const sink = log.sink;
    log.sink = (line) => logged.push(line);
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string, cb?: () => void) => {
      written.push(String(chunk));
      cb?.();
      return true;
    }) as typeof process.stdout.write;
    try {
      const link = { interface: "virtual:isotp-cli", source: "7E8", dest: "7E0" };
      const receiving = isotpRecv({ ...link, count: 3, blockSize: 2, stmin: "F1" });
      await new Promise((r) => setTimeout(r, 50));
      const sendOpts = { interface: "virtual:isotp-cli", source: "7E0", dest: "7E8" };
      await isotpSend(["01", "02", "03"], sendOpts);
      await isotpSend([], { ...sendOpts, length: 300 });
      await isotpSend(["AABBCCDDEEFF0011"], { ...sendOpts, padding: "55" });
      await within(receiving, 10_000, "three messages");
    } finally {
      process.stdout.write = write;
      log.sink = sink;
    }
    assert.deepEqual(logged, ["isotp recv: listening on virtual:isotp-cli for 0x7E0", "isotp recv: 3 messages"]);
    const expected300 = Array.from({ length: 300 }, (_, i) => ((i % 255) + 1).toString(16).toUpperCase().padStart(2, "0") + " ").join("");
    assert.deepEqual(written.join("").split("\n"), ["01 02 03 ", expected300, "AA BB CC DD EE FF 00 11 ", ""]);
  });
});
