/**
 * J1939 reassembly benchmark (`node dist/bench/j1939.js`): a generated truck trace (single frames of 8 PGNs from
 * 16 ECUs, with a DM1 BAM of 10 DTCs and an RTS/CTS transfer of 300 bytes between them every few hundred frames)
 * pushed through host/j1939's reassembler, and through the J1939 view that `--j1939` adds to decode/dump/record
 * (reassembly, DM1 decoding and the printed lines). Prints frames/s per CPU second, best of 3. There is no
 * reference reassembler among the Debian packages here (the kernel's is checked for bytes, not timed: test/j1939).
 * Environment: VGW_BENCH_FRAMES (default 1000000).
 */
import { loadavg } from "node:os";
import { makeFrame, type Frame } from "../frame/frame";
import { makeJ1939Id } from "../can-db/j1939";
import { J1939Reassembler, CM, PGN_TP_CM } from "../host/j1939/transport";
import { bamFrames, announceFrame, dataFrames } from "../host/j1939/sender";
import { encodeDm1 } from "../host/j1939/dm1";
import { J1939View } from "../host/j1939/view";
import { seededRandom } from "../test/candb/helpers";

const N = Number(process.env.VGW_BENCH_FRAMES ?? 1_000_000);

function trace(n: number): Frame[] {
  const rnd = seededRandom(1939);
  const pgns = [0xf004, 0xf003, 0xfeee, 0xfef1, 0xfef2, 0xfee5, 0xfef5, 0xfe6c];
  const dm1 = encodeDm1({ AWL: { status: "on" } }, Array.from({ length: 10 }, (_, i) => ({ spn: 100 + i, fmi: i, oc: 1 })));
  const big = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const out: Frame[] = [];
  let t = 1000;
  const push = (f: Frame) => out.push({ ...f, t: (t += 0.0002), bus: "can0" });
  while (out.length < n) {
    for (let i = 0; i < 300; i++) {
      push(makeFrame({ id: makeJ1939Id(3 + (i % 4), pgns[i % 8], Math.floor(rnd() * 16)), ext: true, data: Uint8Array.from({ length: 8 }, () => (rnd() * 256) | 0) }));
    }
    for (const f of bamFrames({ pgn: 0xfeca, source: 0x00, destination: 0xff, data: dm1 })) push(f);
    const m = { pgn: 0xef00, source: 0x21, destination: 0x17, data: big };
    push(announceFrame(m));
    const packets = Math.ceil(big.length / 7);
    const pgn = [0x00, 0xef, 0x00];
    for (let next = 1; next <= packets; next += 16) {
      const count = Math.min(16, packets - next + 1);
      push(makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x17, 0x21), ext: true, data: Uint8Array.of(CM.cts, count, next, 0xff, 0xff, ...pgn) }));
      for (const f of dataFrames(m, next, next + count - 1)) push(f);
    }
    push(makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x17, 0x21), ext: true, data: Uint8Array.of(CM.eoma, big.length & 0xff, big.length >> 8, packets, 0xff, ...pgn) }));
  }
  return out.slice(0, n);
}

function cpuSeconds(run: () => number): { seconds: number; result: number } {
  let best = Infinity;
  let result = 0;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    result = run();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1e6);
  }
  return { seconds: best, result };
}

const frames = trace(N);
const rate = (s: number) => `${Math.round(N / s).toLocaleString("en-US").padStart(12)} frames/s per CPU second`;
process.stdout.write(`J1939 reassembly, ${N.toLocaleString("en-US")} frames (best of 3):\n`);
const reassembly = cpuSeconds(() => {
  const r = new J1939Reassembler();
  for (const f of frames) r.push(f);
  r.finish();
  // The trace is cut at N frames, possibly inside a transfer: only that one may be incomplete.
  if (r.counts.faults > (r.counts.byFault.incomplete ?? 0)) throw new Error(`unexpected faults: ${JSON.stringify(r.counts.byFault)}`);
  return r.counts.messages;
});
process.stdout.write(`  reassembler            ${rate(reassembly.seconds)} (${reassembly.seconds.toFixed(2)} s, ${reassembly.result.toLocaleString("en-US")} messages)\n`);
const view = cpuSeconds(() => {
  const v = new J1939View();
  let lines = 0;
  for (const f of frames) lines += v.frame(f).length;
  return lines + v.finish().length;
});
process.stdout.write(`  --j1939 view (+ DM1)   ${rate(view.seconds)} (${view.seconds.toFixed(2)} s, ${view.result.toLocaleString("en-US")} lines)\n`);
process.stdout.write(`  load average: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
