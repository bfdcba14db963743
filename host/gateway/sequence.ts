/**
 * Gap and duplicate detection over the gateway's batch numbering: a sequence number per boot, 0, 1, 2, ...
 * (docs/protocol.md). A number skipped is a gap (a batch dropped from the outbox or lost); a number seen twice is a
 * duplicate (a QoS 1 resend after a reconnect) and must be dropped by the receiver; a skipped number that arrives
 * later fills its gap. A new boot id starts a new numbering.
 */

export type SequenceVerdict =
  /** Next in order, or first of a boot. */
  | { kind: "new"; firstOfBoot: boolean; joinedAt?: number }
  /** New, but `missing` numbers before it were skipped. */
  | { kind: "gap"; missing: number; from: number; to: number }
  /** A number that was missing before: it fills (part of) a gap. */
  | { kind: "late" }
  /** Seen before: drop it. */
  | { kind: "duplicate" };

export interface SequenceCounts {
  batches: number;
  duplicates: number;
  /** Numbers skipped and not (yet) filled by a late arrival. */
  missing: number;
  late: number;
  boots: number;
}

interface BootState {
  next: number;
  /** Skipped numbers not yet seen, so a late one is told from a duplicate. Bounded: beyond the bound they stay missing. */
  holes: Set<number>;
}

const MAX_HOLES = 100_000;

export class SequenceTracker {
  private readonly boots = new Map<number, BootState>();
  readonly counts: SequenceCounts = { batches: 0, duplicates: 0, missing: 0, late: 0, boots: 0 };

  /**
   * @param expectStart when true, a boot's first batch is expected to be number 0 (the receiver was listening before
   * the gateway booted, as in the demo and tests); otherwise the first number seen is the baseline (`vgw tail` joining).
   */
  constructor(private readonly expectStart = false) {}

  /**
   * The gateway says its next batch number is `next` (status `seq`) and nothing is in flight (outbox empty): batches
   * below it never seen are missing. A trailing loss (the last batches dropped, nothing after them) shows up only here.
   */
  settle(boot: number, next: number): Extract<SequenceVerdict, { kind: "gap" }> | undefined {
    const state = this.boots.get(boot);
    if (!state || next <= state.next) return undefined;
    const from = state.next;
    for (let i = from; i < next && state.holes.size < MAX_HOLES; i++) state.holes.add(i);
    state.next = next;
    this.counts.missing += next - from;
    return { kind: "gap", missing: next - from, from, to: next - 1 };
  }

  observe(boot: number, seq: number): SequenceVerdict {
    let state = this.boots.get(boot);
    if (!state) {
      this.counts.boots++;
      this.counts.batches++;
      state = { next: seq + 1, holes: new Set() };
      this.boots.set(boot, state);
      if (this.expectStart && seq > 0) {
        for (let i = 0; i < seq && state.holes.size < MAX_HOLES; i++) state.holes.add(i);
        this.counts.missing += seq;
        return { kind: "gap", missing: seq, from: 0, to: seq - 1 };
      }
      return { kind: "new", firstOfBoot: true, joinedAt: seq };
    }
    if (seq === state.next) {
      state.next++;
      this.counts.batches++;
      return { kind: "new", firstOfBoot: false };
    }
    if (seq > state.next) {
      const missing = seq - state.next;
      for (let i = state.next; i < seq && state.holes.size < MAX_HOLES; i++) state.holes.add(i);
      const from = state.next;
      state.next = seq + 1;
      this.counts.batches++;
      this.counts.missing += missing;
      return { kind: "gap", missing, from, to: seq - 1 };
    }
    if (state.holes.delete(seq)) {
      this.counts.batches++;
      this.counts.missing--;
      this.counts.late++;
      return { kind: "late" };
    }
    this.counts.duplicates++;
    return { kind: "duplicate" };
  }
}
