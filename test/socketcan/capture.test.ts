/**
 * The receive side shared by dump, stats, record and monitor (host/bus/capture.ts), on in-process virtual buses: the
 * drops of every bus and of the merge in one summary (`vgw stats` once left out the merge's), stopping on a signal
 * with the frames already received kept, and the typed counters every bus kind reports.
 */
import { strict as assert } from "node:assert";
import { parseFrame, type Frame } from "../../frame/frame";
import { openBus, type Bus } from "../../host/bus";
import { Capture, dropCounts, dropsHint, dropsText, totalDropped } from "../../host/bus/capture";
import { waitFor } from "../support/wait";

describe("capture (dump, stats, record, monitor)", () => {
  const opened: Array<Bus | Capture> = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((x) => x.close()));
  });

  it("counts what the merge of two buses dropped for a slow reader in the one drop summary", async () => {
    const capture = await Capture.open(["virtual:cap-a", "virtual:cap-b"], { command: "test", mergeLimit: 10 });
    const [a, b] = await Promise.all([openBus("virtual:cap-a"), openBus("virtual:cap-b")]);
    opened.push(capture, a, b);
    const received: Frame[] = [];
    const reading = (async () => {
      for await (const batch of capture.batches()) received.push(...batch);
    })();
    // 60 frames in one tick: the merged stream holds 10 until the reader's turn comes, the rest are dropped.
    for (let i = 0; i < 30; i++) {
      await a.send(parseFrame(`100#${i.toString(16).padStart(2, "0")}`));
      await b.send(parseFrame(`200#${i.toString(16).padStart(2, "0")}`));
    }
    await waitFor(() => capture.buses.every((bus) => bus.counters().rx === 30) && received.length >= 10, 10_000, "both buses to receive and the reader to run");
    const drops = await capture.close();
    await reading;
    assert.ok(drops.reader >= 40, `merge drops ${drops.reader}, received ${received.length}`);
    assert.equal(received.length + drops.reader, 60, "every frame was either read or counted as dropped");
    assert.deepEqual({ socket: drops.socket, interface: drops.interface }, { socket: 0, interface: 0 });
    assert.equal(dropsText(drops), `dropped: ${drops.reader} by vgw (reader behind), 0 by the kernel (socket buffer full), 0 by the interface (rx_dropped)`);
  });

  it("a signal stops it: the streams end after the frames already received", async () => {
    const capture = await Capture.open(["virtual:cap-c"], { command: "test" });
    const tx = await openBus("virtual:cap-c");
    opened.push(capture, tx);
    const controller = new AbortController();
    capture.stopOn(controller.signal);
    for (const t of ["123#01", "124#02"]) await tx.send(parseFrame(t));
    controller.abort();
    const got: Frame[] = [];
    for await (const batch of capture.batches()) got.push(...batch);
    assert.deepEqual(got.map((f) => f.id), [0x123, 0x124]);
    assert.equal(totalDropped(await capture.close()), 0);
  });

  it("adds the drops of every bus by where they happened; the hint only when a bigger socket buffer helps", () => {
    const d = dropCounts(
      [
        { rx: 10, tx: 0, queueDropped: 2, socketDropped: 5, interfaceRxDropped: 1 },
        { rx: 3, tx: 1, queueDropped: 1 },
      ],
      4,
    );
    assert.deepEqual(d, { reader: 7, socket: 5, interface: 1 });
    assert.equal(
      dropsText({ ...d, writer: 3 }),
      "dropped: 10 by vgw (reader behind: 7, writer behind: 3), 5 by the kernel (socket buffer full), 1 by the interface (rx_dropped)",
    );
    assert.match(dropsHint(d) ?? "", /--rcvbuf/);
    assert.equal(dropsHint({ ...d, socket: 0 }), undefined);
  });
});
