/**
 * `vgw export --store STORE --device ID [--from T --to T] OUT`: the stored frames of one gateway as a trace (format by
 * extension, host/trace), in the order the gateway sent them, with the gateway's own uptime stamps, so a field
 * capture can be replayed on the rig (`vgw replay`, `vgw hil run`).
 */
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { exportFrames } from "../../host/ingest/export";
import { openStore } from "../../host/ingest/store";
import { openTraceWriter, resolveFormat } from "../../host/trace";
import { log } from "../../host/log";

interface ExportOptions {
  store: string;
  device: string;
  from?: string;
  to?: string;
  bus: string;
}

/** ISO 8601 (`2026-12-04T15:00:00Z`) or epoch seconds -> epoch ms. */
export function parseTime(text: string, name: string): number {
  const n = Number(text);
  const ms = Number.isFinite(n) && text.trim() !== "" ? n * 1000 : Date.parse(text);
  if (!Number.isFinite(ms)) throw new UsageError(`${name} '${text}': use ISO 8601 (2026-12-04T15:00:00Z) or epoch seconds`);
  return ms;
}

export async function exportTrace(output: string, opts: ExportOptions): Promise<void> {
  resolveFormat(output);
  const fromMs = opts.from === undefined ? undefined : parseTime(opts.from, "--from");
  const toMs = opts.to === undefined ? undefined : parseTime(opts.to, "--to");
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw new UsageError("--to must be after --from");
  const store = await openStore(opts.store);
  try {
    const writer = openTraceWriter(output);
    try {
      for await (const frames of exportFrames(store, { device: opts.device, fromMs, toMs }, opts.bus)) {
        await writer.write(frames);
        if (writer.outputGone) break;
      }
    } finally {
      await writer.close();
    }
    const dropped = writer.framesDropped ? `, ${writer.framesDropped} dropped: not representable in ${writer.format.name}` : "";
    log.info(`export: ${writer.framesWritten} frames of ${opts.device} from ${store.description} to ${output} (${writer.format.name})${dropped}`);
    if (writer.framesWritten === 0) log.warn(`export: no frames of device '${opts.device}'${fromMs !== undefined || toMs !== undefined ? " in that time range" : ""}`);
  } finally {
    await store.close();
  }
}

export function registerExport(program: Command): void {
  program
    .command("export")
    .description("write the stored frames of one gateway as a trace (.log .asc .blf .trc .mf4 .jsonl, optionally .gz)")
    .argument("<out>", "output trace (format by extension), or - for candump -l text on stdout")
    .requiredOption("--store <store>", "the store vgw ingest wrote: a file path (DuckDB) or postgres://...")
    .requiredOption("--device <id>", "gateway device id")
    .option("--from <time>", "first frame time, ISO 8601 or epoch seconds (the time the frame reached the broker, estimated)")
    .option("--to <time>", "end time (exclusive)")
    .option("--bus <name>", "channel name written into the trace", "can0")
    .addHelpText(
      "after",
      `
Frames come in the order the gateway sent them (boot by boot, batch by batch), stamped with the gateway's uptime in
seconds as it sent them; id, flags and data are exactly what the gateway read from the bus.

Examples:
  vgw export --store fleet.duckdb --device gw1 gw1.log
  vgw export --store postgres://vgw@db/fleet --device gw1 --from 2026-12-04T08:00:00Z --to 2026-12-04T09:00:00Z drive.blf
  vgw export --store fleet.duckdb --device gw1 - | head`,
    )
    .action(async (output: string, opts: ExportOptions) => exportTrace(output, opts));
}
