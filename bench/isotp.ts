/**
 * ISO-TP throughput (bytes of payload per second) of large messages with STmin 0 and block size 0:
 *   1. vgw -> vgw over the in-process `virtual:` bus (wall and CPU time of this process);
 *   2. in the test VM's kernel (QEMU TCG, 1 vCPU): the kernel's can-isotp module (isotpsend -> isotprecv) beside
 *      vgw -> vgw (two endpoints over SocketCAN in one Node process), classic CAN (4095-byte messages) and CAN FD
 *      (TX_DL 64, 4500 bytes). Both are timed the same way: from the first frame to the last frame of each message,
 *      by the kernel's receive timestamps in a `candump -L` log, so no process start-up counts.
 *   node dist/bench/isotp.js            (about 1-2 minutes; N=messages per run in the VM, default 5)
 *   node dist/bench/isotp.js --in-vm    (the vgw part of 2, run inside the VM by the script below)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { openIsoTp, type IsoTpOptions } from "../host/diag/isotp";
import { IsoTpWatcher } from "../host/diag/isotp-dump";
import { readAllFrames } from "../host/trace";

const ROOT = path.resolve(__dirname, "../..");
const CLASSIC = { size: 4095, link: {} as Partial<IsoTpOptions> };
const FD = { size: 4500, link: { txDl: 64, fd: true } as Partial<IsoTpOptions> };

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i % 255) + 1);

/** Sends `count` messages from one endpoint to another on `bus`; returns wall and CPU seconds. */
async function vgwPair(bus: string, size: number, count: number, link: Partial<IsoTpOptions>): Promise<{ wall: number; cpu: number }> {
  const tx = await openIsoTp(bus, { txId: 0x7e0, rxId: 0x7e8, ...link });
  const rx = await openIsoTp(bus, { txId: 0x7e8, rxId: 0x7e0, ...link });
  try {
    const m = payload(size);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const [, got] = await Promise.all([tx.send(m), rx.receive(30_000)]);
      if (got.length !== size) throw new Error(`received ${got.length} bytes, sent ${size}`);
    }
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(cpu0);
    return { wall, cpu: (c.user + c.system) / 1e6 };
  } finally {
    await Promise.all([tx.close(), rx.close()]);
  }
}

/** Per message, first to last frame by the log's timestamps: payload bytes over the summed durations. */
async function wireRate(log: string, size: number): Promise<{ messages: number; bytesPerSecond: number }> {
  const w = new IsoTpWatcher({ source: { id: 0x7e0, ext: false }, dest: { id: 0x7e8, ext: false } });
  let seconds = 0;
  let messages = 0;
  for (const f of await readAllFrames(log)) {
    for (const item of w.push(f)) {
      if (item.kind === "message" && item.payload.length === size) {
        seconds += item.t - item.start;
        messages++;
      }
    }
  }
  return { messages, bytesPerSecond: seconds > 0 ? (messages * size) / seconds : NaN };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");

async function inVm(): Promise<void> {
  const n = Number(process.env.N ?? 5);
  const out: Record<string, { wall: number; cpu: number }> = {};
  out.classic = await vgwPair("vcan0", CLASSIC.size, n, CLASSIC.link);
  out.fd = await vgwPair("vcan1", FD.size, n, FD.link);
  writeFileSync(path.join(process.env.R!, "vgw-cpu.json"), JSON.stringify(out));
}

const VM_SCRIPT = `set -u
cd "$VGW"
# the kernel pair: isotprecv in a loop, isotpsend once per message (-b: until the transfer is complete)
kernel() { # dev size linkopts
  timeout 120 isotprecv -s 7E8 -d 7E0 $3 -l $1 >/dev/null 2>&1 &
  KR=$!
  timeout 120 candump -L $1 >"$R/kernel-$1.log" 2>&1 &
  CD=$!
  sleep 0.5
  for i in $(seq 1 $N); do timeout 30 isotpsend -s 7E0 -d 7E8 $3 -b -D $2 $1; done
  sleep 0.5; kill $KR $CD; wait $KR $CD 2>/dev/null
}
kernel vcan0 4095 ""
kernel vcan1 4500 "-L 72:64:0"
timeout 120 candump -L vcan0 vcan1 >"$R/vgw.log" 2>&1 &
CD=$!
sleep 0.5
timeout 240 node dist/bench/isotp.js --in-vm; echo "vgw rc=$?"
sleep 0.5; kill $CD; wait $CD 2>/dev/null
`;

async function main(): Promise<void> {
  if (process.argv.includes("--in-vm")) return inVm();
  const load0 = loadavg()[0];
  process.stdout.write(`ISO-TP throughput, STmin 0, block size 0 (load average before: ${loadavg().map((l) => l.toFixed(1)).join(" ")})\n`);
  process.stdout.write(`  ${"where".padEnd(44)} ${"message".padStart(8)} ${"bytes/s".padStart(12)} ${"CPU bytes/s".padStart(12)}\n`);
  for (const [name, c, n] of [
    ["vgw -> vgw, virtual:, classic", CLASSIC, 40],
    ["vgw -> vgw, virtual:, CAN FD 64", FD, 200],
  ] as const) {
    const r = await vgwPair(`virtual:bench-${name}`, c.size, n, c.link);
    process.stdout.write(`  ${name.padEnd(44)} ${String(c.size).padStart(8)} ${fmt((n * c.size) / r.wall).padStart(12)} ${fmt((n * c.size) / r.cpu).padStart(12)}\n`);
  }
  const R = mkdtempSync(path.join(tmpdir(), "vgw-bench-isotp-"));
  try {
    const N = process.env.N ?? "5";
    writeFileSync(path.join(R, "run.sh"), `export VGW='${ROOT}' R='${R}' N='${N}'\n${VM_SCRIPT}`);
    const r = spawnSync("bash", [path.join(ROOT, "scripts/vm/run.sh"), path.join(R, "run.sh"), path.join(R, "out.txt"), "600"], { stdio: ["ignore", "pipe", "pipe"] });
    if (r.status !== 0) throw new Error(`the VM run failed (${r.status}): ${r.stderr}\n${readFileSync(path.join(R, "out.txt"), "utf8").slice(-2000)}`);
    const cpu = JSON.parse(readFileSync(path.join(R, "vgw-cpu.json"), "utf8")) as Record<string, { wall: number; cpu: number }>;
    const rows: Array<[string, string, number, string | undefined]> = [
      ["kernel can-isotp (isotpsend -> isotprecv), vcan0", "kernel-vcan0.log", CLASSIC.size, undefined],
      ["vgw -> vgw over SocketCAN, vcan0", "vgw.log", CLASSIC.size, "classic"],
      ["kernel can-isotp, vcan1 CAN FD 64", "kernel-vcan1.log", FD.size, undefined],
      ["vgw -> vgw over SocketCAN, vcan1 CAN FD 64", "vgw.log", FD.size, "fd"],
    ];
    process.stdout.write(`  in the VM (QEMU TCG, 1 vCPU), ${N} messages each, first to last frame by kernel timestamps:\n`);
    for (const [name, log, size, key] of rows) {
      const w = await wireRate(path.join(R, log), size);
      const cpuRate = key ? fmt((Number(N) * size) / cpu[key].cpu) : "";
      process.stdout.write(`  ${name.padEnd(44)} ${String(size).padStart(8)} ${fmt(w.bytesPerSecond).padStart(12)} ${cpuRate.padStart(12)}  (${w.messages} messages)\n`);
    }
  } finally {
    rmSync(R, { recursive: true, force: true });
  }
  process.stdout.write(`  load average after: ${loadavg().map((l) => l.toFixed(1)).join(" ")} (before: ${load0.toFixed(1)})\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench isotp: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
