/**
 * Constant memory: converting a trace must not hold it in memory. A generated 1M-frame candump log (about 40 MB,
 * which as frame objects would take well over 200 MB) is converted to BLF and to ASC in a child process whose peak
 * RSS must stay under the 200 MB budget the 1 GB requirement sets. bench/traces.ts measures a larger file.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { tmpDir } from "./helpers";

const FRAMES = 1_000_000;
const BUDGET_MB = 200;
const CONVERT = path.resolve(__dirname, "../../cli/commands/convert.js");

/** Writes `n` candump lines quickly (no frame objects), 64 KB at a time. */
function generateLog(file: string, n: number): void {
  const fd = fs.openSync(file, "w");
  const hex = "0123456789ABCDEF";
  let t = 1700000000;
  let chunk: string[] = [];
  for (let i = 0; i < n; i++) {
    t += 0.000137;
    const id = (i * 2654435761) >>> 21; // spread over 11 bits
    const len = i % 9;
    let data = "";
    for (let k = 0; k < len; k++) data += hex[(i + k) & 15] + hex[(i >> k) & 15];
    chunk.push(`(${t.toFixed(6)}) can${i & 1} ${hex[id >> 8]}${hex[(id >> 4) & 15]}${hex[id & 15]}#${data}\n`);
    if (chunk.length === 2000) {
      fs.writeSync(fd, chunk.join(""));
      chunk = [];
    }
  }
  fs.writeSync(fd, chunk.join(""));
  fs.closeSync(fd);
}

/** Runs `convert` in a fresh process and returns its peak RSS in MB and its summary line. */
function convertMeasured(input: string, output: string): { rssMb: number; summary: string } {
  const script = `
    const { convert } = require(${JSON.stringify(CONVERT)});
    convert(process.argv[1], process.argv[2], {}).then(
      () => process.stdout.write(String(process.resourceUsage().maxRSS / 1024)),
      (e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ["-e", script, input, output], { encoding: "utf8", timeout: 120000 });
  assert.equal(r.status, 0, r.stderr);
  return { rssMb: Number(r.stdout), summary: r.stderr.trim() };
}

describe("trace streaming (constant memory)", function () {
  this.timeout(120000);
  let dir: string;
  let log: string;
  before(() => {
    dir = tmpDir();
    log = path.join(dir, "big.log");
    generateLog(log, FRAMES);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const ext of ["blf", "asc"]) {
    it(`converts ${FRAMES} frames (.log, about 40 MB) to .${ext} under ${BUDGET_MB} MB RSS`, () => {
      const { rssMb, summary } = convertMeasured(log, path.join(dir, `big.${ext}`));
      assert.match(summary, new RegExp(`convert: ${FRAMES} frames read \\(candump\\), ${FRAMES} written`));
      assert.ok(rssMb < BUDGET_MB, `peak RSS ${rssMb.toFixed(0)} MB`);
    });
  }
});
