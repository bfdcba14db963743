/**
 * VM benchmark of the frame path: packed CanBus reports (16 frames of the candump.log kind) through Gateway.ingest,
 * without MQTT. Prints frames/s for the record check alone, the batch coder alone, and the whole ingest.
 * Run: npx devs run bench/ingest.bench.ts --test --test-self-exit -T 120000 (the test runner turns on GC stress: calls
 * and allocations cost about 20 us each here, not in the simulator's VM; docs/performance.md, "Signal path")
 */
import * as ds from "@devicescript/core"
import { describe, test } from "@devicescript/test"
import { BatchEncoder, BATCH_OVERHEAD } from "../src/batch"
import { checkRecord } from "../src/records"
import { FrameSelector } from "../src/filters"
import { SignalTable } from "../src/signals"
import { checkConfig } from "../src/config"
import { Gateway } from "../src/gateway"

const IDS = [0x102, 0x116, 0x106, 0x228, 0x154, 0x00e, 0x754, 0x1f8, 0x2a8, 0x108, 0x288, 0x168, 0x278, 0x48c, 0x2cc, 0x2c8]

async function packets(n: number): Promise<Buffer[]> {
    const out: Buffer[] = []
    for (let k = 0; k < n; k++) {
        const b = Buffer.alloc(16 * 14)
        for (let i = 0; i < 16; i++) {
            const o = i * 14
            b.setAt(o, "u32", IDS[(i + k) % 16])
            b[o + 4] = 0
            b[o + 5] = 8
            for (let j = 0; j < 8; j++) b[o + 6 + j] = j < 2 ? (k * 7 + i) & 0xff : j
        }
        out.push(b)
        await ds.sleep(0)
    }
    return out
}

/**
 * Reports of the end-to-end benchmark's frames (bench/gateway.ts busFrames): 64 IDs, 8 bytes, bytes 0 and 4 changing
 * at every repeat of an ID, byte 1 every 256th.
 */
async function busPackets(n: number): Promise<Buffer[]> {
    const out: Buffer[] = []
    for (let k = 0; k < n; k++) {
        const b = Buffer.alloc(16 * 14)
        for (let i = 0; i < 16; i++) {
            const s = k * 16 + i
            const v = Math.floor(s / 64)
            const o = i * 14
            b.setAt(o, "u32", 0x100 + (s % 64) * 8)
            b[o + 4] = 0
            b[o + 5] = 8
            b[o + 6] = v & 0xff
            b[o + 7] = (v >> 8) & 0xff
            b[o + 8] = 0x12
            b[o + 9] = 0x34
            b[o + 10] = (v * 7) & 0xff
            b[o + 11] = 0
            b[o + 12] = s & 0x0f
            b[o + 13] = 0xaa
        }
        out.push(b)
        await ds.sleep(0)
    }
    return out
}

async function measure(name: string, pk: Buffer[], rounds: number, f: (b: Buffer, now: number) => void, every = 8) {
    const t0 = ds.millis()
    let frames = 0
    for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < pk.length; i++) {
            f(pk[i], ds.millis())
            frames += 16
            // an await every 8 reports keeps the VM under its opcode budget between awaits
            if (i % every === every - 1) await ds.sleep(0)
        }
    }
    const ms = ds.millis() - t0
    console.log(`bench ${name}: ${frames} frames in ${ms} ms = ${Math.round((frames * 1000) / ms)} frames/s`)
}

/** 50 signals over the 16 IDs of `packets` (three each, plus two more): Intel and Motorola, signed and unsigned. */
function signalRows(ids: number[]): number[][] {
    const rows: number[][] = []
    for (const id of ids) {
        rows.push([id, 0, 16, 0, 1, 10, 0, 0, 0, 0, 0])
        rows.push([id, 23, 12, 3, 1, 4, -160, 0, 0, 0, 0])
        rows.push([id, 40, 8, 0, 1, 1, 0, 0, 0, 0, 0])
    }
    rows.push([ids[0], 56, 8, 2, 1, 1, 0, 0, 0, 0, 0])
    rows.push([ids[1], 63, 32, 1, 1, 1, 0, 0, 0, 0, 0])
    return rows
}

/** Ingests `pk` through a gateway with these settings, emptying the outbox as PUBACKs would; prints bytes put out. */
async function gatewayRun(name: string, settings: any, pk: Buffer[], rounds: number) {
    const gw = new Gateway(checkConfig(settings).config, null, 1)
    await ds.sleep(0)
    await gw.loadSignals()
    let bytes = 0
    // an await after every report (as main.ts gets one report per event): 50 signals per 16 frames are more work
    // than the VM allows a fiber between awaits when 8 reports run at once
    await measure(
        name,
        pk,
        rounds,
        (b: Buffer, now: number) => {
            gw.ingest(b, now)
            while (gw.outbox.size()) {
                bytes += gw.outbox.length(0)
                gw.outbox.markSent(0)
                gw.onPuback(gw.outbox.packetIdAt(0))
            }
        },
        1
    )
    gw.closeBatch()
    gw.closeSignals()
    while (gw.outbox.size()) {
        bytes += gw.outbox.length(0)
        gw.outbox.markSent(0)
        gw.onPuback(gw.outbox.packetIdAt(0))
    }
    const sig = gw.signals
    const per = sig.published ? `, ${Math.round((bytes / sig.published) * 100) / 100} B/sample` : ""
    console.log(
        `bench ${name}: frames in batches ${gw.counters.rx - sig.only}, samples ${sig.published}, dropped by rules ${sig.ruled}, ` +
            `${bytes} B of PUBLISH packets${per}`
    )
}

async function signalRuns(label: string, pk: Buffer[], ids: number[]) {
    const r = signalRows(ids)
    const onChange: number[][] = []
    for (const x of r) onChange.push([x[0], x[1], x[2], x[3] | 4, x[4], x[5], x[6], 0, 1000, 0, 0])
    await gatewayRun(`${label}: raw frames only`, {}, pk, 40)
    await gatewayRun(`${label}: 50 signals + raw frames`, { sigTable: r }, pk, 40)
    await gatewayRun(`${label}: 50 signals, sigOnly`, { sigTable: r, sigOnly: ids }, pk, 40)
    await gatewayRun(`${label}: 50 signals onChange (heartbeat 1 s), sigOnly`, { sigTable: onChange, sigOnly: ids }, pk, 40)
}

describe("signal path benchmark", () => {
    test("ingest with 50 signals", async () => {
        await signalRuns("candump.log kind", await packets(32), IDS)
        const bus: number[] = []
        for (let i = 0; i < 16; i++) bus.push(0x100 + i * 8)
        await signalRuns("bench/gateway.ts frames", await busPackets(32), bus)
    })
})

describe("frame path benchmark", () => {
    test("ingest", async () => {
        const pk = await packets(32)
        await measure("checkRecord", pk, 60, (b: Buffer) => {
            let o = 0
            while (o < b.length) o = checkRecord(b, o, b.length)
        })
        const enc = new BatchEncoder(4096 - BATCH_OVERHEAD)
        const sink = {
            counters: { rx: 0, filtered: 0, downsampled: 0, malformed: 0 },
            selector: new FrameSelector(),
            signals: new SignalTable(512),
            closeSignals: () => {},
            closeBatch: () => enc.clear(),
        }
        await measure("BatchEncoder.addReport", pk, 60, (b: Buffer, now: number) => enc.addReport(b, now, sink))
        const gw = new Gateway(checkConfig({}).config, null, 1)
        await measure("Gateway.ingest", pk, 60, (b: Buffer, now: number) => {
            gw.ingest(b, now)
            // empty the outbox as a broker's PUBACKs would
            while (gw.outbox.size()) {
                gw.outbox.markSent(0)
                gw.onPuback(gw.outbox.packetIdAt(0))
            }
        })
        console.log(`bench batches ${gw.seq}, dropped ${gw.counters.batchesDropped}`)
        // the frames of bench/gateway.ts part 3 (64 IDs): what the end-to-end throughput figure runs on; the same
        // gateway (the heap does not hold a second one beside the packets)
        const bus = await busPackets(32)
        const seq0 = gw.seq
        const rx0 = gw.counters.rx
        await measure("Gateway.ingest, bench/gateway.ts frames", bus, 60, (b: Buffer, now: number) => {
            gw.ingest(b, now)
            while (gw.outbox.size()) {
                gw.outbox.markSent(0)
                gw.onPuback(gw.outbox.packetIdAt(0))
            }
        })
        console.log(`bench batches ${gw.seq - seq0} of ${Math.round((gw.counters.rx - rx0) / (gw.seq - seq0))} frames`)
    })
})
