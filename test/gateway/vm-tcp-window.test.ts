/**
 * The simulator's TCP segment (host/simulator/vm-tcp-window.ts) on a real localhost connection: a large write arrives
 * in pieces of at most a segment, whole and in order, with `end`/`close` after the last piece; small chunks pass
 * through unchanged.
 */
import { strict as assert } from "node:assert";
import { createConnection, createServer, type AddressInfo, type Server } from "node:net";
import { paceReceivedData, TCP_SEGMENT } from "../../host/simulator/vm-tcp-window";
import { within } from "../support/wait";

async function receive(payload: Buffer): Promise<{ pieces: Buffer[]; dataAfterClose: number }> {
  const server: Server = createServer((s) => s.end(payload));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const sock = createConnection({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
    paceReceivedData(sock);
    const pieces: Buffer[] = [];
    let closed = false;
    let dataAfterClose = 0;
    sock.on("data", (b: Buffer) => {
      pieces.push(b);
      if (closed) dataAfterClose++;
    });
    await within(new Promise<void>((r) => sock.on("close", () => ((closed = true), r()))), 10_000, "the connection to close");
    return { pieces, dataAfterClose };
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe("simulator: socket data a TCP segment at a time", () => {
  it("100 KB arrive whole, in order, in pieces of at most a segment, before close", async () => {
    const payload = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => (i * 7) & 0xff));
    const { pieces, dataAfterClose } = await receive(payload);
    assert.ok(Buffer.concat(pieces).equals(payload), "the bytes arrive whole and in order");
    assert.ok(Math.max(...pieces.map((p) => p.length)) <= TCP_SEGMENT, "no piece is larger than a segment");
    assert.ok(pieces.length >= Math.ceil(payload.length / TCP_SEGMENT));
    assert.equal(dataAfterClose, 0);
  });

  it("a small message passes as one chunk", async () => {
    const { pieces } = await receive(Buffer.from("hello"));
    assert.deepEqual(pieces.map((p) => p.toString()), ["hello"]);
  });
});
