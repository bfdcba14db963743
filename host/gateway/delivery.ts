/**
 * Delivery check: frames put on the gateway's CAN bus against frames that came out of the broker.
 *
 * Each delivered frame is matched to the oldest sent frame with the same bits (ID, flags, data) among those not yet
 * matched, so a lost or filtered frame shows up as a sent frame that is passed over, never as a shift of everything
 * after it. Matching is in order: a delivered frame that equals no pending sent frame is "unexpected" (corrupted or
 * invented), and sent frames passed over by a later match are "lost". Latency is host time from `sent()` to the
 * arrival of the batch that carried the frame.
 */
import { sameFrame, type Frame } from "../../frame/frame";
import { percentile } from "../percentile";

interface Pending {
  frame: Frame;
  sentAt: number;
}

export interface DeliveryCounts {
  sent: number;
  delivered: number;
  /** Sent frames passed over by later deliveries: they will not arrive any more. */
  lost: number;
  /** Delivered frames that match no frame sent (and not yet delivered). */
  unexpected: number;
  /** Sent, neither delivered nor passed over yet. */
  pending: number;
}

/** How far ahead of the oldest pending frame a match is searched (bounds the cost of a long loss). */
const SEARCH_WINDOW = 200_000;

export class DeliveryCheck {
  private queue: Pending[] = [];
  private head = 0;
  private latencies: number[] = [];
  readonly counts: DeliveryCounts = { sent: 0, delivered: 0, lost: 0, unexpected: 0, pending: 0 };
  /** Up to 20 descriptions of lost or unexpected frames, for the report. */
  readonly problems: string[] = [];

  /** Records frames as put on the bus at `at` (ms, host clock). */
  sent(frames: readonly Frame[], at: number): void {
    for (const frame of frames) this.queue.push({ frame, sentAt: at });
    this.counts.sent += frames.length;
    this.counts.pending += frames.length;
  }

  /** Matches frames that arrived at `at` (ms, host clock). */
  delivered(frames: readonly Frame[], at: number, describe: (f: Frame) => string): void {
    for (const f of frames) {
      const end = Math.min(this.queue.length, this.head + SEARCH_WINDOW);
      let i = this.head;
      while (i < end && !sameFrame(this.queue[i].frame, f)) i++;
      if (i === end) {
        this.counts.unexpected++;
        this.note(() => `unexpected frame ${describe(f)} (matches nothing sent)`);
        continue;
      }
      for (let k = this.head; k < i; k++) this.note(() => `lost frame #${this.counts.delivered + this.counts.lost + (k - this.head)} ${describe(this.queue[k].frame)}`);
      this.counts.lost += i - this.head;
      this.counts.pending -= i - this.head + 1;
      this.counts.delivered++;
      this.latencies.push(at - this.queue[i].sentAt);
      this.head = i + 1;
    }
    // Drop matched entries now and then so a long run keeps memory flat.
    if (this.head > 65_536) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** At the end: every frame still pending is lost. */
  finish(describe: (f: Frame) => string): void {
    for (let k = this.head; k < this.queue.length; k++) this.note(() => `not delivered: ${describe(this.queue[k].frame)}`);
    this.counts.lost += this.queue.length - this.head;
    this.counts.pending = 0;
    this.head = this.queue.length;
  }

  /** Keeps the first 20 problems; the text is built only for those (a lossy run can have millions). */
  private note(text: () => string): void {
    if (this.problems.length < 20) this.problems.push(text());
  }

  /** Latency percentile in ms (nearest rank), NaN when nothing was delivered. */
  percentile(p: number): number {
    return percentile(Float64Array.from(this.latencies).sort(), p);
  }
}
