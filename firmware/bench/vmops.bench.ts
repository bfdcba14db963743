/**
 * VM micro-benchmark: what single operations cost in the DeviceScript VM (ns per operation, the empty loop
 * subtracted), to decide how hot paths are written. Wall clock: run it a few times on a loaded machine.
 * Run: npx devs run bench/vmops.bench.ts --test --test-self-exit -T 120000
 */
import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"

const N = 2000
const ROUNDS = 40

class Holder {
    x = 1
    y = 2
    bump(v: number) {
        return v + 1
    }
}

function zero() {
    return 1
}

function plus(v: number) {
    return v + 1
}

async function time(f: () => number): Promise<number> {
    let best = 1e9
    for (let k = 0; k < 5; k++) {
        const t0 = ds.millis()
        for (let r = 0; r < ROUNDS; r++) {
            f()
            await ds.sleep(0)
        }
        // the awaits alone, measured the same way
        const t1 = ds.millis()
        for (let r = 0; r < ROUNDS; r++) await ds.sleep(0)
        const ms = t1 - t0 - (ds.millis() - t1)
        if (ms < best) best = ms
    }
    return best
}

describe("vm op costs", () => {
    test("ops", async () => {
        const buf = Buffer.alloc(64)
        const h = new Holder()
        const arr: number[] = []
        for (let i = 0; i < 16; i++) arr.push(i)
        const cases: [string, () => number][] = [
            ["empty loop", () => { let s = 0; for (let i = 0; i < N; i++) s += i; return s }],
            ["local arithmetic (x3)", () => { let s = 0; for (let i = 0; i < N; i++) { s += (i >> 2) & 7; s = s | 0; s ^= i } return s }],
            ["buf[i] read", () => { let s = 0; for (let i = 0; i < N; i++) s += buf[i & 63]; return s }],
            ["buf[i] write", () => { let s = 0; for (let i = 0; i < N; i++) buf[i & 63] = i; return s }],
            ["getAt u32", () => { let s = 0; for (let i = 0; i < N; i++) s += buf.getAt(i & 31, "u32"); return s }],
            ["getAt u8", () => { let s = 0; for (let i = 0; i < N; i++) s += buf.getAt(i & 31, "u8"); return s }],
            ["setAt u32", () => { let s = 0; for (let i = 0; i < N; i++) buf.setAt(i & 31, "u32", i); return s }],
            ["array[i] read", () => { let s = 0; for (let i = 0; i < N; i++) s += arr[i & 15]; return s }],
            ["this-field read", () => { let s = 0; for (let i = 0; i < N; i++) s += h.x; return s }],
            ["field write", () => { let s = 0; for (let i = 0; i < N; i++) h.y = i; return s }],
            ["field ++", () => { let s = 0; for (let i = 0; i < N; i++) h.y++; return s }],
            ["function call", () => { let s = 0; for (let i = 0; i < N; i++) s = plus(s); return s }],
            ["function call, no argument", () => { let s = 0; for (let i = 0; i < N; i++) s += zero(); return s }],
            ["local arrow call", () => { const f = (v: number) => v + 1; let s = 0; for (let i = 0; i < N; i++) s = f(s); return s }],
            ["allocate [] ", () => { let s = 0; for (let i = 0; i < N; i++) { const a: number[] = []; s += a.length } return s }],
            ["method call", () => { let s = 0; for (let i = 0; i < N; i++) s = h.bump(s); return s }],
            ["Math.abs", () => { let s = 0; for (let i = 0; i < N; i++) s += Math.abs(i); return s }],
            ["if/else chain (3)", () => { let s = 0; for (let i = 0; i < N; i++) { const n = i & 3; if (n === 1) s++; else if (n === 2) s += 2; else s += 3 } return s }],
            [">>> 0", () => { let s = 0; for (let i = 0; i < N; i++) s = (s + i) >>> 0; return s }],
        ]
        let base = 0
        const keep: Buffer[] = []
        for (let big = 0; big < 2; big++) {
        if (big) {
            for (let i = 0; i < 200; i++) keep.push(Buffer.alloc(100))
            console.log("vmops with 200 more objects (20 KB) on the heap")
        }
        for (const c of cases) {
            const ms = await time(c[1])
            if (c[0] === "empty loop") base = ms
            const ns = Math.round(((ms - (c[0] === "empty loop" ? 0 : base)) * 1e6) / (N * ROUNDS))
            console.log(`vmops ${c[0]}: ${ms} ms for ${N * ROUNDS}; ${ns} ns per op${c[0] === "empty loop" ? " (loop itself)" : " beyond the loop"}`)
        }
        }
    })
})
