/**
 * Diagnostic links on a CAN bus: the tester's (UDS to one ECU; OBD-II functional requests and the answering ECUs)
 * and the simulated ECU's, each a MessageLink carried by ISO-TP (ISO 15765-2) over its own Bus opened with a filter
 * on its receive ID (host/diag/isotp.ts), so every link reads only its own frames, on any bus vgw opens (`virtual:`,
 * vcan0, can0).
 *
 * Addressing follows ISO 15765-4 (OBD-II on CAN): 11-bit functional 0x7DF, ECU n physical 0x7E0+n, answers from
 * 0x7E8+n; 29-bit functional 0x18DB33F1, physical 0x18DA<ecu>F1, answers 0x18DAF1<ecu>. Frames are padded to 8
 * bytes, as ISO 15765-4 requires.
 */
import type { Bus, BusOptions } from "../bus";
import { IsoTpEndpoint, openIsoTp, type IsoTpOptions } from "./isotp";
import { log } from "../log";
import type { MessageLink } from "./link";
import type { ObdChannels } from "./obd";
import { SimulatedEcu, type EcuConfig } from "./ecu-sim";
import { hex } from "./uds-codes";

export interface LinkAddress {
  /** The ID this end sends on (requests for a tester, answers for an ECU) and the ID it receives on. */
  txId: number;
  rxId: number;
  ext: boolean;
}

/** Where links get their buses: a bus spec for openBus, or an opener (the HIL harness's view of a gateway's wire). */
export type BusSource = string | ((options: BusOptions) => Promise<Bus>);

/** ISO 15765-4 asks for 8-byte frames; 0xCC is the filler the Linux kernel uses too. */
const PADDING = 0xcc;

/** One ISO-TP endpoint (host/diag/isotp.ts) on its own Bus, which receives only `rxId`. */
export async function openIsoTpLink(source: BusSource, address: LinkAddress): Promise<MessageLink> {
  const options: IsoTpOptions = { txId: address.txId, rxId: address.rxId, txExt: address.ext, rxExt: address.ext, txPadding: PADDING };
  if (typeof source === "string") return openIsoTp(source, options);
  const busOptions: BusOptions = { filters: [{ id: address.rxId, mask: address.ext ? 0x1fffffff : 0x7ff, ext: address.ext }] };
  const bus = await source(busOptions);
  try {
    return new IsoTpEndpoint(bus, options, true);
  } catch (e) {
    await bus.close();
    throw e;
  }
}

/** The IDs a tester uses to reach OBD-II ECUs. */
export interface ObdAddressing {
  ext: boolean;
  /** Physical addressing to one ECU (its request ID) instead of the functional broadcast. */
  physical?: number;
  /**
   * The answer IDs to listen on. Default: the eight of ISO 15765-4 for 11-bit IDs (0x7E8-0x7EF); for 29-bit IDs, where
   * any ECU address may answer (0x18DAF1xx), the addresses 0x10-0x17 (the engine ECU is 0x10 by convention).
   */
  responseIds?: number[];
}

/** ISO 15765-4: the request ID that pairs with an answer ID (flow control for the ECU's multi-frame answers goes there). */
export function requestIdFor(responseId: number, ext: boolean): number {
  return ext ? 0x18da00f1 | ((responseId & 0xff) << 8) : responseId - 8;
}

/** The tester's OBD-II links: a functional request link and one link per answering ECU. */
export async function openObdChannels(busSpec: string, a: ObdAddressing): Promise<ObdChannels & { close(): Promise<void> }> {
  const responseIds =
    a.responseIds ??
    (a.physical !== undefined
      ? [a.ext ? 0x18daf100 | ((a.physical >> 8) & 0xff) : a.physical + 8]
      : Array.from({ length: 8 }, (_, i) => (a.ext ? 0x18daf110 + i : 0x7e8 + i)));
  const links: MessageLink[] = [];
  try {
    const responders: Array<{ ecu: number; link: MessageLink }> = [];
    for (const id of responseIds) {
      const link = await openIsoTpLink(busSpec, { txId: requestIdFor(id, a.ext), rxId: id, ext: a.ext });
      links.push(link);
      responders.push({ ecu: id, link });
    }
    let request: MessageLink;
    if (a.physical !== undefined) request = responders[0].link;
    else {
      // Functional requests are single frames (ISO 15765-4): nothing answers on this link's receive ID.
      request = await openIsoTpLink(busSpec, { txId: a.ext ? 0x18db33f1 : 0x7df, rxId: a.ext ? 0x18db33f1 : 0x7df, ext: a.ext });
      links.push(request);
    }
    return { request, responders, close: async () => void (await Promise.all(links.map((l) => l.close()))) };
  } catch (e) {
    await Promise.all(links.map((l) => l.close()));
    throw e;
  }
}

/** Simulated ECUs answering on a bus until close(). */
export interface RunningEcus {
  ecus: SimulatedEcu[];
  close(): Promise<void>;
}

export async function startEcus(busSpec: BusSource, configs: EcuConfig[]): Promise<RunningEcus> {
  const links: MessageLink[] = [];
  const ecus: SimulatedEcu[] = [];
  const serving: Array<Promise<void>> = [];
  try {
    for (const c of configs) {
      const physical = await openIsoTpLink(busSpec, { txId: c.responseId, rxId: c.requestId, ext: c.ext });
      links.push(physical);
      const functional = await openIsoTpLink(busSpec, { txId: c.responseId, rxId: c.functionalId, ext: c.ext });
      links.push(functional);
      const ecu = new SimulatedEcu(c);
      ecus.push(ecu);
      serving.push(ecu.serve(physical, functional));
      log.debug(`ecu ${c.name}: requests on 0x${hex(c.requestId, 3)} and 0x${hex(c.functionalId, 3)}, answers from 0x${hex(c.responseId, 3)}`);
    }
  } catch (e) {
    for (const ecu of ecus) ecu.stop();
    await Promise.all(links.map((l) => l.close()));
    throw e;
  }
  return {
    ecus,
    close: async () => {
      for (const ecu of ecus) ecu.stop();
      await Promise.all(links.map((l) => l.close()));
      await Promise.all(serving);
    },
  };
}
