/**
 * `vgw ingest`'s library end to end on a real broker (aedes, in-process) into each store (a DuckDB file; a real
 * PostgreSQL 15 started here): every frame stored once with its flags and gateway time, a redelivered batch and a
 * replayed old sequence number dropped, bad payloads kept as rejects and never as frames, gaps visible in the gaps
 * view, status rows; then the store's own guarantee alone (the same unit committed twice, two stores committing
 * overlapping units at once).
 */
import { strict as assert } from "assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "cbor-x";
import { formatFrame, sameFrame, type Frame } from "../../frame/frame";
import { openTraceWriter, readAllFrames } from "../../host/trace";
import { exportFrames } from "../../host/ingest/export";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { decodeBatch } from "../../host/gateway/uplink";
import { Ingester } from "../../host/ingest/ingester";
import { batchFrames, toRow, type BatchRow } from "../../host/ingest/rows";
import { openStore, type Store } from "../../host/ingest/store";
import { openSubscriber } from "../../host/ingest/subscriber";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/wait";
import { assertStoredOnce, badPayloads, batchesOf, candumpFrames, mixedFrames, type Published } from "./support";

const BOOT1 = 0x5eed0001;
const BOOT2 = 0x5eed0002;

interface StoreKind {
  name: string;
  open(): Promise<string>;
  close(): Promise<void>;
}

// One outer suite, so the shared PostgreSQL server is stopped before the root hooks look for leftovers.
describe("ingest library", function () {
  let tmp = "";
  let pg: TestPostgres | undefined;
  let dbNumber = 0;
  const kinds: StoreKind[] = [
    {
      name: "DuckDB file",
      open: async () => join(tmp, `s${dbNumber++}.duckdb`),
      close: async () => undefined,
    },
    {
      name: "PostgreSQL",
      open: async () => {
        pg ??= await startPostgres();
        return pg.createDatabase(`vgw_t${dbNumber++}`);
      },
      close: async () => {
        await pg?.stop();
        pg = undefined;
      },
    },
  ];

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "vgw-ingest-"));
  });
  after(async () => {
    for (const k of kinds) await k.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const kind of kinds) {
    describe(`ingest into ${kind.name}`, function () {
      this.timeout(90_000);
      let broker: HilBroker | undefined;
      let store: Store | undefined;
      after(async () => {
        await store?.close().catch(() => undefined);
        await broker?.close();
      });

      it("stores every frame once, drops duplicates and replays, rejects bad payloads, records gaps and status", async () => {
        broker = await openBroker({ kind: "aedes" });
        store = await openStore(await kind.open());
        const ingester = new Ingester({ store, subscriber: await openSubscriber(broker.url, { prefix: "vgw", devices: [] }), prefix: "vgw", progressMs: 0 });
        const running = ingester.run();
        await Promise.race([ingester.ready, running]);
        const gw1 = batchesOf("gw1", BOOT1, await candumpFrames(), 200);
        const gw2 = batchesOf("gw2", BOOT2, mixedFrames(600), 50);
        const lost = gw1[10]; // never published: a gap
        const items: Published[] = [
          { topic: "vgw/gw1/status", payload: encode({ v: 1, online: true, dev: "gw1", b: BOOT1, up: 900, seq: 0, ob: 0 }) },
          ...gw1.filter((b) => b !== lost),
          gw1[5], // a QoS 1 resend
          ...gw2,
          gw2[0], // a device replaying an old sequence number
          ...badPayloads("gw3"),
          { topic: "vgw/gw1/status", payload: encode({ v: 1, online: false, dev: "gw1", b: BOOT1 }) },
          { topic: "other/gw9/frames", payload: gw2[1].payload }, // not our prefix: not subscribed, not stored
        ];
        const client = await connectBroker(parseBrokerUrl(broker.url));
        try {
          for (const i of items) await client.publishAsync(i.topic, Buffer.from(i.payload), { qos: 1 });
        } finally {
          await client.endAsync();
        }
        const expectedDeliveries = items.length - 1;
        await waitFor(() => ingester.counts.deliveries >= expectedDeliveries && ingester.counts.commits > 0 && ingester.counts.batches + ingester.counts.duplicates + ingester.counts.rejects + ingester.counts.statuses >= expectedDeliveries, 60_000, () => `${expectedDeliveries} deliveries committed (${JSON.stringify(ingester.counts)})`);
        ingester.stop();
        const c = await running;
        assert.equal(c.batches, gw1.length - 1 + gw2.length);
        assert.equal(c.duplicates, 2);
        assert.equal(c.rejects, 4);
        assert.equal(c.statuses, 2);

        const gw1Frames: Frame[] = gw1.filter((b) => b !== lost).flatMap((b) => b.frames);
        await assertStoredOnce(store, "gw1", gw1Frames);
        await assertStoredOnce(store, "gw2", gw2.flatMap((b) => b.frames));
        await assertStoredOnce(store, "gw3", []);
        const totals = await store.counts();
        assert.equal(totals.frames, gw1Frames.length + 600);
        assert.equal(totals.rejects, 4);
        assert.equal(totals.missing, 1, "the gaps view shows the batch never published");
        assert.equal(totals.statuses, 2);

        // Back out as traces, bit-exact in every format: classic frames from the candump fixture, and (where the format
        // has room for them) extended, remote, FD and error frames.
        for (const ext of ["log", "asc", "blf", "trc", "jsonl"]) {
          for (const [device, frames] of [["gw1", gw1Frames], ["gw2", gw2.flatMap((b) => b.frames)]] as const) {
            const out = join(tmp, `${device}-${dbNumber}.${ext}`);
            const writer = openTraceWriter(out);
            for await (const page of exportFrames(store, { device }, "can0")) await writer.write(page);
            await writer.close();
            // TRC 2.1 drops error frames, and says so.
            assert.equal(writer.framesDropped, ext === "trc" ? frames.filter((f) => f.err).length : 0, `${device} as .${ext}: frames dropped by the writer`);
            // Error frames keep their class bits and details in every format but TRC (which drops them, counted above).
            const back = await readAllFrames(out);
            const sent = frames.filter((f) => !(f.err && ext === "trc"));
            assert.equal(back.length, sent.length, `${device} as .${ext}`);
            back.forEach((f, i) => assert.ok(sameFrame(f, sent[i]), `${device} as .${ext}: frame ${i}: ${formatFrame(f)} != ${formatFrame(sent[i])}`));
          }
        }
      });

      it("keeps a batch once when the same unit is committed twice or by two writers at once", async () => {
        const url = await kind.open();
        const a = await openStore(url);
        try {
          const rows: BatchRow[] = batchesOf("gw7", BOOT1, mixedFrames(300), 30).map((b) => {
            const r = toRow(b.topic, b.payload, Date.now(), "vgw");
            assert.equal(r.kind, "batch");
            return (r as { row: BatchRow }).row;
          });
          const first = await a.commit({ batches: rows.slice(0, 6), statuses: [], rejects: [] });
          assert.equal(first.stored.length, 6);
          const again = await a.commit({ batches: [...rows.slice(0, 6), rows[0]], statuses: [], rejects: [] });
          assert.equal(again.stored.length, 0);
          assert.equal(again.duplicates.length, 7);
          if (kind.name === "PostgreSQL") {
            // A second worker on the same database commits overlapping units at the same time.
            const b = await openStore(url);
            try {
              const [x, y] = await Promise.all([
                a.commit({ batches: rows.slice(3, 10), statuses: [], rejects: [] }),
                b.commit({ batches: rows.slice(2, 10).reverse(), statuses: [], rejects: [] }),
              ]);
              assert.equal(x.stored.length + y.stored.length, 4);
            } finally {
              await b.close();
            }
          } else {
            await a.commit({ batches: rows.slice(2, 10), statuses: [], rejects: [] });
          }
          await assertStoredOnce(a, "gw7", rows.slice(0, 10).flatMap((r) => batchFrames(r)));
          assert.equal(decodeBatch(batchesOf("gw7", BOOT1, mixedFrames(300), 30)[0].payload).frames.length, 30);
        } finally {
          await a.close();
        }
      });
    });
  }
});
