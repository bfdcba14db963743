/**
 * Ingest benchmark (`node dist/bench/ingest.js [direct] [size] [mqtt] [nats]`, all parts by default), figures in
 * docs/performance.md and docs/ingest.md:
 *
 *  1. direct: the write path of one worker without a broker (batch payload -> frame columns -> one commit per unit
 *     of 50, 500 or 5000 batches, the store's close included): candump.log as gateway batches of 200 frames, into a
 *     DuckDB file and PostgreSQL, beside SQLite (better-sqlite3, one INSERT per frame in a transaction) as the
 *     embedded reference, the decoding alone, and DuckDB alone (its own INSERT ... SELECT of ready rows, the bound
 *     of the embedded path). Frames/s by wall clock and per CPU-second of this process (and of the PostgreSQL server).
 *  2. size: store bytes per frame (DuckDB file, every table) on candump.log alone and repeated, the file of one
 *     batch (the part that does not grow), and SQLite's, against 37.8 B of candump text.
 *  3. mqtt: end to end through a real mosquitto: a `vgw ingest` process (acks after commit) into PostgreSQL while
 *     the batches are published, beside the usual consumer in the same run (MQTT.js, one INSERT per frame).
 *  4. nats: scaling: 1, 2, 3 `vgw ingest` processes in one JetStream consumer group on a 3-node NATS cluster,
 *     draining the same number of published batches into PostgreSQL; CPU-seconds of the workers, PostgreSQL and
 *     the NATS nodes for each round, so the figure says which part of the machine ran out.
 *
 * Environment: VGW_BENCH_COPIES (candump.log repeated, default 20 = 259k frames), VGW_BENCH_SIZE_COPIES (for the
 * size figure, default 60 = 778k frames).
 */
// The reference consumers store the protocol's record flag byte, as the stores do (frame/packed.ts).
import { frameFlags } from "../frame/packed";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { DuckDBInstance } from "@duckdb/node-api";
import { connect as natsConnect } from "nats";
import { Client } from "pg";
import { FrameColumns } from "../frame/columns";
import type { Frame } from "../frame/frame";
import { connectBroker, parseBrokerUrl } from "../host/gateway/broker-url";
import { decodeBatch, decodeBatchInto, encodeBatch } from "../host/gateway/uplink";
import { frameUptimeMs, toRow, type BatchRow } from "../host/ingest/rows";
import { openStore } from "../host/ingest/store";
import { subjectOf } from "../host/ingest/nats-subscriber";
import { readAllFrames } from "../host/trace";
import { startNatsCluster, type NatsCluster } from "../test/support/nats-cluster";
import { startPostgres, type TestPostgres } from "../test/support/postgres";
import { startMosquitto } from "../host/gateway/broker";

const ROOT = resolve(__dirname, "../..");
const CANDUMP = resolve(ROOT, "test/fixtures/traces/candump.log");
const COPIES = Number(process.env.VGW_BENCH_COPIES ?? 20);
const SIZE_COPIES = Number(process.env.VGW_BENCH_SIZE_COPIES ?? 60);
const CLI = resolve(__dirname, "../cli/main.js");
const BATCH = 200;
const UNIT = 50;
const out = (s: string): boolean => process.stdout.write(s);

interface Payload {
  topic: string;
  payload: Uint8Array;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux x86). */
const TICKS = 100;

/** CPU seconds of one process, from /proc/PID/stat: its own time and that of its waited-for children. */
function procCpu(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[0] = state (field 3); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** CPU seconds of these processes and all their descendants (a server and the backends it forked). */
function treeCpu(roots: number[]): number {
  const all = new Map<number, { ppid: number; cpu: number }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = procCpu(Number(name));
    if (p) all.set(Number(name), p);
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = all.get(p)?.ppid ?? 0, hops++) if (roots.includes(p)) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, p] of all) if (inTree(pid)) sum += p.cpu;
  return sum;
}

function rate(frames: number, seconds: number): string {
  return Math.round(frames / seconds).toLocaleString("en-US").padStart(10);
}

function line(name: string, frames: number, wall: number, cpu?: number, extra = ""): void {
  const per = cpu !== undefined ? `, ${rate(frames, cpu)} frames/CPU-s` : "";
  out(`  ${name.padEnd(50)} ${rate(frames, wall)} frames/s${per}  (${frames} frames, ${wall.toFixed(2)} s${extra})\n`);
}

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(" ");

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

/** The decoding alone: payloads into frame columns, a unit at a time. */
function decodeOnly(items: Payload[], frames: number): void {
  const columns = new FrameColumns(64 * 1024);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < items.length; i += UNIT) {
    columns.clear();
    for (const p of items.slice(i, i + UNIT)) decodeBatchInto(p.payload, columns);
  }
  line("decode only (CBOR + records -> frame columns)", frames, (performance.now() - t0) / 1000, cpuSeconds(cpu0));
}

/** One worker's write path without a broker: what `Ingester.commit` does for each unit. */
async function storePath(url: string, name: string, items: Payload[], frames: number, server?: TestPostgres, unit = UNIT): Promise<void> {
  const store = await openStore(url);
  const columns = new FrameColumns(64 * 1024);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const srv0 = server ? treeCpu([server.pid]) : 0;
  for (let i = 0; i < items.length; i += unit) {
    columns.clear();
    const now = Date.now();
    const batches = items.slice(i, i + unit).map((p) => (toRow(p.topic, p.payload, now, "vgw", undefined, columns) as { row: BatchRow }).row);
    await store.commit({ batches, statuses: [], rejects: [] });
  }
  // The server's CPU before the close: its backend's own times vanish from /proc when it exits.
  const srv = server ? treeCpu([server.pid]) - srv0 : 0;
  // Closing is part of the work: DuckDB compresses what its log holds into the file at the final checkpoint.
  const closeCpu0 = process.cpuUsage();
  await store.close();
  const closeCpu = cpuSeconds(closeCpu0);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(cpu0);
  line(name, frames, wall, cpu, (server ? `; server ${srv.toFixed(2)} CPU-s = ${rate(frames, srv).trim()} frames per server CPU-s` : "") + `; close ${closeCpu.toFixed(2)} CPU-s`);
}

/**
 * DuckDB alone, the bound of the embedded write path: rows of frame_rows's shape (taken from a store the bench
 * wrote) inserted by DuckDB itself (INSERT ... SELECT from memory) into a new file in transactions of `unit` rows,
 * one thread, final checkpoint included; no JavaScript per row.
 */
async function duckdbAlone(from: string, file: string, unit: number): Promise<void> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    await conn.run("SET threads = 1");
    await conn.run(`ATTACH '${from}' AS src (READ_ONLY)`);
    await conn.run("CREATE TEMP TABLE rows AS SELECT row_number() OVER () - 1 AS k, * FROM src.frame_rows");
    await conn.run("DETACH src");
    const total = Number((await conn.runAndReadAll("SELECT count(*) FROM rows")).getRows()[0][0]);
    await conn.run(`ATTACH '${file}' AS dst (BLOCK_SIZE 32768, STORAGE_VERSION 'v1.3.0')`);
    await conn.run("CREATE TABLE dst.frame_rows AS SELECT * EXCLUDE (k) FROM rows LIMIT 0");
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let k = 0; k < total; k += unit) await conn.run(`INSERT INTO dst.frame_rows SELECT * EXCLUDE (k) FROM rows WHERE k >= ${k} AND k < ${k + unit}`);
    await conn.run("CHECKPOINT dst");
    line(`DuckDB alone, INSERT ... SELECT, transactions of ${unit / 1000}k rows`, total, (performance.now() - t0) / 1000, cpuSeconds(cpu0));
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** The embedded reference: SQLite with one INSERT per frame (prepared, in one transaction per unit). */
function sqlitePath(file: string, items: Payload[], frames: number): void {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE frames (time INTEGER, device TEXT, boot INTEGER, seq INTEGER, idx INTEGER, t_ms INTEGER, bus INTEGER, id INTEGER, flags INTEGER, dlc INTEGER, data BLOB)");
  const insert = db.prepare("INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)");
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
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

interface Worker {
  child: ChildProcess;
  stop: () => void;
  exited: Promise<void>;
}

function runWorkers(n: number, broker: string, store: string, group: string): Worker[] {
  const workers: Worker[] = [];
  for (let i = 0; i < n; i++) {
    const args = [CLI, "ingest", "--broker", broker, "--store", store, "--progress", "0", ...(group ? ["--group", group] : [])];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
    workers.push({ child, stop: () => child.kill("SIGTERM"), exited: new Promise<void>((r) => child.on("exit", () => r())) });
  }
  return workers;
}

/** Waits until `n` frames of `device` are stored; returns the times (performance.now()) of the first and the last. */
async function waitRows(pgUrl: string, n: number, device: string, timeoutMs = 180_000): Promise<{ first: number; last: number }> {
  const c = new Client({ connectionString: pgUrl });
  await c.connect();
  const t0 = performance.now();
  let first = 0;
  try {
    for (;;) {
      // Before the worker made its schema the query fails: that is "not yet", even when waiting for 0 frames.
      const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM frames WHERE device = $1", [device]).catch(() => ({ rows: [{ n: "-1" }] }));
      const got = Number(r.rows[0].n);
      if (got > 0 && first === 0) first = performance.now();
      if (got >= 0 && got >= n) return { first, last: performance.now() };
      if (performance.now() - t0 > timeoutMs) throw new Error(`only ${got} of ${n} frames stored after ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await c.end();
  }
}

async function partDirect(dir: string, pg: TestPostgres): Promise<void> {
  const { items, frames } = await payloads(COPIES);
  out(`1. write path of one worker (decode + commit, units of ${UNIT} batches unless said), no broker; load ${load()}:\n`);
  decodeOnly(items, frames);
  await storePath(join(dir, "bench.duckdb"), "DuckDB file (data chunks)", items, frames);
  await storePath(join(dir, "bench500.duckdb"), "DuckDB file (data chunks), units of 500 batches", items, frames, undefined, 500);
  await storePath(join(dir, "bench5000.duckdb"), "DuckDB file (data chunks), units of 5000 batches", items, frames, undefined, 5000);
  await duckdbAlone(join(dir, "bench.duckdb"), join(dir, "alone10k.duckdb"), 10_000);
  await duckdbAlone(join(dir, "bench.duckdb"), join(dir, "alone100k.duckdb"), 100_000);
  sqlitePath(join(dir, "bench.sqlite"), items, frames);
  await storePath(pg.createDatabase("bench_store"), "PostgreSQL 15 (binary COPY)", items, frames, pg);
  await storePath(pg.createDatabase("bench_store500"), "PostgreSQL 15 (binary COPY), units of 500 batches", items, frames, pg, 500);
  out(`  (load after: ${load()})\n`);
}

async function partSize(dir: string): Promise<void> {
  out(`2. store bytes per frame (candump text: 37.8 B/frame); load ${load()}:\n`);
  // The part of a file that does not grow with its frames: a store of one batch.
  const one = await payloads(1);
  const fixed = join(dir, "size-one-batch.duckdb");
  await storePath(fixed, "DuckDB, one batch of candump.log", one.items.slice(0, 1), BATCH);
  out(`  one batch (${BATCH} frames): DuckDB file ${statSync(fixed).size} B (header, metadata, key index, one block per table with rows)\n`);
  for (const copies of [1, COPIES, SIZE_COPIES]) {
    const big = await payloads(copies);
    const file = join(dir, `size${copies}.duckdb`);
    await storePath(file, `DuckDB, candump.log x${copies}`, big.items, big.frames);
    out(`  candump.log x${copies} (${big.frames} frames): DuckDB file ${statSync(file).size} B = ${(statSync(file).size / big.frames).toFixed(2)} B/frame, all tables included\n`);
  }
  // SQLite beside it, the embedded reference (one row per frame, the same columns).
  const sq = join(dir, "size1.sqlite");
  sqlitePath(sq, one.items, one.frames);
  out(`  candump.log x1: SQLite file ${(statSync(sq).size / one.frames).toFixed(2)} B/frame\n`);
}

async function partMqtt(pg: TestPostgres): Promise<void> {
  const { items, frames } = await payloads(COPIES);
  out(`3. end to end through mosquitto 2 into PostgreSQL, QoS 1, published while consumed; load ${load()}:\n`);
  // No queue limit: with mosquitto's default (1000 messages per client) the batches that would queue behind a
  // worker that fell further behind are dropped by the broker (this part stalled that way before: bench x20, 34 of
  // 1,297 batches never delivered, all shown by the gaps view).
  const mosq = await startMosquitto({ maxQueuedMessages: 0 });
  try {
    const broker = `mqtt://127.0.0.1:${mosq.port}`;
    const publisher = await connectBroker(parseBrokerUrl(broker), { clientId: "bench-pub", clean: true });
    try {
      const vgwDb = pg.createDatabase("bench_mqtt");
      const w = runWorkers(1, broker, vgwDb, "");
      // The worker's subscription exists once its schema is made and it listens: wait for the tables.
      await waitRows(vgwDb, 0, "gw1", 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = performance.now();
      const cpu0 = procCpu(w[0].child.pid ?? 0)?.cpu ?? 0;
      for (const p of items) await publisher.publishAsync(p.topic, Buffer.from(p.payload), { qos: 1 });
      try {
        const { last } = await waitRows(vgwDb, frames, "gw1", 300_000);
        const cpu = (procCpu(w[0].child.pid ?? 0)?.cpu ?? 0) - cpu0;
        line("vgw ingest (one process, acks after commit)", frames, (last - t0) / 1000, cpu);
      } catch (e) {
        out(`  vgw ingest: ${(e as Error).message}\n`);
      }
      w[0].stop();
      await w[0].exited;

      // The reference: MQTT.js, one INSERT per frame, autocommit.
      const refDb = pg.createDatabase("bench_ref");
      const ref = new Client({ connectionString: refDb });
      await ref.connect();
      await ref.query("CREATE TABLE frames (time TIMESTAMPTZ, device TEXT, boot BIGINT, seq BIGINT, idx INT, t_ms BIGINT, id BIGINT, flags INT, dlc INT, data BYTEA)");
      const sub = await connectBroker(parseBrokerUrl(broker), { clientId: "bench-ref", clean: true });
      await sub.subscribeAsync("vgw/+/frames", { qos: 1 });
      let done = 0;
      const refItems = items.slice(0, Math.ceil(Math.min(frames, 26_000) / BATCH)); // the usual consumer is slow: a slice keeps the run short
      const refFrames = refItems.reduce((n, p) => n + decodeBatch(p.payload).frames.length, 0);
      let chain = Promise.resolve();
      sub.on("message", (_t, payload) => {
        chain = chain.then(async () => {
          const b = decodeBatch(payload);
          for (let i = 0; i < b.frames.length; i++) {
            const f = b.frames[i];
            await ref.query("INSERT INTO frames VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8, $9)", ["gw1", b.boot, b.seq, i, frameUptimeMs(f), f.id, frameFlags(f), f.rtr ? (f.dlc ?? 0) : null, Buffer.from(f.data)]);
          }
          done += b.frames.length;
        });
      });
      const t1 = performance.now();
      const c1 = process.cpuUsage();
      for (const p of refItems) await publisher.publishAsync(p.topic, Buffer.from(p.payload), { qos: 1 });
      while (done < refFrames) await new Promise((r) => setTimeout(r, 50));
      line("reference: MQTT.js + one INSERT per frame", refFrames, (performance.now() - t1) / 1000, cpuSeconds(c1), "; CPU of the bench process, publisher included");
      await sub.endAsync();
      await ref.end();
    } finally {
      await publisher.endAsync();
    }
  } finally {
    await mosq.close();
  }
}

async function partNats(pg: TestPostgres): Promise<void> {
  out(`4. NATS 2.9, 3 nodes, JetStream R3; batches published first, then N workers drain them into PostgreSQL; load ${load()}:\n`);
  let cluster: NatsCluster | undefined;
  try {
    cluster = await startNatsCluster(3);
    const natsGroups = cluster.nodes.map((n) => n.child.pid);
    for (const n of [1, 2, 3]) {
      const db = pg.createDatabase(`bench_nats${n}`);
      const group = `bench${n}`;
      // A worker starts first (it creates the stream and the consumer) and stops; then the batches are published.
      const first = runWorkers(1, cluster.natsUrl, db, group);
      await waitRows(db, 0, "none", 30_000);
      await new Promise((r) => setTimeout(r, 2000));
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
      const l0 = load();
      const pg0 = treeCpu([pg.pid]);
      const nats0 = treeCpu(natsGroups);
      const ws = runWorkers(n, cluster.natsUrl, db, group);
      const t0 = performance.now();
      const { first: firstRow, last } = await waitRows(db, own.frames, `n${n}`);
      const workersCpu = ws.reduce((s, w) => s + (procCpu(w.child.pid ?? 0)?.cpu ?? 0), 0);
      const pgCpu = treeCpu([pg.pid]) - pg0;
      const natsCpu = treeCpu(natsGroups) - nats0;
      const wall = (last - firstRow) / 1000;
      line(`${n} worker${n > 1 ? "s" : ""}`, own.frames, wall, workersCpu,
        `, first to last frame stored; ${((last - t0) / 1000).toFixed(2)} s from the workers' start; CPU-s: workers ${workersCpu.toFixed(2)} (start-up included), PostgreSQL ${pgCpu.toFixed(2)}, NATS ${natsCpu.toFixed(2)}; load ${l0} -> ${load()}`);
      for (const w of ws) w.stop();
      await Promise.all(ws.map((w) => w.exited));
    }
  } finally {
    await cluster?.stop();
  }
}

async function main(): Promise<void> {
  const parts = process.argv.slice(2);
  const want = (p: string): boolean => parts.length === 0 || parts.includes(p);
  const dir = mkdtempSync(join(tmpdir(), "vgw-bench-ingest-"));
  let pg: TestPostgres | undefined;
  try {
    out(`vgw ingest benchmark: candump.log x${COPIES} = ${12_974 * COPIES} frames in batches of ${BATCH}; Node ${process.version}; load average ${load()}\n`);
    pg = await startPostgres();
    if (want("direct")) await partDirect(dir, pg);
    if (want("size")) await partSize(dir);
    if (want("mqtt")) await partMqtt(pg);
    if (want("nats")) await partNats(pg);
  } finally {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/ingest: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
