/**
 * `vgw stats`: bus load, frames/s per ID, cycle time min/avg/max and jitter, error frames by class. Prints a table
 * (or one JSON object) at the end (Ctrl-C, --timeout, -n) and, with --interval, every so many seconds meanwhile.
 */
import type { Command } from "commander";
import Table from "cli-table3";
import { UsageError } from "../../frame/errors";
import { log } from "../../host/log";
import { BusStats, idText, jitter, meanGap } from "../../host/bus/stats";
import { filtersOption, interruptSignal, nonNegativeInteger, parseInterfaces, positiveNumber, parseSize, RECEIVE_BUFFER_HELP } from "../options";
import { Capture, dropsHint, dropsText, totalDropped } from "../../host/bus/capture";
import { writeStdout } from "../stdout";

interface StatsOptions {
  interface: string;
  bitrate: number;
  dbitrate?: number;
  filter?: string;
  rcvbuf?: number;
  interval?: number;
  timeout?: number;
  count?: number;
  format: string;
}

const ms = (s: number) => (Number.isFinite(s) ? (s * 1000).toFixed(2) : "-");

export function statsReport(stats: BusStats, seconds: number): Record<string, unknown> {
  const ids = [...stats.ids.values()].sort((a, b) => a.bus.localeCompare(b.bus) || Number(a.ext) - Number(b.ext) || a.id - b.id);
  return {
    seconds,
    frames: stats.frames,
    load: stats.load(seconds),
    bitrate: stats.bitrate,
    errorFrames: stats.errors.total,
    errors: Object.fromEntries(stats.errors.byClass),
    ids: ids.map((s) => ({
      bus: s.bus,
      id: s.id,
      ext: s.ext,
      count: s.count,
      rate: seconds > 0 ? s.count / seconds : 0,
      cycleMin: s.gaps ? s.minGap : null,
      cycleAvg: s.gaps ? meanGap(s) : null,
      cycleMax: s.gaps ? s.maxGap : null,
      jitter: s.gaps > 1 ? jitter(s) : null,
    })),
  };
}

export function statsTable(stats: BusStats, seconds: number): string {
  const table = new Table({
    head: ["bus", "ID", "frames", "frames/s", "cycle min ms", "avg ms", "max ms", "jitter ms"],
    style: { head: [], border: [] },
  });
  const ids = [...stats.ids.values()].sort((a, b) => a.bus.localeCompare(b.bus) || Number(a.ext) - Number(b.ext) || a.id - b.id);
  for (const s of ids) {
    table.push([s.bus, idText(s.id, s.ext), s.count, (seconds > 0 ? s.count / seconds : 0).toFixed(1), ms(s.minGap), ms(meanGap(s)), ms(s.maxGap), ms(jitter(s))]);
  }
  const errors = [...stats.errors.byClass].map(([k, v]) => `${k} ${v}`).join(", ");
  return (
    `${stats.frames} frames in ${seconds.toFixed(2)} s, ${(seconds > 0 ? stats.frames / seconds : 0).toFixed(1)} frames/s, ` +
    `bus load ${stats.load(seconds).toFixed(1)}% at ${stats.bitrate} bit/s (no stuff bits), ` +
    `${stats.errors.total} error frames${errors ? ` (${errors})` : ""}\n${table.toString()}\n`
  );
}

export async function stats(opts: StatsOptions): Promise<void> {
  if (opts.format !== "text" && opts.format !== "json") throw new UsageError(`--format must be text or json, got '${opts.format}'`);
  const interfaces = parseInterfaces(opts.interface);
  const capture = await Capture.open(interfaces, { command: "stats", filters: filtersOption(opts.filter), receiveBuffer: opts.rcvbuf });
  const { signal, dispose } = interruptSignal(opts.timeout);
  capture.stopOn(signal);
  const stats = new BusStats(opts.bitrate, opts.dbitrate);
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const print = () =>
    writeStdout(opts.format === "json" ? JSON.stringify(statsReport(stats, elapsed())) + "\n" : statsTable(stats, elapsed()));
  const ticker = opts.interval ? setInterval(() => void print(), opts.interval * 1000) : undefined;
  let n = 0;
  try {
    receive: for await (const batch of capture.batches()) {
      for (const f of batch) {
        stats.add(f);
        if (opts.count !== undefined && ++n >= opts.count) break receive;
      }
    }
  } finally {
    if (ticker) clearInterval(ticker);
    dispose();
    const drops = await capture.close();
    if (totalDropped(drops) > 0) log.warn(`stats: ${dropsText(drops)}; the counts are low by that much`);
    const hint = dropsHint(drops);
    if (hint) log.warn(`stats: hint: ${hint}`);
  }
  await print();
}

export function registerStats(program: Command): void {
  program
    .command("stats")
    .description("bus load, frames/s per ID, cycle times and error counts of CAN interfaces")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .option("--bitrate <bps>", "nominal bitrate, for the bus load", positiveNumber("--bitrate"), 500000)
    .option("--dbitrate <bps>", "CAN FD data bitrate, for the load of FD frames", positiveNumber("--dbitrate"))
    .option("--filter <list>", "kernel acceptance filters (candump syntax: 123:7FF,200~700)")
    .option("--rcvbuf <size>", RECEIVE_BUFFER_HELP, parseSize)
    .option("--interval <s>", "also print the statistics every s seconds", positiveNumber("--interval"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .option("-n, --count <n>", "stop after n frames", nonNegativeInteger("--count"))
    .option("--format <format>", "text (a table) or json", "text")
    .addHelpText(
      "after",
      `
Examples:
  vgw stats -i can0                                 until Ctrl-C, then one table
  vgw stats -i can0 --bitrate 250000 --interval 1   a table every second (250 kbit/s bus)
  vgw stats -i vcan0 --timeout 10 --format json     ten seconds, machine-readable
Bus load counts frame bits without stuff bits (as canbusload does by default).`,
    )
    .action(async (opts: StatsOptions) => stats(opts));
}
