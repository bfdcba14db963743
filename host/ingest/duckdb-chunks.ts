/**
 * Frame rows into DuckDB's `frame_rows` table a data chunk at a time (up to 2,048 rows, DuckDB's vector size):
 * each column is staged in a typed array and copied into its vector in one native call, and the chunk is handed to
 * the appender whole. The appender's per-value calls (one native call and often a BigInt per value, eleven per
 * frame) were the cost of the row-by-row path; here a chunk costs about fifteen native calls whatever its size.
 *
 * Layouts written directly (DuckDB's C API, duckdb.h): fixed-width columns as little-endian arrays; the validity
 * mask as 64-bit words, bit i = row i is not NULL; a VARCHAR/BLOB value as a 16-byte `duckdb_string_t`, which holds
 * a string of up to 12 bytes inline (u32 length, then the bytes, zero-padded). Every classic frame's data fits
 * inline; longer data (CAN FD) goes through `vector_assign_string_element_len`, which copies it into the vector's
 * own heap. The device column is a constant vector: a chunk holds one device's rows.
 */
import duckdb from "@duckdb/node-bindings";
import { BIGINT, BLOB, DuckDBDataChunk, UINTEGER, USMALLINT, UTINYINT, VARCHAR, type DuckDBAppender } from "@duckdb/node-api";
import { FRAME_FLAG } from "../../frame/packed";
import type { BatchRow } from "./rows";

/** frame_rows, in column order (duckdb-store.ts's schema). */
const TYPES = [VARCHAR, BIGINT, BIGINT, USMALLINT, BIGINT, UTINYINT, UINTEGER, UTINYINT, UTINYINT, BLOB];
const COL = { device: 0, boot: 1, seq: 2, idx: 3, tMs: 4, bus: 5, id: 6, flags: 7, dlc: 8, data: 9 } as const;
const INLINE = 12;
const TWO32 = 4294967296;

export class FrameChunkWriter {
  private readonly rowsPerChunk = duckdb.vector_size();
  private readonly chunk = DuckDBDataChunk.create(TYPES, this.rowsPerChunk);
  // Staging, one typed array per column; 64-bit columns as (low, high) u32 pairs.
  private readonly boot: Uint32Array;
  private readonly seq: Uint32Array;
  private readonly idx: Uint16Array;
  private readonly tMs: Uint32Array;
  private readonly bus: Uint8Array;
  private readonly id: Uint32Array;
  private readonly flags: Uint8Array;
  private readonly dlc: Uint8Array;
  private readonly dlcValid: Uint8Array;
  private readonly data: Uint8Array;
  private readonly dataWords: Uint32Array;
  /** Rows staged in the current chunk, their device, and the rows whose data does not fit inline. */
  private rows = 0;
  private device = "";
  private long: Array<{ row: number; bytes: Uint8Array }> = [];
  private readonly deviceValues = new Map<string, duckdb.Value>();

  constructor(private readonly appender: DuckDBAppender) {
    const n = this.rowsPerChunk;
    this.boot = new Uint32Array(2 * n);
    this.seq = new Uint32Array(2 * n);
    this.idx = new Uint16Array(n);
    this.tMs = new Uint32Array(2 * n);
    this.bus = new Uint8Array(n);
    this.id = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.dlc = new Uint8Array(n);
    this.dlcValid = new Uint8Array(n / 8);
    this.data = new Uint8Array(16 * n);
    this.dataWords = new Uint32Array(this.data.buffer);
  }

  /** Stages every frame of `b`, appending chunks as they fill. */
  add(b: BatchRow): void {
    if (this.rows > 0 && b.device !== this.device) this.flush();
    this.device = b.device;
    const c = b.columns;
    const bootLo = b.boot % TWO32;
    const bootHi = Math.floor(b.boot / TWO32);
    const seqLo = b.seq % TWO32;
    const seqHi = Math.floor(b.seq / TWO32);
    for (let k = 0; k < b.count; k++) {
      if (this.rows === this.rowsPerChunk) this.flush();
      const n = this.rows++;
      const r = b.first + k;
      this.boot[2 * n] = bootLo;
      this.boot[2 * n + 1] = bootHi;
      this.seq[2 * n] = seqLo;
      this.seq[2 * n + 1] = seqHi;
      this.idx[n] = k;
      const t = c.tMs[r];
      this.tMs[2 * n] = t % TWO32;
      this.tMs[2 * n + 1] = Math.floor(t / TWO32);
      this.id[n] = c.id[r];
      const flags = c.flags[r];
      this.flags[n] = flags;
      const len = c.length[r];
      const w = 4 * n;
      const words = this.dataWords;
      words[w + 1] = 0;
      words[w + 2] = 0;
      words[w + 3] = 0;
      if (flags & FRAME_FLAG.rtr) {
        // A remote frame: its requested length in dlc, and empty data.
        this.dlc[n] = len;
        this.dlcValid[n >> 3] |= 1 << (n & 7);
        words[w] = 0;
        continue;
      }
      words[w] = len;
      const at = c.dataAt[r];
      if (len <= INLINE) {
        const d = this.data;
        const src = c.data;
        const o = 16 * n + 4;
        for (let j = 0; j < len; j++) d[o + j] = src[at + j];
      } else {
        this.long.push({ row: n, bytes: c.data.subarray(at, at + len) });
      }
    }
  }

  /** Appends the staged rows as one chunk. */
  flush(): void {
    const n = this.rows;
    if (n === 0) return;
    const raw = this.chunk.chunk;
    duckdb.data_chunk_reset(raw);
    duckdb.data_chunk_set_size(raw, n);
    const vec = (i: number) => duckdb.data_chunk_get_vector(raw, i);
    let value = this.deviceValues.get(this.device);
    if (!value) {
      value = duckdb.create_varchar(this.device);
      this.deviceValues.set(this.device, value);
    }
    duckdb.vector_reference_value(vec(COL.device), value);
    const put = (col: number, a: Uint8Array | Uint16Array | Uint32Array, bytesPerRow: number): void => duckdb.copy_data_to_vector(vec(col), 0, a.buffer as ArrayBuffer, a.byteOffset, n * bytesPerRow);
    put(COL.boot, this.boot, 8);
    put(COL.seq, this.seq, 8);
    put(COL.idx, this.idx, 2);
    put(COL.tMs, this.tMs, 8);
    put(COL.bus, this.bus, 1);
    put(COL.id, this.id, 4);
    put(COL.flags, this.flags, 1);
    put(COL.dlc, this.dlc, 1);
    const dlcVector = vec(COL.dlc);
    duckdb.vector_ensure_validity_writable(dlcVector);
    // Whole 64-bit words of the mask (bits past n are ignored: the chunk has n rows).
    duckdb.copy_data_to_vector_validity(dlcVector, 0, this.dlcValid.buffer as ArrayBuffer, 0, Math.ceil(n / 64) * 8);
    put(COL.data, this.data, 16);
    if (this.long.length) {
      const dataVector = vec(COL.data);
      for (const l of this.long) duckdb.vector_assign_string_element_len(dataVector, l.row, l.bytes);
    }
    this.appender.appendDataChunk(this.chunk);
    this.rows = 0;
    this.long = [];
    this.dlcValid.fill(0);
  }
}
