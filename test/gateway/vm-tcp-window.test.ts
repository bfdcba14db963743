/**
 * The simulator's TCP segments (host/simulator/vm-tcp-window.ts) on a real localhost connection: what the peer sends
 * reaches the VM whole and in order, within a budget of TCP_SEGMENT bytes in PIECES_PER_GAP pieces per
 * SEGMENT_GAP_MS, with `end`/`close` after the last byte; a small message passes as it is. The budget's exact
 * decisions are checked beside that on a stand-in socket whose events the test emits itself.
 */
import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { paceReceivedData, PIECES_PER_GAP, SEGMENT_GAP_MS, TCP_SEGMENT } from "../../host/simulator/vm-tcp-window";
import { waitFor, within } from "../support/wait";

interface Received {
  pieces: Buffer[];
  /** When each piece arrived (performance.now()). */
  at: number[];
  dataAfterClose: number;
}

async function receive(send: (s: Socket) => void): Promise<Received> {
  const server: Server = createServer(send);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const sock = createConnection({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
    paceReceivedData(sock);
    const got: Received = { pieces: [], at: [], dataAfterClose: 0 };
    let closed = false;
    sock.on("data", (b: Buffer) => {
      got.at.push(performance.now());
      got.pieces.push(b);
      if (closed) got.dataAfterClose++;
    });
    await within(new Promise<void>((r) => sock.on("close", () => ((closed = true), r()))), 20_000, "the connection to close");
    return got;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function checkSegments(got: Received, payload: Buffer): void {
  assert.ok(Buffer.concat(got.pieces).equals(payload), "the bytes arrive whole and in order");
  assert.ok(Math.max(...got.pieces.map((p) => p.length)) <= TCP_SEGMENT, "no piece is larger than a segment");
  // Budgets are back-to-back periods of at least a gap, so a span shorter than a gap overlaps at most two of them. A
  // timer can fire up to about 1 ms early (millisecond rounding); load only makes the periods longer.
  const span = SEGMENT_GAP_MS - 2;
  for (let i = 0; i < got.at.length; i++) {
    let n = 0;
    let bytes = 0;
    for (let j = i; j < got.at.length && got.at[j] - got.at[i] < span; j++) {
      n++;
      bytes += got.pieces[j].length;
    }
    assert.ok(n <= 2 * PIECES_PER_GAP && bytes <= 2 * TCP_SEGMENT, `within ${span} ms of piece ${i}: ${n} pieces, ${bytes} B; at most two budgets'`);
  }
  assert.equal(got.dataAfterClose, 0);
}

/** Enough of a socket for the pacer: events the test emits itself, and pause/resume recorded. */
class StandInSocket extends EventEmitter {
  destroyed = false;
  paused = false;
  received: string[] = [];
  constructor() {
    super();
    this.on("data", (b: Buffer) => this.received.push(b.toString()));
    this.on("end", () => this.received.push("<end>"));
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
}

describe("simulator: socket data a TCP segment at a time", () => {
  it("100 KB written at once arrive whole, in order, in segments within the budget, before close", async () => {
    const payload = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => (i * 7) & 0xff));
    const got = await receive((s) => s.end(payload));
    checkSegments(got, payload);
    assert.ok(got.pieces.length >= Math.ceil(payload.length / TCP_SEGMENT));
  });

  it("300 messages of 178 B written one by one (as aedes writes a burst) reach the VM joined, within the budget", async () => {
    const messages = Array.from({ length: 300 }, (_, i) => Buffer.alloc(178, i & 0xff));
    const got = await receive((s) => {
      let i = 0;
      // one write per turn of the event loop, so the reader sees them as separate chunks unless they are joined
      const next = (): void => {
        if (i === messages.length) s.end();
        else s.write(messages[i++], () => setImmediate(next));
      };
      next();
    });
    checkSegments(got, Buffer.concat(messages));
    assert.ok(got.pieces.length < messages.length, `joined: ${got.pieces.length} pieces for ${messages.length} writes`);
  });

  it("the budget: chunks within it pass at once, the rest waits joined with the socket paused, one segment per gap", async () => {
    const sock = new StandInSocket();
    paceReceivedData(sock as unknown as Socket, 10, 4);
    for (const c of ["a", "b", "c", "d", "e", "f"]) sock.emit("data", Buffer.from(c));
    sock.emit("end");
    // the first four pass at once (a PUBACK is not delayed); the fifth is over the pieces budget and waits
    assert.deepEqual(sock.received, ["a", "b", "c", "d"]);
    assert.ok(sock.paused, "the socket is paused while bytes wait");
    await waitFor(() => sock.received.includes("<end>"), 10_000, "the end after the waiting bytes");
    assert.deepEqual(sock.received, ["a", "b", "c", "d", "ef", "<end>"]);
    assert.ok(!sock.paused, "resumed once nothing waits");

    const big = new StandInSocket();
    paceReceivedData(big as unknown as Socket, 10, 4);
    big.emit("data", Buffer.from("0123456789ABCDEFGHIJ"));
    big.emit("data", Buffer.from("K"));
    // the first segment after a quiet spell goes at once; the rest, joined, a segment per gap
    assert.deepEqual(big.received, ["0123456789"]);
    await waitFor(() => big.received.length === 3, 10_000, "the rest of the big chunk");
    assert.deepEqual(big.received, ["0123456789", "ABCDEFGHIJ", "K"]);
  });

  it("a small message passes as one chunk", async () => {
    const got = await receive((s) => s.end(Buffer.from("hello")));
    assert.deepEqual(got.pieces.map((p) => p.toString()), ["hello"]);
  });
});
