/**
 * UDS (ISO 14229-1) tester: requests over a MessageLink (ISO-TP or any other transport), answers checked against
 * the request, negative responses named, and the timing of ISO 14229-2:
 *
 *   P2   how long the tester waits for the first answer (default 1000 ms: the server's 50 ms plus the transport's
 *        latency on a loaded gateway or a slow emulated kernel)
 *   P2*  how long it waits after a `7F <SID> 78` (requestCorrectlyReceived-ResponsePending); every further 0x78
 *        restarts it
 *
 * With suppressPositiveResponse (bit 7 of the sub-function) the server answers only with a negative response, so the
 * tester waits P2 for one and takes silence as success.
 */
import { VgwError } from "../../frame/errors";
import { log } from "../log";
import type { MessageLink } from "./link";
import { udsDtcText } from "../../can-db/dtc-code";
import {
  hex,
  NEGATIVE_RESPONSE,
  NRC,
  POSITIVE_OFFSET,
  SID,
  SUPPRESS_POSITIVE,
  nrcName,
  serviceName,
  sessionName,
  statusBitNames,
} from "./uds-codes";

/** The server refused: `7F <SID> <NRC>`. */
export class NegativeResponseError extends VgwError {
  readonly nrcName: string;
  constructor(
    readonly sid: number,
    readonly nrc: number,
  ) {
    const name = nrcName(nrc);
    super(`${serviceName(sid)}: negative response 0x${hex(nrc)} ${name}`);
    this.nrcName = name;
  }
}

/** No answer within P2 (or P2* after a responsePending). */
export class DiagTimeoutError extends VgwError {}

/** The transport lost the answer (a named ISO-TP error, for example), or the answer is malformed. */
export class DiagResponseError extends VgwError {}

export interface UdsTiming {
  /** Wait for the first answer, ms. */
  p2Ms: number;
  /** Wait after each responsePending (0x78), ms. */
  p2StarMs: number;
}

export const DEFAULT_TIMING: UdsTiming = { p2Ms: 1000, p2StarMs: 5000 };

export interface RequestOptions {
  /** Set bit 7 of the sub-function (the request's 2nd byte): the server sends no positive response. */
  suppressPositive?: boolean;
}

/** What one request/response exchange counted, for summaries and tests. */
export interface UdsCounters {
  requests: number;
  responsePending: number;
  negative: number;
  timeouts: number;
  /** Messages that answered nothing we asked (another service, a late answer to an earlier request): skipped. */
  unexpected: number;
}

export interface SessionInfo {
  session: number;
  name: string;
  /** The server's P2 and P2* (ms) from the response's session parameter record, when it sent one. */
  p2ServerMs?: number;
  p2StarServerMs?: number;
}

export interface UdsDtc {
  /** The three-byte DTC. */
  dtc: number;
  /** J2012 code and failure type: `P0301-13`. */
  code: string;
  status: number;
  statusBits: string[];
}

export interface DtcReport {
  availabilityMask: number;
  dtcs: UdsDtc[];
}

/**
 * True when a link's receive() rejected because its time ran out (ISO-TP's `timeout` code; a `TimeoutError`), not
 * because the transport lost a message (an ISO-TP N_Cr timeout or a wrong sequence number is a lost message).
 */
export function isLinkTimeout(e: unknown): boolean {
  const err = e as { code?: unknown; name?: unknown } | undefined;
  return err?.code === "timeout" || err?.name === "TimeoutError";
}

export class UdsClient {
  readonly timing: UdsTiming;
  readonly counters: UdsCounters = { requests: 0, responsePending: 0, negative: 0, timeouts: 0, unexpected: 0 };

  constructor(
    private readonly link: MessageLink,
    timing: Partial<UdsTiming> = {},
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  /**
   * Sends one request and returns the positive response (undefined when it was suppressed and none came).
   * Throws NegativeResponseError, DiagTimeoutError or DiagResponseError.
   */
  async request(payload: Uint8Array, opts: RequestOptions = {}): Promise<Uint8Array | undefined> {
    if (payload.length === 0) throw new RangeError("an empty UDS request");
    const req = Uint8Array.from(payload);
    if (opts.suppressPositive) {
      if (req.length < 2) throw new RangeError(`${serviceName(req[0])} has no sub-function to suppress the positive response with`);
      req[1] |= SUPPRESS_POSITIVE;
    }
    const sid = req[0];
    this.counters.requests++;
    await this.link.send(req);
    let waitMs = this.timing.p2Ms;
    let pending = false;
    for (;;) {
      const deadline = Date.now() + waitMs;
      let resp: Uint8Array;
      try {
        resp = await this.link.receive(waitMs);
      } catch (e) {
        if (isLinkTimeout(e)) {
          // After a responsePending the server owes a final answer even when the positive one was suppressed.
          if (opts.suppressPositive && !pending) return undefined;
          this.counters.timeouts++;
          throw new DiagTimeoutError(`${serviceName(sid)}: no response within ${waitMs} ms (${pending ? "P2* after responsePending" : "P2"})`, { cause: e });
        }
        throw new DiagResponseError(`${serviceName(sid)}: the response was lost: ${(e as Error).message}`, { cause: e });
      }
      if (resp.length >= 3 && resp[0] === NEGATIVE_RESPONSE && resp[1] === sid) {
        if (resp[2] === NRC.requestCorrectlyReceivedResponsePending) {
          this.counters.responsePending++;
          log.debug(`uds: ${serviceName(sid)}: response pending, waiting up to ${this.timing.p2StarMs} ms`);
          waitMs = this.timing.p2StarMs;
          pending = true;
          continue;
        }
        this.counters.negative++;
        throw new NegativeResponseError(sid, resp[2]);
      }
      if (resp.length >= 1 && resp[0] === sid + POSITIVE_OFFSET) return resp;
      // Something else on our link (a late answer to an earlier request): not ours; keep waiting for the rest of P2.
      this.counters.unexpected++;
      log.debug(`uds: skipped an unexpected message ${Buffer.from(resp).toString("hex")} while waiting for ${serviceName(sid)}`);
      waitMs = Math.max(1, deadline - Date.now());
    }
  }

  /** DiagnosticSessionControl (0x10). */
  async diagnosticSessionControl(session: number, opts: RequestOptions = {}): Promise<SessionInfo | undefined> {
    const r = await this.request(Uint8Array.of(SID.DiagnosticSessionControl, session), opts);
    if (!r) return undefined;
    expectLength(r, 2, "DiagnosticSessionControl");
    const info: SessionInfo = { session: r[1] & 0x7f, name: sessionName(r[1] & 0x7f) };
    if (r.length >= 6) {
      info.p2ServerMs = (r[2] << 8) | r[3];
      // P2*server_max travels in units of 10 ms.
      info.p2StarServerMs = ((r[4] << 8) | r[5]) * 10;
    }
    return info;
  }

  /** TesterPresent (0x3E 0x00): keeps a non-default session open. */
  async testerPresent(opts: RequestOptions = {}): Promise<void> {
    await this.request(Uint8Array.of(SID.TesterPresent, 0x00), opts);
  }

  /** ReadDataByIdentifier (0x22) of one DID: its data record. */
  async readDataByIdentifier(did: number): Promise<Uint8Array> {
    const r = (await this.request(Uint8Array.of(SID.ReadDataByIdentifier, did >> 8, did & 0xff)))!;
    expectLength(r, 3, "ReadDataByIdentifier");
    const echoed = (r[1] << 8) | r[2];
    if (echoed !== did) throw new DiagResponseError(`ReadDataByIdentifier: asked for DID 0x${hex(did, 4)}, the answer is for 0x${hex(echoed, 4)}`);
    return r.subarray(3);
  }

  /** ReadDTCInformation (0x19) reportDTCByStatusMask (0x02): the DTCs whose status has any bit of `mask`. */
  async readDtcByStatusMask(mask: number): Promise<DtcReport> {
    const r = (await this.request(Uint8Array.of(SID.ReadDTCInformation, 0x02, mask)))!;
    expectLength(r, 3, "ReadDTCInformation");
    if ((r[1] & 0x7f) !== 0x02) throw new DiagResponseError(`ReadDTCInformation: asked for sub-function 0x02, the answer is for 0x${hex(r[1])}`);
    if ((r.length - 3) % 4 !== 0) throw new DiagResponseError(`ReadDTCInformation: ${r.length - 3} bytes of DTC records, not a multiple of 4`);
    const dtcs: UdsDtc[] = [];
    for (let i = 3; i + 4 <= r.length; i += 4) {
      const dtc = (r[i] << 16) | (r[i + 1] << 8) | r[i + 2];
      dtcs.push({ dtc, code: udsDtcText(dtc), status: r[i + 3], statusBits: statusBitNames(r[i + 3]) });
    }
    return { availabilityMask: r[2], dtcs };
  }

  /** ClearDiagnosticInformation (0x14) of a group (0xFFFFFF: all DTCs). */
  async clearDiagnosticInformation(group = 0xffffff): Promise<void> {
    await this.request(Uint8Array.of(SID.ClearDiagnosticInformation, (group >> 16) & 0xff, (group >> 8) & 0xff, group & 0xff));
  }

  /**
   * SecurityAccess (0x27) at `level` (1, 3, ...): asks for the seed, computes the key with `key`, sends it. A seed of
   * zeros means the ECU is already unlocked. Returns whether a key was sent.
   */
  async securityAccess(level: number, key: (seed: Uint8Array) => Uint8Array): Promise<boolean> {
    const requestSeed = 2 * level - 1;
    const r = (await this.request(Uint8Array.of(SID.SecurityAccess, requestSeed)))!;
    expectLength(r, 2, "SecurityAccess");
    const seed = r.subarray(2);
    if (seed.every((b) => b === 0)) return false;
    await this.request(Uint8Array.of(SID.SecurityAccess, requestSeed + 1, ...key(seed)));
    return true;
  }

  /** ECUReset (0x11); for enableRapidPowerShutDown the server says how long it will take (s), else undefined. */
  async ecuReset(type: number, opts: RequestOptions = {}): Promise<{ type: number; powerDownTime?: number } | undefined> {
    const r = await this.request(Uint8Array.of(SID.ECUReset, type), opts);
    if (!r) return undefined;
    expectLength(r, 2, "ECUReset");
    return r.length >= 3 ? { type: r[1] & 0x7f, powerDownTime: r[2] } : { type: r[1] & 0x7f };
  }
}

function expectLength(r: Uint8Array, min: number, what: string): void {
  if (r.length < min) throw new DiagResponseError(`${what}: a positive response of ${r.length} byte(s), expected at least ${min}`);
}
