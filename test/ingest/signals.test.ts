/**
 * Gateway signal batches (`P/signals`) through `vgw ingest`'s library into both stores, from a synthetic publisher
 * that encodes batches as the gateway does (host/gateway/signals.ts): every sample stored once in long form (device,
 * time, message, signal, value, raw), a QoS 1 resend and a replayed sequence number dropped by the signal batches'
 * own key, a batch of another table and a malformed one kept as rejects; frame batches of the same boot and numbers
 * stored beside them (the two numberings are separate).
 */
import { strict as assert } from "assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { encode } from "cbor-x";
import { openBroker, type HilBroker } from "../../host/gateway/broker";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { encodeSignalBatch, SignalTable, type SignalSample } from "../../host/gateway/signals";
import { Ingester } from "../../host/ingest/ingester";
import { openStore, type Store } from "../../host/ingest/store";
import { openSubscriber } from "../../host/ingest/subscriber";
import { compilePolicy } from "../../can-db/policy";
import { loadPolicyFile } from "../../can-db/policy-file";
import { loadDbcFile } from "../../can-db/load";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/wait";
import { batchesOf, mixedFrames, type Published } from "./support";

const FIXTURES = resolve(__dirname, "../../../test/fixtures/policy");
const BOOT = 0x5e000001;

/** `n` samples over the table's signals, values in range, times increasing by 0..3 ms. */
function samplesFor(table: SignalTable, n: number, seed: number): SignalSample[] {
  let x = seed;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  let t = 1000;
  return Array.from({ length: n }, () => {
    const i = next() % table.rows.length;
    const len = table.rows[i][2];
    t += next() % 4;
    return { i, t, raw: next() % 2 ** Math.min(len, 16) };
  });
}

describe("ingest: gateway signal batches", function () {
  this.timeout(90_000);
  let tmp = "";
  let pg: TestPostgres | undefined;
  const compiled = compilePolicy(loadPolicyFile(resolve(FIXTURES, "abs.signals.policy.yaml")), loadDbcFile(resolve(FIXTURES, "abs.dbc")));
  const table = SignalTable.fromPolicy(compiled);
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "vgw-ingest-sig-"));
  });
  after(async () => {
    await pg?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const kind of ["DuckDB file", "PostgreSQL"]) {
    it(`stores every sample once in long form (${kind})`, async () => {
      let broker: HilBroker | undefined;
      let store: Store | undefined;
      try {
        broker = await openBroker({ kind: "aedes" });
        if (kind === "PostgreSQL") pg ??= await startPostgres();
        store = await openStore(kind === "PostgreSQL" ? await pg!.createDatabase("vgw_sig") : join(tmp, "s.duckdb"));
        const ingester = new Ingester({ store, subscriber: await openSubscriber(broker.url, { prefix: "vgw", devices: [], signals: true }), prefix: "vgw", signalTable: table, progressMs: 0 });
        const running = ingester.run();
        await Promise.race([ingester.ready, running]);

        const batches = [0, 1, 2, 3].map((seq) => ({ seq, samples: samplesFor(table, 50 + seq * 30, seq + 1) }));
        const payload = (seq: number) => encodeSignalBatch(BOOT, seq, batches[seq].samples, table);
        const other = new SignalTable(table.rows.slice(0, 2));
        const frames = batchesOf("gw1", BOOT, mixedFrames(40), 20); // frame batches 0 and 1 of the same boot
        const items: Published[] = [
          { topic: "vgw/gw1/signals", payload: payload(0) },
          { topic: "vgw/gw1/signals", payload: payload(1) },
          { topic: "vgw/gw1/signals", payload: payload(1) }, // a QoS 1 resend
          ...frames,
          { topic: "vgw/gw1/signals", payload: payload(3) }, // 2 is missing: a gap, not a problem for the store
          { topic: "vgw/gw1/signals", payload: payload(0) }, // an old number replayed
          { topic: "vgw/gw1/signals", payload: encodeSignalBatch(BOOT, 9, [{ i: 0, t: 5, raw: 1 }], other) }, // another table
          { topic: "vgw/gw1/signals", payload: encode({ v: 1, b: BOOT, s: 10, t: 0, h: table.hash, n: 1, g: Buffer.from([0x7e, 1]) }) }, // index 63
        ];
        const client = await connectBroker(parseBrokerUrl(broker.url));
        try {
          for (const i of items) await client.publishAsync(i.topic, Buffer.from(i.payload), { qos: 1 });
        } finally {
          await client.endAsync();
        }
        const c = ingester.counts;
        await waitFor(() => c.signalBatches + c.duplicateSignalBatches + c.rejects + c.batches >= items.length, 60_000, () => `${items.length} deliveries committed (${JSON.stringify(c)})`);
        ingester.stop();
        await running;
        assert.equal(c.signalBatches, 3);
        assert.equal(c.duplicateSignalBatches, 2);
        assert.equal(c.rejects, 2);
        assert.equal(c.batches, 2, "frame batches 0 and 1 of the same boot are stored too");

        const stored = await store.readGatewaySignals("gw1");
        const expected = [0, 1, 3].flatMap((seq) => batches[seq].samples.map((s, idx) => ({ seq, idx, s })));
        assert.equal(stored.length, expected.length);
        stored.forEach((row, k) => {
          const { seq, idx, s } = expected[k];
          const info = table.info[s.i]!;
          assert.deepEqual(
            { boot: row.boot, seq: row.seq, idx: row.idx, tMs: row.tMs, message: row.message, signal: row.signal, value: row.value, raw: row.raw },
            { boot: BOOT, seq, idx, tMs: s.t, message: info.message, signal: info.signal, value: table.physical(s.i, s.raw), raw: s.raw },
          );
        });
        // the absolute times keep the gateway's spacing within a batch
        const first = stored.filter((r) => r.seq === 1);
        assert.equal(first[first.length - 1].timeMs - first[0].timeMs, batches[1].samples[batches[1].samples.length - 1].t - batches[1].samples[0].t);
        const totals = await store.counts();
        assert.equal(totals.gatewaySignals, expected.length);
        assert.equal(totals.rejects, 2);
      } finally {
        await store?.close().catch(() => undefined);
        await broker?.close();
      }
    });
  }
});
