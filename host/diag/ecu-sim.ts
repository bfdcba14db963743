/**
 * A simulated ECU for tests and demos: answers OBD-II (SAE J1979) and UDS (ISO 14229-1) requests from a configured
 * state, with the negative responses a real ECU gives:
 *
 *   serviceNotSupported (0x11)                 a service it does not implement (physical requests only)
 *   subFunctionNotSupported (0x12)             an unknown session, reset type or ReadDTCInformation report
 *   incorrectMessageLengthOrInvalidFormat (0x13)
 *   conditionsNotCorrect (0x22)                clearing DTCs while the engine runs (OBD-II 04, UDS 0x14)
 *   requestOutOfRange (0x31)                   an unknown DID or DTC group, or a DID not readable in this session
 *   requestSequenceError (0x24)                SecurityAccess sendKey without a seed asked for first
 *   securityAccessDenied (0x33)                a DID marked `secured` while the ECU is locked
 *   invalidKey (0x35), exceededNumberOfAttempts (0x36), requiredTimeDelayNotExpired (0x37)   SecurityAccess level 1
 *   serviceNotSupportedInActiveSession (0x7F)  a service limited to other sessions
 *   requestCorrectlyReceivedResponsePending (0x78), sent while a service configured as slow is "working"
 *
 * Functionally addressed requests get no 0x11/0x12/0x31/0x7E/0x7F (ISO 14229-1 7.5), and OBD-II PIDs the ECU does
 * not support get silence (SAE J1979), as from a real car. The non-default session falls back after S3 (5 s)
 * without a request.
 *
 * The ECU talks through MessageLinks (ISO-TP on a bus: ecu-bus.ts), so it runs on any bus vgw opens.
 */
import * as fs from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import { VgwError } from "../../frame/errors";
import { log } from "../log";
import type { MessageLink } from "./link";
import { encodePid, supportedBitmap } from "../../can-db/obd-pids";
import { parseDtc, parseUdsDtc } from "../../can-db/dtc-code";
import { hex, NEGATIVE_RESPONSE, NRC, POSITIVE_OFFSET, SID, SUPPRESS_POSITIVE } from "./uds-codes";
import { isLinkTimeout } from "./uds";

/** One DID's data and who may read it. */
export interface DidConfig {
  data: Uint8Array;
  /** Readable only in these sessions (default: all). */
  sessions?: number[];
  /** Refused with securityAccessDenied. */
  secured?: boolean;
}

export interface EcuConfig {
  name: string;
  /** CAN IDs: physical requests in, answers out, functional requests in. */
  requestId: number;
  responseId: number;
  functionalId: number;
  /** 29-bit IDs. */
  ext: boolean;
  vin?: string;
  /** Service 01 PID -> data bytes (already encoded). */
  pids: Map<number, Uint8Array>;
  dtcs: { stored: number[]; pending: number[]; permanent: number[] };
  /** Clearing DTCs is refused (conditionsNotCorrect) while this is set. */
  engineRunning: boolean;
  uds: {
    dids: Map<number, DidConfig>;
    dtcs: Array<{ dtc: number; status: number }>;
    availabilityMask: number;
    sessions: number[];
    /** Service -> the sessions it is available in (others: serviceNotSupportedInActiveSession). */
    serviceSessions: Map<number, number[]>;
    /** Service -> how long it "works" (ms) before answering; longer than P2server means responsePending first. */
    slow: Map<number, number>;
    p2ServerMs: number;
    p2StarServerMs: number;
    s3Ms: number;
    /**
     * SecurityAccess level 1 (0x27 01 / 02): a 4-byte seed, the key is the seed XOR `xor` (a stand-in for a maker's
     * secret algorithm). After `attempts` wrong keys the ECU refuses seeds for `delayMs`. Unset: no SecurityAccess.
     */
    security?: { xor: number; attempts: number; delayMs: number };
  };
}

export interface EcuCounters {
  requests: number;
  positive: number;
  negative: number;
  /** Requests answered with silence (functional NRCs, unsupported PIDs, suppressed positive responses). */
  silent: number;
  responsePending: number;
  /** Messages the transport lost (named transport errors) before they became requests. */
  transportErrors: number;
}

/** A request's outcome: the answer (none: silence) and how long the ECU works on it first. */
interface Outcome {
  response?: Uint8Array;
  workMs?: number;
}

const UDS_SUBFUNCTION_SERVICES = new Set<number>([SID.DiagnosticSessionControl, SID.ECUReset, SID.TesterPresent]);
/** NRCs never sent to a functionally addressed request (ISO 14229-1 7.5). */
const FUNCTIONAL_SILENT = new Set<number>([
  NRC.serviceNotSupported,
  NRC.subFunctionNotSupported,
  NRC.requestOutOfRange,
  NRC.subFunctionNotSupportedInActiveSession,
  NRC.serviceNotSupportedInActiveSession,
]);

export class SimulatedEcu {
  readonly counters: EcuCounters = { requests: 0, positive: 0, negative: 0, silent: 0, responsePending: 0, transportErrors: 0 };
  session = 1;
  private lastRequestAt = Date.now();
  private readonly dtcs: EcuConfig["dtcs"];
  private udsDtcs: Array<{ dtc: number; status: number }>;
  /** SecurityAccess state: unlocked until the session changes; the seed last handed out; wrong keys in a row. */
  private unlocked = false;
  private seed: number | undefined;
  private seedCount = 0;
  private wrongKeys = 0;
  private lockedUntil = 0;

  constructor(
    readonly config: EcuConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.dtcs = { stored: [...config.dtcs.stored], pending: [...config.dtcs.pending], permanent: [...config.dtcs.permanent] };
    this.udsDtcs = config.uds.dtcs.map((d) => ({ ...d }));
  }

  /** The answer to one request (pure state machine; serve() does the timing). */
  answer(req: Uint8Array, functional: boolean): Outcome {
    this.counters.requests++;
    const t = this.now();
    if (this.session !== 1 && t - this.lastRequestAt > this.config.uds.s3Ms) {
      log.debug(`ecu ${this.config.name}: S3 expired, back to the default session`);
      this.session = 1;
      this.unlocked = false;
    }
    this.lastRequestAt = t;
    const sid = req[0];
    let out: Outcome;
    if (sid >= 0x01 && sid <= 0x0a) out = this.obd(req, functional);
    else out = this.uds(req);
    if (out.response && out.response[0] === NEGATIVE_RESPONSE) {
      if (functional && FUNCTIONAL_SILENT.has(out.response[2])) out = {};
    } else if (out.response && UDS_SUBFUNCTION_SERVICES.has(sid) && req.length >= 2 && req[1] & SUPPRESS_POSITIVE) {
      out = { workMs: out.workMs };
    }
    if (!out.response) this.counters.silent++;
    else if (out.response[0] === NEGATIVE_RESPONSE) this.counters.negative++;
    else this.counters.positive++;
    return out;
  }

  // ---- OBD-II ----

  private obd(req: Uint8Array, functional: boolean): Outcome {
    const service = req[0];
    switch (service) {
      case 0x01: {
        const pids = [...req.subarray(1)];
        if (pids.length < 1 || pids.length > 6) return nrc(service, NRC.incorrectMessageLengthOrInvalidFormat);
        const parts: number[] = [service + POSITIVE_OFFSET];
        for (const pid of pids) {
          const data = this.pidData(pid);
          if (data) parts.push(pid, ...data);
        }
        // No supported PID among them: a J1979 ECU stays silent.
        return parts.length > 1 ? ok(parts) : {};
      }
      case 0x03:
      case 0x07:
      case 0x0a: {
        if (req.length !== 1) return nrc(service, NRC.incorrectMessageLengthOrInvalidFormat);
        const list = service === 0x03 ? this.dtcs.stored : service === 0x07 ? this.dtcs.pending : this.dtcs.permanent;
        return ok([service + POSITIVE_OFFSET, list.length, ...list.flatMap((c) => [c >> 8, c & 0xff])]);
      }
      case 0x04:
        if (req.length !== 1) return nrc(service, NRC.incorrectMessageLengthOrInvalidFormat);
        if (this.config.engineRunning) return nrc(service, NRC.conditionsNotCorrect);
        // Permanent DTCs survive a clear: only the ECU's own monitors remove them (J1979 service 0A).
        this.dtcs.stored = [];
        this.dtcs.pending = [];
        return ok([0x44]);
      case 0x09: {
        if (req.length !== 2) return nrc(service, NRC.incorrectMessageLengthOrInvalidFormat);
        const vin = this.config.vin;
        if (req[1] === 0x00) return ok([0x49, 0x00, ...supportedBitmap(0, vin ? [0x02] : [])]);
        if (req[1] === 0x02 && vin) return ok([0x49, 0x02, 0x01, ...Buffer.from(vin, "latin1")]);
        return {};
      }
      default:
        return functional ? {} : nrc(service, NRC.serviceNotSupported);
    }
  }

  /** A service 01 PID's data: configured, computed (bitmaps, monitor status), or undefined when unsupported. */
  private pidData(pid: number): Uint8Array | undefined {
    if (pid % 0x20 === 0) {
      const supported = [...this.config.pids.keys(), 0x01].filter((p) => p > pid && p <= pid + 0x20);
      const higher = [...this.config.pids.keys()].some((p) => p > pid + 0x20);
      if (pid !== 0 && supported.length === 0 && !higher) return undefined;
      return supportedBitmap(pid, higher ? [...supported, pid + 0x20] : supported);
    }
    if (pid === 0x01 && !this.config.pids.has(0x01)) {
      // MIL on while a confirmed (stored) DTC exists; the count is the stored DTCs'.
      const n = Math.min(0x7f, this.dtcs.stored.length);
      return Uint8Array.of((n > 0 ? 0x80 : 0) | n, 0x07, 0x65, 0x00);
    }
    return this.config.pids.get(pid);
  }

  // ---- UDS ----

  private uds(req: Uint8Array): Outcome {
    const sid = req[0];
    const u = this.config.uds;
    const allowed = u.serviceSessions.get(sid);
    if (allowed && !allowed.includes(this.session)) return nrc(sid, NRC.serviceNotSupportedInActiveSession);
    const out = this.udsService(req);
    const work = u.slow.get(sid);
    return work !== undefined ? { ...out, workMs: work } : out;
  }

  private udsService(req: Uint8Array): Outcome {
    const sid = req[0];
    const u = this.config.uds;
    const sub = (req[1] ?? 0) & 0x7f;
    switch (sid) {
      case SID.DiagnosticSessionControl: {
        if (req.length !== 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        if (!u.sessions.includes(sub)) return nrc(sid, NRC.subFunctionNotSupported);
        this.session = sub;
        // A new session starts locked (ISO 14229-1 9.3).
        this.unlocked = false;
        const p2s = Math.round(u.p2StarServerMs / 10);
        return ok([0x50, sub, u.p2ServerMs >> 8, u.p2ServerMs & 0xff, p2s >> 8, p2s & 0xff]);
      }
      case SID.ECUReset:
        if (req.length !== 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        if (sub < 1 || sub > 3) return nrc(sid, NRC.subFunctionNotSupported);
        this.session = 1;
        this.unlocked = false;
        return ok([0x51, sub]);
      case SID.TesterPresent:
        if (req.length !== 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        if (sub !== 0) return nrc(sid, NRC.subFunctionNotSupported);
        return ok([0x7e, 0x00]);
      case SID.ReadDataByIdentifier: {
        if (req.length < 3 || (req.length - 1) % 2 !== 0) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        const parts: number[] = [0x62];
        for (let i = 1; i < req.length; i += 2) {
          const did = (req[i] << 8) | req[i + 1];
          const d = did === 0xf186 ? { data: Uint8Array.of(this.session) } : u.dids.get(did);
          if (!d || (d.sessions && !d.sessions.includes(this.session))) return nrc(sid, NRC.requestOutOfRange);
          if (d.secured && !this.unlocked) return nrc(sid, NRC.securityAccessDenied);
          parts.push(req[i], req[i + 1], ...d.data);
        }
        if (parts.length > 4095) return nrc(sid, NRC.responseTooLong);
        return ok(parts);
      }
      case SID.ReadDTCInformation: {
        if (req.length < 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        if (sub !== 0x01 && sub !== 0x02) return nrc(sid, NRC.subFunctionNotSupported);
        if (req.length !== 3) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        const matching = this.udsDtcs.filter((d) => d.status & req[2] & u.availabilityMask);
        if (sub === 0x01) return ok([0x59, 0x01, u.availabilityMask, 0x01, matching.length >> 8, matching.length & 0xff]);
        return ok([0x59, 0x02, u.availabilityMask, ...matching.flatMap((d) => [d.dtc >> 16, (d.dtc >> 8) & 0xff, d.dtc & 0xff, d.status & u.availabilityMask])]);
      }
      case SID.ClearDiagnosticInformation: {
        if (req.length !== 4) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
        const group = (req[1] << 16) | (req[2] << 8) | req[3];
        if (group !== 0xffffff && !this.udsDtcs.some((d) => d.dtc === group)) return nrc(sid, NRC.requestOutOfRange);
        if (this.config.engineRunning) return nrc(sid, NRC.conditionsNotCorrect);
        this.udsDtcs = group === 0xffffff ? [] : this.udsDtcs.filter((d) => d.dtc !== group);
        if (group === 0xffffff) {
          this.dtcs.stored = [];
          this.dtcs.pending = [];
        }
        return ok([0x54]);
      }
      case SID.SecurityAccess:
        return this.securityAccess(req);
      default:
        return nrc(sid, NRC.serviceNotSupported);
    }
  }

  private securityAccess(req: Uint8Array): Outcome {
    const sid = SID.SecurityAccess;
    const sec = this.config.uds.security;
    if (!sec) return nrc(sid, NRC.serviceNotSupported);
    if (req.length < 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
    const sub = req[1] & 0x7f;
    if (sub === 0x01) {
      if (req.length !== 2) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
      if (this.now() < this.lockedUntil) return nrc(sid, NRC.requiredTimeDelayNotExpired);
      // Already unlocked: the seed is all zeros (ISO 14229-1 9.4.1).
      if (this.unlocked) return ok([0x67, 0x01, 0, 0, 0, 0]);
      // Seeds differ per request (a fixed one would let a recorded key replay); deterministic for tests.
      this.seed = (Math.imul(++this.seedCount, 0x9e3779b1) >>> 0) || 1;
      return ok([0x67, 0x01, this.seed >>> 24, (this.seed >>> 16) & 0xff, (this.seed >>> 8) & 0xff, this.seed & 0xff]);
    }
    if (sub === 0x02) {
      if (req.length !== 6) return nrc(sid, NRC.incorrectMessageLengthOrInvalidFormat);
      if (this.seed === undefined) return nrc(sid, NRC.requestSequenceError);
      const key = ((req[2] << 24) | (req[3] << 16) | (req[4] << 8) | req[5]) >>> 0;
      const expected = (this.seed ^ sec.xor) >>> 0;
      this.seed = undefined;
      if (key === expected) {
        this.unlocked = true;
        this.wrongKeys = 0;
        return ok([0x67, 0x02]);
      }
      if (++this.wrongKeys >= sec.attempts) {
        this.wrongKeys = 0;
        this.lockedUntil = this.now() + sec.delayMs;
        return nrc(sid, NRC.exceededNumberOfAttempts);
      }
      return nrc(sid, NRC.invalidKey);
    }
    return nrc(sid, NRC.subFunctionNotSupported);
  }

  /**
   * Answers every request arriving on `physical` (and `functional`, if given) until the links close. Answers
   * always leave on the physical link: the tester's flow control for a multi-frame answer comes to the physical ID.
   */
  async serve(physical: MessageLink, functional?: MessageLink): Promise<void> {
    const loop = async (link: MessageLink, isFunctional: boolean) => {
      for (;;) {
        let req: Uint8Array;
        try {
          req = await link.receive(60_000);
        } catch (e) {
          if (this.closed || (e as { code?: unknown }).code === "closed") return;
          if (!isLinkTimeout(e)) {
            this.counters.transportErrors++;
            log.debug(`ecu ${this.config.name}: ${(e as Error).message}`);
          }
          continue;
        }
        if (req.length === 0) continue;
        await this.respond(req, isFunctional, physical).catch((e: Error) => {
          if (!this.closed) log.warn(`ecu ${this.config.name}: answer to ${Buffer.from(req).toString("hex")} not sent: ${e.message}`);
        });
      }
    };
    await Promise.all([loop(physical, false), functional ? loop(functional, true) : Promise.resolve()]);
  }

  private closed = false;

  /** Ends serve() (its links' receives reject once their owner closes them). */
  stop(): void {
    this.closed = true;
  }

  private async respond(req: Uint8Array, functional: boolean, out: MessageLink): Promise<void> {
    const o = this.answer(req, functional);
    let work = o.workMs ?? 0;
    const { p2ServerMs, p2StarServerMs } = this.config.uds;
    if (work > p2ServerMs) {
      // Longer than P2server: say "responsePending" now and again before each P2* runs out, then answer.
      for (;;) {
        this.counters.responsePending++;
        await out.send(Uint8Array.of(NEGATIVE_RESPONSE, req[0], NRC.requestCorrectlyReceivedResponsePending));
        const step = Math.min(work, Math.floor(p2StarServerMs * 0.8));
        await sleep(step);
        work -= step;
        if (work <= 0) break;
      }
    } else if (work > 0) await sleep(work);
    if (o.response) await out.send(o.response);
  }
}

function ok(bytes: number[]): Outcome {
  return { response: Uint8Array.from(bytes) };
}

function nrc(sid: number, code: number): Outcome {
  return { response: Uint8Array.of(NEGATIVE_RESPONSE, sid, code) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- configuration ----

/** An ECU configuration file that cannot be used as written: `file:line: key: reason`. */
export class EcuConfigError extends VgwError {}

/** The ECU a config without a given field gets: OBD-II on 0x7E0/0x7E8, a few live values, one VIN, a few DTCs. */
export const DEFAULT_ECU_TEXT = `# the default simulated ECU (vgw diag ecu without --config)
name: engine
vin: 1HGCM82633A004352
engineRunning: false
pids:
  0x04: 35.3      # calculated engine load, %
  0x05: 90        # coolant, °C
  0x0C: 2500      # engine speed, rpm
  0x0D: 60        # vehicle speed, km/h
  0x0F: 25        # intake air, °C
  0x10: 12.5      # MAF, g/s
  0x11: 18.4      # throttle, %
  0x1C: 6         # EOBD
  0x1F: 600       # run time, s
  0x2F: 72.5      # fuel level, %
  0x42: 13.8      # control module voltage, V
  0x46: 21        # ambient air, °C
  0x51: 1         # gasoline
  0x5C: 95        # oil, °C
dtcs:
  stored: [P0301, P0420]
  pending: [P0171]
  permanent: [P0420]
uds:
  sessions: [1, 2, 3]
  dids:
    0xF190: 1HGCM82633A004352
    0xF18C: SN-000123
    0xF187: { hex: "0102030405" }
    0xF1A0: { text: "extended only", sessions: [3] }
    0xF1A1: { text: "secret", secured: true }   # after SecurityAccess (vgw diag uds --session 3 --unlock 5A5AA5A5)
  dtcs:
    - { code: P0301-00, status: 0x2F }
    - { code: P0420-00, status: 0x08 }
    - { code: U0100-87, status: 0x24 }
  services:
    0x11: { sessions: [2, 3] }
    0x27: { sessions: [2, 3] }
  security: { xor: 0x5A5AA5A5, attempts: 3, delayMs: 10000 }
`;

/** Reads an ECU configuration (YAML or JSON). Numbers may be written 0x...; map keys as numbers or hex text. */
export function loadEcuConfig(file?: string): EcuConfig[] {
  let text = DEFAULT_ECU_TEXT;
  if (file) {
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new EcuConfigError(`${file}: cannot read: ${(e as Error).message}`);
    }
  }
  return parseEcuConfig(text, file ?? "<default ECU>");
}

type Path = Array<string | number>;

/** Parses ECU configuration text: one ECU, or `ecus: [...]` for several on one bus. */
export function parseEcuConfig(text: string, file: string): EcuConfig[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) throw new EcuConfigError(`${file}:${lines.linePos(doc.errors[0].pos[0]).line}: YAML syntax: ${doc.errors[0].message.split("\n")[0]}`);
  const fail = (path: Path, reason: string): never => {
    const node = doc.getIn(path, true) as { range?: number[] } | undefined;
    const line = node?.range ? lines.linePos(node.range[0]).line : 1;
    throw new EcuConfigError(`${file}:${line}: ${path.map((p) => (typeof p === "number" ? `0x${hex(p)}` : p)).join(".")}: ${reason}`);
  };
  const root = doc.toJS({ mapAsMap: true }) as unknown;
  if (!(root instanceof Map)) fail([], "expected a mapping (name: ..., pids: ...)");
  const r = root as Map<string, unknown>;
  if (r.has("ecus")) {
    const list = r.get("ecus");
    if (!Array.isArray(list) || list.length === 0) fail(["ecus"], "expected a list of ECUs");
    const ecus = (list as unknown[]).map((e, i) => ecuConfig(e, ["ecus", i], fail, i));
    const ids = new Set<number>();
    ecus.forEach((e, i) => {
      if (ids.has(e.responseId)) fail(["ecus", i], `two ECUs answer from 0x${hex(e.responseId, 3)}`);
      ids.add(e.responseId);
    });
    return ecus;
  }
  return [ecuConfig(r, [], fail, 0)];
}

function ecuConfig(v: unknown, at: Path, fail: (p: Path, r: string) => never, index: number): EcuConfig {
  const m = mapAt(v, at, fail);
  const known = ["name", "ext", "requestId", "responseId", "functionalId", "vin", "pids", "dtcs", "engineRunning", "uds"];
  for (const k of m.keys()) if (!known.includes(String(k))) fail([...at, k as string], `unknown key (expected one of: ${known.join(", ")})`);
  const ext = m.has("ext") ? bool(m.get("ext"), [...at, "ext"], fail) : false;
  // ISO 15765-4: ECU n (0-7) takes physical requests on 0x7E0+n and answers from 0x7E8+n; 29-bit: 18DA<ecu>F1 / 18DAF1<ecu>.
  const n = index;
  const requestId = m.has("requestId") ? int(m.get("requestId"), [...at, "requestId"], fail, ext ? 0x1fffffff : 0x7ff) : ext ? 0x18da10f1 + (n << 8) : 0x7e0 + n;
  const responseId = m.has("responseId")
    ? int(m.get("responseId"), [...at, "responseId"], fail, ext ? 0x1fffffff : 0x7ff)
    : ext
      ? 0x18daf100 | ((requestId >> 8) & 0xff)
      : requestId + 8;
  const cfg: EcuConfig = {
    name: m.has("name") ? String(m.get("name")) : `ecu${n}`,
    ext,
    requestId,
    responseId,
    functionalId: m.has("functionalId") ? int(m.get("functionalId"), [...at, "functionalId"], fail, 0x1fffffff) : ext ? 0x18db33f1 : 0x7df,
    pids: new Map(),
    dtcs: { stored: [], pending: [], permanent: [] },
    engineRunning: m.has("engineRunning") ? bool(m.get("engineRunning"), [...at, "engineRunning"], fail) : false,
    uds: {
      dids: new Map(),
      dtcs: [],
      availabilityMask: 0xff,
      sessions: [1, 2, 3],
      serviceSessions: new Map(),
      slow: new Map(),
      p2ServerMs: 50,
      p2StarServerMs: 5000,
      s3Ms: 5000,
    },
  };
  if (m.has("vin")) {
    const vin = String(m.get("vin"));
    if (!/^[ -~]{1,17}$/.test(vin)) fail([...at, "vin"], `a VIN is up to 17 printable characters, got ${JSON.stringify(vin)}`);
    cfg.vin = vin;
  }
  if (m.has("pids")) {
    for (const [k, val] of mapAt(m.get("pids"), [...at, "pids"], fail)) {
      const p = [...at, "pids", k as string | number];
      const pid = key(k, p, fail, 0xff);
      if (pid % 0x20 === 0) fail(p, "the supported-PID bitmaps are computed from the PIDs given");
      try {
        if (typeof val === "string") cfg.pids.set(pid, hexBytes(val, p, fail));
        else if (typeof val === "number") cfg.pids.set(pid, encodePid(pid, [val]));
        else if (Array.isArray(val) && val.every((x) => typeof x === "number")) cfg.pids.set(pid, encodePid(pid, val as number[]));
        else fail(p, "expected a physical value, a list of them (one per field), or the data bytes as hex text");
      } catch (e) {
        if (e instanceof EcuConfigError) throw e;
        fail(p, (e as Error).message);
      }
    }
  }
  if (m.has("dtcs")) {
    const d = mapAt(m.get("dtcs"), [...at, "dtcs"], fail);
    for (const kind of ["stored", "pending", "permanent"] as const) {
      if (!d.has(kind)) continue;
      const list = d.get(kind);
      if (!Array.isArray(list)) fail([...at, "dtcs", kind], "expected a list like [P0301, U0100]");
      cfg.dtcs[kind] = (list as unknown[]).map((c, i) => {
        try {
          return parseDtc(String(c));
        } catch (e) {
          return fail([...at, "dtcs", kind, i], (e as Error).message);
        }
      });
    }
  }
  if (m.has("uds")) udsConfig(m.get("uds"), [...at, "uds"], fail, cfg);
  return cfg;
}

function udsConfig(v: unknown, at: Path, fail: (p: Path, r: string) => never, cfg: EcuConfig): void {
  const m = mapAt(v, at, fail);
  const u = cfg.uds;
  const known = ["dids", "dtcs", "availabilityMask", "sessions", "services", "slow", "p2ServerMs", "p2StarServerMs", "s3Ms", "security"];
  for (const k of m.keys()) if (!known.includes(String(k))) fail([...at, k as string], `unknown key (expected one of: ${known.join(", ")})`);
  const sessions = (val: unknown, p: Path) => {
    if (!Array.isArray(val) || val.length === 0) fail(p, "expected a list of session numbers like [1, 3]");
    return (val as unknown[]).map((x, i) => int(x, [...p, i], fail, 0x7f));
  };
  if (m.has("sessions")) u.sessions = sessions(m.get("sessions"), [...at, "sessions"]);
  if (!u.sessions.includes(1)) u.sessions.unshift(1);
  if (m.has("availabilityMask")) u.availabilityMask = int(m.get("availabilityMask"), [...at, "availabilityMask"], fail, 0xff);
  for (const k of ["p2ServerMs", "p2StarServerMs", "s3Ms"] as const) if (m.has(k)) u[k] = int(m.get(k), [...at, k], fail, 655350);
  if (m.has("security")) {
    const p = [...at, "security"];
    const sec = mapAt(m.get("security"), p, fail);
    u.security = {
      xor: sec.has("xor") ? int(sec.get("xor"), [...p, "xor"], fail, 0xffffffff) : fail(p, "missing 'xor': the key is the seed XOR this 32-bit number"),
      attempts: sec.has("attempts") ? int(sec.get("attempts"), [...p, "attempts"], fail, 255) || 1 : 3,
      delayMs: sec.has("delayMs") ? int(sec.get("delayMs"), [...p, "delayMs"], fail, 600_000) : 10_000,
    };
  }
  if (m.has("dids")) {
    for (const [k, val] of mapAt(m.get("dids"), [...at, "dids"], fail)) {
      const p = [...at, "dids", k as string | number];
      const did = key(k, p, fail, 0xffff);
      if (typeof val === "string") u.dids.set(did, { data: Buffer.from(val, "latin1") });
      else {
        const d = mapAt(val, p, fail);
        let data: Uint8Array | undefined;
        if (d.has("text")) data = Buffer.from(String(d.get("text")), "latin1");
        if (d.has("hex")) data = hexBytes(String(d.get("hex")), [...p, "hex"], fail);
        if (!data) fail(p, "give the data as text (a string, or text: ...) or as hex: ...");
        const conf: DidConfig = { data: data! };
        if (d.has("sessions")) conf.sessions = sessions(d.get("sessions"), [...p, "sessions"]);
        if (d.has("secured")) conf.secured = bool(d.get("secured"), [...p, "secured"], fail);
        u.dids.set(did, conf);
      }
    }
  }
  if (m.has("dtcs")) {
    const list = m.get("dtcs");
    if (!Array.isArray(list)) fail([...at, "dtcs"], "expected a list of { code: P0301-13, status: 0x2F }");
    u.dtcs = (list as unknown[]).map((e, i) => {
      const d = mapAt(e, [...at, "dtcs", i], fail);
      let dtc = 0;
      try {
        const c = d.get("code");
        dtc = parseUdsDtc(typeof c === "number" ? c : String(c));
      } catch (err) {
        fail([...at, "dtcs", i, "code"], (err as Error).message);
      }
      return { dtc, status: d.has("status") ? int(d.get("status"), [...at, "dtcs", i, "status"], fail, 0xff) : 0x09 };
    });
  }
  if (m.has("services")) {
    for (const [k, val] of mapAt(m.get("services"), [...at, "services"], fail)) {
      const p = [...at, "services", k as string | number];
      const s = mapAt(val, p, fail);
      u.serviceSessions.set(key(k, p, fail, 0xff), sessions(s.get("sessions"), [...p, "sessions"]));
    }
  }
  if (m.has("slow")) {
    for (const [k, val] of mapAt(m.get("slow"), [...at, "slow"], fail)) {
      const p = [...at, "slow", k as string | number];
      u.slow.set(key(k, p, fail, 0xff), int(val, p, fail, 600_000));
    }
  }
}

function mapAt(v: unknown, at: Path, fail: (p: Path, r: string) => never): Map<unknown, unknown> {
  if (!(v instanceof Map)) return fail(at, "expected a mapping (key: value)");
  return v;
}

function bool(v: unknown, at: Path, fail: (p: Path, r: string) => never): boolean {
  if (typeof v !== "boolean") fail(at, `expected true or false, got ${JSON.stringify(v)}`);
  return v as boolean;
}

function int(v: unknown, at: Path, fail: (p: Path, r: string) => never, max: number): number {
  const n = typeof v === "string" && /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) fail(at, `expected a whole number 0..0x${hex(max)}, got ${JSON.stringify(v)}`);
  return n as number;
}

/** A map key: a YAML number (0x0C, 12) or hex text ("0C", "F190"), as JSON can only give. */
function key(k: unknown, at: Path, fail: (p: Path, r: string) => never, max: number): number {
  if (typeof k === "string" && /^(0x)?[0-9a-f]+$/i.test(k)) return int(parseInt(k.replace(/^0x/i, ""), 16), at, fail, max);
  return int(k, at, fail, max);
}

function hexBytes(text: string, at: Path, fail: (p: Path, r: string) => never): Uint8Array {
  const clean = text.replace(/[\s.:]/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(clean)) fail(at, `expected bytes as hex like "0102" or "01 02", got ${JSON.stringify(text)}`);
  return Buffer.from(clean, "hex");
}
