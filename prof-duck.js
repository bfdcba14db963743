const path = require("path");
const D = path.resolve("dist");
const { openStore } = require(D + "/host/ingest/store");
const { toRow } = require(D + "/host/ingest/rows");
const { FrameColumns } = require(D + "/frame/columns");
const { encodeBatch } = require(D + "/host/gateway/uplink");
const { readAllFrames } = require(D + "/host/trace");
(async () => {
  const src = await readAllFrames("test/fixtures/traces/candump.log");
  const t0 = src[0].t;
  const frames = src.map((f) => ({ ...f, bus: undefined, t: Math.round((f.t - t0) * 1000) / 1000 }));
  const items = [];
  for (let c = 0; c < 20; c++) for (let i = 0, seq = 0; i < frames.length; i += 200, seq++) items.push({ topic: "vgw/gw1/frames", payload: encodeBatch(0x100 + c, seq, frames.slice(i, i + 200)) });
  const UNIT = Number(process.env.UNIT || 50);
  const store = await openStore(process.env.MEM ? ":memory:" : "/tmp/prof-" + process.pid + ".duckdb");
  const cols = new FrameColumns(65536);
  const c0 = process.cpuUsage(); const w0 = performance.now();
  for (let i = 0; i < items.length; i += UNIT) {
    cols.clear();
    const now = Date.now();
    const batches = items.slice(i, i + UNIT).map((p) => toRow(p.topic, p.payload, now, "vgw", undefined, cols).row);
    await store.commit({ batches, statuses: [], rejects: [] });
  }
  const cu = process.cpuUsage(c0);
  console.log("UNIT", UNIT, "frames/CPU-s", Math.round(259480 / ((cu.user + cu.system) / 1e6)), "wall", Math.round(259480 / ((performance.now() - w0) / 1000)));
  console.log(globalThis.T); await store.close();
  require("fs").rmSync("/tmp/prof-" + process.pid + ".duckdb", {force:true});
})();
