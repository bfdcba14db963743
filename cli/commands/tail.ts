/**
 * `vgw tail --broker URL [--device ID] [--dbc FILE] [--format text|jsonl] [--signals --policy FILE | --table FILE]`:
 * what gateways publish, decoded.
 *
 * With --signals, the decoded signal samples (`P/signals`, docs/policy.md "Signals") are printed too, with the table
 * compiled from --policy and --dbc, or read from a compiled table (--table: `vgw policy` env or JSON output). A batch
 * or a status whose table hash differs from that table is refused with a message saying so (exit code 1): decoding it
 * with the wrong table would print plausible, wrong values.
 *
 * Frames (and their signals, with a DBC) go to stdout, one line each. Gaps and duplicates by (boot, seq), malformed
 * payloads and status changes are reported too: on stderr in text mode, as `{"event": ...}` objects on stdout in jsonl
 * mode so a program reading the stream sees everything in order. A summary goes to stderr at the end.
 */
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { positiveNumber } from "../options";
import { formatFrame, type Frame } from "../../frame/frame";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { GatewayReceiver } from "../../host/gateway/receiver";
import type { GatewayStatus } from "../../host/gateway/uplink";
import { log } from "../../host/log";
import { loadDecoder, type FrameDecoder } from "../../can-db/annotate";
import { writeStdout } from "../stdout";
import { loadDbcFile } from "../../can-db/load";
import { loadPolicyFile } from "../../can-db/policy-file";
import { compilePolicy } from "../../can-db/policy";
import { loadSignalTable, SignalReceiver, SignalTable, type SignalBatch } from "../../host/gateway/signals";

interface TailOptions {
  signals?: boolean;
  policy?: string;
  table?: string;
  broker: string;
  device: string;
  prefix: string;
  dbc?: string;
  format: string;
  count?: string;
  duration?: string;
}

/** JSON with integers beyond 2^53 as decimal strings (DESIGN.md's jsonl rule) and byte arrays as hex. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

/** The fields of a status whose change is worth a line: online/offline, reboot, bus state, drops, reconnects. */
function statusKey(s: GatewayStatus): string {
  return toJson([s.online, s.boot, s.bus, s.drop, s.rc]);
}

function statusText(device: string, s: GatewayStatus): string {
  if (!s.online) return `${device}: OFFLINE (last will)${s.boot !== undefined ? `, boot ${s.boot.toString(16)}` : ""}`;
  const drops = s.drop ? Object.entries(s.drop).filter(([, n]) => n).map(([k, n]) => `${k}=${n}`).join(" ") : "";
  return (
    `${device}: online, fw ${s.fw ?? "?"}, boot ${s.boot?.toString(16) ?? "?"}, up ${((s.up ?? 0) / 1000).toFixed(1)} s, bus ${s.bus ?? "?"}, ` +
    `rx ${s.rx ?? 0} pub ${s.pub ?? 0} ack ${s.ack ?? 0}, dropped ${drops || "none"}, reconnects ${s.rc ?? 0}, outbox ${s.ob ?? 0}/${s.obmax ?? 0} B`
  );
}

export async function tail(opts: TailOptions): Promise<void> {
  if (opts.format !== "text" && opts.format !== "jsonl") throw new UsageError(`--format must be text or jsonl, got '${opts.format}'`);
  const jsonl = opts.format === "jsonl";
  const maxFrames = opts.count === undefined ? undefined : positiveNumber("--count")(opts.count);
  const duration = opts.duration === undefined ? undefined : positiveNumber("--duration")(opts.duration);
  let address;
  try {
    address = parseBrokerUrl(opts.broker);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const decoder = opts.dbc ? await loadDecoder(opts.dbc) : undefined;
  const table = signalTableOption(opts);
  const client = await connectBroker(address);
  const rx = await GatewayReceiver.attach(client, { prefix: opts.prefix, device: opts.device });
  const sigRx = table ? await SignalReceiver.attach(client, table, { prefix: opts.prefix, device: opts.device }) : undefined;
  log.info(`tail: listening on ${opts.prefix}/${opts.device}/# at ${address.host}:${address.port}`);

  let printed = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  // Output is written in arrival order; a slow stdout holds back the queue, not the broker connection.
  let chain = Promise.resolve(true);
  const out = (line: string): void => {
    chain = chain.then((ok) => (ok ? writeStdout(line + "\n") : false)).then((ok) => {
      if (!ok) finish();
      return ok;
    });
  };
  const event = (obj: Record<string, unknown>, text: string): void => {
    if (jsonl) out(toJson(obj));
    else log.warn(text);
  };
  const lastStatus = new Map<string, string>();

  rx.on("batch", (batch, info) => {
    for (const f of batch.frames) {
      if (maxFrames !== undefined && printed >= maxFrames) break;
      printed++;
      out(jsonl ? frameJson(f, info.device, batch.boot, batch.seq, decoder) : frameText(f, info.device, decoder));
    }
    if (maxFrames !== undefined && printed >= maxFrames) finish();
  });
  rx.on("gap", (device, g, batch) =>
    event({ event: "gap", device, boot: batch.boot, from: g.from, to: g.to, missing: g.missing }, `${device}: GAP: batches ${g.from}..${g.to} of boot ${batch.boot.toString(16)} missing (${g.missing})`),
  );
  rx.on("unseen", (device, g, boot) =>
    event({ event: "gap", device, boot, from: g.from, to: g.to, missing: g.missing }, `${device}: GAP: batches ${g.from}..${g.to} of boot ${boot.toString(16)} never arrived (the gateway's status counts them)`),
  );
  rx.on("duplicate", (device, boot, seq) => event({ event: "duplicate", device, boot, seq }, `${device}: duplicate batch ${seq} of boot ${boot.toString(16)} dropped`));
  rx.on("malformed", (topic, e) => event({ event: "malformed", topic, error: e.message }, `${topic}: malformed payload dropped: ${e.message}`));
  if (sigRx && table) {
    sigRx.on("batch", (batch, device) => {
      for (const line of signalLines(batch, device, table, jsonl)) {
        if (maxFrames !== undefined && printed >= maxFrames) break;
        printed++;
        out(line);
      }
      if (maxFrames !== undefined && printed >= maxFrames) finish();
    });
    sigRx.on("gap", (device, g, batch) =>
      event({ event: "gap", kind: "signals", device, boot: batch.boot, from: g.from, to: g.to, missing: g.missing }, `${device}: GAP: signal batches ${g.from}..${g.to} of boot ${batch.boot.toString(16)} missing (${g.missing})`),
    );
    sigRx.on("duplicate", (device, boot, seq) => event({ event: "duplicate", kind: "signals", device, boot, seq }, `${device}: duplicate signal batch ${seq} of boot ${boot.toString(16)} dropped`));
    sigRx.on("malformed", (topic, e) => {
      if (e.reason === "hash") process.exitCode = 1;
      event({ event: e.reason === "hash" ? "hash-mismatch" : "malformed", topic, boot: e.boot, seq: e.seq, error: e.message }, `${topic}: signal batch refused: ${e.message}`);
    });
  }
  const hashChecked = new Map<string, number>();
  // the table refusal the gateway reported last (status \`serr\`), reported once per device and text
  const refusedTable = new Map<string, string>();
  rx.on("status", (device, s) => {
    const serr = s.raw.serr;
    if (typeof serr === "string" && serr !== "" && refusedTable.get(device) !== serr && refusedTable.set(device, serr)) event({ event: "signal-table-refused", device, error: serr }, `${device}: the gateway refused its signal table: ${serr}`);
    const sh = s.raw.sh;
    if (table && s.online && typeof sh === "number" && hashChecked.get(device) !== sh) {
      hashChecked.set(device, sh);
      try {
        table.checkHash(sh, `gateway ${device}`);
      } catch (e) {
        process.exitCode = 1;
        event({ event: "hash-mismatch", device, sh, table: table.hash, error: (e as Error).message }, (e as Error).message);
      }
    }
    const key = statusKey(s);
    if (lastStatus.get(device) === key) return;
    lastStatus.set(device, key);
    event({ event: "status", device, ...s.raw }, statusText(device, s));
  });
  rx.on("result", (device, r) => {
    const hexData = r.data ? Buffer.from(r.data).toString("hex").toUpperCase() : undefined;
    const text = `${device}: command ${String(r.id)} (${r.op}): ${r.ok ? "ok" : `refused: ${r.reason}`}${r.msg ? ` (${r.msg})` : ""}${hexData !== undefined ? ` ${hexData}` : ""}`;
    event({ event: "result", device, ...r, data: hexData }, text);
  });
  // poll responses (P/diag): one line per response, the bytes in hex or the error code
  rx.on("diag", (device, b) => {
    for (const e of b.entries) {
      const hexData = e.data ? Buffer.from(e.data).toString("hex").toUpperCase() : undefined;
      event({ event: "diag", device, boot: b.boot, seq: b.seq, index: e.index, t: e.t, data: hexData, error: e.error }, `${device}: poll ${e.index} at ${e.t} ms: ${hexData ?? `error: ${e.error}`}`);
    }
  });

  const onSignal = (): void => finish();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const timer = duration !== undefined ? setTimeout(finish, duration * 1000) : undefined;
  try {
    await done;
    await chain;
  } finally {
    clearTimeout(timer);
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await rx.detach();
    await sigRx?.detach();
    await client.endAsync();
  }
  if (sigRx) {
    const k = sigRx.counts;
    log.info(`tail: ${k.samples} signal samples in ${k.batches} batches, ${k.missing} missing, ${k.duplicates} duplicates dropped, ${k.malformed} refused (${k.hashMismatch} for another table)`);
  }
  const c = rx.counts;
  const perFrame = c.frames ? ` (${(c.wireBytes / c.frames).toFixed(2)} B/frame on the wire)` : "";
  log.info(`tail: ${c.frames} frames in ${c.batches} batches${perFrame}, ${c.missing} batches missing, ${c.duplicates} duplicates dropped, ${c.malformed} malformed`);
}

/** The table --signals decodes with: compiled from --policy and --dbc, or read from --table. */
function signalTableOption(opts: TailOptions): SignalTable | undefined {
  if (!opts.signals) {
    if (opts.policy || opts.table) throw new UsageError("--policy and --table choose the signal table: add --signals");
    return undefined;
  }
  if (opts.policy && opts.table) throw new UsageError("--signals: give either --policy (with --dbc) or --table, not both");
  if (opts.table) return loadSignalTable(opts.table);
  if (!opts.policy || !opts.dbc) throw new UsageError("--signals needs the table the gateway runs: --policy FILE --dbc FILE, or --table FILE (vgw policy output)");
  const compiled = compilePolicy(loadPolicyFile(opts.policy), loadDbcFile(opts.dbc));
  if (!compiled.signals.length) throw new UsageError(`--signals: ${opts.policy} has no signals section`);
  return SignalTable.fromPolicy(compiled);
}

/** One line per sample: time, device, signal, physical value and unit, raw value. */
export function signalLines(batch: SignalBatch, device: string, table: SignalTable, jsonl: boolean): string[] {
  return batch.samples.map((s) => {
    const value = table.physical(s.i, s.raw);
    const info = table.info[s.i];
    if (jsonl) {
      return toJson({ t: s.t / 1000, bus: device, i: s.i, message: info?.message, signal: info?.signal ?? table.name(s.i), value, raw: s.raw, unit: info?.unit || undefined, boot: batch.boot, sseq: batch.seq });
    }
    return `(${(s.t / 1000).toFixed(3)}) ${device} ${table.name(s.i)} = ${value}${info?.unit ? " " + info.unit : ""} (raw ${s.raw})`;
  });
}

function frameText(f: Frame, device: string, decoder?: FrameDecoder): string {
  const line = `(${(f.t ?? 0).toFixed(3)}) ${device} ${formatFrame(f)}`;
  const signals = decoder?.text(f);
  return signals ? `${line}  ${signals}` : line;
}

function frameJson(f: Frame, device: string, boot: number, seq: number, decoder?: FrameDecoder): string {
  const obj: Record<string, unknown> = { t: f.t, bus: device, id: f.id, ext: f.ext, frame: formatFrame(f), boot, seq };
  if (decoder) Object.assign(obj, decoder.json(f));
  return toJson(obj);
}

export function registerTail(program: Command): void {
  program
    .command("tail")
    .description("print what gateways publish: frames (and signals, with a DBC), gaps, duplicates and status changes")
    .requiredOption("--broker <url>", "broker: mqtt://[user:pass@]host[:port] or mqtts://host[:port]?ca=ca.pem")
    .option("--device <id>", "gateway device id, or + for all", "+")
    .option("--prefix <prefix>", "topic prefix", "vgw")
    .option("--dbc <file>", "decode signals with this DBC")
    .option("--format <format>", "text or jsonl", "text")
    .option("--signals", "print the gateway's decoded signal samples too (P/signals), with --policy and --dbc or --table")
    .option("--policy <file>", "--signals: the policy the gateway's sigTable was compiled from")
    .option("--table <file>", "--signals: the compiled table (vgw policy env or JSON output)")
    .option("--count <n>", "stop after n lines (frames and samples)")
    .option("--duration <seconds>", "stop after this many seconds")
    .addHelpText(
      "after",
      `
Times are the gateway's uptime in seconds. Gaps, duplicates and status changes go to stderr in text mode and into the
stream as {"event": ...} objects in jsonl mode.

Examples:
  vgw tail --broker mqtt://localhost                                every gateway under vgw/
  vgw tail --broker mqtt://localhost --device gw1 --dbc car.dbc     frames of gw1 with signals
  vgw tail --broker 'mqtts://u:p@broker:8883?ca=ca.pem' --format jsonl --count 1000 > frames.jsonl
  vgw tail --broker mqtt://localhost --signals --policy abs.policy.yaml --dbc abs.dbc    signal samples, named
  vgw tail --broker mqtt://localhost --signals --table gw1.env                          from the compiled table

--signals refuses (exit 1, on stderr or as {"event":"hash-mismatch"}) every batch, and a status, whose table hash is
not the given table's: the gateway runs another sigTable.`,
    )
    .action(async (opts: TailOptions) => tail(opts));
}
