/**
 * `.jsonl`: one JSON object per line, one frame per object, with the Frame's own field names (the same
 * `t`, `bus`, `id`, `ext` that `vgw decode --format jsonl` prints):
 *
 *   {"t":1436509052.249713,"bus":"can0","id":291,"ext":false,"rtr":false,"fd":false,"brs":false,"esi":false,"err":false,"data":"DEADBEEF"}
 *
 * `id` is a number (for an error frame, the error class bits); `data` is uppercase hex ("" for none); a remote
 * frame may carry `"dlc"` (requested length). On reading, `id` and `data` (except on a remote frame) are required:
 * flags default to false and `t`/`bus` to absent. Every line is validated as a Frame, so a bad one is reported with its line.
 */
import { bytesToHex, makeFrame, type Frame } from "../../frame/frame";
import { registerFormat, type FormatWriter, type ReadContext, type TraceFormat } from "./format";
import { framesFromLines } from "./lines";

const FLAGS = ["ext", "rtr", "fd", "brs", "esi", "err"] as const;

function parseLine(line: string): Frame {
  const o: unknown = JSON.parse(line);
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("a line must be a JSON object");
  const r = o as Record<string, unknown>;
  if (typeof r.id !== "number") throw new Error("'id' must be a number");
  for (const k of FLAGS) if (r[k] !== undefined && typeof r[k] !== "boolean") throw new Error(`'${k}' must be true or false`);
  if (r.t !== undefined && (typeof r.t !== "number" || !Number.isFinite(r.t))) throw new Error("'t' must be a number (seconds)");
  if (r.bus !== undefined && typeof r.bus !== "string") throw new Error("'bus' must be a string");
  if (r.dlc !== undefined && typeof r.dlc !== "number") throw new Error("'dlc' must be a number");
  // data is required (except on remote frames), so that other JSON lines (e.g. `vgw decode` output) are not taken
  // for frames without data
  if (r.data === undefined && r.rtr !== true) throw new Error("'data' is missing");
  const hex = r.data ?? "";
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error("'data' must be a string of hex byte pairs");
  return makeFrame({
    id: r.id,
    ext: r.ext as boolean | undefined,
    rtr: r.rtr as boolean | undefined,
    fd: r.fd as boolean | undefined,
    brs: r.brs as boolean | undefined,
    esi: r.esi as boolean | undefined,
    err: r.err as boolean | undefined,
    dlc: r.dlc as number | undefined,
    data: Buffer.from(hex, "hex"),
    t: r.t as number | undefined,
    bus: r.bus as string | undefined,
  });
}

function readJsonl(chunks: AsyncIterable<Buffer>, ctx: ReadContext): AsyncGenerator<Frame[]> {
  return framesFromLines(chunks, ctx, (l, lineNo) => {
    if (l.trim().length === 0) return undefined;
    try {
      return parseLine(l);
    } catch (e) {
      ctx.bad(lineNo, `${(e as Error).message}: '${l.length > 120 ? l.slice(0, 120) + "..." : l}'`);
      return undefined;
    }
  });
}

function createJsonlWriter(): FormatWriter {
  return {
    begin: () => "",
    encode(frames) {
      const parts: string[] = new Array(frames.length);
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i];
        const o: Record<string, unknown> = {};
        if (f.t !== undefined) o.t = f.t;
        if (f.bus !== undefined) o.bus = f.bus;
        o.id = f.id;
        for (const k of FLAGS) o[k] = f[k];
        if (f.dlc !== undefined) o.dlc = f.dlc;
        o.data = bytesToHex(f.data);
        parts[i] = JSON.stringify(o) + "\n";
      }
      return parts.join("");
    },
    finish: () => ({ tail: "" }),
  };
}

export const jsonlFormat: TraceFormat = {
  name: "jsonl",
  extensions: [".jsonl", ".ndjson"],
  description: "one JSON object per frame (vgw's own; see docs/traces.md)",
  read: readJsonl,
  createWriter: createJsonlWriter,
};

registerFormat(jsonlFormat);
