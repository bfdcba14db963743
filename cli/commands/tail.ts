/**
 * `vgw tail --broker URL [--device ID] [--dbc FILE] [--format text|jsonl]`: what gateways publish, decoded.
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

interface TailOptions {
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
  const client = await connectBroker(address);
  const rx = await GatewayReceiver.attach(client, { prefix: opts.prefix, device: opts.device });
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
  rx.on("status", (device, s) => {
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
    await client.endAsync();
  }
  const c = rx.counts;
  const perFrame = c.frames ? ` (${(c.wireBytes / c.frames).toFixed(2)} B/frame on the wire)` : "";
  log.info(`tail: ${c.frames} frames in ${c.batches} batches${perFrame}, ${c.missing} batches missing, ${c.duplicates} duplicates dropped, ${c.malformed} malformed`);
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
    .option("--count <n>", "stop after n frames")
    .option("--duration <seconds>", "stop after this many seconds")
    .addHelpText(
      "after",
      `
Times are the gateway's uptime in seconds. Gaps, duplicates and status changes go to stderr in text mode and into the
stream as {"event": ...} objects in jsonl mode.

Examples:
  vgw tail --broker mqtt://localhost                                every gateway under vgw/
  vgw tail --broker mqtt://localhost --device gw1 --dbc car.dbc     frames of gw1 with signals
  vgw tail --broker 'mqtts://u:p@broker:8883?ca=ca.pem' --format jsonl --count 1000 > frames.jsonl`,
    )
    .action(async (opts: TailOptions) => tail(opts));
}
