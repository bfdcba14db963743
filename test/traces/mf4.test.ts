/**
 * MF4 (ASAM MDF 4 bus logging): real CANedge files (unfinalised, unsorted, VLSD data bytes after their frame's
 * record, virtual channels, value-to-value conversions, LIN groups beside CAN), the same data re-wrapped in every
 * container the format allows (DZ with and without transposition, DL lists of DT blocks), our writer's files read
 * back and checked block by block against the specification's layouts, and every refusal naming block and offset.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { formatFrame, type Frame } from "../../frame/frame";
import { TraceParseError, UsageError } from "../../frame/errors";
import { openTraceWriter, readAllFrames } from "../../host/trace";
import { log } from "../../host/log";
import { spawnSync } from "child_process";
import { fixture, sampleFrames, tmpDir } from "./helpers";

const VGW = path.resolve(__dirname, "../../../bin/vgw");

const J1939 = fixture("canedge_FCBF0606_00000001-60B621D9.MF4");
const OBD = fixture("canedge_17BD1DB7_00000170.MF4");
const VIRTUAL = fixture("canedge_2F6913DB_00000001-63BEF5CD.MF4");

function text(f: Frame): string {
  return `${f.bus} ${formatFrame(f)}`;
}

async function readWithErrors(file: string): Promise<{ frames: Frame[]; errors: TraceParseError[] }> {
  const errors: TraceParseError[] = [];
  const frames = await readAllFrames(file, { onError: (e) => errors.push(e) });
  return { frames, errors };
}

/** Little-endian u64 as a number (files here are small). */
function u64(b: Buffer, o: number): number {
  return Number(b.readBigUInt64LE(o));
}

interface RawBlock {
  id: string;
  length: number;
  links: number[];
  data: Buffer;
}

function rawBlock(file: Buffer, at: number): RawBlock {
  const id = file.toString("latin1", at, at + 4);
  const length = u64(file, at + 8);
  const count = u64(file, at + 16);
  const links = Array.from({ length: count }, (_, i) => u64(file, at + 24 + 8 * i));
  return { id, length, links, data: file.subarray(at + 24 + 8 * count, at + length) };
}

/** The CANedge file with its (last, unfinalised) DT block replaced by `wrap(records)`, as a finalised file. */
function rewrap(source: string, wrap: (records: Buffer, at: number) => Buffer): Buffer {
  const file = fs.readFileSync(source);
  const hd = rawBlock(file, 64);
  const dg = rawBlock(file, hd.links[0]);
  const dt = dg.links[2];
  assert.equal(file.toString("latin1", dt, dt + 4), "##DT");
  const records = file.subarray(dt + 24);
  const head = Buffer.from(file.subarray(0, dt));
  head.write("MDF     ", 0, "latin1");
  head.writeUInt16LE(0, 60); // finalised: no unfinalised flags
  return Buffer.concat([head, wrap(records, dt)]);
}

function header(id: string, length: number, links: number[]): Buffer {
  const h = Buffer.alloc(24 + 8 * links.length);
  h.write(`##${id}`, 0, "latin1");
  h.writeBigUInt64LE(BigInt(length), 8);
  h.writeBigUInt64LE(BigInt(links.length), 16);
  links.forEach((l, i) => h.writeBigUInt64LE(BigInt(l), 24 + 8 * i));
  return h;
}

function dz(records: Buffer, zipType: number, columns: number): Buffer {
  let input = records;
  if (zipType === 1) {
    const rows = Math.floor(records.length / columns);
    input = Buffer.from(records);
    for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) input[c * rows + r] = records[r * columns + c];
  }
  const packed = zlib.deflateSync(input);
  const d = Buffer.alloc(24);
  d.write("DT", 0, "latin1");
  d[2] = zipType;
  d.writeUInt32LE(columns, 4);
  d.writeBigUInt64LE(BigInt(records.length), 8);
  d.writeBigUInt64LE(BigInt(packed.length), 16);
  const body = Buffer.concat([header("DZ", 24 + 24 + packed.length, []), d, packed]);
  return Buffer.concat([body, Buffer.alloc((8 - (body.length % 8)) % 8)]);
}

describe("MF4 traces", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads CANedge files: J1939 on two channels, OBD-II with a LIN group beside it, virtual channels and DLC tables", async () => {
    const j1939 = await readWithErrors(J1939);
    assert.deepEqual(j1939.errors, []);
    assert.equal(j1939.frames.length, 1815);
    assert.ok(j1939.frames.every((f) => f.ext && !f.fd && !f.rtr && f.data.length === 8));
    assert.deepEqual(j1939.frames.slice(0, 2).map(text), ["1 0CF00300#FFFE00FFFFFF00FF", "1 0CF00400#F0FF7D0000FFFFFF"]);
    // HD start time 2021-06-01T11:43:49Z (1622547829 s) plus the Timestamp channel (ns as f64, CC factor 1e-9).
    assert.ok(Math.abs((j1939.frames[0].t as number) - 1622547830.084) < 1e-6);
    assert.deepEqual(new Set(j1939.frames.map((f) => f.bus)), new Set(["1", "2"]));

    const notes: string[] = [];
    const sink = log.sink;
    log.sink = (line) => notes.push(line);
    const obd = await readWithErrors(OBD).finally(() => (log.sink = sink));
    // Its LIN group holds no records: nothing is passed over, so no note.
    assert.deepEqual(notes, []);
    assert.deepEqual(obd.errors, []);
    assert.equal(obd.frames.length, 2010);
    // The data bytes of each frame are in the VLSD record written after the frame's record.
    assert.deepEqual(obd.frames.slice(0, 2).map(text), ["1 7BB#10266201007E5007", "1 7BB#21C8FF815E6503EF"]);
    assert.deepEqual(new Set(obd.frames.map((f) => f.id)), new Set([0x7bb, 0x7ec]));

    const virtual = await readWithErrors(VIRTUAL);
    assert.deepEqual(virtual.errors, []);
    assert.equal(virtual.frames.length, 4024);
    assert.equal(virtual.frames.filter((f) => f.bus === "1").length, 1011);
    assert.equal(virtual.frames.filter((f) => f.bus === "2").length, 3013);
    assert.equal(text(virtual.frames[0]), "2 011#01");
    for (const { frames } of [j1939, obd, virtual]) {
      for (let i = 1; i < frames.length; i++) assert.ok((frames[i].t as number) >= (frames[i - 1].t as number), `frame ${i} in time order`);
    }
  });

  it("reads the same records in every container: DZ deflate, DZ transposed, a DL of DT blocks, an HL over a DL of DZ", async () => {
    const expected = (await readAllFrames(J1939, { strict: true })).map(text);
    const variants: Record<string, (records: Buffer, at: number) => Buffer> = {
      "dz-deflate": (records) => dz(records, 0, 0),
      "dz-transposed": (records) => dz(records, 1, 23),
      "dl-of-dt": (records, at) => {
        // DL first, then two DT blocks splitting the records at an odd place (a record straddles them).
        const cut = 1001;
        const dlLength = 24 + 8 * 3 + 8 + 16;
        const dt1 = at + dlLength;
        const dt1Bytes = Buffer.concat([header("DT", 24 + cut, []), records.subarray(0, cut), Buffer.alloc((8 - (cut % 8)) % 8)]);
        const dt2 = dt1 + dt1Bytes.length;
        const dlData = Buffer.alloc(24);
        dlData.writeUInt32LE(2, 4);
        dlData.writeBigUInt64LE(0n, 8);
        dlData.writeBigUInt64LE(BigInt(cut), 16);
        return Buffer.concat([header("DL", dlLength, [0, dt1, dt2]), dlData, dt1Bytes, header("DT", 24 + records.length - cut, []), records.subarray(cut)]);
      },
      "hl-dl-dz": (records, at) => {
        const hlLength = 24 + 8 + 8;
        const dlLength = 24 + 8 * 3 + 8 + 16;
        const half = Math.floor(records.length / 2);
        const z1 = dz(records.subarray(0, half), 1, 22);
        const z2 = dz(records.subarray(half), 0, 0);
        const dl = at + hlLength;
        const z1At = dl + dlLength;
        const dlData = Buffer.alloc(24);
        dlData.writeUInt32LE(2, 4);
        dlData.writeBigUInt64LE(BigInt(half), 16);
        const hlData = Buffer.alloc(8);
        hlData[2] = 1;
        return Buffer.concat([header("HL", hlLength, [dl]), hlData, header("DL", dlLength, [0, z1At, z1At + z1.length]), dlData, z1, z2]);
      },
    };
    for (const [name, wrap] of Object.entries(variants)) {
      const file = path.join(dir, `${name}.mf4`);
      fs.writeFileSync(file, rewrap(J1939, wrap));
      const { frames, errors } = await readWithErrors(file);
      assert.deepEqual(errors.map((e) => e.message), [], name);
      assert.deepEqual(frames.map(text), expected, name);
    }
  });

  it("reads a sorted group whose data bytes are a VLSD channel in an SD block (plain and in a DZ block)", async () => {
    // A file built by hand from the specification's layouts: ID, HD, DG (sorted), CG, Timestamp (f64, master),
    // CAN_DataFrame composed of ID (bits 0-28 of u32 at 8, IDE in bit 31), DataLength (u8 at 12), DataBytes (VLSD,
    // u64 offset at 13); DT with three records; SD with their values (u32 length, bytes).
    const frames = [
      { t: 0.5, id: 0x123, ext: false, data: [1, 2, 3] },
      { t: 0.75, id: 0x1abcdef, ext: true, data: [] },
      // 12 bytes and no EDL channel: a CAN FD frame.
      { t: 1.25, id: 0x7ff, ext: false, data: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xaa, 0xbb] },
    ];
    const build = (zipSd: boolean): Buffer => {
      const blocks: Buffer[] = [];
      let at = 64;
      const add = (b: Buffer): number => {
        const where = at;
        const padded = Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
        blocks.push(padded);
        at += padded.length;
        return where;
      };
      const block = (id: string, links: number[], data: Buffer) => Buffer.concat([header(id, 24 + 8 * links.length + data.length, links), data]);
      const tx = (text: string) => add(block("TX", [], Buffer.from(`${text}\0`)));
      const cnData = (type: number, sync: number, dataType: number, byteOffset: number, bitCount: number) => {
        const d = Buffer.alloc(72);
        d[0] = type;
        d[1] = sync;
        d[2] = dataType;
        d.writeUInt32LE(byteOffset, 4);
        d.writeUInt32LE(bitCount, 8);
        return d;
      };
      add(Buffer.alloc(24 + 6 * 8 + 32)); // the HD block at 64, written last (it links to the DG)
      const sdValues = Buffer.concat(frames.map((f) => Buffer.concat([Buffer.from(Uint32Array.of(f.data.length).buffer), Buffer.from(f.data)])));
      const sdAt = zipSd
        ? add(Buffer.concat([header("DZ", 48 + zlib.deflateSync(sdValues).length, []), Buffer.from("SD\0\0\0\0\0\0", "latin1"), Buffer.from(BigUint64Array.of(BigInt(sdValues.length), BigInt(zlib.deflateSync(sdValues).length)).buffer), zlib.deflateSync(sdValues)]))
        : add(block("SD", [], sdValues));
      const bytesCn = add(block("CN", [0, 0, tx("CAN_DataFrame.DataBytes"), 0, 0, sdAt, 0, 0], cnData(1, 0, 10, 13, 64)));
      const lenCn = add(block("CN", [bytesCn, 0, tx("CAN_DataFrame.DataLength"), 0, 0, 0, 0, 0], cnData(0, 0, 0, 12, 8)));
      const idCn = add(block("CN", [lenCn, 0, tx("CAN_DataFrame.ID"), 0, 0, 0, 0, 0], cnData(0, 0, 0, 8, 32)));
      const frameCn = add(block("CN", [0, idCn, tx("CAN_DataFrame"), 0, 0, 0, 0, 0], cnData(0, 0, 10, 8, 13 * 8)));
      const timeCn = add(block("CN", [frameCn, 0, tx("Timestamp"), 0, 0, 0, 0, 0], cnData(2, 1, 4, 0, 64)));
      const records = Buffer.alloc(21 * frames.length);
      let offset = 0;
      frames.forEach((f, i) => {
        records.writeDoubleLE(f.t, 21 * i);
        records.writeUInt32LE((f.ext ? 0x80000000 : 0) + f.id, 21 * i + 8);
        records[21 * i + 12] = f.data.length;
        records.writeBigUInt64LE(BigInt(offset), 21 * i + 13);
        offset += 4 + f.data.length;
      });
      const dtAt = add(block("DT", [], records));
      const cgData = Buffer.alloc(32);
      cgData.writeBigUInt64LE(BigInt(frames.length), 8);
      cgData.writeUInt16LE(2, 16);
      cgData.writeUInt32LE(21, 24);
      const cgAt = add(block("CG", [0, timeCn, 0, 0, 0, 0], cgData));
      const dgAt = add(block("DG", [0, cgAt, dtAt, 0], Buffer.alloc(8)));
      const hdData = Buffer.alloc(32);
      hdData.writeBigUInt64LE(1600000000n * 1000000000n, 0);
      blocks[0] = block("HD", [dgAt, 0, 0, 0, 0, 0], hdData);
      assert.equal(blocks[0].length, 24 + 48 + 32);
      const id = Buffer.alloc(64);
      id.write("MDF     4.10    test    ", 0, "latin1");
      id.writeUInt16LE(410, 28);
      return Buffer.concat([id, ...blocks]);
    };
    for (const zipSd of [false, true]) {
      const file = path.join(dir, `sd-${zipSd}.mf4`);
      fs.writeFileSync(file, build(zipSd));
      const { frames: got, errors } = await readWithErrors(file);
      assert.deepEqual(errors.map((e) => e.message), []);
      assert.deepEqual(got.map(text), ["1 123#010203", "1 01ABCDEF#", "1 7FF##009080706050403020100AABB"]);
      assert.deepEqual(got.map((f) => f.t), [1600000000.5, 1600000000.75, 1600000001.25]);
    }
  });

  it("writes MDF 4.11 that it reads back; gzip input and the block layout as the specification gives it", async () => {
    const frames = sampleFrames({ otherErrorClasses: true });
    const file = path.join(dir, "rt.mf4");
    const w = openTraceWriter(file);
    for (let i = 0; i < frames.length; i += 7) await w.write(frames.slice(i, i + 7));
    await w.close();
    assert.equal(w.framesWritten, frames.length);
    const back = await readAllFrames(file, { strict: true });
    // Error frames keep only the ASAM ErrorType: a controller problem (no such type) becomes a plain bus error.
    const expected = frames.map((f) => (f.err && f.id === 0x04 ? { ...f, id: 0x80, data: new Uint8Array(8) } : f));
    assert.deepEqual(back.map(text), expected.map(text));
    back.forEach((f, i) => assert.equal(f.t, expected[i].t, `frame ${i} time`));

    fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file)));
    assert.deepEqual((await readAllFrames(`${file}.gz`, { strict: true })).map(text), expected.map(text));

    // Block by block: ID, HD at 64 with the first frame's whole second as start time, three DG/CG pairs with the
    // bus-logging flags and names, data through HL -> DL -> DZ (transposed by the record length).
    const bytes = fs.readFileSync(file);
    assert.equal(bytes.toString("latin1", 0, 16), "MDF     4.11    ");
    assert.equal(bytes.readUInt16LE(28), 411);
    const hd = rawBlock(bytes, 64);
    assert.equal(hd.id, "##HD");
    assert.equal(u64(hd.data, 0) / 1e9, 1700000000);
    assert.equal(rawBlock(bytes, hd.links[1]).id, "##FH");
    const seen: string[] = [];
    let records = 0;
    for (let dgAt = hd.links[0]; dgAt !== 0; ) {
      const dg = rawBlock(bytes, dgAt);
      assert.equal(dg.id, "##DG");
      assert.equal(dg.data[0], 0, "sorted: no record ids");
      const cg = rawBlock(bytes, dg.links[1]);
      assert.equal(cg.id, "##CG");
      assert.equal(cg.data.readUInt16LE(16), 6, "bus event + plain bus event");
      const recordSize = cg.data.readUInt32LE(24);
      const cycles = u64(cg.data, 8);
      const time = rawBlock(bytes, cg.links[1]);
      assert.deepEqual([time.data[0], time.data[1], time.data[2]], [2, 1, 4], "master, time, f64");
      const frameCn = rawBlock(bytes, time.links[0]);
      const name = rawBlock(bytes, frameCn.links[2]).data.toString("utf8").replace(/\0+$/, "");
      seen.push(name);
      const members: string[] = [];
      for (let at = frameCn.links[1]; at !== 0; ) {
        const cn = rawBlock(bytes, at);
        members.push(rawBlock(bytes, cn.links[2]).data.toString("utf8").replace(/\0+$/, ""));
        at = cn.links[0];
      }
      assert.ok(members.includes(`${name}.ID`) && members.includes(`${name}.BusChannel`) && members.includes(`${name}.DLC`), members.join());
      const hl = rawBlock(bytes, dg.links[2]);
      assert.equal(hl.id, "##HL");
      const dl = rawBlock(bytes, hl.links[0]);
      assert.equal(dl.id, "##DL");
      let total = 0;
      for (const at of dl.links.slice(1)) {
        const z = rawBlock(bytes, at);
        assert.equal(z.id, "##DZ");
        assert.equal(z.data.toString("latin1", 0, 2), "DT");
        assert.equal(z.data[2], 1, "transposed");
        assert.equal(z.data.readUInt32LE(4), recordSize);
        const org = u64(z.data, 8);
        assert.equal(zlib.inflateSync(z.data.subarray(24, 24 + u64(z.data, 16))).length, org);
        total += org;
      }
      assert.equal(total, cycles * recordSize);
      records += cycles;
      dgAt = dg.links[0];
    }
    assert.deepEqual(seen, ["CAN_DataFrame", "CAN_RemoteFrame", "CAN_ErrorFrame"]);
    assert.equal(records, frames.length);
  });

  it("writes long traces in several DZ blocks and reads them back in time order across groups", async () => {
    const file = path.join(dir, "long.mf4");
    const w = openTraceWriter(file);
    const n = 120000;
    const all: Frame[] = [];
    for (let i = 0; i < n; i += 1000) {
      const batch: Frame[] = [];
      for (let k = i; k < i + 1000; k++) {
        const t = 1700000000 + k / 1000;
        const f: Frame =
          k % 97 === 0
            ? { id: 0x100 + (k % 50), ext: false, rtr: true, fd: false, brs: false, esi: false, err: false, data: new Uint8Array(0), dlc: 4, t, bus: "1" }
            : { id: k & 0x7ff, ext: false, rtr: false, fd: false, brs: false, esi: false, err: false, data: Uint8Array.of(k & 255, (k >> 8) & 255, 1, 2), t, bus: String(1 + (k % 2)) };
        batch.push(f);
      }
      all.push(...batch);
      await w.write(batch);
    }
    await w.close();
    const bytes = fs.readFileSync(file);
    const dg = rawBlock(bytes, rawBlock(bytes, 64).links[0]);
    assert.ok(rawBlock(bytes, rawBlock(bytes, dg.links[2]).links[0]).links.length - 1 >= 2, "data frames span several DZ blocks");
    const back = await readAllFrames(file, { strict: true });
    assert.equal(back.length, n);
    assert.deepEqual(back.map(text), all.map(text));
  });

  it("refuses what it does not support with the block and its offset, and goes on where it can", async () => {
    const write = (name: string, b: Buffer) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, b);
      return file;
    };
    const notMdf = await readWithErrors(write("not.mf4", Buffer.from("hello, not an MDF file at all".repeat(4))));
    assert.match(notMdf.errors[0].message, /not\.mf4:0: not an MDF file/);

    const good = fs.readFileSync(J1939);
    const v3 = Buffer.from(good);
    v3.writeUInt16LE(330, 28);
    assert.match((await readWithErrors(write("v3.mf4", v3))).errors[0].message, /v3\.mf4:0: ID block at byte 0: MDF version 3\.3 is not supported/);

    // The Timestamp channel's conversion turned into an algebraic one (type 3).
    const algebraic = Buffer.from(good);
    const cc = algebraic.indexOf("##CC", 0, "latin1");
    const ccLinks = u64(algebraic, cc + 16);
    algebraic[cc + 24 + 8 * ccLinks] = 3;
    const alg = await readWithErrors(write("alg.mf4", algebraic));
    assert.ok(alg.errors.length > 0);
    assert.match(alg.errors[0].message, new RegExp(`alg\\.mf4:${cc}: CC block at byte ${cc} \\(.*\\): conversion type 3 is not supported`));

    // Corrupt zlib data in a DZ block.
    const zipped = rewrap(J1939, (records) => dz(records, 0, 0));
    const dzAt = zipped.indexOf("##DZ", 0, "latin1");
    zipped.fill(0x55, dzAt + 60, dzAt + 90);
    const corrupt = await readWithErrors(write("corrupt.mf4", zipped));
    assert.match(corrupt.errors[0].message, new RegExp(`corrupt\\.mf4:${dzAt}: DZ block at byte ${dzAt}: zlib data is corrupt`));

    // A link into nowhere.
    const broken = Buffer.from(good);
    broken.writeBigUInt64LE(BigInt(good.length + 800), 64 + 24);
    assert.match((await readWithErrors(write("link.mf4", broken))).errors[0].message, /data group: link to byte \d+ is outside the file/);

    // A finalised file cut short: the frames before the cut, and the cut record reported.
    const cutFile = write("cut.mf4", rewrap(J1939, (records) => Buffer.concat([header("DT", 24 + records.length, []), records])).subarray(0, good.length - 10));
    const cut = await readWithErrors(cutFile);
    assert.match(cut.errors[0].message, /cut\.mf4:7456: DT block at byte 7456: \d+ bytes run past the end of the file; reading the \d+ that are there/);
    // The last frame's record came whole but its data bytes' VLSD record was cut: that frame is reported, not made up.
    assert.match(cut.errors[1].message, /cut\.mf4:4104: CG block at byte 4104: no VLSD record for the data bytes of the record at data offset \d+/);
    assert.ok(cut.errors.length <= 3);
    assert.ok(cut.frames.length > 1700 && cut.frames.length < 1815, String(cut.frames.length));

    await assert.rejects(readAllFrames(write("strict.mf4", v3), { strict: true }), TraceParseError);
  });

  it("survives 400 damaged files: every problem is a reported error, never a crash", async () => {
    const seeds = [fs.readFileSync(OBD), fs.readFileSync(path.join(dir, "rt.mf4")), rewrap(J1939, (records) => dz(records, 1, 22))];
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const sink = log.sink;
    log.sink = () => undefined; // damaged files give many notes; the errors are what is checked
    try {
      for (let i = 0; i < 400; i++) {
        const b = Buffer.from(seeds[i % seeds.length]);
        // Damage where it hurts: the metadata blocks (links, lengths, types) more often than the data.
        for (let k = 0, n = 1 + Math.floor(rnd() * 8); k < n; k++) {
          const at = rnd() < 0.7 ? 64 + Math.floor(rnd() * Math.min(b.length - 64, 8000)) : Math.floor(rnd() * b.length);
          b[at] = rnd() < 0.5 ? Math.floor(rnd() * 256) : b[at] ^ (1 << Math.floor(rnd() * 8));
        }
        const file = path.join(dir, `fuzz${i % 10}.mf4`);
        fs.writeFileSync(file, rnd() < 0.1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b);
        try {
          await readAllFrames(file, { onError: () => undefined });
        } catch (e) {
          assert.fail(`damaged file ${i} (seed ${i % seeds.length}) crashed the reader: ${(e as Error).stack}`);
        }
      }
    } finally {
      log.sink = sink;
    }
  });

  it("vgw convert .log -> .mf4 -> .log keeps every frame, and vgw decode reads .mf4", () => {
    const mf4 = path.join(dir, "cli.mf4");
    const back = path.join(dir, "cli.log");
    const run = (...args: string[]) => {
      const r = spawnSync(process.execPath, [VGW, ...args], { encoding: "utf8", timeout: 60000 });
      assert.equal(r.status, 0, r.stderr);
      return r;
    };
    assert.match(run("convert", fixture("candump.log"), mf4).stderr, /12974 frames read \(candump\), 12974 written \(mf4\)/);
    run("convert", mf4, back);
    // The channel rule of the numbered formats: vcan0 is channel 1 in the file, can0 when it comes back.
    const original = fs.readFileSync(fixture("candump.log"), "utf8").replace(/ vcan0 /g, " can0 ");
    assert.equal(fs.readFileSync(back, "utf8"), original);
    const decoded = run("decode", "--dbc", path.resolve(__dirname, "../../../test/fixtures/dbc/ESR.dbc"), "--format", "jsonl", mf4);
    assert.equal(decoded.stdout.trim().split("\n").length, 12974);
  });

  it("refuses to write MF4 where its header cannot be finished (stdout, gzip)", () => {
    assert.throws(() => openTraceWriter(path.join(dir, "x.mf4.gz")), UsageError);
    assert.throws(() => openTraceWriter("-", { format: "mf4" }), UsageError);
  });
});
