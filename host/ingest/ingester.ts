/**
 * The ingest loop: deliveries from a subscriber become rows, rows are committed to the store in units (one
 * transaction each), and only then are the deliveries acknowledged. Bad payloads (not CBOR, an unknown protocol
 * version, records that do not decode) are committed as `rejects` rows with the device and topic, logged, counted,
 * and acknowledged like the rest: they would not get better by being delivered again.
 *
 * Stopping (`stop()`, on SIGINT/SIGTERM) takes no new deliveries, commits and acknowledges what was taken, then
 * disconnects. A failed commit stops the loop without acknowledging anything of its unit: the broker delivers it again.
 */
import type { FrameDecoder } from "../../can-db/annotate";
import { log } from "../log";
import { FrameColumns } from "../../frame/columns";
import { toRow } from "./rows";
import type { Store, WriteUnit } from "./store";
import type { Delivery, Subscriber } from "./subscriber";
import type { SignalTable } from "../gateway/signals";

export interface IngestCounts {
  deliveries: number;
  /** Batches stored (new keys). */
  batches: number;
  frames: number;
  signals: number;
  /** Gateway signal batches stored (new keys) and their samples; signal batches already stored. */
  signalBatches: number;
  gatewaySignals: number;
  duplicateSignalBatches: number;
  /** Batches already stored: redelivered, replayed or taken by another worker first. */
  duplicates: number;
  rejects: number;
  statuses: number;
  /** Messages on topics the store does not keep. */
  ignored: number;
  commits: number;
  /** Wall time spent in commits, ms. */
  commitMs: number;
}

export interface IngesterOptions {
  store: Store;
  subscriber: Subscriber;
  prefix: string;
  decoder?: FrameDecoder;
  /** The gateways' signal table: `P/signals` batches are decoded with it and stored (the subscriber must take them). */
  signalTable?: SignalTable;
  /** At most this many deliveries per commit. */
  maxUnit?: number;
  /** Progress line every this many ms on stderr (0: none). */
  progressMs?: number;
}

/** Rejects and duplicates logged one by one before only counting them (a device publishing garbage must not flood the log). */
const MAX_REPORTED = 20;

export class Ingester {
  readonly counts: IngestCounts = { deliveries: 0, batches: 0, frames: 0, signals: 0, signalBatches: 0, gatewaySignals: 0, duplicateSignalBatches: 0, duplicates: 0, rejects: 0, statuses: 0, ignored: 0, commits: 0, commitMs: 0 };
  private queue: Delivery[] = [];
  private writing?: Promise<void>;
  private failure?: Error;
  private stopping = false;
  private reportedDuplicates = 0;
  /** The frames of the unit being committed, as columns (reused: a unit's rows are dropped once it is committed). */
  private readonly columns = new FrameColumns(64 * 1024);
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.finished = resolve));
  private readonly started = Date.now();
  private subscribed!: () => void;
  /** Resolves once the broker accepted the subscription (what is published from then on reaches this worker). */
  readonly ready = new Promise<void>((resolve) => (this.subscribed = resolve));

  constructor(private readonly options: IngesterOptions) {}

  /** Runs until stop() or a failed commit (which it throws). */
  async run(): Promise<IngestCounts> {
    await this.options.subscriber.start((d) => this.take(d));
    this.subscribed();
    log.info(`ingest: ${this.options.subscriber.description} -> ${this.options.store.description}`);
    const every = this.options.progressMs ?? 2000;
    let last = { t: Date.now(), frames: 0 };
    const timer = every > 0 ? setInterval(() => {
      const now = Date.now();
      const c = this.counts;
      const rate = ((c.frames - last.frames) * 1000) / Math.max(1, now - last.t);
      last = { t: now, frames: c.frames };
      log.info(`ingest: ${c.frames} frames (${Math.round(rate)}/s), ${c.batches} batches, ${c.duplicates} duplicates, ${c.rejects} rejected, ${c.commits} commits`);
    }, every) : undefined;
    try {
      await this.done;
      await this.writing;
    } finally {
      if (timer) clearInterval(timer);
      await this.options.subscriber.close().catch((e: unknown) => log.warn(`ingest: closing the subscription: ${(e as Error).message}`));
    }
    if (this.failure) throw this.failure;
    return this.counts;
  }

  /** Takes no new deliveries; run() resolves once what was taken is committed and acknowledged. */
  stop(): void {
    this.stopping = true;
    if (!this.writing) this.finished();
  }

  get elapsedMs(): number {
    return Date.now() - this.started;
  }

  private take(d: Delivery): void {
    if (this.stopping || this.failure) return; // not acknowledged: the broker keeps it
    this.counts.deliveries++;
    this.queue.push(d);
    if (!this.writing) this.writing = this.drain();
  }

  /** Commits the queue unit by unit until it is empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length && !this.failure) {
        const unit = this.queue.splice(0, this.options.maxUnit ?? 5000);
        await this.commit(unit);
      }
    } catch (e) {
      this.failure = e instanceof Error ? e : new Error(String(e));
      this.queue = [];
      this.finished();
    } finally {
      this.writing = undefined;
      if (this.stopping) this.finished();
    }
  }

  private async commit(deliveries: Delivery[]): Promise<void> {
    const unit: WriteUnit = { batches: [], signalBatches: [], statuses: [], rejects: [] };
    this.columns.clear();
    for (const d of deliveries) {
      const row = toRow(d.topic, d.payload, d.receivedAt, this.options.prefix, this.options.decoder, this.columns, this.options.signalTable);
      if (row.kind === "batch") unit.batches.push(row.row);
      else if (row.kind === "signals") unit.signalBatches!.push(row.row);
      else if (row.kind === "status") unit.statuses.push(row.row);
      else if (row.kind === "reject") unit.rejects.push(row.row);
      else this.counts.ignored++;
    }
    const t0 = performance.now();
    const result = await this.options.store.commit(unit);
    this.counts.commitMs += performance.now() - t0;
    this.counts.commits++;
    for (const d of deliveries) d.ack();
    const c = this.counts;
    c.batches += result.stored.length;
    for (const b of result.stored) {
      c.frames += b.count;
      c.signals += b.signals.length;
    }
    c.duplicates += result.duplicates.length;
    c.signalBatches += result.storedSignals.length;
    for (const b of result.storedSignals) c.gatewaySignals += b.samples.length;
    c.duplicateSignalBatches += result.duplicateSignals.length;
    c.statuses += unit.statuses.length;
    for (const b of result.duplicates) {
      // A QoS 1 resend is normal after a reconnect; a device replaying old numbers is not: both are worth a line, up to a bound.
      if (this.reportedDuplicates++ < MAX_REPORTED) log.info(`ingest: ${b.device} on ${this.options.prefix}/${b.device}/frames: batch ${b.seq} of boot ${b.boot.toString(16)} already stored (dropped)`);
      else if (this.reportedDuplicates === MAX_REPORTED + 1) log.info("ingest: more duplicate batches; only counting them from here");
    }
    for (const r of unit.rejects) {
      if (c.rejects < MAX_REPORTED) log.warn(`ingest: ${r.device ?? "?"} on ${r.topic}: payload rejected: ${r.reason}`);
      else if (c.rejects === MAX_REPORTED) log.warn("ingest: more rejected payloads; only counting them from here (see the rejects table)");
      c.rejects++;
    }
  }
}
