/**
 * `vgw policy --dbc FILE POLICY.yaml [--format env|json] [--explain] [--allow-superset] [--publish URL]`:
 * compiles a gateway policy (docs/policy.md) against a DBC into the firmware's settings and prints them
 * (`.env.defaults` lines or JSON), or explains per message what the gateway will do, or sends the uplink part
 * (accept filters, downsampling rules) to a running gateway as `filter` and `rate` commands (docs/protocol.md).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import Table from "cli-table3";
import { loadDbcFile } from "../../can-db/load";
import { loadPolicyFile, parsePolicy } from "../../can-db/policy-file";
import { compilePolicy, type CompiledPolicy, type PolicyRow, type Widening } from "../../can-db/policy";
import { MAX_FILTERS, type PolicySettings } from "../../can-db/gateway-settings";
import { keyText } from "../../can-db/frame-key";
import { FLAG_MOTOROLA, FLAG_ON_CHANGE, FLAG_SIGNED, tableHash } from "../../can-db/signal-table";
import { UsageError, VgwError } from "../../frame/errors";
import { contains } from "../../can-db/policy-filters";
import { connectBroker, parseBrokerUrl } from "../../host/gateway/broker-url";
import { decodeResult, encodeCommand, gatewayTopics, type CommandResult, type GatewayCommand } from "../../host/gateway/uplink";
import { log } from "../../host/log";
import { writeStdout } from "../stdout";
import { positiveNumber } from "../options";

interface PolicyOptions {
  dbc: string;
  format: string;
  explain?: boolean;
  allowSuperset?: boolean;
  maxFilters?: string;
  publish?: string;
  timeout: string;
}

const FORMATS = ["env", "json"];
/** The largest command payload the gateway reads (docs/protocol.md, "Commands"). */
const MAX_COMMAND_BYTES = 512;
/** The firmware's default topic prefix (setting topicPrefix), used when the publish URL names only the device. */
const DEFAULT_PREFIX = "vgw";

export function settingsEnv(settings: PolicySettings, header: string): string {
  const lines = [`# ${header}`];
  // the hash the gateway reports as `sh`: a comment, which the settings reader skips
  if (settings.sigTable) lines.push(`# sigTable hash sh=0x${tableHash(settings.sigTable).toString(16).padStart(8, "0")}`);
  for (const [key, value] of Object.entries(settings)) lines.push(`${key}=${JSON.stringify(value)}`);
  return lines.join("\n") + "\n";
}

/** A filter as ID bits / mask bits (the kind is in the ID column). */
function filterText(f: number[]): string {
  const hex = (n: number) => "0x" + (n & 0x1fffffff).toString(16).toUpperCase();
  return `${hex(f[0])}/${hex(f[1])}`;
}

export function explainTable(compiled: CompiledPolicy): string {
  const withSignals = compiled.settings.sigTable !== undefined;
  const table = new Table({
    // the signals column only when the policy has signals
    head: ["message", "ID", "uplink", "interval ms", "on change", "admitted by", "transmit", ...(withSignals ? ["signals"] : [])],
    style: { head: [], border: [] },
    // one line per message: no rule between rows
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
  });
  const { canFilters } = compiled.settings;
  for (const r of compiled.rows) {
    const uplink = r.uplink ? "kept" : r.extra ? "EXTRA" : "dropped";
    const interval = !r.uplink || r.interval === 0 ? "-" : r.every !== undefined ? `${r.interval} (every ${r.every} x ${r.cycle})` : String(r.interval);
    const admitted = r.filter >= 0 ? `#${r.filter} ${filterText(canFilters[r.filter])}` : "-";
    const tx = r.tx ? `allowed (${compiled.settings.txRate}/s)` : r.txExtra ? "EXTRA" : "-";
    const raw = r.sigOnly ? "signals only" : r.signals && !r.uplink ? "kept (signals)" : uplink;
    const sig = r.signals ? `${r.signals}${r.sigOnly ? " (only)" : ""}` : "-";
    const rated = r.uplink && !r.sigOnly;
    table.push([r.message?.name ?? "(not in DBC)", keyText(r.key) + (r.ext ? " ext" : ""), raw, rated ? interval : "-", rated && r.onChange ? "yes" : "-", admitted, tx, ...(withSignals ? [sig] : [])]);
  }
  for (const g of compiled.groups) {
    // the group's own filter, or the widened one that contains it
    const filter = canFilters.findIndex((f) => contains({ value: f[0], mask: f[1] }, g.filter));
    const source = g.source === undefined ? "any source" : `source 0x${g.source.toString(16).toUpperCase()}`;
    const tx = g.tx ? `allowed (${compiled.settings.txRate}/s)` : "-";
    table.push([`(PGN group, ${source})`, `PGN 0x${g.pgn.toString(16).toUpperCase()}`, g.uplink ? "kept" : filter >= 0 ? "admitted" : "-", "-", "-", filter >= 0 ? `#${filter} ${filterText(canFilters[filter])}` : "-", tx, ...(withSignals ? ["-"] : [])]);
  }
  const kept = compiled.rows.filter((r) => r.uplink && !r.sigOnly).length;
  const s = compiled.settings;
  const head = `${kept} of ${compiled.rows.length} messages kept; ${s.canFilters.length} accept filters, ${s.rateRules.length} rate rules, ${s.txAllow.length} transmit filters`;
  const sigs = withSignals ? `\n${signalsTable(compiled)}` : "";
  return `${head}\n${table.toString()}\n${sigs}`;
}

/** A deadband or rule value for the table: "-" for none. */
const orDash = (v: number, unit = "") => (v ? `${v}${unit}` : "-");

/** The signal table, one line per row: what the gateway extracts and when it publishes. */
export function signalsTable(compiled: CompiledPolicy): string {
  const table = new Table({
    head: ["i", "message", "signal", "bits", "scaling", "on change", "deadband", "rel", "min ms", "heartbeat ms"],
    style: { head: [], border: [] },
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
  });
  for (const c of compiled.signals) {
    const [, start, len, flags, fNum, fDen, oNum, minInt, heartbeat, deadband, relPm] = c.row;
    const bits = `${start}|${len}@${flags & FLAG_MOTOROLA ? "0" : "1"}${flags & FLAG_SIGNED ? "-" : "+"}`;
    const scaling = fDen === 1 && oNum === 0 ? (fNum === 1 ? "raw" : `raw*${fNum}`) : `(raw*${fNum}${oNum < 0 ? "-" : "+"}${Math.abs(oNum)})/${fDen}`;
    const band = c.deadband !== undefined ? `${c.deadband}${c.signal.unit ? " " + c.signal.unit : ""} = ${deadband} raw` : orDash(deadband, " raw");
    table.push([c.index, c.message.name, c.signal.name, bits, scaling, flags & FLAG_ON_CHANGE ? "yes" : "-", band, relPm ? `${relPm / 10}%` : "-", orDash(minInt), orDash(heartbeat)]);
  }
  const only = compiled.settings.sigOnly?.length ?? 0;
  return `${compiled.signals.length} signals (sigTable hash sh=0x${compiled.signalHash.toString(16).padStart(8, "0")}), ${only} messages signals-only\n${table.toString()}\n`;
}

function rowName(r: PolicyRow): string {
  return `${r.message?.name ?? "?"} (${keyText(r.key)})`;
}

export function wideningText(w: Widening): string {
  const parts = [`${w.table}: ${w.exactCount} exact filters do not fit; masks widened, so these IDs get through too:`];
  parts.push(`  messages of the DBC (${w.extraMessages.length}): ${w.extraMessages.map(rowName).join(", ") || "none"}`);
  const other = w.extraOtherKeys ? `: ${w.extraOtherKeys.map(keyText).join(", ")}` : " (too many to list; see the filters)";
  parts.push(`  IDs the DBC does not define (${w.extraOther})${w.extraOther ? other : ""}`);
  return parts.join("\n");
}

/** `mqtt://host[:port]/[prefix/]device` -> broker URL, topic prefix and device. */
export function parsePublishUrl(text: string): { broker: string; prefix: string; device: string } {
  const address = parseBrokerUrl(text);
  const path = new URL(text).pathname.split("/").filter(Boolean);
  if (!path.length) throw new UsageError(`--publish ${text}: name the device, e.g. mqtt://${address.host}/gw1 or mqtt://${address.host}/vgw/gw1`);
  const device = path[path.length - 1];
  const prefix = path.length > 1 ? path.slice(0, -1).join("/") : DEFAULT_PREFIX;
  const broker = text.replace(/^(mqtts?:\/\/[^/]*)\/[^?]*/, "$1");
  return { broker, prefix, device };
}

/**
 * Sends the accept filters and the rate rules as commands and waits for both results. The transmit allowlist cannot
 * travel this way: the firmware takes it from its settings only (docs/protocol.md, `tx`), so it is never sent.
 */
export async function publishPolicy(settings: PolicySettings, url: string, timeoutMs: number): Promise<CommandResult[]> {
  const target = parsePublishUrl(url);
  const topics = gatewayTopics(target.prefix, target.device);
  const client = await connectBroker(parseBrokerUrl(target.broker), {}, timeoutMs);
  try {
    const tag = `policy-${Date.now().toString(36)}`;
    const commands: GatewayCommand[] = [
      { op: "filter", id: `${tag}-filter`, acc: settings.canFilters as Array<[number, number]> },
      { op: "rate", id: `${tag}-rate`, rules: settings.rateRules as Array<[number, number, 0 | 1]> },
    ];
    const pending = new Map(commands.map((c) => [c.id as string, c]));
    const results: CommandResult[] = [];
    const done = new Promise<void>((resolve) => {
      client.on("message", (topic, payload) => {
        if (topic !== topics.result) return;
        let r: CommandResult;
        try {
          r = decodeResult(payload);
        } catch (e) {
          log.warn(`policy: unreadable result on ${topic}: ${(e as Error).message}`);
          return;
        }
        if (typeof r.id !== "string" || !pending.delete(r.id)) return; // another client's command
        results.push(r);
        if (!pending.size) resolve();
      });
    });
    const payloads = commands.map((c) => Buffer.from(encodeCommand(c)));
    payloads.forEach((p, i) => {
      if (p.length > MAX_COMMAND_BYTES) throw new VgwError(`the ${commands[i].op} command is ${p.length} bytes; the gateway reads at most ${MAX_COMMAND_BYTES}`);
    });
    await client.subscribeAsync(topics.result, { qos: 1 });
    for (const p of payloads) await client.publishAsync(topics.cmd, p, { qos: 1 });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const outcome = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      throw new VgwError(`no result from ${target.prefix}/${target.device} within ${timeoutMs} ms for: ${[...pending.values()].map((c) => c.op).join(", ")} (is the gateway online?)`);
    }
    return results.sort((a, b) => String(a.op).localeCompare(String(b.op)));
  } finally {
    await client.endAsync();
  }
}

export async function policyCommand(file: string, opts: PolicyOptions): Promise<void> {
  if (!FORMATS.includes(opts.format)) throw new UsageError(`--format must be ${FORMATS.join(" or ")}, not '${opts.format}'`);
  const maxFilters = opts.maxFilters === undefined ? MAX_FILTERS : Number(opts.maxFilters);
  if (!Number.isInteger(maxFilters) || maxFilters < 1 || maxFilters > MAX_FILTERS) throw new UsageError(`--max-filters must be 1..${MAX_FILTERS}`);
  const timeoutMs = positiveNumber("--timeout")(opts.timeout);
  const db = loadDbcFile(opts.dbc);
  // "-": the policy from stdin (generated policies, heredocs); errors then name "<stdin>"
  const spec = file === "-" ? parsePolicy(readFileSync(0, "utf8"), "<stdin>") : loadPolicyFile(file);
  const compiled = compilePolicy(spec, db, { allowSuperset: opts.allowSuperset, maxFilters });
  for (const w of compiled.widenings) log.warn(wideningText(w));
  for (const w of compiled.warnings) log.warn(`policy: ${w}`);

  if (opts.publish) {
    if (compiled.settings.txAllow.length) {
      log.warn("policy: txAllow and txRate are not sent: the gateway takes its transmit allowlist from its settings only; deploy them with --format env");
    }
    if (compiled.settings.sigTable) log.warn("policy: sigTable and sigOnly are not sent: the gateway takes its signal table from its settings; deploy them with --format env");
    const results = await publishPolicy(compiled.settings, opts.publish, timeoutMs);
    const lines = results.map((r) => `${r.op}: ${r.ok ? "ok" : `refused: ${r.reason}${r.msg ? ` (${r.msg})` : ""}`}`);
    await writeStdout(lines.join("\n") + "\n");
    if (results.some((r) => !r.ok)) process.exitCode = 1;
    return;
  }
  if (opts.explain) {
    await writeStdout(explainTable(compiled));
    return;
  }
  const name = (p: string) => p.split(/[\\/]/).pop();
  await writeStdout(
    opts.format === "json" ? JSON.stringify(compiled.settings) + "\n" : settingsEnv(compiled.settings, `vgw policy ${name(file)} --dbc ${name(opts.dbc)}`),
  );
}

export function registerPolicy(program: Command): void {
  program
    .command("policy")
    .description("compile a gateway policy (YAML) against a DBC into the firmware's filter, rate and transmit settings")
    .argument("<policy>", "the policy file (docs/policy.md), or - for stdin")
    .requiredOption("--dbc <file>", "the CAN database the policy names messages from")
    .option("--format <format>", "env (.env.defaults lines) or json", "env")
    .option("--explain", "print a table instead: per message kept/dropped, interval, on-change, the filter that admits it, transmit")
    .option("--allow-superset", "when the exact filters do not fit the firmware's table, widen masks and report every extra ID")
    .option("--max-filters <n>", `accept filter table size (1..${MAX_FILTERS})`)
    .option("--publish <url>", "send the filters and rate rules to a running gateway: mqtt://host[:port]/[prefix/]device")
    .option("--timeout <ms>", "--publish: how long to wait for the broker and each result", "10000")
    .addHelpText(
      "after",
      `
Examples:
  vgw policy --dbc abs.dbc abs.policy.yaml >> firmware/.env.defaults
  vgw policy --dbc abs.dbc abs.policy.yaml --format json
  vgw policy --dbc abs.dbc abs.policy.yaml --explain
  echo 'uplink: [ "BREMSE_3*" ]' | vgw policy --dbc abs.dbc -
  vgw policy --dbc ThinkCity.dbc wide.yaml --allow-superset     extra IDs listed on stderr
  vgw policy --dbc abs.dbc abs.policy.yaml --publish mqtt://127.0.0.1:1883/vgw/gw1

A policy file:
  defaults: { interval: 100 }            # optional, for every uplinked message
  uplink:
    - BREMSE_3*                          # name or glob
    - { sender: DRS_MM5_10, every: 10 }  # one frame in 10 cycles (GenMsgCycleTime)
    - { id: 0x7E8, onChange: true }      # an ID, also one the DBC lacks; "0x100-0x1FF" for a range
    - { pgn: 0xFEF1 }                    # a J1939 parameter group from any source (source: 0x00 for one)
  exclude: [ MM5_10_TX3 ]
  transmit: { rate: 5, allow: [ ABS_Switch ] }`,
    )
    .action(async (file: string, opts: PolicyOptions) => policyCommand(file, opts));
}
