/**
 * Frame rows into DuckDB's `frame_rows` table a data chunk at a time (up to 2,048 rows, DuckDB's vector size):
 * each column is staged in a typed array and copied into its vector in one native call, and the chunk is handed to
 * the appender whole. The appender's per-value calls (one native call and often a BigInt per value) were the cost
 * of the row-by-row path; here a chunk costs about a dozen native calls whatever its size.
 *
 * The row is seven narrow columns (duckdb-store.ts says why): the batch's number, the frame's number in the store,
 * its distance in ms from the batch's last frame, id, flags, dlc, data. Every integer column is at most 32 bits
 * wide because DuckDB bit-packs nothing wider in the store's 32 KB blocks (docs/ingest.md, "Storage").
 *
 * Layouts written directly (DuckDB's C API, duckdb.h): fixed-width columns as little-endian arrays; the validity
 * mask as 64-bit words, bit i = row i is not NULL; a BLOB value as a 16-byte `duckdb_string_t`, which holds up to
 * 12 bytes inline (u32 length, then the bytes, zero-padded). Every classic frame's data fits inline; longer data
 * (CAN FD) goes through `vector_assign_string_element_len`, which copies it into the vector's own heap.
 */
import duckdb from "@duckdb/node-bindings";
import { BLOB, DuckDBDataChunk, UINTEGER, UTINYINT, type DuckDBAppender } from "@duckdb/node-api";
import { FRAME_FLAG } from "../../frame/packed";
import type { BatchRow } from "./rows";

/** frame_rows, in column order (duckdb-store.ts's schema). */
const TYPES = [UINTEGER, UINTEGER, UINTEGER, UINTEGER, UTINYINT, UTINYINT, BLOB];
const COL = { batch: 0, n: 1, dt: 2, id: 3, flags: 4, dlc: 5, data: 6 } as const;
const INLINE = 12;
const TWO32 = 4294967296;

export class FrameChunkWriter {
  private readonly rowsPerChunk = duckdb.vector_size();
  private readonly chunk = DuckDBDataChunk.create(TYPES, this.rowsPerChunk);
  private readonly batch: Uint32Array;
  private readonly n: Uint32Array;
  private readonly dt: Uint32Array;
  private readonly id: Uint32Array;
  private readonly flags: Uint8Array;
  private readonly dlc: Uint8Array;
  private readonly dlcValid: Uint8Array;
  private readonly data: Uint8Array;
  private readonly dataWords: Uint32Array;
  /** Rows staged in the current chunk, and the rows whose data does not fit inline. */
  private rows = 0;
  private long: Array<{ row: number; bytes: Uint8Array }> = [];

  constructor(private readonly appender: DuckDBAppender) {
    const n = this.rowsPerChunk;
    this.batch = new Uint32Array(n);
    this.n = new Uint32Array(n);
    this.dt = new Uint32Array(n);
    this.id = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.dlc = new Uint8Array(n);
    this.dlcValid = new Uint8Array(n / 8);
    this.data = new Uint8Array(16 * n);
    this.dataWords = new Uint32Array(this.data.buffer);
  }

  /**
   * Stages every frame of `b`, appending chunks as they fill: batch number `batch`, frame numbers from `firstN` on
   * (modulo 2^32: the view subtracts modulo 2^32 too).
   */
  add(b: BatchRow, batch: number, firstN: number): void {
    const c = b.columns;
    const last = c.tMs[b.first + b.count - 1];
    for (let k = 0; k < b.count; k++) {
      if (this.rows === this.rowsPerChunk) this.flush();
      const n = this.rows++;
      const r = b.first + k;
      this.batch[n] = batch;
      this.n[n] = (firstN + k) % TWO32;
      // The gateway's uptime only grows within a batch, so the distance to its last frame is >= 0 (checked when
      // the batch was decoded); it fits 32 bits for any batch shorter than 49 days.
      this.dt[n] = last - c.tMs[r];
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
    const put = (col: number, a: Uint8Array | Uint32Array, bytesPerRow: number): void => duckdb.copy_data_to_vector(vec(col), 0, a.buffer as ArrayBuffer, a.byteOffset, n * bytesPerRow);
    put(COL.batch, this.batch, 4);
    put(COL.n, this.n, 4);
    put(COL.dt, this.dt, 4);
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
