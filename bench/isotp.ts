/**
 * ISO-TP throughput (bytes of payload per second) of large messages with STmin 0 and block size 0:
 *   1. vgw -> vgw over the in-process `virtual:` bus (wall and CPU time of this process);
 *   2. in the test VM's kernel (QEMU TCG, 1 vCPU): the kernel's can-isotp module (isotpsend -> isotprecv) beside
 *      vgw -> vgw (two endpoints over SocketCAN in one Node process), classic CAN (4095-byte messages) and CAN FD
 *      (TX_DL 64, 4500 bytes). Neither figure counts process start-up: vgw is timed inside its process, the kernel
 *      pair by the clock around the isotpsend runs less as many runs of a 1-byte message.
 *   node dist/bench/isotp.js            (about 1-2 minutes; N=messages per run in the VM, default 5)
 *   node dist/bench/isotp.js --in-vm    (the vgw part of 2, run inside the VM by the script below)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { openIsoTp, type IsoTpOptions } from "../host/diag/isotp";

const ROOT = path.resolve(__dirname, "../..");
const CLASSIC = { size: 4095, link: {} as Partial<IsoTpOptions> };
const FD = { size: 4500, link: { txDl: 64, fd: true } as Partial<IsoTpOptions> };

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i % 255) + 1);

/** Sends `count` messages from one endpoint to another on `bus`; returns wall and CPU seconds. */
async function vgwPair(bus: string, size: number, count: number, link: Partial<IsoTpOptions>): Promise<{ wall: number; cpu: number }> {
  // Generous N_Bs / N_Cr: under QEMU's emulated CPU a flow control took 0.2 s to come back on a loaded host.
  const timeouts = { nBs: 5000, nCr: 5000 };
  const tx = await openIsoTp(bus, { txId: 0x7e0, rxId: 0x7e8, ...timeouts, ...link });
  const rx = await openIsoTp(bus, { txId: 0x7e8, rxId: 0x7e0, ...timeouts, ...link });
  try {
    const m = payload(size);
    // One message first, not timed: the code paths get compiled before the clock runs.
    await Promise.all([tx.send(m), rx.receive(30_000)]);
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
ns() { date +%s%N; }
# The kernel pair: isotprecv in a loop, isotpsend once per message (-b: returns when the transfer is complete). A
# candump beside it loses frames at the kernel's rate under TCG, so the kernel is timed by the clock around the
# isotpsend runs, less the same number of runs sending a 1-byte message (process start-up).
kernel() { # dev size linkopts
  timeout 120 isotprecv -s 7E8 -d 7E0 $3 -l $1 >"$R/kernel-$1.txt" 2>&1 &
  KR=$!
  sleep 0.5
  t0=$(ns)
  for i in $(seq 1 $N); do timeout 30 isotpsend -s 7E0 -d 7E8 $3 -b -D $2 $1; done
  t1=$(ns)
  for i in $(seq 1 $N); do timeout 30 isotpsend -s 7E0 -d 7E8 $3 -b -D 1 $1; done
  t2=$(ns)
  echo "KERNEL $1 $2 $(( (t1 - t0) - (t2 - t1) )) $(grep -c . "$R/kernel-$1.txt")"
  sleep 0.3; kill $KR; wait $KR 2>/dev/null
}
kernel vcan0 4095 ""
kernel vcan1 4500 "-L 72:64:0"
timeout 240 node dist/bench/isotp.js --in-vm; echo "vgw rc=$?"
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
    if (r.status !== 0) {
      const out = existsSync(path.join(R, "out.txt")) ? readFileSync(path.join(R, "out.txt"), "utf8").slice(-2000) : "";
      throw new Error(`the VM run failed (${r.status}): ${String(r.stderr)}\n${out}`);
    }
    if (!existsSync(path.join(R, "vgw-cpu.json"))) throw new Error(`vgw did not run in the VM:\n${readFileSync(path.join(R, "out.txt"), "utf8").slice(-2000)}`);
    const vgw = JSON.parse(readFileSync(path.join(R, "vgw-cpu.json"), "utf8")) as Record<string, { wall: number; cpu: number }>;
    const kernel = new Map<string, { ns: number; received: number }>();
    for (const m of readFileSync(path.join(R, "out.txt"), "utf8").matchAll(/^KERNEL (\S+) \d+ (-?\d+) (\d+)$/gm)) kernel.set(m[1], { ns: Number(m[2]), received: Number(m[3]) });
    const n = Number(N);
    process.stdout.write(`  in the VM (QEMU TCG, 1 vCPU), ${N} messages each:\n`);
    for (const [dev, c, key, label] of [
      ["vcan0", CLASSIC, "classic", "vcan0"],
      ["vcan1", FD, "fd", "vcan1 CAN FD 64"],
    ] as const) {
      const k = kernel.get(dev);
      const kRate = k && k.ns > 0 && k.received >= 2 * n ? (n * c.size) / (k.ns / 1e9) : NaN;
      process.stdout.write(`  ${`kernel can-isotp (isotpsend -> isotprecv), ${label}`.padEnd(44)} ${String(c.size).padStart(8)} ${fmt(kRate).padStart(12)} ${"".padStart(12)}  (${k?.received ?? 0} messages received)\n`);
      const v = vgw[key];
      process.stdout.write(`  ${`vgw -> vgw over SocketCAN, ${label}`.padEnd(44)} ${String(c.size).padStart(8)} ${fmt((n * c.size) / v.wall).padStart(12)} ${fmt((n * c.size) / v.cpu).padStart(12)}\n`);
    }
  } finally {
    if (process.env.VGW_KEEP_RESULTS) process.stderr.write(`results kept in ${R}\n`);
    else rmSync(R, { recursive: true, force: true });
  }
  process.stdout.write(`  load average after: ${loadavg().map((l) => l.toFixed(1)).join(" ")} (before: ${load0.toFixed(1)})\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench isotp: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
