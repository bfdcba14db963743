/**
 * The simulator's TCP segments (host/simulator/vm-tcp-window.ts) on a real localhost connection: what the peer sends
 * reaches the VM whole and in order, in segments of at most TCP_SEGMENT bytes, at most one per SEGMENT_GAP_MS, with
 * `end`/`close` after the last one; a small message passes as it is.
 */
import { strict as assert } from "node:assert";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { paceReceivedData, SEGMENT_GAP_MS, TCP_SEGMENT } from "../../host/simulator/vm-tcp-window";
import { within } from "../support/wait";

interface Received {
  pieces: Buffer[];
  /** Milliseconds between each piece and the one before it. */
  gaps: number[];
  dataAfterClose: number;
}

async function receive(send: (s: Socket) => void): Promise<Received> {
  const server: Server = createServer(send);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const sock = createConnection({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
    paceReceivedData(sock);
    const got: Received = { pieces: [], gaps: [], dataAfterClose: 0 };
    let closed = false;
    let last = 0;
    sock.on("data", (b: Buffer) => {
      const now = performance.now();
      if (got.pieces.length > 0) got.gaps.push(now - last);
      last = now;
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
  // a timer can fire up to about 1 ms early (millisecond rounding); load only makes the gaps longer
  assert.ok(Math.min(...got.gaps) >= SEGMENT_GAP_MS - 2, `pieces at least ${SEGMENT_GAP_MS} ms apart (shortest gap ${Math.min(...got.gaps).toFixed(1)} ms)`);
  assert.equal(got.dataAfterClose, 0);
}

describe("simulator: socket data a TCP segment at a time", () => {
  it("100 KB written at once arrive whole, in order, in segments at most one per gap, before close", async () => {
    const payload = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => (i * 7) & 0xff));
    const got = await receive((s) => s.end(payload));
    checkSegments(got, payload);
    assert.ok(got.pieces.length >= Math.ceil(payload.length / TCP_SEGMENT));
  });

  it("300 messages of 178 B written one by one (as aedes writes a burst) reach the VM joined, at most one segment per gap", async () => {
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

  it("a small message passes as one chunk", async () => {
    const got = await receive((s) => s.end(Buffer.from("hello")));
    assert.deepEqual(got.pieces.map((p) => p.toString()), ["hello"]);
  });
});
