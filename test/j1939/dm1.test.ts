/**
 * DM1 (host/j1939/dm1.ts) decoding from hand-computed bytes, the sender's frames (host/j1939/sender.ts) against the
 * reassembler, an RTS/CTS exchange on a virtual bus, and the CLI lines `vgw decode --j1939` prints.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { formatFrame, makeFrame, type Frame } from "../../frame/frame";
import { makeJ1939Id, j1939Pgn } from "../../can-db/j1939";
import { decodeDm1, dm1Text, encodeDm1, fmiName } from "../../host/j1939/dm1";
import { bamFrames, sendJ1939 } from "../../host/j1939/sender";
import { CM, J1939Reassembler, J1939TransportError, PGN_TP_CM, type J1939Event } from "../../host/j1939/transport";
import { openBus, type Bus } from "../../host/bus";
import { ROOT, runVgw } from "../candb/helpers";
import { within } from "../support/wait";
import { J1939View } from "../../host/j1939/view";
import { loadDecoder } from "../../can-db/annotate";
import { viewDumpLine } from "../../cli/commands/dump";

describe("DM1 (active DTCs)", () => {
  it("one DTC in a single frame: lamps, SPN (19 bits), FMI with its name, OC", () => {
    // MIL on (01), RSL off, AWL on (01), PL off: 0100 0100 = 0x44; flash: MIL fast (01), others 11 -> 0111 1111 = 0x7F.
    // SPN 520200 = 0x7F008: bytes 08 F0, top 3 bits 111 -> byte 5 = 111 00011 (FMI 3) = 0xE3; OC 5, CM 0 -> 0x05.
    const dm1 = decodeDm1(Uint8Array.of(0x44, 0x7f, 0x08, 0xf0, 0xe3, 0x05, 0xff, 0xff));
    assert.deepEqual(dm1.lamps, {
      MIL: { status: "on", flash: "fast" },
      RSL: { status: "off", flash: "none" },
      AWL: { status: "on", flash: "none" },
      PL: { status: "off", flash: "none" },
    });
    assert.deepEqual(dm1.dtcs, [{ spn: 520200, fmi: 3, fmiName: "voltage above normal, or shorted to high source", oc: 5, cm: 0 }]);
    assert.equal(dm1.error, undefined);
    assert.equal(
      dm1Text(dm1),
      "DM1 MIL=on/fast RSL=off AWL=on PL=off; SPN 520200 FMI 3 (voltage above normal, or shorted to high source) OC 5",
    );
  });

  it("no active DTC: SPN 0 FMI 0 OC 0 is not a DTC", () => {
    const dm1 = decodeDm1(Uint8Array.of(0x00, 0xff, 0, 0, 0, 0, 0xff, 0xff));
    assert.deepEqual(dm1.dtcs, []);
    assert.match(dm1Text(dm1), /no active DTC$/);
  });

  it("the SPN conversion method bit: CM 1 reads the SPN most significant byte first (version 1)", () => {
    // SPN 100 = 0b000_0000_1100_100: bits 18-11 = 0x00, bits 10-3 = 0x0C, bits 2-0 = 100 -> byte 5 = 100 00001 (FMI 1).
    const [d] = decodeDm1(Uint8Array.of(0x00, 0xff, 0x00, 0x0c, 0x81, 0x80 | 2, 0xff, 0xff)).dtcs;
    assert.deepEqual(d, { spn: 100, fmi: 1, fmiName: fmiName(1), oc: 2, cm: 1 });
  });

  it("FMI names: 0-21 named, 31 'condition exists', the rest reserved", () => {
    assert.equal(fmiName(0), "data valid but above normal operational range, most severe level");
    assert.equal(fmiName(21), "data drifted low");
    assert.equal(fmiName(31), "condition exists");
    assert.equal(fmiName(25), "reserved for SAE assignment");
  });

  it("a payload that is not whole DTCs is reported, the DTCs before it kept", () => {
    const dm1 = decodeDm1(Uint8Array.of(0x00, 0xff, 0x64, 0x00, 0x01, 0x03, 0x12, 0x34));
    assert.equal(dm1.dtcs.length, 1);
    assert.match(dm1.error!, /2 byte\(s\) that are not a whole DTC/);
    assert.match(decodeDm1(Uint8Array.of(0x00)).error!, /at least 2 needed/);
  });

  it("many DTCs (20) over BAM: encoded, sent as frames, reassembled, decoded back", () => {
    const dtcs = Array.from({ length: 20 }, (_, i) => ({ spn: 1000 + i * 26000, fmi: i, oc: i + 1 }));
    const data = encodeDm1({ AWL: { status: "on", flash: "slow" }, PL: { status: "n/a", flash: "none" } }, dtcs);
    assert.equal(data.length, 82);
    const r = new J1939Reassembler();
    const events: J1939Event[] = bamFrames({ pgn: 0xfeca, source: 0x17, destination: 0xff, data }).flatMap((f, i) => r.push({ ...f, t: i * 0.05 }));
    assert.equal(events.length, 1);
    assert.equal(events[0].kind, "message");
    const dm1 = decodeDm1(events[0].kind === "message" ? events[0].message.data : new Uint8Array());
    assert.deepEqual(
      dm1.dtcs.map(({ spn, fmi, oc }) => ({ spn, fmi, oc })),
      dtcs,
    );
    assert.deepEqual(dm1.lamps.AWL, { status: "on", flash: "slow" });
    assert.deepEqual(dm1.lamps.PL, { status: "n/a", flash: "none" });
  });
});

describe("J1939 sender", () => {
  it("BAM frames: TP.CM_BAM (size, packets, PGN) then numbered TP.DT, the last padded with FF", () => {
    const frames = bamFrames({ pgn: 0xfeca, source: 0x00, destination: 0xff, data: Uint8Array.from({ length: 9 }, (_, i) => i) });
    assert.deepEqual(frames.map(formatFrame), ["1CECFF00#20090002FFCAFE00", "1CEBFF00#0100010203040506", "1CEBFF00#020708FFFFFFFFFF"]);
  });

  describe("RTS/CTS on a virtual bus, against a scripted receiver", () => {
    let a: Bus;
    let b: Bus;
    beforeEach(async () => {
      const name = `virtual:j1939-${Math.random().toString(36).slice(2)}`;
      a = await openBus(name);
      b = await openBus(name);
    });
    afterEach(async () => {
      await a.close();
      await b.close();
    });

    /** Answers an RTS to 0x90 with CTS windows of 3 packets, then EndOfMsgAck (or an Abort when `abort`). */
    async function receiver(bus: Bus, seen: Frame[], abort = false): Promise<void> {
      let packets = 0;
      let size = 0;
      let got = 0;
      for await (const f of bus) {
        seen.push(f);
        const pgn = j1939Pgn(f.id);
        const cts = (count: number, next: number) =>
          bus.send(makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x90, 0x80), ext: true, data: Uint8Array.of(CM.cts, count, next, 0xff, 0xff, 0x00, 0x23, 0x01) }));
        if (pgn === PGN_TP_CM && f.data[0] === CM.rts) {
          size = f.data[1] | (f.data[2] << 8);
          packets = f.data[3];
          if (abort) {
            await bus.send(makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x90, 0x80), ext: true, data: Uint8Array.of(CM.abort, 2, 0xff, 0xff, 0xff, 0x00, 0x23, 0x01) }));
            return;
          }
          await cts(Math.min(3, packets), 1);
        } else if (pgn === 0xeb00) {
          got = f.data[0];
          if (got === packets) {
            await bus.send(makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x90, 0x80), ext: true, data: Uint8Array.of(CM.eoma, size & 0xff, size >> 8, packets, 0xff, 0x00, 0x23, 0x01) }));
            return;
          }
          if (got % 3 === 0) await cts(Math.min(3, packets - got), got + 1);
        }
      }
    }

    it("sends what each CTS asks for; an observer reassembles the same bytes", async () => {
      const data = Uint8Array.from({ length: 50 }, (_, i) => (i * 37) & 0xff);
      const seen: Frame[] = [];
      const rx = receiver(b, seen);
      await within(sendJ1939(a, { pgn: 0x12300, source: 0x80, destination: 0x90, data }), 10_000, "the RTS/CTS transfer");
      await within(rx, 10_000, "the receiver");
      // The observer sees the sender's frames (as the receiver got them) and the receiver's answers, in order.
      const r = new J1939Reassembler();
      const events = observedExchange(seen).flatMap((f) => r.push(f));
      assert.deepEqual(
        events.map((e) => (e.kind === "message" ? Buffer.from(e.message.data).toString("hex") : e.fault.code)),
        [Buffer.from(data).toString("hex")],
      );
      assert.equal(r.openTransfers, 0);
    });

    it("ETP (3000 bytes): a DPO and up to 255 packets per CTS; the log of both sides reassembles to the same bytes", async () => {
      const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13 + (i >> 8)) & 0xff);
      const log: Frame[] = [];
      const answer = async (bytes: number[]) => {
        const f = makeFrame({ id: makeJ1939Id(7, 0xc800, 0x90, 0x80), ext: true, data: Uint8Array.from(bytes) });
        log.push(f);
        await b.send(f);
      };
      const packets = Math.ceil(data.length / 7);
      const rx = (async () => {
        let offset = 0;
        let window = 0;
        for await (const f of b) {
          log.push(f);
          const pgn = j1939Pgn(f.id);
          if (pgn === 0xc800 && f.data[0] === CM.etpRts) {
            window = Math.min(255, packets);
            await answer([CM.etpCts, window, 1, 0, 0, 0x00, 0x23, 0x01]);
          } else if (pgn === 0xc800 && f.data[0] === CM.etpDpo) {
            offset = f.data[2] | (f.data[3] << 8) | (f.data[4] << 16);
          } else if (pgn === 0xc700 && f.data[0] === window) {
            const done = offset + window;
            if (done === packets) {
              await answer([CM.etpEoma, data.length & 0xff, data.length >> 8, 0, 0, 0x00, 0x23, 0x01]);
              return;
            }
            window = Math.min(255, packets - done);
            await answer([CM.etpCts, window, (done + 1) & 0xff, (done + 1) >> 8, 0, 0x00, 0x23, 0x01]);
          }
        }
      })();
      await within(sendJ1939(a, { pgn: 0x12300, source: 0x80, destination: 0x90, data }), 20_000, "the ETP transfer");
      await within(rx, 10_000, "the receiver");
      const r = new J1939Reassembler();
      const events = log.map((f) => ({ ...f, bus: "can0" })).flatMap((f) => r.push(f));
      assert.deepEqual(
        events.map((e) => (e.kind === "message" ? [e.message.transport, e.message.data.length, Buffer.from(e.message.data).equals(Buffer.from(data))] : e.fault.code)),
        [["etp", 3000, true]],
      );
      assert.equal(r.openTransfers, 0);
    });

    it("the receiver's Abort rejects with a named J1939TransportError", async () => {
      const rx = receiver(b, [], true);
      await assert.rejects(
        within(sendJ1939(a, { pgn: 0x12300, source: 0x80, destination: 0x90, data: new Uint8Array(20) }), 10_000, "the transfer"),
        (e: unknown) => e instanceof J1939TransportError && e.fault.code === "aborted" && /system resources were needed/.test(e.message),
      );
      await rx;
    });

    it("no CTS within T3: the sender aborts (reason 3) and rejects with timeout-T3", async () => {
      const seen: Frame[] = [];
      const watching = (async () => {
        for await (const f of b) {
          seen.push(f);
          if (f.data[0] === CM.abort) return;
        }
      })();
      await assert.rejects(
        sendJ1939(a, { pgn: 0x12300, source: 0x80, destination: 0x90, data: new Uint8Array(20) }, { timeoutScale: 0.1 }),
        (e: unknown) => e instanceof J1939TransportError && e.fault.code === "timeout-T3",
      );
      await within(watching, 5_000, "the Abort on the bus");
      assert.deepEqual(Array.from(seen[seen.length - 1].data.subarray(0, 2)), [CM.abort, 3]);
    });
  });
});

/**
 * The receiver saw only the sender's frames; the bus also carried its answers. Rebuilds the exchange an observer
 * would log: each CTS / EndOfMsgAck the scripted receiver sent right after the frame that caused it.
 */
function observedExchange(senderFrames: Frame[]): Frame[] {
  const out: Frame[] = [];
  // On the sender's bus, as the frames it answers.
  const answer = (data: number[]) => makeFrame({ id: makeJ1939Id(7, PGN_TP_CM, 0x90, 0x80), ext: true, data: Uint8Array.from(data), bus: senderFrames[0].bus });
  let packets = 0;
  let size = 0;
  for (const f of senderFrames) {
    out.push(f);
    if (j1939Pgn(f.id) === PGN_TP_CM && f.data[0] === CM.rts) {
      size = f.data[1] | (f.data[2] << 8);
      packets = f.data[3];
      out.push(answer([CM.cts, Math.min(3, packets), 1, 0xff, 0xff, 0x00, 0x23, 0x01]));
    } else if (j1939Pgn(f.id) === 0xeb00) {
      const got = f.data[0];
      if (got === packets) out.push(answer([CM.eoma, size & 0xff, size >> 8, packets, 0xff, 0x00, 0x23, 0x01]));
      else if (got % 3 === 0) out.push(answer([CM.cts, Math.min(3, packets - got), got + 1, 0xff, 0xff, 0x00, 0x23, 0x01]));
    }
  }
  return out;
}

describe("vgw decode --j1939", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "vgw-j1939-cli-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A candump -l trace: a BAM of Message2's PGN (j1939.dbc), a DM1 BAM with 3 DTCs, a single-frame DM1, a broken BAM. */
  function trace(): string {
    const lines: string[] = [];
    let t = 100;
    const add = (frames: Frame[]) => {
      for (const f of frames) lines.push(`(${(t += 0.05).toFixed(6)}) can0 ${formatFrame(f)}`);
    };
    // Message2 of j1939.dbc: ID 0x15F01002, PGN 0x1F010 (PDU2); Signal2 is byte 0, signed.
    add(bamFrames({ pgn: 0x1f010, source: 0x02, destination: 0xff, data: Uint8Array.of(0xfe, ...new Array(11).fill(7)) }));
    add(bamFrames({ pgn: 0xfeca, source: 0x00, destination: 0xff, data: encodeDm1({ MIL: { status: "on" } }, [{ spn: 100, fmi: 1, oc: 3 }, { spn: 110, fmi: 16, oc: 1 }, { spn: 520200, fmi: 31, oc: 127 }]) }));
    add([makeFrame({ id: 0x18feca03, ext: true, data: encodeDm1({}, [{ spn: 190, fmi: 2, oc: 5 }]) })]);
    const broken = bamFrames({ pgn: 0xfeec, source: 0x21, destination: 0xff, data: new Uint8Array(30) });
    add([broken[0], broken[1], broken[3]]);
    return lines.join("\n") + "\n";
  }

  it("text: reassembled lines decoded with the DBC by PGN, DM1 decoded, faults named, a summary", () => {
    const file = path.join(dir, "truck.log");
    writeFileSync(file, trace());
    const r = runVgw(["decode", "--j1939", "--dbc", path.join(ROOT, "test/fixtures/dbc/j1939.dbc"), file]);
    assert.equal(r.code, 0, r.stderr);
    const j = r.stdout.split("\n").filter((l) => l.includes(" j1939 "));
    assert.deepEqual(j, [
      "(100.150000) can0 j1939 bam pgn=1F010 02->FF [12] FE0707070707070707070707  Message2 Signal2=-2",
      "(100.300000) can0 j1939 bam pgn=FECA 00->FF [14] 40FF64000103" + "6E001001" + "08F0FF7F" +
        "  DM1 MIL=on RSL=off AWL=off PL=off; SPN 100 FMI 1 (data valid but below normal operational range, most severe level) OC 3; " +
        "SPN 110 FMI 16 (data valid but above normal operating range, moderately severe level) OC 1; SPN 520200 FMI 31 (condition exists) OC 127",
      "(100.350000) can0 j1939 single pgn=FECA 03->FF [8] 00FFBE000205FFFF  DM1 MIL=off RSL=off AWL=off PL=off; SPN 190 FMI 2 (data erratic, intermittent or incorrect) OC 5",
      "(100.500000) can0 j1939 ! bad-sequence pgn=FEEC 21->FF bam: TP.DT 3 where 2 was expected (packet 2 of 5)",
    ]);
    // Frames keep their own lines (the TP frames are unknown IDs of this DBC).
    assert.equal(r.stdout.split("\n").filter((l) => /^\(\d+\.\d+\) can0 [0-9A-F]{8}#/.test(l)).length, 10);
    assert.match(r.stderr, /j1939: 2 messages reassembled \(bam 2\), 1 transport fault \(bad-sequence 1\), 1 single-frame DM1/);
  });

  it("jsonl: the message, its signals and the DM1 as JSON; without a DBC only the transport and DM1", () => {
    const file = path.join(dir, "truck2.log");
    writeFileSync(file, trace());
    const withDbc = runVgw(["decode", "--j1939", "--format", "jsonl", "--dbc", path.join(ROOT, "test/fixtures/dbc/j1939.dbc"), file]);
    assert.equal(withDbc.code, 0, withDbc.stderr);
    const objs = withDbc.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.j1939);
    assert.deepEqual(objs[0], {
      t: 100.15,
      bus: "can0",
      j1939: { transport: "bam", pgn: 0x1f010, source: 2, destination: 255, priority: 7, size: 12, packets: 2 },
      data: "FE0707070707070707070707",
      message: "Message2",
      signals: { Signal2: -2 },
    });
    const dm1 = objs[1].dm1 as { dtcs: Array<{ spn: number; fmi: number; oc: number; fmiName: string }> };
    assert.deepEqual(dm1.dtcs.map((d) => [d.spn, d.fmi, d.oc]), [[100, 1, 3], [110, 16, 1], [520200, 31, 127]]);
    assert.deepEqual(objs[3].j1939, { fault: "bad-sequence", pgn: 0xfeec, source: 0x21, destination: 0xff, transport: "bam" });
    const bare = runVgw(["decode", "--j1939", "--format", "jsonl", file]);
    assert.equal(bare.code, 0, bare.stderr);
    const first = JSON.parse(bare.stdout.split("\n").find((l) => l.includes('"j1939"'))!) as Record<string, unknown>;
    assert.equal(first.message, undefined);
    assert.equal(first.data, "FE0707070707070707070707");
  });

  it("without --j1939, --dbc stays required (usage error, exit 2)", () => {
    const r = runVgw(["decode", "-"], "");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dbc is required/);
  });
});

describe("vgw dump --j1939's forms (the view with dump's DBC decoder)", () => {
  it("text after the interface column, JSON with t and bus first; a transfer open at the end is reported", async () => {
    const view = new J1939View(await loadDecoder(path.join(ROOT, "test/fixtures/dbc/j1939.dbc")));
    const frames = bamFrames({ pgn: 0x1f010, source: 0x02, destination: 0xff, data: Uint8Array.of(0x05, ...new Array(9).fill(0)) });
    const lines = frames.flatMap((f, i) => view.frame({ ...f, t: 5 + i * 0.05, bus: "vcan0" }));
    assert.deepEqual(
      lines.map((l) => viewDumpLine(l, "text")),
      ["  vcan0  j1939 bam pgn=1F010 02->FF [10] 05000000000000000000  Message2 Signal2=5"],
    );
    assert.deepEqual(JSON.parse(viewDumpLine(lines[0], "jsonl")), {
      t: 5.1,
      bus: "vcan0",
      j1939: { transport: "bam", pgn: 0x1f010, source: 2, destination: 255, priority: 7, size: 10, packets: 2 },
      data: "05000000000000000000",
      message: "Message2",
      signals: { Signal2: 5 },
    });
    view.frame({ ...frames[0], t: 6, bus: "vcan0" });
    const end = view.finish();
    assert.equal(end[0].t, 6);
    assert.deepEqual(
      end.map((l) => viewDumpLine(l, "text")),
      ["  vcan0  j1939 ! incomplete pgn=1F010 02->FF bam: the input ended after packet 0 of 2"],
    );
    assert.equal(view.finish().length, 0, "reported once");
    assert.equal(view.summary(), "j1939: 1 message reassembled (bam 1), 1 transport fault (incomplete 1)");
  });
});
