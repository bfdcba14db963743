/**
 * The receive side of a bus: frames pushed by a driver callback, pulled by `for await`. Bounded, because a consumer
 * that stalls must not grow memory without limit: frames beyond `limit` are dropped and counted in `dropped`.
 */
import type { Frame } from "../../can-db/frame";

export class RxQueue implements AsyncIterable<Frame> {
  private items: Frame[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<Frame>) => void) | undefined;
  private ended = false;
  /** Frames discarded because the queue was full. */
  dropped = 0;

  constructor(private readonly limit = 1 << 20) {}

  push(frame: Frame): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: frame, done: false });
      return;
    }
    if (this.items.length - this.head >= this.limit) {
      this.dropped++;
      return;
    }
    this.items.push(frame);
  }

  /** Ends every iteration once the frames already queued are consumed. */
  end(): void {
    this.ended = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  get length(): number {
    return this.items.length - this.head;
  }

  private next(): Promise<IteratorResult<Frame>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++];
      // Compact now and then so a long-running queue does not keep consumed frames alive.
      if (this.head > 4096 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return {
      next: () => this.next(),
      return: async () => ({ value: undefined, done: true }),
    };
  }
}
