/**
 * A broker that is not one: a TCP server on 127.0.0.1 that speaks MQTT 3.1.1 (or MQTT 5: the `*5` helpers) as raw bytes, so a test can send a
 * client anything, including what no real broker would (a PUBLISH before CONNACK, QoS 3, a 5-byte remaining
 * length). Each accepted connection is handed to the test as a `RawConnection` that parses what the client sends
 * into packets and writes whatever bytes it is given.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { within } from "./wait";

export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export const CONNECT = 1;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBSCRIBE = 8;
export const PINGREQ = 12;

/** The remaining-length varint of MQTT (2.2.3). */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export function packet(type: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(type << 4) | flags]), remainingLength(body.length), body]);
}

function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}

/** A PUBLISH with any flags (QoS bits 1-2, RETAIN bit 0, DUP bit 3); a packet id is written when `pid` is given. */
export function publish(topic: string, payload: Uint8Array, flags: number, pid?: number): Buffer {
  const t = Buffer.from(topic);
  const parts = [u16(t.length), t];
  if (pid !== undefined) parts.push(u16(pid));
  parts.push(Buffer.from(payload));
  return packet(PUBLISH, flags, Buffer.concat(parts));
}

export const connack = (rc = 0): Buffer => packet(2, 0, Buffer.from([0, rc]));
export const suback = (pid: number, code: number): Buffer => packet(9, 0, Buffer.concat([u16(pid), Buffer.from([code])]));
export const puback = (pid: number): Buffer => packet(PUBACK, 0, u16(pid));
export const pingresp = (): Buffer => packet(13, 0, Buffer.alloc(0));

/** MQTT 5 CONNACK: reason code `rc`, then a property block of `props` (raw bytes, written as given). */
export const connack5 = (rc = 0, props: Buffer = Buffer.alloc(0)): Buffer =>
  packet(2, 0, Buffer.concat([Buffer.from([0, rc]), remainingLength(props.length), props]));
/** MQTT 5 SUBACK of one subscription, no properties. */
export const suback5 = (pid: number, code: number): Buffer => packet(9, 0, Buffer.concat([u16(pid), Buffer.from([0, code])]));
/** MQTT 5 PUBLISH: like `publish`, with a property block (a length, then `props`, raw) after the packet id. */
export function publish5(topic: string, payload: Uint8Array, flags: number, pid: number, props: Buffer = Buffer.alloc(0), propLength = props.length): Buffer {
  const t = Buffer.from(topic);
  return packet(PUBLISH, flags, Buffer.concat([u16(t.length), t, u16(pid), remainingLength(propLength), props, Buffer.from(payload)]));
}

/** The protocol level (4: 3.1.1, 5: MQTT 5) of a CONNECT the client sent. */
export const connectLevel = (p: RawPacket): number => p.body[6];

/** A variable byte integer at `pos`: its value and size. */
function varint(b: Buffer, pos: number): { value: number; size: number } {
  let value = 0;
  let mul = 1;
  let i = 0;
  for (;;) {
    const x = b[pos + i++];
    value += (x & 0x7f) * mul;
    mul *= 128;
    if (!(x & 0x80)) return { value, size: i };
  }
}

/** Topic, packet id and payload of a PUBLISH the client sent; `v5`: its property block is skipped. */
export function readPublish(p: RawPacket, v5 = false): { topic: string; pid: number; payload: Buffer } {
  const tlen = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + tlen).toString("utf8");
  const qos = (p.flags >> 1) & 3;
  const pid = qos ? p.body.readUInt16BE(2 + tlen) : 0;
  let at = 2 + tlen + (qos ? 2 : 0);
  if (v5) {
    const n = varint(p.body, at);
    at += n.size + n.value;
  }
  return { topic, pid, payload: p.body.subarray(at) };
}

export class RawConnection {
  readonly packets: RawPacket[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly closedP: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on("error", () => undefined);
    this.closedP = new Promise((resolve) =>
      socket.on("close", () => {
        this.closed = true;
        this.notify();
        resolve();
      }),
    );
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 2) return;
      let rem = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        if (i >= this.buf.length) return;
        const b = this.buf[i++];
        rem += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) break;
      }
      if (this.buf.length < i + rem) return;
      this.packets.push({ type: this.buf[0] >> 4, flags: this.buf[0] & 15, body: this.buf.subarray(i, i + rem) });
      this.buf = this.buf.subarray(i + rem);
      this.notify();
    }
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The first packet (from `from` on) that satisfies `pred`; rejects after `timeoutMs` or when the client closes. */
  async next(pred: (p: RawPacket) => boolean, timeoutMs: number, what: string, from = 0): Promise<RawPacket> {
    const find = (): RawPacket | undefined => this.packets.slice(from).find(pred);
    return await within(
      (async () => {
        for (;;) {
          const p = find();
          if (p) return p;
          if (this.closed) throw new Error(`the client closed the connection before ${what}`);
          await new Promise<void>((r) => this.waiters.push(r));
        }
      })(),
      timeoutMs,
      what,
    );
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

export class RawMqttServer {
  private readonly server: Server;
  private queue: RawConnection[] = [];
  private waiters: Array<(c: RawConnection) => void> = [];
  readonly all: RawConnection[] = [];

  private constructor() {
    this.server = createServer((s) => {
      const c = new RawConnection(s);
      this.all.push(c);
      const w = this.waiters.shift();
      if (w) w(c);
      else this.queue.push(c);
    });
  }

  static async start(): Promise<RawMqttServer> {
    const r = new RawMqttServer();
    await new Promise<void>((resolve, reject) => {
      r.server.once("error", reject);
      r.server.listen(0, "127.0.0.1", resolve);
    });
    return r;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next connection the client opens (bounded). */
  async accept(timeoutMs: number): Promise<RawConnection> {
    const c = this.queue.shift();
    if (c) return c;
    let got: (c: RawConnection) => void = () => undefined;
    const p = new Promise<RawConnection>((resolve) => (got = resolve));
    this.waiters.push(got);
    try {
      return await within(p, timeoutMs, "the gateway to connect");
    } finally {
      this.waiters = this.waiters.filter((w) => w !== got);
    }
  }

  async close(): Promise<void> {
    for (const c of this.all) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
