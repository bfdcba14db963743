/**
 * ISO-TP against the Linux kernel's can-isotp module and can-utils' isotpsend / isotprecv / isotpdump, both ways:
 * natively when this machine has vcan0 and an FD-capable vcan1, otherwise in the test VM (scripts/vm/, never skipped).
 * Everything that needs the kernel runs in ONE boot (isotp-in-vm.sh); each `it` asserts on what it left in $R.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

function nativeCan(): boolean {
  const mtu = (i: string) => (existsSync(`/sys/class/net/${i}/mtu`) ? readFileSync(`/sys/class/net/${i}/mtu`, "utf8").trim() : "");
  return mtu("vcan0") === "16" && mtu("vcan1") === "72" && process.getuid?.() === 0;
}

/** The message `isotpsend -D n` (and `vgw isotp send -D n`) sends, as isotprecv prints it. */
function generated(n: number): string {
  return Array.from({ length: n }, (_, i) => ((i % 255) + 1).toString(16).toUpperCase().padStart(2, "0")).join(" ") + " ";
}

describe("ISO-TP against the kernel's can-isotp and can-utils (vcan0, vcan1 FD)", function () {
  this.timeout(10 * 60 * 1000);
  let R = "";
  const read = (f: string) => (existsSync(path.join(R, f)) ? readFileSync(path.join(R, f), "utf8") : `(${f} missing)`);
  const lines = (f: string) => read(f).split("\n").filter((l) => l.length > 0);
  /** The VM's output tail, to explain a failure. */
  const context = () => `\n--- vm output:\n${read("vm-output.txt").slice(-1500)}`;

  before(function () {
    R = mkdtempSync(path.join(tmpdir(), "vgw-isotp-"));
    const env = { ...process.env, VGW: ROOT, R };
    if (nativeCan()) {
      spawnSync("sh", [path.join(ROOT, "test/diag/isotp-in-vm.sh")], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 8 * 60 * 1000 });
      return;
    }
    const wrapper = path.join(R, "run.sh");
    writeFileSync(wrapper, `export VGW='${ROOT}' R='${R}'\nexec sh '${ROOT}/test/diag/isotp-in-vm.sh'\n`);
    const r = spawnSync("bash", [path.join(ROOT, "scripts/vm/run.sh"), wrapper, path.join(R, "vm-output.txt"), "420"], {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 8 * 60 * 1000,
    });
    if (r.status !== 0) throw new Error(`the test VM failed (exit ${r.status}): ${r.stderr}\n${read("vm-output.txt").slice(-3000)}`);
  });

  after(() => {
    if (R && !process.env.VGW_KEEP_RESULTS) rmSync(R, { recursive: true, force: true });
    else if (R) process.stderr.write(`ISO-TP results kept in ${R}\n`);
  });

  it("vgw isotp send -> kernel isotprecv: a padded single frame, and 4095 bytes paced by the kernel's BS 4 / STmin 2 ms", () => {
    assert.deepEqual(lines("v-send-classic.err"), ["rc=0", "rc=0"], context());
    assert.deepEqual(lines("k-recv-classic.txt"), ["01 02 03 ", generated(4095)]);
    const dump = lines("isotpdump-classic.txt");
    assert.ok(dump.includes(" vcan0  7E0  [8]  [SF] ln: 3    data: 01 02 03 CC CC CC CC "), dump.slice(0, 3).join("\n"));
    assert.ok(dump.includes(" vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 4 # STmin: 0x02 = 2 ms"), dump.slice(0, 4).join("\n"));
    assert.equal(dump.filter((l) => l.includes("[CF]")).length, Math.ceil((4095 - 6) / 7));
  });

  it("vgw isotp dump prints the frames exactly as isotpdump does, and the reassembled messages beside them (classic)", () => {
    const ours = lines("vgw-dump-classic.txt");
    const frames = ours.filter((l) => !/^ \S+ {2}\S+ {2}(=>|!!)/.test(l));
    assert.ok(frames.length > 500, `only ${frames.length} frame lines`);
    assert.deepEqual(frames, lines("isotpdump-classic.txt"));
    const messages = ours.filter((l) => l.includes(" => "));
    assert.deepEqual(messages, [" vcan0  7E0  => ln: 3 in 1 frame: 01 02 03", ` vcan0  7E0  => ln: 4095 in ${1 + Math.ceil((4095 - 6) / 7)} frames: ${generated(4095).trimEnd()}`]);
    assert.match(read("vgw-dump-classic.err"), /isotp dump: \d+ frames, 2 messages\n/);
  });

  it("kernel isotpsend -> vgw isotp recv: the kernel obeys vgw's BS 3 / STmin 0xF5 (500 us); padded and unpadded", () => {
    assert.deepEqual(lines("k-send-classic.err"), ["isotpsend rc=0", "isotpsend rc=0", "isotpsend rc=0"]);
    assert.deepEqual(lines("v-recv-classic.txt"), [generated(200), "11 22 33 ", generated(1000)], read("v-recv-classic.err") + context());
    assert.match(read("v-recv-classic.err"), /isotp recv: 3 messages\nrc=0/);
    const dump = lines("isotpdump-classic2.txt");
    const fcs = dump.filter((l) => l.includes("[FC]"));
    assert.ok(fcs.length > 10 && fcs.every((l) => l === " vcan0  7E8  [3]  [FC] FC: 0 = CTS # BS: 3 # STmin: 0xF5 = 500 us"), fcs.slice(0, 3).join("\n"));
    // Two messages of 200 and 1000 bytes in blocks of 3: a flow control after the FF and after every full block.
    const cfs = (n: number) => Math.ceil((n - 6) / 7);
    assert.equal(fcs.length, 2 + Math.floor((cfs(200) - 1) / 3) + Math.floor((cfs(1000) - 1) / 3));
  });

  it("extended addressing both ways (kernel -> vgw on 29-bit IDs); the kernel's padding check (-P a) accepts vgw's padding", () => {
    assert.deepEqual(lines("v-send-ext.err"), ["rc=0"], context());
    assert.deepEqual(lines("k-recv-ext.txt"), [generated(100)]);
    assert.deepEqual(lines("k-send-ext.err"), ["isotpsend rc=0", "isotpsend rc=0"]);
    assert.deepEqual(lines("v-recv-ext.txt"), [generated(6), generated(100)], read("v-recv-ext.err"));
  });

  it("CAN FD (TX_DL 64, BRS) both ways: escape single frame (60 bytes), 12-bit and 32-bit first frames (1000, 4500 bytes)", () => {
    assert.deepEqual(lines("v-send-fd.err"), ["rc=0", "rc=0"], context());
    assert.deepEqual(lines("k-recv-fd.txt"), [generated(60), generated(4500)]);
    assert.deepEqual(lines("k-send-fd.err"), ["isotpsend rc=0", "isotpsend rc=0", "isotpsend rc=0"]);
    assert.deepEqual(lines("v-recv-fd.txt"), [generated(60), generated(1000), generated(4500)], read("v-recv-fd.err"));
  });

  it("vgw isotp dump prints CAN FD frames exactly as isotpdump does, and all five messages", () => {
    const ours = lines("vgw-dump-fd.txt");
    assert.deepEqual(
      ours.filter((l) => !/^ \S+ {2}\S+ {2}(=>|!!)/.test(l)),
      lines("isotpdump-fd.txt"),
    );
    const messages = ours.filter((l) => l.includes(" => ")).map((l) => /=> ln: (\d+) /.exec(l)?.[1]);
    assert.deepEqual(messages, ["60", "4500", "60", "1000", "4500"]);
    assert.ok(ours.includes(" vcan1  7E0 [64]  [FF] ln: 4500 data: " + generated(58)), "the 32-bit first frame");
  });

  it("a wrong sequence number from raw frames: vgw recv names it, counts it, and receives the next message", () => {
    assert.deepEqual(lines("v-recv-bad.txt"), ["AA BB CC "]);
    const err = read("v-recv-bad.err");
    assert.match(err, /isotp wrong-sn: expected sequence number 1, got 3/);
    assert.match(err, /isotp recv: 1 messages, errors: 1 wrong-sn\nrc=0/);
  });
});
