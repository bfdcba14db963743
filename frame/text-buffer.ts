/**
 * Text output written as bytes into one large buffer: the trace writers and `vgw decode` print millions of lines, and
 * building each line as a chain of JavaScript strings (then joining and UTF-8 encoding them) cost more than all the
 * parsing and decoding before it. Numbers, hex and padding go straight into the buffer here, with the exact digits of
 * the string forms they replace (`toFixed(6)`, `toString(16).toUpperCase()`, `padStart`), so the files stay
 * byte-for-byte what the string code wrote.
 *
 *   const out = new TextBuffer();
 *   out.fixed6(t, 0); out.byte(SPACE); out.hex(id, 3); ...
 *   sink.write(out.take());          // the bytes since the last take(); the buffer moves on, the view stays valid
 *
 * Strings are written as UTF-8, as a Node stream writes a string by default.
 */

/** ASCII codes the callers use. */
export const SPACE = 0x20;
export const NEWLINE = 0x0a;

const HEX_UPPER = Uint8Array.from("0123456789ABCDEF", (c) => c.charCodeAt(0));
const HEX_LOWER = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
/** Both hex digits of every byte value, high digit first: one table read per digit instead of shifts. */
const HEX_HI = Uint8Array.from({ length: 256 }, (_, b) => HEX_UPPER[b >> 4]);
const HEX_LO = Uint8Array.from({ length: 256 }, (_, b) => HEX_UPPER[b & 15]);

/** |N| below this keeps the double spacing under one grid step (see gridDecimal). */
const GRID_LIMIT = 2 ** 52;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/** A fresh slab is this large; take() hands out views into it until less than MIN_FREE is left. */
const SLAB = 1 << 20;
const MIN_FREE = 64 << 10;

export class TextBuffer {
  private buf: Buffer;
  /** Where the bytes not yet taken start. */
  private start = 0;
  /** Where the next byte goes. */
  private pos = 0;
  /** fixed6's last whole seconds and their digits (right-aligned in 16 bytes). */
  private lastWhole = -1;
  private wholeLen = 0;
  private readonly wholeDigits = new Uint8Array(16);

  constructor(private readonly slab = SLAB) {
    this.buf = Buffer.allocUnsafe(slab);
  }

  /** Bytes written since the last take(). */
  get length(): number {
    return this.pos - this.start;
  }

  /**
   * The bytes written since the last take(), as a view that stays valid: later writes go to the rest of the slab or
   * to a new one, never over bytes already taken (a stream may still hold them).
   */
  take(): Buffer {
    const out = this.buf.subarray(this.start, this.pos);
    if (this.buf.length - this.pos < MIN_FREE) {
      this.buf = Buffer.allocUnsafe(this.slab);
      this.pos = 0;
    }
    this.start = this.pos;
    return out;
  }

  /**
   * Prints from now on into `buf`, from its start (the untaken bytes are dropped: take() them first). For a caller
   * that recycles its output buffers: fresh memory costs page faults, which for hundreds of MB of output was more
   * system time than writing it. A line that does not fit moves on to a larger buffer as usual.
   */
  into(buf: Buffer): void {
    this.buf = buf;
    this.start = 0;
    this.pos = 0;
  }

  /** Makes room for `n` more bytes (a new, larger slab keeps the untaken bytes). */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const pending = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.slab, 2 * (pending + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = pending;
  }

  byte(c: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = c;
  }

  /** `n` spaces (nothing when n <= 0): the padding of padStart/padEnd. */
  spaces(n: number): void {
    if (n <= 0) return;
    this.room(n);
    const b = this.buf;
    for (let k = 0; k < n; k++) b[this.pos++] = SPACE;
  }

  bytes(data: Uint8Array): void {
    const n = data.length;
    if (this.pos + n > this.buf.length) this.room(n);
    const b = this.buf;
    let p = this.pos;
    // TypedArray set costs about as much as a byte loop over 8 bytes, and far less beyond (JSON keys, names).
    if (n > 8) b.set(data, p);
    else for (let k = 0; k < n; k++) b[p + k] = data[k];
    p += n;
    this.pos = p;
  }

  /** A string, UTF-8 encoded. */
  text(s: string): void {
    const n = s.length;
    this.room(3 * n);
    const b = this.buf;
    let p = this.pos;
    if (n > 24) {
      this.pos += b.write(s, p, "utf8");
      return;
    }
    for (let k = 0; k < n; k++) {
      const c = s.charCodeAt(k);
      if (c >= 0x80) {
        this.pos = p;
        this.pos += b.write(s.slice(k), p, "utf8");
        return;
      }
      b[p++] = c;
    }
    this.pos = p;
  }

  /** A non-negative safe integer in decimal, right-aligned to `width` with spaces (String(n).padStart(width)). */
  decimal(n: number, width = 0): void {
    if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n))) {
      const s = String(n);
      this.spaces(width - s.length);
      this.text(s);
      return;
    }
    if (n < 0x80000000) {
      // 31-bit integers (counts, IDs, most signal values): integer division, no floating-point floor
      let m = n | 0;
      const len = m < 10 ? 1 : m < 100 ? 2 : m < 1000 ? 3 : m < 10000 ? 4 : m < 100000 ? 5 : m < 1000000 ? 6 : m < 10000000 ? 7 : m < 100000000 ? 8 : m < 1000000000 ? 9 : 10;
      if (width > len) this.spaces(width - len);
      if (this.pos + len > this.buf.length) this.room(len);
      const b = this.buf;
      let p = this.pos + len;
      this.pos = p;
      do {
        const q = (m / 10) | 0;
        b[--p] = 48 + m - q * 10;
        m = q;
      } while (m > 0);
      return;
    }
    let len = 1;
    for (let q = n; q >= 10; q = Math.floor(q / 10)) len++;
    this.spaces(width - len);
    this.room(len);
    const b = this.buf;
    let p = this.pos + len;
    this.pos = p;
    do {
      const q = Math.floor(n / 10);
      b[--p] = 48 + (n - q * 10);
      n = q;
    } while (n > 0);
  }

  /** An integer below 1e15 in magnitude as String(n) writes it (-0 as "0"); anything else through String(). */
  integer(n: number): void {
    if (n < 0 && n > -1e15) {
      this.byte(0x2d);
      this.decimal(-n);
    } else if (n < 1e15) this.decimal(n);
    else this.text(String(n));
  }

  /**
   * String(v) for a value on the decimal grid of `places` places (a DBC signal's factor and offset put most values
   * there; a candump time has 6): when v is exactly the double nearest to N / 10^places and |N| < 2^52, the doubles
   * around v are closer together than the grid's step (|v| < 2^52 / 10^places, so ulp(v) <= |v| 2^-52 < 10^-places).
   * Any other decimal with no more significant digits than N / 10^places lies at least one grid step from it, so it
   * cannot be within half an ulp of v: N / 10^places (trailing zeros dropped) is the shortest form, which is what
   * String(v) prints. 2^52 covers candump times (1.7e9 s at 6 places: 1.7e15). `limit` caps |N| further: 1e15 keeps to
   * 15 significant digits.
   * Returns false (nothing written) when that does not hold; the caller then prints String(v).
   */
  gridDecimal(v: number, places: number, limit = GRID_LIMIT): boolean {
    if (places <= 0 || places > 9) return false;
    const scale = POW10[places];
    const n = Math.round(v * scale);
    if (!(n > -limit && n < limit && n > -GRID_LIMIT && n < GRID_LIMIT) || n / scale !== v || n === 0) return false;
    let a = n < 0 ? -n : n;
    // String(v) switches to exponent form below 1e-6.
    if (a < scale / 1e6) return false;
    let k = places;
    while (k > 0 && a % 10 === 0) {
      a /= 10;
      k--;
    }
    if (n < 0) this.byte(0x2d);
    if (k === 0) {
      this.decimal(a);
      return true;
    }
    const p10 = POW10[k];
    const whole = Math.floor(a / p10);
    const frac = a - whole * p10;
    this.decimal(whole);
    this.room(k + 1);
    const b = this.buf;
    const p = this.pos;
    b[p] = 0x2e;
    let f = frac;
    for (let i = k; i >= 1; i--) {
      const q = Math.floor(f / 10);
      b[p + i] = 48 + (f - q * 10);
      f = q;
    }
    this.pos = p + k + 1;
    return true;
  }

  /**
   * A non-negative integer in hex with at least `digits` digits, zero-filled: `n.toString(16).toUpperCase().padStart(digits, "0")`
   * (`lower`: without the toUpperCase).
   */
  hex(n: number, digits: number, lower = false): void {
    if (!(n >= 0 && n <= 0xffffffff && Number.isInteger(n))) {
      let s = n.toString(16);
      if (!lower) s = s.toUpperCase();
      this.text(s.padStart(digits, "0"));
      return;
    }
    let len = 1;
    for (let q = n; q >= 16; q = Math.floor(q / 16)) len++;
    if (len < digits) len = digits;
    this.room(len);
    const table = lower ? HEX_LOWER : HEX_UPPER;
    const b = this.buf;
    let p = this.pos + len;
    this.pos = p;
    for (let k = 0; k < len; k++) {
      b[--p] = table[n % 16];
      n = Math.floor(n / 16);
    }
  }

  /** Data bytes as two uppercase hex digits each, no separator (`DEADBEEF`, the can-utils form). */
  hexBytes(data: Uint8Array): void {
    const n = data.length;
    this.room(2 * n);
    const b = this.buf;
    let p = this.pos;
    for (let k = 0; k < n; k++) {
      const v = data[k];
      b[p] = HEX_HI[v];
      b[p + 1] = HEX_LO[v];
      p += 2;
    }
    this.pos = p;
  }

  /** Data bytes as the Vector and PEAK text formats write them: `0A 1B 2C`. */
  spacedHexBytes(data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    this.room(3 * n);
    const b = this.buf;
    let p = this.pos;
    for (let k = 0; k < n; k++) {
      const v = data[k];
      b[p] = HEX_HI[v];
      b[p + 1] = HEX_LO[v];
      b[p + 2] = SPACE;
      p += 3;
    }
    this.pos = p - 1;
  }

  /**
   * `t.toFixed(6).padStart(width)` without the string. toFixed gives the exact decimal value of the double rounded to 6
   * places (ties up). Below 9e9 seconds the integer part and the micro-seconds are computed exactly apart from a
   * product whose error is far below 1e-9 of a micro-second, so only a value within 1e-4 of a tie, or one outside that
   * range, takes toFixed itself.
   */
  fixed6(t: number, width: number): void {
    if (!(t >= 0 && t < 9e9)) {
      this.padded(t.toFixed(6), width);
      return;
    }
    let whole = Math.floor(t);
    const scaled = (t - whole) * 1e6; // t - whole is exact (Sterbenz)
    let micros = Math.floor(scaled);
    const rest = scaled - micros;
    if (rest > 0.4999 && rest < 0.5001) {
      this.padded(t.toFixed(6), width);
      return;
    }
    if (rest > 0.5) micros++;
    if (micros === 1e6) {
      whole++;
      micros = 0;
    }
    // Consecutive frames mostly share the whole seconds: their digits are kept from the last call.
    if (whole !== this.lastWhole) {
      this.lastWhole = whole;
      let len = 0;
      let w = whole;
      do {
        const q = Math.floor(w / 10);
        this.wholeDigits[15 - len++] = 48 + (w - q * 10);
        w = q;
      } while (w > 0);
      this.wholeLen = len;
    }
    const len = this.wholeLen;
    this.spaces(width - len - 7);
    this.room(len + 7);
    const b = this.buf;
    let p = this.pos;
    const digits = this.wholeDigits;
    for (let k = 16 - len; k < 16; k++) b[p++] = digits[k];
    this.pos = p + 7;
    b[p] = 0x2e;
    for (let k = 6; k >= 1; k--) {
      const q = (micros / 10) | 0;
      b[p + k] = 48 + (micros - q * 10);
      micros = q;
    }
  }

  private padded(s: string, width: number): void {
    this.spaces(width - s.length);
    this.text(s);
  }
}
