/**
 * Ingest benchmark (`node dist/bench/ingest.js`), figures in docs/performance.md:
 *
 *  1. The store path of one worker (batch payload -> rows -> one commit per unit), no broker: candump.log as gateway
 *     batches of 200 frames, into the DuckDB file and PostgreSQL, beside SQLite (better-sqlite3, one INSERT per frame
 *     in a transaction) as the embedded reference. Frames/s by wall clock and per CPU-second of this process.
 *  2. Store bytes per frame on candump.log (DuckDB file, SQLite file), against 37.8 B of candump text.
 *  3. End to end through a broker: the batches published to a real mosquitto first, then drained by `vgw ingest`
 *     (acks after commit) into PostgreSQL, beside the usual consumer (MQTT.js, one INSERT per frame, autocommit).
 *  4. Scaling: 1, 2, 3 `vgw ingest` workers (processes) in one JetStream consumer group on a 3-node NATS cluster,
 *     draining the same published batches into PostgreSQL.
 *
 * Environment: VGW_BENCH_COPIES (candump.log repeated, default 20 = 259k frames), VGW_BENCH_SIZE_COPIES (for the
 * size figure, default 60 = 778k frames).
 */
// Frame flags are stored as the one record flag byte (frame/packed.ts, the protocol's too): a row reads like the wire.
import { frameFlags } from "../frame/packed";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { connect as natsConnect } from "nats";
import { Client } from "pg";
import type { Frame } from "../frame/frame";
import { connectBroker, parseBrokerUrl } from "../host/gateway/broker-url";
import { decodeBatch, encodeBatch } from "../host/gateway/uplink";
import { frameUptimeMs, toRow, type BatchRow } from "../host/ingest/rows";
import { openStore } from "../host/ingest/store";
import { subjectOf } from "../host/ingest/nats-subscriber";
import { readAllFrames } from "../host/trace";
import { startNatsCluster } from "../test/support/nats-cluster";
import { startPostgres, type TestPostgres } from "../test/support/postgres";
import { startSecureMosquitto } from "../test/support/mosquitto";

const ROOT = resolve(__dirname, "../..");
const CANDUMP = resolve(ROOT, "test/fixtures/traces/candump.log");
const COPIES = Number(process.env.VGW_BENCH_COPIES ?? 20);
const SIZE_COPIES = Number(process.env.VGW_BENCH_SIZE_COPIES ?? 60);
const CLI = resolve(__dirname, "../cli/main.js");
const BATCH = 200;

interface Payload {
  topic: string;
  payload: Uint8Array;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

function line(name: string, frames: number, wall: number, cpu?: number): void {
  const per = cpu !== undefined ? `, ${Math.round(frames / cpu).toLocaleString("en-US").padStart(10)} frames/CPU-s` : "";
  process.stdout.write(`  ${name.padEnd(52)} ${Math.round(frames / wall).toLocaleString("en-US").padStart(10)} frames/s${per}  (${frames} frames, ${wall.toFixed(2)} s)\n`);
}

/** candump.log as gateway batches: `copies` boots of one device, uptime stamps in ms. */
async function payloads(copies: number, device = "gw1"): Promise<{ items: Payload[]; frames: number }> {
  const src = await readAllFrames(CANDUMP);
  const t0 = src[0].t ?? 0;
  const frames: Frame[] = src.map((f) => ({ ...f, bus: undefined, t: Math.round(((f.t ?? 0) - t0) * 1000) / 1000 }));
  const items: Payload[] = [];
  for (let c = 0; c < copies; c++) {
    for (let i = 0, seq = 0; i < frames.length; i += BATCH, seq++) items.push({ topic: `vgw/${device}/frames`, payload: encodeBatch(0x100 + c, seq, frames.slice(i, i + BATCH)) });
  }
  return { items, frames: frames.length * copies };
}

async function storePath(url: string, name: string, items: Payload[], frames: number): Promise<void> {
  const store = await openStore(url);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const UNIT = 50;
  for (let i = 0; i < items.length; i += UNIT) {
    const batches = items.slice(i, i + UNIT).map((p) => (toRow(p.topic, p.payload, Date.now(), "vgw") as { row: BatchRow }).row);
    await store.commit({ batches, statuses: [], rejects: [] });
  }
  line(name, frames, (performance.now() - t0) / 1000, cpuSeconds(cpu0));
  await store.close();
}

/** The embedded reference: SQLite with one INSERT per frame (prepared, in one transaction per unit). */
function sqlitePath(file: string, items: Payload[], frames: number): void {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE frames (time INTEGER, device TEXT, boot INTEGER, seq INTEGER, idx INTEGER, t_ms INTEGER, bus INTEGER, id INTEGER, flags INTEGER, dlc INTEGER, data BLOB)");
  const insert = db.prepare("INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)");
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const UNIT = 50;
  for (let i = 0; i < items.length; i += UNIT) {
    db.transaction(() => {
      for (const p of items.slice(i, i + UNIT)) {
        const b = decodeBatch(p.payload);
        b.frames.forEach((f, idx) => insert.run(Date.now(), "gw1", b.boot, b.seq, idx, frameUptimeMs(f), f.id, frameFlags(f), f.rtr ? (f.dlc ?? 0) : null, f.data));
      }
    })();
  }
  db.pragma("wal_checkpoint(TRUNCATE)");
  line("SQLite, one INSERT per frame (reference)", frames, (performance.now() - t0) / 1000, cpuSeconds(cpu0));
  db.close();
}

function runWorkers(n: number, broker: string, store: string, group: string): Array<{ stop: () => void; exited: Promise<void> }> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const args = [CLI, "ingest", "--broker", broker, "--store", store, "--progress", "0", ...(group ? ["--group", group] : [])];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
    out.push({ stop: () => child.kill("SIGTERM"), exited: new Promise<void>((r) => child.on("exit", () => r())) });
  }
  return out;
}

async function waitRows(pgUrl: string, n: number, device = "gw1", timeoutMs = 180_000): Promise<number> {
  const c = new Client({ connectionString: pgUrl });
  await c.connect();
  const t0 = performance.now();
  try {
    for (;;) {
      const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM frames WHERE device = $1", [device]).catch(() => ({ rows: [{ n: "0" }] }));
      if (Number(r.rows[0].n) >= n) return (performance.now() - t0) / 1000;
      if (performance.now() - t0 > timeoutMs) throw new Error(`only ${r.rows[0].n} of ${n} frames stored after ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vgw-bench-ingest-"));
  let pg: TestPostgres | undefined;
  try {
    const { items, frames } = await payloads(COPIES);
    process.stdout.write(`vgw ingest benchmark: candump.log x${COPIES} = ${frames} frames in ${items.length} batches of ${BATCH}; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
    pg = await startPostgres();

    process.stdout.write("1. store path of one worker (decode + rows + commit), no broker:\n");
    await storePath(join(dir, "bench.duckdb"), "DuckDB file (appender)", items, frames);
    sqlitePath(join(dir, "bench.sqlite"), items, frames);
    await storePath(pg.createDatabase("bench_store"), "PostgreSQL 15 (COPY)", items, frames);

    process.stdout.write("2. store bytes per frame (candump text: 37.8 B/frame):\n");
    const duck = statSync(join(dir, "bench.duckdb")).size;
    const lite = statSync(join(dir, "bench.sqlite")).size;
    process.stdout.write(`  DuckDB file ${(duck / frames).toFixed(2)} B/frame, SQLite file ${(lite / frames).toFixed(2)} B/frame (whole files, all tables, ${frames} frames)\n`);
    // DuckDB allocates its file in 256 KB blocks: below a few hundred thousand frames the size is mostly allocation.
    const big = await payloads(SIZE_COPIES);
    await storePath(join(dir, "size.duckdb"), `DuckDB, candump.log x${SIZE_COPIES}`, big.items, big.frames);
    process.stdout.write(`  candump.log x${SIZE_COPIES} (${big.frames} frames): DuckDB file ${(statSync(join(dir, "size.duckdb")).size / big.frames).toFixed(2)} B/frame, all tables and indexes included\n`);

    process.stdout.write("3. end to end through mosquitto (published first, then drained) into PostgreSQL:\n");
    const mosq = await startSecureMosquitto();
    try {
      const broker = mosq.plainUrl;
      const publisher = await connectBroker(parseBrokerUrl(broker), { clientId: "bench-pub", clean: false });
      // Both consumers run while the batches are published (one QoS 1 publish awaited at a time).
      const vgwDb = pg.createDatabase("bench_mqtt");
      const w = runWorkers(1, broker, vgwDb, "");
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = performance.now();
      for (const p of items) await publisher.publishAsync(p.topic, Buffer.from(p.payload), { qos: 1 });
      try {
        await waitRows(vgwDb, frames, "gw1", 120_000);
        line("vgw ingest (mosquitto, acks after commit)", frames, (performance.now() - t0) / 1000);
      } catch (e) {
        process.stdout.write(`  vgw ingest (mosquitto, acks after commit): ${(e as Error).message}\n`);
      }
      w[0].stop();
      await w[0].exited;
      // The reference: MQTT.js, one INSERT per frame, autocommit.
      const refDb = pg.createDatabase("bench_ref");
      const ref = new Client({ connectionString: refDb });
      await ref.connect();
      await ref.query("CREATE TABLE frames (time TIMESTAMPTZ, device TEXT, boot BIGINT, seq BIGINT, idx INT, t_ms BIGINT, id BIGINT, flags INT, data BYTEA)");
      const sub = await connectBroker(parseBrokerUrl(broker), { clientId: "bench-ref", clean: false });
      await sub.subscribeAsync("vgw/+/frames", { qos: 1 });
      let done = 0;
      const refN = Math.min(frames, 26_000); // the usual consumer is slow: a slice keeps the run short
      const refItems = items.slice(0, Math.ceil(refN / BATCH));
      const refFrames = refItems.reduce((n, p) => n + decodeBatch(p.payload).frames.length, 0);
      let chain = Promise.resolve();
      sub.on("message", (_t, payload) => {
        chain = chain.then(async () => {
          const b = decodeBatch(payload);
          for (let i = 0; i < b.frames.length; i++) {
            const f = b.frames[i];
            await ref.query("INSERT INTO frames VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8)", ["gw1", b.boot, b.seq, i, frameUptimeMs(f), f.id, frameFlags(f), Buffer.from(f.data)]);
          }
          done += b.frames.length;
        });
      });
      const t1 = performance.now();
      for (const p of refItems) await publisher.publishAsync(p.topic, Buffer.from(p.payload), { qos: 1 });
      while (done < refFrames) await new Promise((r) => setTimeout(r, 50));
      line("reference: MQTT.js + one INSERT per frame", refFrames, (performance.now() - t1) / 1000);
      await sub.endAsync();
      await ref.end();
      await publisher.endAsync();
    } finally {
      await mosq.stop();
    }

    process.stdout.write("4. NATS cluster (3 nodes, JetStream R3), batches published first, N workers draining into PostgreSQL:\n");
    const cluster = await startNatsCluster(3);
    try {
      for (const n of [1, 2, 3]) {
        const db = pg.createDatabase(`bench_nats${n}`);
        const group = `bench${n}`;
        // Workers start first (they create the stream and the consumer), stop, and the batches are published.
        const first = runWorkers(1, cluster.natsUrl, db, group);
        await new Promise((r) => setTimeout(r, 4000));
        first[0].stop();
        await first[0].exited;
        const nc = await natsConnect({ servers: cluster.natsUrl.replace("nats://", "").split(",") });
        const js = nc.jetstream();
        // Each round its own device, so the stream's earlier rounds are not counted again.
        const own = await payloads(COPIES, `n${n}`);
        const acks = [];
        for (const p of own.items) acks.push(js.publish(subjectOf(p.topic), p.payload));
        await Promise.all(acks);
        await nc.close();
        const ws = runWorkers(n, cluster.natsUrl, db, group);
        // From the workers' start (process start and connection included) to the last frame stored.
        const wall = await waitRows(db, own.frames, `n${n}`);
        line(`${n} worker${n > 1 ? "s" : ""}`, own.frames, wall);
        for (const w of ws) w.stop();
        await Promise.all(ws.map((w) => w.exited));
      }
    } finally {
      await cluster.stop();
    }
  } finally {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/ingest: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
