/**
 * Deterministic test inputs: a seeded generator (xorshift32, so a failure replays exactly) and command payloads for
 * the gateway's downlink: random bytes, bit flips of a valid command, truncations, and a valid command with junk after.
 */

export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

export function fuzzCommands(valid: Uint8Array, count: number, seed: number): Uint8Array[] {
  const r = rng(seed);
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % 4;
    if (k === 0) payloads.push(Uint8Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256)));
    else if (k === 1) {
      // A copy: `valid` may be a Node Buffer, whose slice() is a view, and the flips must not pile up in it.
      const p = Uint8Array.from(valid);
      for (let n = 1 + Math.floor(r() * 3); n > 0; n--) p[Math.floor(r() * p.length)] ^= 1 << Math.floor(r() * 8);
      payloads.push(p);
    } else if (k === 2) payloads.push(Uint8Array.from(valid.subarray(0, Math.floor(r() * valid.length))));
    else payloads.push(Uint8Array.from([...valid, ...Array.from({ length: 1 + Math.floor(r() * 600) }, () => Math.floor(r() * 256))]));
  }
  return payloads;
}
