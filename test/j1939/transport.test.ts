/**
 * J1939 transport reassembly (host/j1939/transport.ts): BAM, RTS/CTS (windows, hold, retransmission), ETP, and every
 * named fault, each ending its own transfer only while another transfer on the bus completes. Frames are built with
 * the sender's pure functions (or by hand where a test needs a broken sequence) and given times 50 ms apart.
 */
import { strict as assert } from "node:assert";
import { makeFrame, type Frame } from "../../frame/frame";
import { makeJ1939Id } from "../../can-db/j1939";
import {
  CM,
  J1939Reassembler,
  PGN_ETP_CM,
  PGN_ETP_DT,
  PGN_TP_CM,
  type J1939Event,
  type J1939Fault,
  type J1939FaultCode,
  type J1939Message,
} from "../../host/j1939/transport";
import { announceFrame, bamFrames, dataFrames, abortFrame } from "../../host/j1939/sender";

const payload = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

/** A TP.CM / ETP.CM frame from `source` to `destination`. */
function cm(source: number, destination: number, bytes: number[], etp = false): Frame {
  return makeFrame({ id: makeJ1939Id(7, etp ? PGN_ETP_CM : PGN_TP_CM, source, destination), ext: true, data: Uint8Array.from(bytes) });
}
function cts(receiver: number, originator: number, count: number, next: number, pgn: number): Frame {
  return cm(receiver, originator, [CM.cts, count, next, 0xff, 0xff, pgn & 0xff, (pgn >> 8) & 0xff, pgn >> 16]);
}
function eoma(receiver: number, originator: number, size: number, packets: number, pgn: number): Frame {
  return cm(receiver, originator, [CM.eoma, size & 0xff, size >> 8, packets, 0xff, pgn & 0xff, (pgn >> 8) & 0xff, pgn >> 16]);
}

/** Feeds frames with times (t0, then `gap` apart unless a frame has its own), collecting every event. */
function run(frames: Frame[], gap = 0.05, t0 = 10): { events: J1939Event[]; r: J1939Reassembler } {
  const r = new J1939Reassembler();
  const events: J1939Event[] = [];
  let t = t0;
  for (const f of frames) {
    const tf = f.t ?? t;
    events.push(...r.push({ ...f, t: tf, bus: f.bus ?? "can0" }));
    t = Math.round((tf + gap) * 1e6) / 1e6;
  }
  events.push(...r.finish(t));
  return { events, r };
}
const messages = (e: J1939Event[]): J1939Message[] => e.flatMap((x) => (x.kind === "message" ? [x.message] : []));
const faults = (e: J1939Event[]): J1939Fault[] => e.flatMap((x) => (x.kind === "fault" ? [x.fault] : []));
/** Sets a frame's time. */
const at = (f: Frame, t: number): Frame => ({ ...f, t });

/** An RTS/CTS transfer as a well-behaved pair of ECUs does it, CTS windows of `window` packets. */
function rtsCts(source: number, destination: number, pgn: number, data: Uint8Array, window: number): Frame[] {
  const m = { pgn, source, destination, data };
  const packets = Math.ceil(data.length / 7);
  const out = [announceFrame(m)];
  for (let next = 1; next <= packets; next += window) {
    const count = Math.min(window, packets - next + 1);
    out.push(cts(destination, source, count, next, pgn), ...dataFrames(m, next, next + count - 1));
  }
  out.push(eoma(destination, source, data.length, packets, pgn));
  return out;
}

/** A BAM from another source, interleaved with `frames`: it must complete whatever happens to the other transfer. */
function withBystander(frames: Frame[]): { frames: Frame[]; data: Uint8Array } {
  const data = payload(30, 99);
  const bystander = bamFrames({ pgn: 0xfeec, source: 0x33, destination: 0xff, data });
  const out: Frame[] = [];
  for (let i = 0; i < Math.max(frames.length, bystander.length); i++) {
    if (i < bystander.length) out.push(bystander[i]);
    if (i < frames.length) out.push(frames[i]);
  }
  return { frames: out, data };
}

describe("J1939 transport reassembly", () => {
  it("BAM: a DM1 of 26 bytes in 4 packets, padding removed, at the last packet's time", () => {
    const data = payload(26);
    const { events, r } = run(bamFrames({ pgn: 0xfeca, source: 0x00, destination: 0xff, data }));
    assert.deepEqual(faults(events), []);
    const [m] = messages(events);
    assert.deepEqual(
      { pgn: m.pgn, source: m.source, destination: m.destination, transport: m.transport, packets: m.packets, t: m.t, bus: m.bus },
      { pgn: 0xfeca, source: 0, destination: 0xff, transport: "bam", packets: 4, t: 10.2, bus: "can0" },
    );
    assert.deepEqual(m.data, data);
    assert.equal(r.counts.messages, 1);
    assert.equal(r.openTransfers, 0);
  });

  it("BAM: the largest TP message (1785 bytes, 255 packets)", () => {
    const data = payload(1785);
    const [m] = messages(run(bamFrames({ pgn: 0xfeec, source: 0x21, destination: 0xff, data })).events);
    assert.deepEqual(m.data, data);
    assert.equal(m.packets, 255);
  });

  it("RTS/CTS: CTS windows of 2 packets, EndOfMsgAck, no fault", () => {
    const data = payload(40);
    const { events, r } = run(rtsCts(0x80, 0x90, 0x12300, data, 2));
    assert.deepEqual(faults(events), []);
    const [m] = messages(events);
    assert.deepEqual(m.data, data);
    assert.equal(m.transport, "rts-cts");
    assert.equal(m.destination, 0x90);
    assert.equal(m.pgn, 0x12300);
    assert.equal(r.openTransfers, 0);
  });

  it("RTS/CTS: a hold (CTS of 0 packets) then the rest; a retransmission request overwrites packets", () => {
    const data = payload(30);
    const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data };
    const frames = [
      announceFrame(m),
      cts(0x20, 0x10, 3, 1, 0xef00),
      ...dataFrames(m, 1, 3),
      cts(0x20, 0x10, 0, 0xff, 0xef00), // hold
      cts(0x20, 0x10, 2, 3, 0xef00), // packet 3 again, then 4
      ...dataFrames(m, 3, 4),
      cts(0x20, 0x10, 1, 5, 0xef00),
      ...dataFrames(m, 5, 5),
      eoma(0x20, 0x10, 30, 5, 0xef00),
    ];
    const { events } = run(frames);
    assert.deepEqual(faults(events), []);
    assert.deepEqual(messages(events)[0].data, data);
  });

  it("ETP: 4000 bytes (572 packets) with CTS windows of 255 and DPO offsets", () => {
    const data = payload(4000);
    const pgn = 0xfe00;
    const packets = Math.ceil(data.length / 7);
    const frames: Frame[] = [cm(0x80, 0x90, [CM.etpRts, ...le(data.length, 4), pgn & 0xff, pgn >> 8, 0], true)];
    for (let next = 1; next <= packets; next += 255) {
      const count = Math.min(255, packets - next + 1);
      frames.push(cm(0x90, 0x80, [CM.etpCts, count, ...le(next, 3), pgn & 0xff, pgn >> 8, 0], true));
      frames.push(cm(0x80, 0x90, [CM.etpDpo, count, ...le(next - 1, 3), pgn & 0xff, pgn >> 8, 0], true));
      for (let seq = 1; seq <= count; seq++) {
        const p = next - 1 + seq;
        const chunk = new Uint8Array(8).fill(0xff);
        chunk[0] = seq;
        chunk.set(data.subarray((p - 1) * 7, p * 7), 1);
        frames.push(makeFrame({ id: makeJ1939Id(7, PGN_ETP_DT, 0x80, 0x90), ext: true, data: chunk }));
      }
    }
    frames.push(cm(0x90, 0x80, [CM.etpEoma, ...le(data.length, 4), pgn & 0xff, pgn >> 8, 0], true));
    const { events } = run(frames, 0.001);
    assert.deepEqual(faults(events), []);
    const [m] = messages(events);
    assert.equal(m.transport, "etp");
    assert.deepEqual(m.data, data);
  });

  it("frames on two buses with the same addresses are two transfers", () => {
    const a = bamFrames({ pgn: 0xfeca, source: 1, destination: 0xff, data: payload(20, 1) }).map((f) => ({ ...f, bus: "can0" }));
    const b = bamFrames({ pgn: 0xfeca, source: 1, destination: 0xff, data: payload(20, 2) }).map((f) => ({ ...f, bus: "can1" }));
    const interleaved = a.flatMap((f, i) => [f, b[i]]);
    const { events } = run(interleaved, 0.01);
    assert.deepEqual(faults(events), []);
    assert.deepEqual(
      messages(events).map((m) => [m.bus, m.data[0]]),
      [
        ["can0", 1],
        ["can1", 2],
      ],
    );
  });

  it("frames without times are reassembled without timeout checks", () => {
    const r = new J1939Reassembler();
    const events = bamFrames({ pgn: 0xfeca, source: 1, destination: 0xff, data: payload(20) }).flatMap((f) => r.push(f));
    assert.equal(messages(events).length, 1);
  });

  describe("named faults end their own transfer only (a BAM from another ECU completes beside it)", () => {
    const bam = (n = 30) => bamFrames({ pgn: 0xfeca, source: 0x05, destination: 0xff, data: payload(n) });

    /** Runs `frames` beside a bystander BAM; returns the faults, after checking the bystander came through. */
    function faultsBeside(frames: Frame[], gap = 0.05): J1939Fault[] {
      const { frames: all, data } = withBystander(frames);
      const { events, r } = run(all, gap);
      const bystander = messages(events).filter((m) => m.source === 0x33);
      assert.equal(bystander.length, 1, "the other transfer completed");
      assert.deepEqual(bystander[0].data, data);
      const found = faults(events);
      for (const f of found) assert.equal(r.counts.byFault[f.code]! >= 1, true);
      assert.equal(r.counts.faults, found.length);
      return found;
    }
    const codes = (fs: J1939Fault[]): J1939FaultCode[] => fs.map((f) => f.code);

    it("bad-sequence: a packet skipped", () => {
      const f = bam();
      const fs = faultsBeside([f[0], f[1], f[3], f[4]]);
      assert.equal(fs[0].code, "bad-sequence");
      assert.match(fs[0].reason, /TP\.DT 3 where 2 was expected/);
      // The packet after the fault belongs to no transfer: one unexpected-data fault for the run of them.
      assert.deepEqual(codes(fs), ["bad-sequence", "unexpected-data"]);
    });

    it("duplicate-sequence: a packet repeated", () => {
      const f = bam();
      const fs = faultsBeside([f[0], f[1], f[2], f[2]]);
      assert.deepEqual(codes(fs), ["duplicate-sequence"]);
      assert.equal(fs[0].pgn, 0xfeca);
    });

    it("timeout-T1: more than 750 ms between BAM packets, measured on the frames' times", () => {
      const f = bam();
      const { events } = run([at(f[0], 1), at(f[1], 1.05), at(f[2], 1.9), at(f[3], 1.95), at(f[4], 2.0), at(f[5], 2.05)]);
      const fs = faults(events);
      assert.equal(fs[0].code, "timeout-T1");
      assert.equal(fs[0].t, 1.05 + 0.75);
      assert.match(fs[0].reason, /no TP\.DT 2 within 750 ms/);
      assert.equal(messages(events).length, 0);
    });

    it("timeout-T2: no data within 1250 ms of a CTS", () => {
      const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data: payload(20) };
      const fs = faults(run([at(announceFrame(m), 10), at(cts(0x20, 0x10, 3, 1, 0xef00), 10.1), at(dataFrames(m, 1, 1)[0], 11.5)]).events);
      assert.equal(fs[0].code, "timeout-T2");
      assert.equal(fs[0].t, 10.1 + 1.25);
    });

    it("timeout-T3: no CTS within 1250 ms of the RTS; and no EndOfMsgAck after the last packet", () => {
      const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data: payload(20) };
      const noCts = run([at(announceFrame(m), 10), at(cts(0x20, 0x10, 3, 1, 0xef00), 11.3)]);
      assert.equal(faults(noCts.events)[0].code, "timeout-T3");
      const frames = rtsCts(0x10, 0x20, 0xef00, payload(20), 3);
      const last = frames.pop()!;
      const noAck = run([...frames, at(last, 30)]);
      // The data was complete: the message is shown, and the missing acknowledgement is a fault of its own.
      assert.equal(messages(noAck.events).length, 1);
      assert.deepEqual(codes(faults(noAck.events)), ["timeout-T3", "unexpected-control"]);
      assert.match(faults(noAck.events)[0].reason, /no EndOfMsgAck/);
    });

    it("timeout-T4: a hold not followed by a CTS within 1050 ms", () => {
      const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data: payload(20) };
      const fs = faults(run([at(announceFrame(m), 10), at(cts(0x20, 0x10, 0, 0xff, 0xef00), 10.1), at(cts(0x20, 0x10, 3, 1, 0xef00), 11.2)]).events);
      assert.equal(fs[0].code, "timeout-T4");
    });

    it("size-mismatch: a BAM whose packet count does not fit its size; an EndOfMsgAck of another size", () => {
      const f = bam();
      const wrong = makeFrame({ ...f[0], data: Uint8Array.from([...f[0].data.subarray(0, 3), 9, ...f[0].data.subarray(4)]) });
      const fs = faultsBeside([wrong]);
      assert.equal(fs[0].code, "size-mismatch");
      assert.match(fs[0].reason, /30 bytes in 9 packets \(5 needed\)/);
      const frames = rtsCts(0x10, 0x20, 0xef00, payload(20), 3);
      frames[frames.length - 1] = eoma(0x20, 0x10, 21, 3, 0xef00);
      assert.deepEqual(codes(faults(run(frames).events)), ["size-mismatch"]);
    });

    it("bad-size: a TP announcing more than 1785 bytes", () => {
      const f = bam();
      const big = makeFrame({ ...f[0], data: Uint8Array.from([CM.bam, 0x00, 0x08, 0xff, 0xff, 0xca, 0xfe, 0x00]) });
      const fs = faultsBeside([big]);
      assert.equal(fs[0].code, "bad-size");
      assert.match(fs[0].reason, /2048 bytes/);
    });

    it("aborted: the receiver's Abort, with the reason named", () => {
      const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data: payload(20) };
      const fs = faultsBeside([announceFrame(m), cts(0x20, 0x10, 1, 1, 0xef00), ...dataFrames(m, 1, 1), abortFrame(0xef00, 0x20, 0x10, 1)]);
      assert.equal(fs[0].code, "aborted");
      assert.equal(fs[0].abortReason, 1);
      assert.match(fs[0].reason, /already in one or more connection-managed sessions/);
    });

    it("unexpected-data: packets with no transfer open, one fault per run, every packet counted", () => {
      const f = bam();
      const { frames } = withBystander(f.slice(1));
      const { events, r } = run(frames);
      assert.deepEqual(codes(faults(events)), ["unexpected-data"]);
      assert.equal(r.counts.orphanPackets, 5);
    });

    it("unexpected-control: a CTS while packets were still due; a CTS for no transfer", () => {
      const m = { pgn: 0xef00, source: 0x10, destination: 0x20, data: payload(20) };
      const fs = faultsBeside([announceFrame(m), cts(0x20, 0x10, 3, 1, 0xef00), ...dataFrames(m, 1, 1), cts(0x20, 0x10, 3, 1, 0xef00)]);
      assert.equal(fs[0].code, "unexpected-control");
      assert.match(fs[0].reason, /CTS while packets 2\.\.3 were still due/);
      assert.deepEqual(codes(faultsBeside([cts(0x44, 0x45, 1, 1, 0xef00)])), ["unexpected-control"]);
    });

    it("replaced: a new BAM from the same source before the last one finished", () => {
      const f = bam();
      const g = bamFrames({ pgn: 0xfeca, source: 0x05, destination: 0xff, data: payload(14, 5) });
      const { frames, data } = withBystander([f[0], f[1], ...g]);
      const { events } = run(frames);
      assert.deepEqual(codes(faults(events)), ["replaced"]);
      const bySource = (source: number) => messages(events).filter((m) => m.source === source).map((m) => m.data);
      assert.deepEqual(bySource(0x33), [data]);
      assert.deepEqual(bySource(0x05), [payload(14, 5)]);
    });

    it("incomplete: the input ends with a transfer open", () => {
      const f = bam();
      const fs = faultsBeside(f.slice(0, 3));
      assert.deepEqual(codes(fs), ["incomplete"]);
      assert.match(fs[0].reason, /after packet 2 of 5/);
    });
  });
});

function le(n: number, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Math.floor(n / 256 ** i) & 0xff);
}
