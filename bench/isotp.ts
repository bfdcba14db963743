/**
 * ISO-TP throughput (bytes of payload per second) of large messages with STmin 0 and block size 0:
 *   1. vgw -> vgw over the in-process `virtual:` bus (wall and CPU time of this process);
 *   2. in the test VM's kernel (QEMU TCG, 1 vCPU): the kernel's can-isotp module (isotpsend -> isotprecv) beside
 *      vgw -> vgw (two endpoints over SocketCAN in one Node process), classic CAN (4095-byte messages) and CAN FD
 *      (TX_DL 64, 4500 bytes). Both timed the same way, from the first to the last frame of each message by the kernel's
 *      timestamps in a `candump -L` log, so no process start-up counts; vgw's CPU time is measured in its process
 *      (both ends).
 *   3. in the same VM run, each half of vgw against the kernel: vgw sends to isotprecv (the send path alone), and
 *      isotpsend sends to vgw (the receive path alone); a message counts for the phase that started before its first
 *      frame.
 *   node dist/bench/isotp.js            (about 1-2 minutes; N=messages per run in the VM, default 8)
 *   node dist/bench/isotp.js --in-vm    (the vgw part of 2, run inside the VM by the script below)
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/**
 * Per message, first to last frame by the log's kernel timestamps, summed by phase: a message belongs to the last
 * phase that started (wall clock, as candump -L stamps) before its first frame.
 */
async function wireRates(log: string, bus: string, size: number, phases: Array<[string, number]>) {
  const w = new IsoTpWatcher({ source: { id: 0x7e0, ext: false }, dest: { id: 0x7e8, ext: false } });
  const sums = new Map<string, { seconds: number; messages: number; rate: number }>(phases.map(([name]) => [name, { seconds: 0, messages: 0, rate: NaN }]));
  for (const f of await readAllFrames(log)) {
    if (f.bus !== bus) continue;
    for (const item of w.push(f)) {
      if (item.kind !== "message" || item.payload.length !== size) continue;
      let phase: string | undefined;
      for (const [name, start] of phases) if (item.start >= start) phase = name;
      const s = phase === undefined ? undefined : sums.get(phase);
      if (!s) continue;
      s.seconds += item.t - item.start;
      s.messages++;
    }
  }
  for (const s of sums.values()) s.rate = s.seconds > 0 ? (s.messages * size) / s.seconds : NaN;
  return sums;
}

/** Runs `cmd` and resolves with its exit code; its stdout lines go to `onLine`. */
function run(cmd: string, args: string[], onLine?: (line: string) => void): { done: Promise<number | null>; child: ReturnType<typeof spawn> } {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  let buf = "";
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      onLine?.(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return { child, done: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
}

/** vgw sends, the kernel's isotprecv receives: the send path alone. */
async function vgwToKernel(bus: string, size: number, count: number, link: Partial<IsoTpOptions>, kernelOpts: string[]): Promise<void> {
  let lines = 0;
  let wake: () => void = () => undefined;
  const recv = run("stdbuf", ["-oL", "isotprecv", "-s", "7E8", "-d", "7E0", ...kernelOpts, "-l", bus], () => {
    lines++;
    wake();
  });
  // isotprecv must be bound before the first frame (under TCG its start-up took more than half a second).
  await new Promise((r) => setTimeout(r, 2000));
  const tx = await openIsoTp(bus, { txId: 0x7e0, rxId: 0x7e8, nBs: 10_000, ...link });
  try {
    const m = payload(size);
    for (let i = 0; i < count; i++) {
      await tx.send(m);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`isotprecv on ${bus}: message ${i + 1} did not arrive`)), 30_000);
        wake = () => (lines > i ? (clearTimeout(timer), resolve()) : undefined);
        wake();
      });
    }
  } finally {
    await tx.close();
    recv.child.kill();
    await recv.done;
  }
}

/** The kernel's isotpsend sends, vgw receives: the receive path alone. */
async function kernelToVgw(bus: string, size: number, count: number, link: Partial<IsoTpOptions>, kernelOpts: string[]): Promise<void> {
  const rx = await openIsoTp(bus, { txId: 0x7e8, rxId: 0x7e0, nCr: 5000, ...link });
  try {
    for (let i = 0; i < count; i++) {
      const send = run("isotpsend", ["-s", "7E0", "-d", "7E8", ...kernelOpts, "-b", "-D", String(size), bus]);
      const got = await rx.receive(30_000);
      if (got.length !== size) throw new Error(`received ${got.length} bytes, sent ${size}`);
      await send.done;
    }
  } finally {
    await rx.close();
  }
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");

/** The phases of the vgw part, in order, with their start times (wall clock seconds): written for the host side. */
async function inVm(): Promise<void> {
  const n = Number(process.env.N ?? 8);
  const out: { cpu: Record<string, { wall: number; cpu: number }>; phases: Array<[string, number]> } = { cpu: {}, phases: [] };
  for (const [key, bus, c, kernelOpts] of [
    ["classic", "vcan0", CLASSIC, []],
    ["fd", "vcan1", FD, ["-L", "72:64:0"]],
  ] as const) {
    out.phases.push([`vgw-vgw`, Date.now() / 1000]);
    out.cpu[key] = await vgwPair(bus, c.size, n, c.link);
    out.phases.push([`vgw-kernel`, Date.now() / 1000]);
    await vgwToKernel(bus, c.size, n, c.link, [...kernelOpts]);
    out.phases.push([`kernel-vgw`, Date.now() / 1000]);
    await kernelToVgw(bus, c.size, n, c.link, [...kernelOpts]);
  }
  writeFileSync(path.join(process.env.R!, "vgw-cpu.json"), JSON.stringify(out));
}

const VM_SCRIPT = `set -u
cd "$VGW"
# Every frame logged with its kernel receive time; an 8 MB socket buffer (candump -r, root in the VM) so the log
# keeps up with the kernel's own rate under TCG (with the default buffer it lost frames).
timeout 500 candump -r 8388608 -L vcan0 vcan1 >"$R/wire.log" 2>&1 &
CD=$!
sleep 0.5
# The kernel pair: isotprecv in a loop, isotpsend once per message (-b: returns when the transfer is complete).
kernel() { # dev size linkopts
  timeout 120 stdbuf -oL isotprecv -s 7E8 -d 7E0 $3 -l $1 >"$R/kernel-$1.txt" 2>&1 &
  KR=$!
  sleep 0.5
  for i in $(seq 1 $N); do timeout 30 isotpsend -s 7E0 -d 7E8 $3 -b -D $2 $1; done
  sleep 0.3; kill $KR; wait $KR 2>/dev/null
}
kernel vcan0 4095 ""
kernel vcan1 4500 "-L 72:64:0"
sleep 0.5
echo "VGW_START $(date +%s.%N)"
timeout 400 node dist/bench/isotp.js --in-vm; echo "vgw rc=$?"
sleep 0.5; kill $CD; wait $CD 2>/dev/null
`;

async function main(): Promise<void> {
  if (process.argv.includes("--in-vm")) return inVm();
  const load0 = loadavg()[0];
  process.stdout.write(`ISO-TP throughput, STmin 0, block size 0 (load average before: ${loadavg().map((l) => l.toFixed(1)).join(" ")})\n`);
  process.stdout.write(`  ${"where".padEnd(60)} ${"message".padStart(8)} ${"bytes/s".padStart(12)} ${"CPU bytes/s".padStart(12)}\n`);
  for (const [name, c, n] of [
    ["vgw -> vgw, virtual:, classic", CLASSIC, 40],
    ["vgw -> vgw, virtual:, CAN FD 64", FD, 200],
  ] as const) {
    const r = await vgwPair(`virtual:bench-${name}`, c.size, n, c.link);
    process.stdout.write(`  ${name.padEnd(60)} ${String(c.size).padStart(8)} ${fmt((n * c.size) / r.wall).padStart(12)} ${fmt((n * c.size) / r.cpu).padStart(12)}\n`);
  }
  const R = mkdtempSync(path.join(tmpdir(), "vgw-bench-isotp-"));
  try {
    const N = process.env.N ?? "8";
    writeFileSync(path.join(R, "run.sh"), `export VGW='${ROOT}' R='${R}' N='${N}'\n${VM_SCRIPT}`);
    const r = spawnSync("bash", [path.join(ROOT, "scripts/vm/run.sh"), path.join(R, "run.sh"), path.join(R, "out.txt"), "600"], { stdio: ["ignore", "pipe", "pipe"] });
    if (r.status !== 0) {
      const out = existsSync(path.join(R, "out.txt")) ? readFileSync(path.join(R, "out.txt"), "utf8").slice(-2000) : "";
      throw new Error(`the VM run failed (${r.status}): ${String(r.stderr)}\n${out}`);
    }
    if (!existsSync(path.join(R, "vgw-cpu.json"))) throw new Error(`vgw did not run in the VM:\n${readFileSync(path.join(R, "out.txt"), "utf8").slice(-2000)}`);
    const vgw = JSON.parse(readFileSync(path.join(R, "vgw-cpu.json"), "utf8")) as { cpu: Record<string, { wall: number; cpu: number }>; phases: Array<[string, number]> };
    const vgwStart = Number(/^VGW_START (\S+)$/m.exec(readFileSync(path.join(R, "out.txt"), "utf8"))?.[1] ?? NaN);
    const n = Number(N);
    process.stdout.write(`  in the VM (QEMU TCG, 1 vCPU), ${N} messages each; bytes/s from the first to the last frame of each message by kernel timestamps:\n`);
    for (const [bus, c, key, label] of [
      ["vcan0", CLASSIC, "classic", "vcan0"],
      ["vcan1", FD, "fd", "vcan1 CAN FD 64"],
    ] as const) {
      const rates = await wireRates(path.join(R, "wire.log"), bus, c.size, [["kernel", 0], ["vgw-start", vgwStart], ...vgw.phases]);
      const row = (what: string, phase: string, extra: string) => {
        const r = rates.get(phase)!;
        process.stdout.write(`  ${`${what}, ${label}`.padEnd(60)} ${String(c.size).padStart(8)} ${fmt(r.rate).padStart(12)} ${extra.padStart(12)}  (${r.messages} messages)\n`);
      };
      row("kernel can-isotp (isotpsend -> isotprecv)", "kernel", "");
      const v = vgw.cpu[key];
      row("vgw -> vgw over SocketCAN", "vgw-vgw", fmt((n * c.size) / v.cpu));
      row("vgw -> kernel (vgw sends, isotprecv)", "vgw-kernel", "");
      row("kernel -> vgw (isotpsend, vgw receives)", "kernel-vgw", "");
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
