/**
 * J1939 transport against the kernel's own J1939 stack (can-j1939) in the test VM, both directions, one boot
 * (in-vm.sh; natively when this machine has vcan0 and runs as root):
 *   the kernel sends (j1939cat: a BAM to 0xFF, RTS/CTS and ETP to 0x90)  -> candump log -> `vgw decode --j1939`,
 *                                                                          and live `vgw dump --j1939`: the same bytes
 *   `vgw j1939 send` (RTS/CTS and ETP to 0x90, BAM to 0xFF) -> the kernel's j1939 sockets (j1939cat -r) receive the
 *                                                      same bytes, and `vgw record --j1939` shows them while recording
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

function nativeVcan(): boolean {
  return existsSync("/sys/class/net/vcan0") && existsSync("/sys/module/can_j1939") && process.getuid?.() === 0;
}

/** Deterministic bytes that are not a pattern the transport could hide a shift in (no period of 7). */
function payload(n: number, seed: number): Buffer {
  let s = seed;
  return Buffer.from(Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) >> 16) & 0xff));
}

interface Shown {
  j1939?: { transport?: string; pgn?: number; source?: number; destination?: number; fault?: string };
  data?: string;
  error?: string;
}

describe("J1939 transport against the kernel's can-j1939 (both directions, one VM boot)", function () {
  this.timeout(10 * 60 * 1000);
  let R = "";
  const inputs = {
    "k-bam.bin": payload(100, 1), // 15 packets: the kernel sends BAM packets 50 ms apart
    "k-rts.bin": payload(600, 2), // 86 packets, RTS/CTS
    "k-etp.bin": payload(3000, 3), // above 1785 bytes: the kernel uses ETP
    "v-rts.bin": payload(1785, 4), // the largest TP message
    "v-etp.bin": payload(2500, 6),
    "v-bam.bin": payload(120, 5),
  };
  const read = (f: string) => (existsSync(path.join(R, f)) ? readFileSync(path.join(R, f), "utf8") : `(${f} missing)`);
  const lines = (f: string): Shown[] =>
    read(f)
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Shown);
  /** The reassembled messages and faults in a jsonl output. */
  const j1939Of = (f: string) => lines(f).filter((o) => o.j1939);

  before(function () {
    R = mkdtempSync(path.join(tmpdir(), "vgw-j1939-"));
    for (const [name, data] of Object.entries(inputs)) writeFileSync(path.join(R, name), data);
    const env = { ...process.env, VGW: ROOT, R };
    if (nativeVcan()) {
      spawnSync("sh", [path.join(ROOT, "test/j1939/in-vm.sh")], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 8 * 60 * 1000 });
      return;
    }
    const wrapper = path.join(R, "run.sh");
    writeFileSync(wrapper, `export VGW='${ROOT}' R='${R}'\nexec sh '${ROOT}/test/j1939/in-vm.sh'\n`);
    const r = spawnSync("bash", [path.join(ROOT, "scripts/vm/run.sh"), wrapper, path.join(R, "vm-output.txt"), "480"], {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 9 * 60 * 1000,
    });
    if (r.status !== 0) throw new Error(`the test VM failed (exit ${r.status}): ${r.stderr}\n${read("vm-output.txt").slice(-3000)}`);
  });

  after(() => {
    if (R && !process.env.VGW_KEEP_RESULTS) rmSync(R, { recursive: true, force: true });
    else if (R) process.stderr.write(`J1939 results kept in ${R}\n`);
  });

  const expectKernelMessages = (file: string, errFile: string) => {
    const shown = j1939Of(file);
    const detail = `${file}:\n${read(file).slice(-1500)}\n${read(errFile).slice(-1500)}\nvm:\n${read("vm-output.txt").slice(-1500)}`;
    assert.deepEqual(shown.filter((o) => o.j1939?.fault), [], `no transport faults: ${detail}`);
    // The kernel runs transfers to different destinations at once: the order they complete in may vary.
    const order = ["bam", "rts-cts", "etp"];
    const got = shown.map((o) => ({ ...o.j1939, data: o.data })).sort((a, b) => order.indexOf(a.transport!) - order.indexOf(b.transport!));
    const want = [
      { transport: "bam", pgn: 0xfeec, source: 0x80, destination: 0xff, data: inputs["k-bam.bin"] },
      { transport: "rts-cts", pgn: 0x12300, source: 0x80, destination: 0x90, data: inputs["k-rts.bin"] },
      { transport: "etp", pgn: 0x12300, source: 0x80, destination: 0x90, data: inputs["k-etp.bin"] },
    ];
    assert.equal(got.length, want.length, detail);
    want.forEach((w, i) => {
      const g = got[i];
      assert.deepEqual(
        { transport: g.transport, pgn: g.pgn, source: g.source, destination: g.destination },
        { transport: w.transport, pgn: w.pgn, source: w.source, destination: w.destination },
        detail,
      );
      assert.equal(g.data, w.data.toString("hex").toUpperCase(), `${w.transport}: the bytes the kernel sent`);
    });
  };

  it("the kernel's j1939 stack sent (j1939cat) and received its own transfers", () => {
    const vm = read("vm-output.txt");
    for (const step of ["k-bam", "k-rts", "k-etp"]) {
      // can-utils 2020.11's j1939cat exits 1 after queuing the message, when the kernel's first send notification does
      // not fit its control buffer ("recvmsg error notification: truncated"); the transfer itself goes on (checked below).
      const ok = new RegExp(`${step} rc=0`).test(vm) || (new RegExp(`${step} rc=1`).test(vm) && /^j1939cat: recvmsg error notification: truncated/.test(read(`${step}.err`)));
      assert.ok(ok, `${step}: ${read(`${step}.err`)}\n${vm}`);
    }
    const bam = existsSync(path.join(R, "k-bamrx.out")) ? readFileSync(path.join(R, "k-bamrx.out")) : Buffer.alloc(0);
    assert.ok(bam.equals(inputs["k-bam.bin"]), `the kernel's broadcast receiver got ${bam.length} bytes; ${read("k-bamrx.err")}`);
    // The kernel's receiving socket at 0x90 got both directed messages: the reference worked.
    const received = existsSync(path.join(R, "k-rx.out")) ? readFileSync(path.join(R, "k-rx.out")) : Buffer.alloc(0);
    assert.ok(received.equals(Buffer.concat([inputs["k-rts.bin"], inputs["k-etp.bin"]])), `received ${received.length} bytes; ${read("k-rx.err")}`);
  });

  it("kernel BAM, RTS/CTS and ETP, logged by candump: vgw decode --j1939 reassembles the same bytes", () => {
    assert.match(read("k-decode.err"), /k-decode rc=0/);
    assert.match(read("k-decode.err"), /j1939: 3 messages reassembled \(bam 1, rts-cts 1, etp 1\), 0 transport faults/);
    expectKernelMessages("k-decode.jsonl", "k-decode.err");
  });

  it("the same transfers live: vgw dump --j1939 on vcan0 reassembles the same bytes", () => {
    assert.match(read("k-dump.err"), /k-dump rc=0/);
    expectKernelMessages("k-dump.jsonl", "k-dump.err");
  });

  it("vgw j1939 send RTS/CTS (1785 bytes) then ETP (2500 bytes) to 0x90: the kernel's j1939 socket receives the same bytes", () => {
    assert.match(read("v-send-rts.err"), /v-send-rts rc=0/, read("v-send-rts.err"));
    assert.match(read("v-send-etp.err"), /v-send-etp rc=0/, read("v-send-etp.err"));
    const received = readFileSync(path.join(R, "v-rts.out"));
    assert.ok(received.equals(Buffer.concat([inputs["v-rts.bin"], inputs["v-etp.bin"]])), `received ${received.length} bytes; ${read("v-rts.err")}`);
  });

  it("vgw j1939 send BAM to 0xFF: the kernel's broadcast j1939 socket receives the same bytes", () => {
    assert.match(read("v-send-bam.err"), /v-send-bam rc=0/, read("v-send-bam.err"));
    assert.ok(readFileSync(path.join(R, "v-bam.out")).equals(inputs["v-bam.bin"]), `received ${readFileSync(path.join(R, "v-bam.out")).length} bytes; ${read("v-bam.err")}`);
  });

  it("vgw record --j1939 shows the three messages while recording, and counts them", () => {
    const err = read("v-record.err");
    assert.match(err, /v-record rc=0/, err);
    assert.match(err, /record: j1939: 3 messages reassembled \(bam 1, rts-cts 1, etp 1\), 0 transport faults/, err);
    const text = read("v-record.txt");
    assert.match(text, new RegExp(`vcan0 j1939 rts-cts pgn=12300 81->90 \\[1785\\] ${inputs["v-rts.bin"].toString("hex").toUpperCase()}`), text.slice(0, 500));
    assert.match(text, new RegExp(`vcan0 j1939 etp pgn=12300 81->90 \\[2500\\] ${inputs["v-etp.bin"].toString("hex").toUpperCase()}`), text.slice(0, 500));
    assert.match(text, new RegExp(`vcan0 j1939 bam pgn=FEEC 81->FF \\[120\\] ${inputs["v-bam.bin"].toString("hex").toUpperCase()}`), text.slice(0, 500));
  });
});
