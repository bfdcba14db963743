/**
 * Decoded signals from the gateway (`P/signals`, docs/protocol.md and docs/policy.md "Signals"): the batch decoder,
 * the same records' encoder (synthetic publishers, tests), and the signal table a host decodes with.
 *
 * A batch carries raw values by signal index `i`, an index into the gateway's `sigTable`; the table's hash `h` in
 * every batch says which table. Decoding with a different table would give plausible but wrong values, so a batch
 * whose `h` differs from the table's hash is refused, like any malformed batch: a `SignalBatchError` naming the batch
 * by boot and sequence (when they could be read) and the reason. Decoding never throws anything else.
 */
import { readFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import type { MqttClient } from "mqtt";
import { decode, encode } from "cbor-x";
import { PayloadError, PROTOCOL_VERSION, parseTopic } from "./uplink";
import { SequenceTracker, type SequenceVerdict } from "./sequence";
import { VgwError, fileReason } from "../../frame/errors";
import { COL, FLAG_SIGNED, physicalValue, rowProblem, tableHash, MAX_SIGNALS, MAX_SIG_ONLY } from "../../can-db/signal-table";
import { keyText } from "../../can-db/frame-key";
import type { CompiledPolicy } from "../../can-db/policy";

/** The keys of a signal batch, in the order the protocol fixes. */
const BATCH_KEYS = ["v", "b", "s", "t", "h", "n", "g"];

/** `<prefix>/<device>/signals`. */
export function signalsTopic(prefix: string, device: string): string {
  return `${prefix}/${device}/signals`;
}

/** One published sample. */
export interface SignalSample {
  /** Signal index: the row of the table. */
  i: number;
  /** Gateway uptime, ms (the batch's `t` plus the deltas; not wrapped at 2^32). */
  t: number;
  /** Raw value as extracted (signed for signed signals). */
  raw: number;
}

export interface SignalBatch {
  boot: number;
  seq: number;
  /** Uptime ms of the first sample. */
  baseTime: number;
  hash: number;
  samples: SignalSample[];
  /** Size of `g` in bytes. */
  recordBytes: number;
}

/** A `P/signals` payload that cannot be used; `boot`/`seq` when the header could be read. */
export class SignalBatchError extends PayloadError {
  constructor(
    message: string,
    readonly boot?: number,
    readonly seq?: number,
    readonly reason: "malformed" | "hash" = "malformed",
  ) {
    super(message);
  }
}

/** What a host knows about a signal beyond its row: names and unit, when it has the DBC and policy. */
export interface SignalInfo {
  message: string;
  signal: string;
  unit: string;
}

/** The table a gateway runs, as the host decodes with it. */
export class SignalTable {
  readonly hash: number;

  constructor(
    readonly rows: readonly (readonly number[])[],
    readonly info: readonly (SignalInfo | undefined)[] = [],
    readonly sigOnly: readonly number[] = [],
  ) {
    if (rows.length > MAX_SIGNALS) throw new VgwError(`sigTable has ${rows.length} rows; the gateway holds ${MAX_SIGNALS}`);
    rows.forEach((r, i) => {
      const why = rowProblem(r);
      if (why) throw new VgwError(`sigTable row ${i}: ${why}`);
    });
    if (sigOnly.length > MAX_SIG_ONLY) throw new VgwError(`sigOnly has ${sigOnly.length} keys; the gateway holds ${MAX_SIG_ONLY}`);
    this.hash = tableHash(rows);
  }

  /** The table of a compiled policy, with the DBC's names and units. */
  static fromPolicy(compiled: CompiledPolicy): SignalTable {
    return new SignalTable(
      compiled.signals.map((s) => s.row),
      compiled.signals.map((s) => ({ message: s.message.name, signal: s.signal.name, unit: s.signal.unit })),
      compiled.settings.sigOnly ?? [],
    );
  }

  /** `BREMSE_33.whlspeed_FL`, or without names `#3 0x343 0|16`. */
  name(i: number): string {
    const info = this.info[i];
    if (info) return `${info.message}.${info.signal}`;
    const r = this.rows[i];
    return `#${i} ${keyText(r[COL.key])} ${r[COL.start]}|${r[COL.len]}`;
  }

  physical(i: number, raw: number): number {
    return physicalValue(this.rows[i], raw);
  }

  /**
   * Refuses a table that is not the one the gateway runs: `sh` from its status (or `h` from a batch). The message
   * says what to do, since a mismatch means the gateway and the host were configured from different policies.
   */
  checkHash(sh: number, from: string): void {
    if (sh >>> 0 !== this.hash) throw new VgwError(hashMismatch(sh, this.hash, from));
  }
}

const hex8 = (h: number) => "0x" + (h >>> 0).toString(16).padStart(8, "0");

function hashMismatch(theirs: number, ours: number, from: string): string {
  return (
    `${from} has signal table hash ${hex8(theirs)}, the table here hashes to ${hex8(ours)}: the gateway runs a different sigTable ` +
    `(recompile with the policy and DBC it was deployed with, or deploy this table)`
  );
}

/**
 * Reads a signal table from `vgw policy` output: the JSON object (`--format json`) or the env lines (`sigTable=...`,
 * `sigOnly=...`). Rows are checked as the gateway checks them.
 */
export function loadSignalTable(path: string): SignalTable {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new VgwError(`cannot read signal table ${path}: ${fileReason(e)}`, { cause: e });
  }
  return parseSignalTable(text, path);
}

export function parseSignalTable(text: string, file: string): SignalTable {
  let values: Record<string, unknown> = {};
  const trimmed = text.trim();
  const parse = (t: string, where: string): unknown => {
    try {
      return JSON.parse(t);
    } catch (e) {
      throw new VgwError(`${where}: not JSON (${(e as Error).message})`);
    }
  };
  if (trimmed.startsWith("{")) {
    const v = parse(trimmed, file);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new VgwError(`${file}: expected the JSON object vgw policy --format json prints`);
    values = v as Record<string, unknown>;
  } else {
    text.split("\n").forEach((line, n) => {
      const m = /^\s*(sigTable|sigOnly)\s*=\s*(.*)$/.exec(line);
      if (m) values[m[1]] = parse(m[2], `${file}:${n + 1}: ${m[1]}`);
    });
  }
  const table = values.sigTable;
  if (table === undefined) throw new VgwError(`${file}: no sigTable (compile a policy with a signals section: vgw policy --dbc FILE POLICY)`);
  if (!Array.isArray(table) || !table.every((r) => Array.isArray(r))) throw new VgwError(`${file}: sigTable is not a list of rows`);
  const sigOnly = values.sigOnly ?? [];
  if (!Array.isArray(sigOnly) || !sigOnly.every((k) => Number.isInteger(k))) throw new VgwError(`${file}: sigOnly is not a list of frame keys`);
  try {
    return new SignalTable(table as number[][], [], sigOnly as number[]);
  } catch (e) {
    throw new VgwError(`${file}: ${(e as Error).message}`);
  }
}

/** Reads an unsigned LEB128 varint of at most 32 bits; undefined past the end, throws on an overlong one. */
class Reader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly fail: (reason: string) => never,
  ) {}

  varint(what: string): number {
    let v = 0;
    for (let k = 0; k < 5; k++) {
      if (this.pos >= this.bytes.length) this.fail(`sample records end inside a ${what}`);
      const b = this.bytes[this.pos++];
      v += (b & 0x7f) * 2 ** (7 * k);
      if (!(b & 0x80)) {
        if (v > 0xffffffff) this.fail(`a ${what} exceeds 32 bits`);
        return v;
      }
    }
    this.fail(`a ${what} is longer than 5 bytes`);
  }
}

const zigzagDecode = (z: number) => (z >>> 1) ^ -(z & 1);
const zigzagEncode = (v: number) => ((v << 1) ^ (v >> 31)) >>> 0;

function uint(map: Record<string, unknown>, key: string, fail: (r: string) => never, max = 0xffffffff): number {
  const v = map[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) fail(`'${key}' is not an unsigned integer up to ${max} (${String(v)})`);
  return v;
}

/**
 * Decodes one `P/signals` payload with the table the gateway runs. Throws SignalBatchError (boot/seq when readable)
 * for anything that does not follow the protocol, including a table hash that is not `table`'s.
 */
export function decodeSignalBatch(payload: Uint8Array, table: SignalTable | readonly (readonly number[])[]): SignalBatch {
  const t = table instanceof SignalTable ? table : new SignalTable(table);
  let where = "signal batch";
  // the batch's boot and sequence, once read: errors name them
  const at: { boot?: number; seq?: number } = {};
  const fail: (reason: string, kind?: "malformed" | "hash") => never = (reason, kind = "malformed") => {
    throw new SignalBatchError(`${where}: ${reason}`, at.boot, at.seq, kind);
  };
  let value: unknown;
  try {
    value = decode(payload);
  } catch (e) {
    fail(`not CBOR (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) fail("not a CBOR map");
  const map = value as Record<string, unknown>;
  const v = uint(map, "v", fail);
  if (v !== PROTOCOL_VERSION) fail(`version ${v}, this host reads version ${PROTOCOL_VERSION}`);
  const boot = (at.boot = uint(map, "b", fail));
  const seq = (at.seq = uint(map, "s", fail));
  where = `signal batch (boot ${boot.toString(16)}, seq ${seq})`;
  const keys = Object.keys(map);
  if (keys.join(",") !== BATCH_KEYS.join(",")) fail(`keys are ${keys.join(",")}, expected exactly ${BATCH_KEYS.join(",")} in that order`);
  const baseTime = uint(map, "t", fail);
  const hash = uint(map, "h", fail);
  const n = uint(map, "n", fail);
  const g = map.g;
  if (!(g instanceof Uint8Array)) fail("'g' is not a byte string");
  if (hash !== t.hash) fail(hashMismatch(hash, t.hash, "the batch"), "hash");
  const bytes = new Uint8Array(g.buffer, g.byteOffset, g.length);
  const r = new Reader(bytes, fail);
  // a record takes at least 2 bytes (head and value): 'n' cannot exceed half the field
  if (n > bytes.length / 2) fail(`'n' says ${n} samples, more than ${bytes.length} record bytes can hold`);
  const samples: SignalSample[] = new Array<SignalSample>(n);
  let time = baseTime;
  for (let k = 0; k < n; k++) {
    const head = r.varint("sample head");
    const i = Math.floor(head / 2);
    if (i >= t.rows.length) fail(`sample ${k}: signal index ${i}, the table has ${t.rows.length} rows`);
    if (head & 1) time += r.varint("time delta");
    const row = t.rows[i];
    const len = row[COL.len];
    const word = r.varint("value");
    let raw: number;
    if (row[COL.flags] & FLAG_SIGNED) {
      raw = zigzagDecode(word);
      if (raw < -(2 ** (len - 1)) || raw >= 2 ** (len - 1)) fail(`sample ${k}: value ${raw} does not fit signal ${i}'s ${len} signed bits`);
    } else {
      raw = word;
      if (raw >= 2 ** len) fail(`sample ${k}: value ${raw} does not fit signal ${i}'s ${len} bits`);
    }
    samples[k] = { i, t: time, raw };
  }
  if (r.pos !== bytes.length) fail(`'n' says ${n} samples, but ${bytes.length - r.pos} record bytes follow them`);
  return { boot, seq, baseTime, hash, samples, recordBytes: bytes.length };
}

/** The sample records of `samples` (in arrival order, times not decreasing), as the gateway writes them. */
export function encodeSignalRecords(samples: readonly SignalSample[], table: SignalTable | readonly (readonly number[])[]): Uint8Array {
  const rows = table instanceof SignalTable ? table.rows : table;
  const out: number[] = [];
  const varint = (v: number): void => {
    while (v >= 128) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
  };
  let time = samples.length ? samples[0].t : 0;
  for (const s of samples) {
    const row = rows[s.i];
    if (!row) throw new VgwError(`sample of signal ${s.i}: the table has ${rows.length} rows`);
    if (s.t < time) throw new VgwError(`samples must be in time order (${s.t} after ${time})`);
    const dt = s.t - time;
    varint(s.i * 2 + (dt > 0 ? 1 : 0));
    if (dt > 0) varint(dt);
    time = s.t;
    varint(row[COL.flags] & FLAG_SIGNED ? zigzagEncode(s.raw) : s.raw >>> 0);
  }
  return Uint8Array.from(out);
}

/** One `P/signals` payload, exactly as the gateway encodes it (keys in the protocol's order). */
export function encodeSignalBatch(boot: number, seq: number, samples: readonly SignalSample[], table: SignalTable | readonly (readonly number[])[]): Uint8Array {
  const hash = table instanceof SignalTable ? table.hash : tableHash(table);
  const g = encodeSignalRecords(samples, table);
  const baseTime = samples.length ? samples[0].t : 0;
  // the wire time is uptime mod 2^32
  return encode({ v: PROTOCOL_VERSION, b: boot, s: seq, t: baseTime % 2 ** 32, h: hash, n: samples.length, g: Buffer.from(g) });
}

export interface SignalReceiverCounts {
  batches: number;
  samples: number;
  duplicates: number;
  /** Signal-batch numbers skipped and not filled later. */
  missing: number;
  malformed: number;
  /** Batches refused because their table hash is not the table's. */
  hashMismatch: number;
}

export interface SignalReceiverEvents {
  batch: [batch: SignalBatch, device: string, verdict: SequenceVerdict];
  gap: [device: string, verdict: Extract<SequenceVerdict, { kind: "gap" }>, batch: SignalBatch];
  duplicate: [device: string, boot: number, seq: number];
  /** A batch refused (malformed, or another table: `error.reason === "hash"`); it is dropped whole. */
  malformed: [topic: string, error: SignalBatchError];
}

/**
 * The receiving end of `<prefix>/<device>/signals`: decodes each batch with the table, drops duplicates (QoS 1
 * resends) and reports gaps by the signal batches' own numbering, which is separate from the frame batches'.
 */
export class SignalReceiver extends EventEmitter<SignalReceiverEvents> {
  readonly counts: SignalReceiverCounts = { batches: 0, samples: 0, duplicates: 0, missing: 0, malformed: 0, hashMismatch: 0 };
  private readonly trackers = new Map<string, SequenceTracker>();
  private readonly topic: string;
  private readonly onMessage = (topic: string, payload: Buffer): void => this.handle(topic, payload);

  private constructor(
    readonly client: MqttClient,
    readonly table: SignalTable,
    readonly prefix: string,
    device: string,
  ) {
    super();
    this.topic = signalsTopic(prefix, device);
  }

  static async attach(client: MqttClient, table: SignalTable, options: { prefix?: string; device?: string } = {}): Promise<SignalReceiver> {
    const r = new SignalReceiver(client, table, options.prefix ?? "vgw", options.device ?? "+");
    client.on("message", r.onMessage);
    await client.subscribeAsync(r.topic, { qos: 1 });
    return r;
  }

  async detach(): Promise<void> {
    this.client.removeListener("message", this.onMessage);
    if (this.client.connected) await this.client.unsubscribeAsync(this.topic).catch(() => undefined);
  }

  /** Handles one message (exposed for receivers that share a subscription); other topics are ignored. */
  handle(topic: string, payload: Uint8Array): void {
    const parts = parseTopic(topic);
    if (!parts || parts.prefix !== this.prefix || parts.kind !== "signals") return;
    let batch: SignalBatch;
    try {
      batch = decodeSignalBatch(payload, this.table);
    } catch (e) {
      if (!(e instanceof SignalBatchError)) throw e;
      this.counts.malformed++;
      if (e.reason === "hash") this.counts.hashMismatch++;
      this.emit("malformed", topic, e);
      return;
    }
    let tracker = this.trackers.get(parts.device);
    if (!tracker) {
      tracker = new SequenceTracker(false);
      this.trackers.set(parts.device, tracker);
    }
    const verdict = tracker.observe(batch.boot, batch.seq);
    if (verdict.kind === "duplicate") {
      this.counts.duplicates++;
      this.emit("duplicate", parts.device, batch.boot, batch.seq);
      return;
    }
    if (verdict.kind === "gap") {
      this.counts.missing += verdict.missing;
      this.emit("gap", parts.device, verdict, batch);
    } else if (verdict.kind === "late") this.counts.missing--;
    this.counts.batches++;
    this.counts.samples += batch.samples.length;
    this.emit("batch", batch, parts.device, verdict);
  }
}
