/**
 * The gateway's MQTT payloads (docs/protocol.md, version 1), decoded and encoded on the host with cbor-x:
 * frame batches (`P/frames`) back into frames, status maps, command results, and commands to send down.
 *
 * Decoding never throws on a bad payload without saying which batch and why: `PayloadError` carries the reason, and
 * the caller counts and reports it (a malformed batch is dropped whole, as the protocol asks).
 */
import { decode, encode } from "cbor-x";
import { VgwError } from "../../frame/errors";
import { FD_LENGTHS, isValidFdLength, validateFrame, type Frame } from "../../frame/frame";
import { FrameColumns } from "../../frame/columns";
import { writeRecord, recordSize } from "./canbus-records";
import { FRAME_FLAG, FRAME_FLAG_RESERVED, frameFlags, frameOfRecord } from "../../frame/packed";

export const PROTOCOL_VERSION = 1;
const NO_DATA = new Uint8Array(0);

/** A payload that does not follow docs/protocol.md. */
export class PayloadError extends VgwError {}

/** The topics of one gateway: `<prefix>/<device>/frames` and so on. */
export interface GatewayTopics {
  frames: string;
  status: string;
  cmd: string;
  result: string;
  diag: string;
}

export function gatewayTopics(prefix: string, device: string): GatewayTopics {
  const p = `${prefix}/${device}`;
  return { frames: `${p}/frames`, status: `${p}/status`, cmd: `${p}/cmd`, result: `${p}/result`, diag: `${p}/diag` };
}

/** Splits `<prefix>/<device>/<kind>` (prefix may contain slashes). */
export function parseTopic(topic: string): { prefix: string; device: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length < 3) return undefined;
  const kind = parts[parts.length - 1];
  const device = parts[parts.length - 2];
  return { prefix: parts.slice(0, -2).join("/"), device, kind };
}

export interface FrameBatch {
  boot: number;
  seq: number;
  /** Gateway uptime in ms when the first frame arrived. */
  baseTime: number;
  /** Frames with `t` = gateway uptime in seconds. */
  frames: Frame[];
  /** Size of the records field `f` in bytes. */
  recordBytes: number;
}

function uint(map: Record<string, unknown>, key: string, where: string): number {
  const v = map[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new PayloadError(`${where}: '${key}' is not an unsigned integer (${String(v)})`);
  return v;
}

function decodeMap(payload: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = decode(payload);
  } catch (e) {
    throw new PayloadError(`${what}: not CBOR (${(e as Error).message})`, { cause: e });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new PayloadError(`${what}: not a CBOR map`);
  }
  return value as Record<string, unknown>;
}

/** A batch's header and where its frames went in a FrameColumns (`decodeBatchInto`). */
export interface BatchHeader {
  boot: number;
  seq: number;
  /** Gateway uptime in ms when the first frame arrived. */
  baseTime: number;
  /** Row of the first frame in the columns. */
  first: number;
  /** Frames in the batch. */
  count: number;
  /** Size of the records field `f` in bytes. */
  recordBytes: number;
}

/**
 * Decodes one `P/frames` payload into `out` (appending rows): no object per frame, for the ingest path. Throws
 * PayloadError naming the batch and the reason, and then leaves `out` as it was.
 */
export function decodeBatchInto(payload: Uint8Array, out: FrameColumns): BatchHeader {
  const map = decodeMap(payload, "batch");
  const v = uint(map, "v", "batch");
  if (v !== PROTOCOL_VERSION) throw new PayloadError(`batch: version ${v}, this host reads version ${PROTOCOL_VERSION}`);
  const boot = uint(map, "b", "batch");
  const seq = uint(map, "s", "batch");
  const where = `batch (boot ${boot.toString(16)}, seq ${seq})`;
  const baseTime = uint(map, "t", where);
  const n = uint(map, "n", where);
  const f = map.f;
  if (!(f instanceof Uint8Array)) throw new PayloadError(`${where}: 'f' is not a byte string`);
  const mark = out.mark();
  // 'n' sizes the columns (a frame takes at least one record byte, so never more than the field's length).
  out.reserveRows(Math.min(n, f.length));
  const count = decodeRecordsInto(out, new Uint8Array(f.buffer, f.byteOffset, f.length), baseTime, where);
  if (count !== n) {
    out.rollback(mark);
    throw new PayloadError(`${where}: 'n' says ${n} frames, the records hold ${count}`);
  }
  return { boot, seq, baseTime, first: mark.count, count, recordBytes: f.length };
}

/** Decodes one `P/frames` payload into Frame objects. Throws PayloadError naming the batch and the reason. */
export function decodeBatch(payload: Uint8Array): FrameBatch {
  // A fresh FrameColumns per batch: the frames' data are views into its byte pool, which nothing else writes.
  const columns = new FrameColumns(16);
  const h = decodeBatchInto(payload, columns);
  const frames: Frame[] = new Array<Frame>(h.count);
  for (let i = 0; i < h.count; i++) frames[i] = columns.frame(i);
  return { boot: h.boot, seq: h.seq, baseTime: h.baseTime, frames, recordBytes: h.recordBytes };
}

/** Decodes the records field `f` (TIME / LITERAL / DELTA / REPEAT, docs/protocol.md) into Frame objects. */
export function decodeRecords(input: Uint8Array, baseTime: number, where = "batch"): Frame[] {
  const columns = new FrameColumns(64);
  const n = decodeRecordsInto(columns, input, baseTime, where);
  const frames: Frame[] = new Array<Frame>(n);
  for (let i = 0; i < n; i++) frames[i] = columns.frame(i);
  return frames;
}

/**
 * Decodes the records field `f` (TIME / LITERAL / DELTA / REPEAT, docs/protocol.md) into rows of `out`; returns
 * how many. A frame is checked as validateFrame would check it, once per slot (ID and flags) and once per literal
 * (length): a DELTA or REPEAT cannot change either. On a bad record `out` is rolled back and PayloadError thrown.
 */
export function decodeRecordsInto(out: FrameColumns, input: Uint8Array, baseTime: number, where = "batch"): number {
  const f = Buffer.isBuffer(input) ? new Uint8Array(input.buffer, input.byteOffset, input.length) : input;
  const mark = out.mark();
  // Per slot: its ID and flags, and the row of `out` holding its last data (-1: none yet).
  const slotId: number[] = [];
  const slotFlags: number[] = [];
  const slotRow: number[] = [];
  let time = baseTime;
  let off = 0;
  const fail = (reason: string): never => {
    out.rollback(mark);
    throw new PayloadError(`${where}: record at byte ${off}: ${reason}`);
  };
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (off >= f.length) fail("varint runs past the end");
      const b = f[off++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    return fail("varint longer than 5 bytes");
  };
  while (off < f.length) {
    const start = off;
    const head = varint();
    const mode = head & 3;
    const x = Math.floor(head / 4);
    if (mode === 3) {
      time += x;
      continue;
    }
    const row = out.count;
    if (row === out.id.length) out.reserveRows(1); // doubles
    if (mode === 0) {
      if (x === slotId.length) {
        const id = varint();
        if (off >= f.length) fail("flags run past the end");
        const flags = f[off++];
        if (flags & FRAME_FLAG_RESERVED) fail(`flags 0x${flags.toString(16)} have bits 6..7 set`);
        try {
          validateFrame(frameOfRecord(id, flags, NO_DATA));
        } catch (e) {
          off = start;
          fail((e as Error).message);
        }
        slotId.push(id);
        slotFlags.push(flags);
        slotRow.push(-1);
      } else if (x > slotId.length) {
        fail(`slot ${x} but only ${slotId.length} slots exist`);
      }
      if (off >= f.length) fail("length runs past the end");
      const flags = slotFlags[x];
      const len = f[off++];
      const fd = (flags & FRAME_FLAG.fd) !== 0;
      if (len > (fd ? 64 : 8)) fail(`length ${len} above ${fd ? 64 : 8}`);
      if (fd && !isValidFdLength(len)) {
        off = start;
        fail(`CAN FD data length ${len} is not one of ${FD_LENGTHS.join(",")}`);
      }
      out.dataAt[row] = out.dataBytes;
      if ((flags & FRAME_FLAG.rtr) === 0) {
        if (off + len > f.length) fail(`${len} data bytes run past the end`);
        out.reserveData(len);
        out.data.set(f.subarray(off, off + len), out.dataBytes);
        out.dataBytes += len;
        off += len;
      }
      out.id[row] = slotId[x];
      out.flags[row] = flags;
      out.length[row] = len;
      slotRow[x] = row;
    } else {
      if (x >= slotId.length) fail(`${mode === 1 ? "DELTA" : "REPEAT"} on slot ${x}, only ${slotId.length} slots exist`);
      const prev = slotRow[x];
      const len = out.length[prev];
      out.id[row] = slotId[x];
      out.flags[row] = slotFlags[x];
      out.length[row] = len;
      if (mode === 2) {
        out.dataAt[row] = out.dataAt[prev]; // the same bytes: the pool is append-only
      } else {
        const rtr = (slotFlags[x] & FRAME_FLAG.rtr) !== 0;
        const dataLen = rtr ? 0 : len;
        const maskLen = Math.ceil(dataLen / 8);
        if (off + maskLen > f.length) fail("change mask runs past the end");
        out.reserveData(dataLen);
        const at = out.dataBytes;
        const data = out.data;
        data.copyWithin(at, out.dataAt[prev], out.dataAt[prev] + dataLen);
        const maskStart = off;
        off += maskLen;
        for (let j = 0; j < maskLen; j++) {
          const m = f[maskStart + j];
          for (let i = 0; i < 8; i++) {
            if (m & (1 << i)) {
              const k = 8 * j + i;
              if (k >= dataLen) fail(`change mask names byte ${k} of a ${dataLen}-byte frame`);
              if (off >= f.length) fail("changed bytes run past the end");
              data[at + k] = f[off++];
            }
          }
        }
        out.dataAt[row] = at;
        out.dataBytes += dataLen;
        slotRow[x] = row;
      }
    }
    out.tMs[row] = time;
    out.count = row + 1;
  }
  return out.count - mark.count;
}

/** Encodes frames as one batch exactly as the firmware does (for tests, benchmarks and the reference figures). */
export function encodeBatch(boot: number, seq: number, frames: readonly Frame[]): Uint8Array {
  const out: number[] = [];
  const slots: Array<{ key: string; data: Uint8Array; rlen: number }> = [];
  const slotOf = new Map<string, number>();
  const baseTime = frames.length ? Math.round((frames[0].t ?? 0) * 1000) : 0;
  let time = baseTime;
  const varint = (v: number): void => {
    while (v >= 128) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
  };
  for (const fr of frames) {
    const t = Math.round((fr.t ?? 0) * 1000);
    if (t > time) {
      varint((t - time) * 4 + 3);
      time = t;
    }
    const flags = frameFlags(fr);
    const key = `${fr.id}:${flags}`;
    const len = fr.rtr ? (fr.dlc ?? 0) : fr.data.length;
    const known = slotOf.get(key);
    const slot = known === undefined ? undefined : slots[known];
    if (slot === undefined || known === undefined || (fr.rtr ? slot.rlen !== len : slot.data.length !== len)) {
      const index = known ?? slots.length;
      varint(index * 4);
      if (known === undefined) {
        varint(fr.id);
        out.push(flags);
        slotOf.set(key, index);
        slots.push({ key, data: fr.data, rlen: len });
      } else {
        slots[index] = { key, data: fr.data, rlen: len };
      }
      out.push(len);
      if (!fr.rtr) for (const b of fr.data) out.push(b);
      continue;
    }
    let changed = 0;
    for (let i = 0; i < len; i++) if (fr.data[i] !== slot.data[i]) changed++;
    if (changed === 0) {
      varint(known * 4 + 2);
      continue;
    }
    varint(known * 4 + 1);
    const mask = new Array<number>(Math.ceil(len / 8)).fill(0);
    const bytes: number[] = [];
    for (let i = 0; i < len; i++) {
      if (fr.data[i] !== slot.data[i]) {
        mask[i >> 3] |= 1 << (i & 7);
        bytes.push(fr.data[i]);
      }
    }
    out.push(...mask, ...bytes);
    slot.data = fr.data;
  }
  return encode({ v: PROTOCOL_VERSION, b: boot, s: seq, t: baseTime, n: frames.length, f: Buffer.from(out) });
}

/** The status map (`P/status`, retained); the last will has only v, online=false, dev, b. */
export interface GatewayStatus {
  online: boolean;
  dev?: string;
  fw?: string;
  boot?: number;
  up?: number;
  seq?: number;
  rx?: number;
  flt?: number;
  ds?: number;
  pub?: number;
  ack?: number;
  bat?: number;
  drop?: { outbox?: number; malformed?: number; ctrl?: number; cmd?: number; report?: number; flood?: number };
  rc?: number;
  bus?: string;
  can?: number[];
  ob?: number;
  obmax?: number;
  tx?: number;
  /** Connections the gateway closed because the broker broke the MQTT protocol. */
  pv?: number;
  /** The command subscription: "pending", "ok" or "refused" (the broker's ACL refused it: no commands arrive). */
  sub?: string;
  /** MQTT protocol level of the gateway's broker connection: 4 (3.1.1) or 5. */
  mq?: number;
  /** Publishes the gateway did not send: larger than the broker's MQTT 5 Maximum Packet Size. */
  big?: number;
  /** Every key as received, for printing. */
  raw: Record<string, unknown>;
}

export function decodeStatus(payload: Uint8Array): GatewayStatus {
  const map = decodeMap(payload, "status");
  if (typeof map.online !== "boolean") throw new PayloadError("status: 'online' is not a boolean");
  const num = (k: string): number | undefined => (typeof map[k] === "number" ? (map[k] as number) : undefined);
  return {
    online: map.online,
    dev: typeof map.dev === "string" ? map.dev : undefined,
    fw: typeof map.fw === "string" ? map.fw : undefined,
    boot: num("b"),
    up: num("up"),
    seq: num("seq"),
    rx: num("rx"),
    flt: num("flt"),
    ds: num("ds"),
    pub: num("pub"),
    ack: num("ack"),
    bat: num("bat"),
    drop: typeof map.drop === "object" && map.drop !== null ? (map.drop as GatewayStatus["drop"]) : undefined,
    rc: num("rc"),
    bus: typeof map.bus === "string" ? map.bus : undefined,
    can: Array.isArray(map.can) ? (map.can as number[]) : undefined,
    ob: num("ob"),
    obmax: num("obmax"),
    tx: num("tx"),
    pv: num("pv"),
    sub: typeof map.sub === "string" ? map.sub : undefined,
    mq: num("mq"),
    big: num("big"),
    raw: map,
  };
}

/** One poll response in a `P/diag` batch: the poll list index, the gateway's uptime (ms mod 2^32), the response or an error code. */
export interface DiagEntry {
  index: number;
  t: number;
  data?: Uint8Array;
  error?: string;
}

export interface DiagBatch {
  boot: number;
  seq: number;
  entries: DiagEntry[];
}

/** A `P/diag` batch (docs/protocol.md, "Diagnostics"). */
export function decodeDiagBatch(payload: Uint8Array): DiagBatch {
  const map = decodeMap(payload, "diag");
  if (map.v !== 1 || typeof map.b !== "number" || typeof map.s !== "number" || !Array.isArray(map.r)) throw new PayloadError("diag: 'v'/'b'/'s'/'r' missing");
  const entries = map.r.map((e: unknown, i: number): DiagEntry => {
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== "number" || typeof e[1] !== "number") throw new PayloadError(`diag: entry ${i} is not [index, t, response]`);
    if (e[2] instanceof Uint8Array) return { index: e[0], t: e[1], data: new Uint8Array(e[2]) };
    if (typeof e[2] === "string") return { index: e[0], t: e[1], error: e[2] };
    throw new PayloadError(`diag: entry ${i}: response is neither bytes nor an error code`);
  });
  return { boot: map.b, seq: map.s, entries };
}

export interface CommandResult {
  id: unknown;
  op: string | null;
  ok: boolean;
  reason: string;
  msg: string;
  /** The response bytes of a `diag` command. */
  data?: Uint8Array;
}

export function decodeResult(payload: Uint8Array): CommandResult {
  const map = decodeMap(payload, "result");
  if (typeof map.ok !== "boolean" || typeof map.r !== "string") throw new PayloadError("result: 'ok'/'r' missing");
  return {
    id: map.id ?? null,
    op: typeof map.op === "string" ? map.op : null,
    ok: map.ok,
    reason: map.r,
    msg: typeof map.msg === "string" ? map.msg : "",
    ...(map.d instanceof Uint8Array ? { data: new Uint8Array(map.d) } : {}),
  };
}

export type GatewayCommand =
  | { op: "tx"; id: number | string; boot: number; exp: number; frame: Frame }
  | { op: "filter"; id?: number | string; acc: Array<[number, number]> }
  | { op: "rate"; id?: number | string; rules: Array<[number, number, 0 | 1]> }
  | { op: "status"; id?: number | string }
  /** One ISO-TP request (1..7 bytes) from `req` to the ECU answering on `res` (keys: id, + 0x80000000 for 29-bit). */
  | { op: "diag"; id: number; boot: number; exp: number; req: number; res: number; data: Uint8Array }
  /** Replaces the poll list (`[req, res, periodMs, request]` entries) and/or switches it on or off. */
  | { op: "poll"; id: number; boot: number; exp: number; on?: boolean; list?: Array<[number, number, number, Uint8Array]> };

/** Encodes a command for `P/cmd`. */
export function encodeCommand(cmd: GatewayCommand): Uint8Array {
  const map: Record<string, unknown> = { op: cmd.op };
  if (cmd.id !== undefined) map.id = cmd.id;
  switch (cmd.op) {
    case "tx": {
      const rec = new Uint8Array(recordSize(cmd.frame));
      writeRecord(rec, 0, cmd.frame);
      map.boot = cmd.boot;
      // uptime and exp are modulo 2^32 on the wire (docs/protocol.md, "Wrap-around")
      map.exp = cmd.exp % 2 ** 32;
      map.f = Buffer.from(rec);
      break;
    }
    case "filter":
      map.acc = cmd.acc;
      break;
    case "rate":
      map.rules = cmd.rules;
      break;
    case "status":
      break;
    case "diag":
      map.boot = cmd.boot;
      map.exp = cmd.exp % 2 ** 32;
      map.req = cmd.req;
      map.res = cmd.res;
      map.d = Buffer.from(cmd.data);
      break;
    case "poll":
      map.boot = cmd.boot;
      map.exp = cmd.exp % 2 ** 32;
      if (cmd.on !== undefined) map.on = cmd.on;
      if (cmd.list) map.list = cmd.list.map(([req, res, period, request]) => [req, res, period, Buffer.from(request)]);
      break;
  }
  return encode(map);
}
