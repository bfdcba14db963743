/**
 * Two MessageLinks joined in memory, for unit tests of the diagnostic services without a transport (the suites that
 * matter run them over ISO-TP on a bus too). What one side sends, the other receives, in order.
 */
import type { MessageLink } from "../../host/diag/link";

class MemoryLink implements MessageLink {
  peer!: MemoryLink;
  private readonly queue: Uint8Array[] = [];
  private readonly waiters: Array<{ resolve: (m: Uint8Array) => void; reject: (e: Error) => void }> = [];
  private closed = false;
  sent = 0;

  async send(payload: Uint8Array): Promise<void> {
    if (this.closed) throw new Error("link closed");
    this.sent++;
    this.peer.deliver(Uint8Array.from(payload));
  }

  private deliver(m: Uint8Array): void {
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.queue.push(m);
  }

  receive(timeoutMs: number): Promise<Uint8Array> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.reject(new Error("link closed"));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (x: Uint8Array) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        const e = new Error(`timeout after ${timeoutMs} ms`);
        e.name = "TimeoutError";
        reject(e);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error("link closed"));
  }
}

export function linkPair(): [MessageLink, MessageLink] {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
