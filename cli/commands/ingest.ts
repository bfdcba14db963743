/**
 * `vgw ingest --broker URL --store STORE`: stores what gateways publish, exactly once by (device, boot, seq).
 * The library is host/ingest (subscriber -> rows -> store); this module parses options, wires them and prints the
 * summary. Diagnostics and progress go to stderr; nothing goes to stdout.
 */
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { loadDecoder } from "../../can-db/annotate";
import { parseBrokerUrl } from "../../host/gateway/broker-url";
import { Ingester } from "../../host/ingest/ingester";
import { openStore } from "../../host/ingest/store";
import { openSubscriber } from "../../host/ingest/subscriber";
import { log } from "../../host/log";
import { positiveNumber } from "../options";
import { loadDbcFile } from "../../can-db/load";
import { loadPolicyFile } from "../../can-db/policy-file";
import { compilePolicy } from "../../can-db/policy";
import { loadSignalTable, SignalTable } from "../../host/gateway/signals";

interface IngestOptions {
  broker: string;
  store: string;
  dbc?: string;
  policy?: string;
  table?: string;
  prefix: string;
  device?: string[];
  group?: string;
  ackWait?: number;
  clientId?: string;
  duration?: number;
  progress?: number;
}

function checkBroker(url: string): void {
  if (/^nats:\/\//i.test(url)) {
    if (!/^nats:\/\/[^,\s]+(,[^,\s]+)*$/i.test(url)) throw new UsageError(`'${url}': NATS URLs are nats://host:port[,host:port...]`);
    return;
  }
  try {
    parseBrokerUrl(url);
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (or nats://host:port[,host:port...] for a NATS cluster)`);
  }
}

export async function ingest(opts: IngestOptions): Promise<void> {
  checkBroker(opts.broker);
  if (opts.group !== undefined && !/^[A-Za-z0-9_-]+$/.test(opts.group)) throw new UsageError(`--group '${opts.group}': use letters, digits, - and _`);
  for (const d of opts.device ?? []) if (!/^[^/+#.\s]+$/.test(d)) throw new UsageError(`--device '${d}': a device id has no / + # . or spaces`);
  const decoder = opts.dbc ? await loadDecoder(opts.dbc) : undefined;
  const signalTable = ingestSignalTable(opts);
  if (signalTable && /^nats:\/\//i.test(opts.broker)) throw new UsageError("gateway signals (--policy/--table) are taken over MQTT only; the NATS stream carries frames and status");
  const store = await openStore(opts.store);
  let ingester: Ingester | undefined;
  const stop = (): void => ingester?.stop();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const timer = opts.duration !== undefined ? setTimeout(stop, opts.duration * 1000) : undefined;
  try {
    const subscriber = await openSubscriber(opts.broker, { prefix: opts.prefix, devices: opts.device ?? [], group: opts.group, ackWaitMs: opts.ackWait, clientId: opts.clientId, signals: signalTable !== undefined });
    ingester = new Ingester({ store, subscriber, prefix: opts.prefix, decoder, signalTable, progressMs: opts.progress === undefined ? 2000 : opts.progress * 1000 });
    const c = await ingester.run();
    const seconds = ingester.elapsedMs / 1000;
    const totals = await store.counts();
    log.info(
      `ingest: ${c.frames} frames in ${c.batches} batches stored in ${seconds.toFixed(1)} s (${Math.round(c.frames / Math.max(seconds, 1e-3))}/s), ` +
        `${c.duplicates} duplicate batches dropped, ${c.rejects} payloads rejected, ${c.statuses} status messages, ${c.signals} signal values, ` +
        `${c.commits} commits (${c.commits ? (c.commitMs / c.commits).toFixed(1) : 0} ms each)`,
    );
    if (signalTable) log.info(`ingest: ${c.gatewaySignals} gateway signal samples in ${c.signalBatches} signal batches stored, ${c.duplicateSignalBatches} duplicate signal batches dropped`);
    log.info(`ingest: the store holds ${totals.frames} frames in ${totals.batches} batches, ${totals.missing} batches missing (gaps view), ${totals.rejects} rejects`);
  } finally {
    clearTimeout(timer);
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
    await store.close();
  }
}

/** The signal table for `P/signals`: compiled from --policy (with --dbc), or read from --table; none without either. */
function ingestSignalTable(opts: IngestOptions): SignalTable | undefined {
  if (opts.policy && opts.table) throw new UsageError("give either --policy (with --dbc) or --table, not both");
  if (opts.table) return loadSignalTable(opts.table);
  if (!opts.policy) return undefined;
  if (!opts.dbc) throw new UsageError("--policy needs the --dbc it was compiled against");
  const compiled = compilePolicy(loadPolicyFile(opts.policy), loadDbcFile(opts.dbc));
  if (!compiled.signals.length) throw new UsageError(`--policy ${opts.policy} has no signals section`);
  return SignalTable.fromPolicy(compiled);
}

export function registerIngest(program: Command): void {
  program
    .command("ingest")
    .description("store what gateways publish (frames, signals, status, gaps) exactly once by (device, boot, seq)")
    .requiredOption("--broker <url>", "mqtt://host[:port], mqtts://host[:port]?ca=ca.pem, or nats://host:port[,host:port...] (JetStream)")
    .requiredOption("--store <store>", "a file path (embedded DuckDB store) or postgres://user[:pass]@host[:port]/db")
    .option("--dbc <file>", "also store decoded signals in long form (the signals table)")
    .option("--policy <file>", "also store the gateways' own signal samples (P/signals), decoded with this policy's table (with --dbc)")
    .option("--table <file>", "the same with a compiled table (vgw policy env or JSON output)")
    .option("--prefix <prefix>", "topic prefix", "vgw")
    .option("--device <id...>", "only these gateways (default: every gateway under the prefix)")
    .option("--group <name>", "workers with the same group share the load (MQTT 5 $share group, or the JetStream consumer name)")
    .option("--ack-wait <ms>", "NATS: hand a delivery to another worker when not acknowledged within this time", positiveNumber("--ack-wait"), 30_000)
    .option("--client-id <id>", "MQTT: client id of this worker's persistent session (default vgw-ingest-HOST-GROUP; give each worker on one host its own)")
    .option("--duration <seconds>", "stop after this many seconds", positiveNumber("--duration"))
    .option("--progress <seconds>", "progress line on stderr every this many seconds (0: none)", Number)
    .addHelpText(
      "after",
      `
Every batch is stored once, also when it is delivered again (reconnects, a crashed worker, a second consumer): the
store's primary key (device, boot, seq) decides, in the same transaction as the frames. Deliveries are acknowledged
only after the commit. Ctrl-C / SIGTERM stop taking messages, commit what was taken, and print a summary.
Payloads that do not decode are counted, logged with device and topic, and kept in the rejects table, never as frames.

Examples:
  vgw ingest --broker mqtt://localhost --store fleet.duckdb
  vgw ingest --broker mqtt://localhost --store fleet.duckdb --device gw1 gw2 --dbc car.dbc
  vgw ingest --broker mqtt://broker:1883 --group ingest --store postgres://vgw@db/fleet     (run it N times: N workers)
  vgw ingest --broker nats://n1:4222,n2:4222,n3:4222 --group ingest --store postgres://vgw@db/fleet`,
    )
    .action(async (opts: IngestOptions) => ingest(opts));
}
