/**
 * Diagnostic links through a remote gateway (`-i mqtt://broker/device`): each request is one `diag` command on the
 * gateway's command topic, the gateway runs ISO-TP on its CAN bus (flow control, consecutive frames, responsePending)
 * and answers with the whole response in the command's result (docs/protocol.md, "Diagnostics"). The UDS and OBD-II
 * testers (uds.ts, obd.ts) run unchanged on top: a link's send() is the whole exchange, its receive() hands out what
 * the exchange brought.
 *
 * What the gateway cannot do: hear more than one response id per request (its `diag` command names one `res`), so an
 * OBD-II request through it collects one ECU's answer; and requests longer than one single frame (7 bytes).
 */
import { VgwError } from "../../frame/errors";
import { MqttBus } from "../bus/mqtt";
import type { MessageLink } from "./link";
import type { ObdChannels } from "./obd";
import type { LinkAddress } from "./bus-links";

/** The gateway's transport error codes (firmware/src/diag.ts): the message is lost, the link stays usable. */
const TRANSPORT_ERRORS = ["timeout", "wrong-sn", "overflow", "bad-frame"];

/** The gateway refused a request before it reached the bus (not-allowed, rate-limited, busy, listen-only, ...). */
export class GatewayRefusalError extends VgwError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A link error with a code, as ISO-TP's (`timeout` is what the testers treat as "no answer in time"). */
class LinkError extends VgwError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The key of a CAN id on the gateway's wire: bit 31 marks a 29-bit id. */
function key(id: number, ext: boolean): number {
  return ext ? (id | 0x80000000) >>> 0 : id;
}

/** One request/response address pair through the gateway. */
export class GatewayDiagLink implements MessageLink {
  /** What the last exchange brought: a response, or the transport error it ended with. */
  private readonly inbox: Array<Uint8Array | LinkError> = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly bus: MqttBus,
    private readonly address: LinkAddress,
    /** Where responses go: this link, or the responder link of an OBD-II functional request. */
    private readonly answers?: GatewayDiagLink,
  ) {}

  async send(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new LinkError("closed", "the link is closed");
    if (payload.length < 1 || payload.length > 7) throw new VgwError(`the gateway sends requests of 1..7 bytes (one ISO-TP single frame); this one has ${payload.length}`);
    const to = this.answers ?? this;
    const r = await this.bus.diag(key(this.address.txId, this.address.ext), key(to.address.rxId, to.address.ext), payload);
    if (r.ok) {
      // a suppressed positive response (TesterPresent 3E 80): nothing came, which the tester reads as "no answer"
      if (r.data && r.data.length) to.put(r.data);
      else to.put(new LinkError("timeout", "no response (suppressed)"));
      return;
    }
    if (TRANSPORT_ERRORS.includes(r.reason)) return to.put(new LinkError(r.reason, `the gateway's exchange ended: ${r.reason}${r.msg ? ` (${r.msg})` : ""}`));
    throw new GatewayRefusalError(r.reason, `the gateway refused the request: ${r.reason}${r.msg ? ` (${r.msg})` : ""}`);
  }

  private put(m: Uint8Array | LinkError): void {
    this.inbox.push(m);
    this.waiter?.();
  }

  async receive(timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) throw new LinkError("closed", "the link is closed");
      const m = this.inbox.shift();
      if (m instanceof LinkError) throw m;
      if (m) return m;
      const left = deadline - Date.now();
      if (left <= 0) throw new LinkError("timeout", `no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiter?.();
  }
}

export function isGatewaySpec(spec: string): boolean {
  return /^mqtts?:\/\//i.test(spec);
}

/** A UDS link to one ECU through the gateway; close() also ends the broker connection. */
export async function openGatewayLink(spec: string, address: LinkAddress): Promise<MessageLink> {
  const bus = await MqttBus.open(spec);
  const link = new GatewayDiagLink(bus, address);
  return {
    send: (p) => link.send(p),
    receive: (t) => link.receive(t),
    close: async () => {
      await link.close();
      await bus.close();
    },
  };
}

/**
 * OBD-II through the gateway: requests from `requestId` (functional 7DF, or one ECU's physical id), the one ECU
 * answering on `responseId` heard.
 */
export async function openGatewayObdChannels(spec: string, a: { ext: boolean; requestId: number; responseId: number; flowControlId: number }): Promise<ObdChannels & { close(): Promise<void> }> {
  const bus = await MqttBus.open(spec);
  const responder = new GatewayDiagLink(bus, { txId: a.flowControlId, rxId: a.responseId, ext: a.ext });
  const request = a.requestId === a.flowControlId ? responder : new GatewayDiagLink(bus, { txId: a.requestId, rxId: a.responseId, ext: a.ext }, responder);
  return {
    request,
    responders: [{ ecu: a.responseId, link: responder }],
    close: async () => {
      await request.close();
      await responder.close();
      await bus.close();
    },
  };
}
