/**
 * `vgw decode --threads N` (worker threads, cli/commands/decode-worker.ts) must print exactly what the single-threaded
 * loop prints: the same stdout bytes, the same warnings for bad lines (numbered, in input order, the same cut-off
 * after 20) and the same summary, for output to a regular file (written from libuv's thread pool) and to a pipe,
 * plain and gzipped input, jsonl and text. The trace mixes frames of every vw_mqb message with unknown IDs, short,
 * error, remote and CAN FD frames, CRLF and blank lines, and bad lines spread over several worker chunks.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { formatFrame, makeFrame } from "../../frame/frame";
import { loadDbcFile } from "../../can-db/load";
import { DBC_DIR, ROOT, runVgw, seededRandom } from "./helpers";

const DBC = join(DBC_DIR, "vw_mqb.dbc");

/** Runs bin/vgw with stdout to a file; returns that file's bytes, stderr and the exit code. */
function vgwToFile(args: string[], out: string): { code: number; stdout: Buffer; stderr: string } {
  const fd = openSync(out, "w");
  try {
    const r = spawnSync(process.execPath, [resolve(ROOT, "bin/vgw"), ...args], {
      stdio: ["ignore", fd, "pipe"],
      timeout: 240_000,
      env: { ...process.env, VGW_LOG: "info" },
    });
    if (r.error) throw r.error;
    return { code: r.status ?? -1, stdout: readFileSync(out), stderr: r.stderr.toString() };
  } finally {
    closeSync(fd);
  }
}

describe("vgw decode --threads: the same output, warnings and counts as one thread", function () {
  this.timeout(600_000);
  let dir = "";
  let trace = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vgw-decode-threads-"));
    const db = loadDbcFile(DBC);
    const messages = db.messages.filter((m) => !m.pseudo);
    const rnd = seededRandom(20261205);
    const lines: string[] = [];
    // About 4 MB: several 1 MB chunks, so that every worker gets some and the order between them matters.
    for (let k = 0; k < 90_000; k++) {
      const t = (1700000000 + k * 0.000137).toFixed(6);
      const bus = k % 3 ? "can0" : "vcan1";
      const r = rnd();
      if (k % 3001 === 7) lines.push(`(${t}) ${bus} 12G#0011`); // bad: not hex
      else if (k % 2999 === 11) lines.push(`this is no candump line ${k}`);
      else if (k % 4001 === 5) lines.push("");
      else if (r < 0.05) lines.push(`(${t}) ${bus} ${formatFrame(makeFrame({ id: Math.floor(rnd() * 0x800), data: new Uint8Array([1, 2, 3]) }))}`);
      else if (r < 0.06) lines.push(`(${t}) ${bus} 20000080#0000000000000000`);
      else if (r < 0.07) lines.push(`(${t}) ${bus} ${messages[Math.floor(rnd() * messages.length)].id.toString(16).toUpperCase().padStart(3, "0")}#R`);
      else {
        const m = messages[Math.floor(rnd() * messages.length)];
        const len = r < 0.1 ? Math.max(0, m.length - 2) : m.length;
        const data = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
        const line = `(${t}) ${bus} ${formatFrame(makeFrame({ id: m.id, ext: m.ext, fd: m.fd, data }))}`;
        lines.push(r < 0.12 ? `${line}\r` : line);
      }
    }
    trace = join(dir, "mixed.log");
    writeFileSync(trace, lines.join("\n") + "\n");
    writeFileSync(`${trace}.gz`, gzipSync(readFileSync(trace)));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const format of ["jsonl", "text"]) {
    it(`--format ${format}, stdout a file and a pipe, plain and gzipped`, () => {
      const one = vgwToFile(["decode", "--dbc", DBC, "--format", format, trace], join(dir, "one.out"));
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stderr, /decode: \d+ frames, .* bad lines skipped/);
      assert.match(one.stderr, /more bad lines; only counting them from here/);
      assert.ok(one.stdout.length > 1 << 20);
      for (const threads of ["1", "2", "3"]) {
        const many = vgwToFile(["decode", "--dbc", DBC, "--format", format, "--threads", threads, trace], join(dir, `many${threads}.out`));
        assert.equal(many.code, 0, many.stderr);
        assert.equal(many.stderr, one.stderr, `--threads ${threads}: warnings and summary`);
        assert.ok(many.stdout.equals(one.stdout), `--threads ${threads}: output to a file`);
      }
      const gz = vgwToFile(["decode", "--dbc", DBC, "--format", format, "--threads", "2", `${trace}.gz`], join(dir, "gz.out"));
      assert.equal(gz.code, 0, gz.stderr);
      assert.ok(gz.stdout.equals(one.stdout), "gzipped input");
      const piped = spawnSync(process.execPath, [resolve(ROOT, "bin/vgw"), "decode", "--dbc", DBC, "--format", format, "--threads", "2", trace], {
        maxBuffer: 1 << 28,
        timeout: 240_000,
        env: { ...process.env, VGW_LOG: "info" },
      });
      assert.equal(piped.status, 0, piped.stderr.toString());
      assert.equal(piped.stderr.toString(), one.stderr);
      assert.ok(piped.stdout.equals(one.stdout), "output to a pipe");
    });
  }

  it("--threads with --choices prints the labels as one thread does", () => {
    const one = vgwToFile(["decode", "--dbc", DBC, "--choices", "--format", "jsonl", trace], join(dir, "c1.out"));
    const many = vgwToFile(["decode", "--dbc", DBC, "--choices", "--format", "jsonl", "--threads", "2", trace], join(dir, "c2.out"));
    assert.equal(many.code, 0, many.stderr);
    assert.equal(many.stderr, one.stderr);
    assert.ok(many.stdout.equals(one.stdout));
  });

  it("refuses --threads where it cannot keep the output the same", () => {
    const strict = runVgw(["decode", "--dbc", DBC, "--strict", "--threads", "2", trace]);
    assert.notEqual(strict.code, 0);
    assert.match(strict.stderr, /--threads decodes frames with a DBC only/);
    const bad = runVgw(["decode", "--dbc", DBC, "--threads", "two", trace]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--threads must be a whole number/);
  });
});
