/**
 * ISO-TP messages beside the frames of `vgw decode` and `vgw dump` (`--isotp 7E0:7E8`, `--obd`): the frames of each
 * request/response pair of IDs are put back together (one IsoTpWatcher per pair, timeouts judged from the frames'
 * own times), and every reassembled message, or named failure (wrong-sn, timeout-cr, ...), becomes a line after the
 * frame that completed it. With --obd the standard OBD-II pairs are watched (functional 7DF, physical 7E0-7E7 <->
 * 7E8-7EF) and each payload is decoded: the service, PIDs with names and units, DTCs, the VIN, negative responses.
 * Pure: frames in, lines out; a malformed message is a line, never the end of the run.
 *
 *   text:  isotp 7E8 [20] 49 02 01 31 47 31 ...  obd: response 09 02 VIN 1G1...
 *          isotp 7E8 !! wrong-sn: ...
 *   json:  {"t":..,"bus":..,"isotp":{"id":2024,"ext":false,"length":20,"frames":3,"data":"4902.."},"obd":{...}}
 */
import { bytesToHex, type Frame } from "../../frame/frame";
import { UsageError, VgwError } from "../../frame/errors";
import { decodePid, OBD_PIDS, pidText, type DecodedPid } from "../../can-db/obd-pids";
import { IsoTpWatcher } from "./isotp-dump";
import { parseDtcList, parseVin } from "./obd";
import { hex, NEGATIVE_RESPONSE, nrcName, POSITIVE_OFFSET, serviceName } from "./uds-codes";

/** One request/response pair of IDs: the tester sends on `request`, the ECU answers on `response`. */
export interface IsoTpPair {
  request: number;
  response: number;
  ext: boolean;
}

/** A line for the command to print after its time/bus prefix (text) or merge after "t" and "bus" (JSON). */
export interface IsoTpLine {
  t?: number;
  bus?: string;
  text: string;
  json: Record<string, unknown>;
}

const OBD_FUNCTIONAL = 0x7df;
/** ISO 15765-4 with 29-bit IDs (normal fixed addressing): functional 18DB33F1; ECU xx takes 18DAxxF1, answers 18DAF1xx. */
const OBD_FUNCTIONAL_29 = 0x18db33f1;
const OBD_PHYSICAL_29 = 0x18da0000;
const OBD_TESTER = 0xf1;

/** The 29-bit OBD-II pair an extended ID belongs to (the ECU's address from either direction), or undefined. */
function obdPair29(id: number): IsoTpPair | undefined {
  if ((id & 0xffff0000) !== OBD_PHYSICAL_29) return undefined;
  const target = (id >> 8) & 0xff;
  const source = id & 0xff;
  // exactly one side is the tester: 18DAxxF1 is a request to ECU xx, 18DAF1xx an answer from it
  const ecu = source === OBD_TESTER && target !== OBD_TESTER ? target : target === OBD_TESTER && source !== OBD_TESTER ? source : -1;
  if (ecu < 0) return undefined;
  return { request: OBD_PHYSICAL_29 | (ecu << 8) | OBD_TESTER, response: OBD_PHYSICAL_29 | (OBD_TESTER << 8) | ecu, ext: true };
}

/**
 * The standard OBD-II pairs on 11-bit IDs (ISO 15765-4): 7E0-7E7 <-> 7E8-7EF. The functional 7DF is watched too, and
 * with 29-bit IDs 18DB33F1 and every 18DAxxF1 <-> 18DAF1xx pair (watched from the first frame of it seen).
 */
export const OBD_PAIRS: readonly IsoTpPair[] = Array.from({ length: 8 }, (_, i) => ({ request: 0x7e0 + i, response: 0x7e8 + i, ext: false }));

/** `7E0:7E8,18DA10F1:18DAF110`: hex IDs, request first; an ID above 7FF (or written with 8 digits) is a 29-bit one. */
export function parseIsoTpPairs(text: string): IsoTpPair[] {
  const pairs: IsoTpPair[] = [];
  for (const item of text.split(",")) {
    const m = /^\s*([0-9a-f]{1,8}):([0-9a-f]{1,8})\s*$/i.exec(item);
    if (!m) throw new UsageError(`--isotp: '${item}' is not a pair of hex IDs REQUEST:RESPONSE, e.g. 7E0:7E8`);
    const [request, response] = [parseInt(m[1], 16), parseInt(m[2], 16)];
    const ext = m[1].length > 3 || m[2].length > 3 || request > 0x7ff || response > 0x7ff;
    for (const id of [request, response]) if (id > 0x1fffffff) throw new UsageError(`--isotp: ${hex(id, 8)} in '${item}' is beyond a 29-bit ID`);
    if (request === response) throw new UsageError(`--isotp: '${item}' names one ID twice; the request and the response need their own`);
    pairs.push({ request, response, ext });
  }
  return pairs;
}

function idText(id: number, ext: boolean): string {
  return hex(id, ext ? 8 : 3);
}

function spaced(data: Uint8Array): string {
  return Array.from(data, (b) => hex(b)).join(" ");
}

/** What an OBD-II payload says, as text and as JSON; a payload that does not parse says why. */
export function describeObd(payload: Uint8Array, isResponse: boolean): { text: string; json: Record<string, unknown> } {
  const sid = payload[0];
  try {
    if (!isResponse) return describeObdRequest(payload);
    if (sid === NEGATIVE_RESPONSE) {
      const nrc = payload[2] ?? 0;
      return {
        text: `negative response to ${hex(payload[1] ?? 0)}: ${nrcName(nrc)} (0x${hex(nrc)})`,
        json: { response: true, negative: true, service: payload[1], nrc, nrcName: nrcName(nrc) },
      };
    }
    const service = sid - POSITIVE_OFFSET;
    if (service === 0x01 || service === 0x02) {
      const pids = splitPids(payload, service === 0x02 ? 2 : 1);
      return {
        text: `response ${hex(service)} ${pids.map(pidText).join("; ")}`,
        json: { response: true, service, pids: pids.map((d) => ({ pid: d.pid, name: d.name, values: d.values })) },
      };
    }
    if (service === 0x03 || service === 0x07 || service === 0x0a) {
      const dtcs = parseDtcList(payload);
      return { text: `response ${hex(service)} ${DTC_KIND[service]} DTCs: ${dtcs.length ? dtcs.join(" ") : "none"}`, json: { response: true, service, dtcs } };
    }
    if (service === 0x04) return { text: "response 04 DTCs cleared", json: { response: true, service } };
    if (service === 0x09 && payload[1] === 0x02) {
      const vin = parseVin(payload);
      return { text: `response 09 02 VIN ${vin}`, json: { response: true, service, infoType: 2, vin } };
    }
    return { text: `response ${hex(service)} (${serviceName(service)}) ${spaced(payload.subarray(1))}`, json: { response: true, service } };
  } catch (e) {
    if (!(e instanceof VgwError)) throw e;
    return { text: `malformed: ${e.message}`, json: { response: isResponse, service: isResponse ? sid - POSITIVE_OFFSET : sid, malformed: e.message } };
  }
}

const DTC_KIND: Record<number, string> = { 0x03: "stored", 0x07: "pending", 0x0a: "permanent" };

function describeObdRequest(payload: Uint8Array): { text: string; json: Record<string, unknown> } {
  const service = payload[0];
  if (service === 0x01 && payload.length > 1) {
    const pids = Array.from(payload.subarray(1));
    const names = pids.map((p) => `${hex(p)} ${OBD_PIDS.get(p)?.name ?? "unknown PID"}`);
    return { text: `request 01 ${names.join(", ")}`, json: { request: true, service, pids } };
  }
  if (DTC_KIND[service]) return { text: `request ${hex(service)} ${DTC_KIND[service]} DTCs`, json: { request: true, service } };
  if (service === 0x04) return { text: "request 04 clear DTCs", json: { request: true, service } };
  if (service === 0x09 && payload.length > 1) return { text: `request 09 ${hex(payload[1])}${payload[1] === 2 ? " VIN" : ""}`, json: { request: true, service, infoType: payload[1] } };
  return { text: `request ${hex(service)} (${serviceName(service)}) ${spaced(payload.subarray(1))}`, json: { request: true, service } };
}

/** `41 <pid> <data> <pid> <data>...` by the table's data lengths (service 02: a frame number after each PID). */
function splitPids(payload: Uint8Array, step: number): DecodedPid[] {
  const out: DecodedPid[] = [];
  for (let i = 1; i < payload.length; ) {
    const pid = payload[i];
    const len = OBD_PIDS.get(pid)?.bytes ?? payload.length - i - step;
    if (i + step + len > payload.length) throw new VgwError(`PID 0x${hex(pid)} needs ${len} data bytes, ${payload.length - i - step} follow`);
    out.push(decodePid(pid, payload.subarray(i + step, i + step + len)));
    i += step + len;
  }
  return out;
}

export class IsoTpView {
  private readonly watchers: Array<{ watcher: IsoTpWatcher; pair: IsoTpPair }> = [];
  /** Request IDs of the 29-bit pairs watched (OBD-II ones are made when first seen: 254 possible ECU addresses). */
  private readonly obd29 = new Set<number>();
  private readonly nCr: number;
  private messages = 0;
  private readonly errors: Record<string, number> = {};
  private lastT: number | undefined;

  /** `pairs` to watch; `obd` adds the OBD-II pairs (and 7DF) and decodes every payload of them as OBD-II. */
  constructor(
    pairs: readonly IsoTpPair[],
    private readonly obd = false,
    nCr = 1,
  ) {
    this.nCr = nCr;
    const all = [...pairs];
    if (obd) {
      for (const p of OBD_PAIRS) if (!all.some((q) => q.request === p.request && q.response === p.response && q.ext === p.ext)) all.push(p);
      // 7DF and 18DB33F1 carry single-frame requests only (ISO 15765-4): both sides of their watchers are the one ID.
      all.push({ request: OBD_FUNCTIONAL, response: OBD_FUNCTIONAL, ext: false });
      all.push({ request: OBD_FUNCTIONAL_29, response: OBD_FUNCTIONAL_29, ext: true });
    }
    for (const pair of all) this.watch(pair);
  }

  private watch(pair: IsoTpPair): void {
    const watcher = new IsoTpWatcher({ source: { id: pair.request, ext: pair.ext }, dest: { id: pair.response, ext: pair.ext }, nCr: this.nCr });
    this.watchers.push({ watcher, pair });
    if (pair.ext) this.obd29.add(pair.request);
  }

  /** The lines one frame completes (usually none). */
  frame(f: Frame): IsoTpLine[] {
    if (f.t !== undefined) this.lastT = f.t;
    if (this.obd && f.ext) {
      const pair = obdPair29(f.id);
      if (pair && !this.obd29.has(pair.request)) this.watch(pair);
    }
    let lines: IsoTpLine[] | undefined;
    for (const w of this.watchers) {
      const { pair } = w;
      if (f.ext !== pair.ext || (f.id !== pair.request && f.id !== pair.response)) continue;
      for (const item of w.watcher.push(f)) {
        if (item.kind === "frame") continue;
        (lines ??= []).push(this.line(item, pair));
      }
    }
    return lines ?? NONE;
  }

  /** At the end: messages still open past N_Cr at the last frame's time fail with timeout-cr, the rest as incomplete. */
  finish(): IsoTpLine[] {
    const lines: IsoTpLine[] = [];
    for (const w of this.watchers) {
      for (const item of w.watcher.finish(this.lastT ?? 0)) if (item.kind !== "frame") lines.push(this.line(item, w.pair));
    }
    return lines;
  }

  /** For the summary on stderr: `isotp: 12 messages, errors: 1 wrong-sn`. */
  summary(): string {
    const errors = Object.entries(this.errors).map(([k, v]) => `${v} ${k}`);
    return `isotp: ${this.messages} messages${errors.length ? `, errors: ${errors.join(", ")}` : ""}`;
  }

  private line(item: Exclude<ReturnType<IsoTpWatcher["push"]>[number], { kind: "frame" }>, pair: IsoTpPair): IsoTpLine {
    const id = idText(item.id, item.ext);
    if (item.kind === "error") {
      this.errors[item.error.code] = (this.errors[item.error.code] ?? 0) + 1;
      const reason = item.error.message.replace(/^isotp [a-z-]+: /, "");
      return { t: item.t, bus: item.bus, text: `isotp ${id} !! ${item.error.code}: ${reason}`, json: { isotp: { id: item.id, ext: item.ext, error: item.error.code, reason } } };
    }
    this.messages++;
    const p = item.payload;
    let text = `isotp ${id} [${p.length}] ${spaced(p)}`;
    const json: Record<string, unknown> = { isotp: { id: item.id, ext: item.ext, length: p.length, frames: item.frames, data: bytesToHex(p) } };
    if (this.obd && isObdPair(pair)) {
      const o = describeObd(p, item.id === pair.response && pair.request !== pair.response);
      text += `  obd: ${o.text}`;
      json.obd = o.json;
    }
    return { t: item.t, bus: item.bus, text, json };
  }
}

const NONE: IsoTpLine[] = [];

function isObdPair(pair: IsoTpPair): boolean {
  if (pair.ext) {
    if (pair.request === OBD_FUNCTIONAL_29) return true;
    const std = obdPair29(pair.request);
    return std !== undefined && std.request === pair.request && std.response === pair.response;
  }
  return pair.request === OBD_FUNCTIONAL || OBD_PAIRS.some((p) => p.request === pair.request && p.response === pair.response);
}
