/**
 * `vgw dbc FILE [--json | --check | --write]`: what a CAN database holds. Plain: a summary (counts, nodes, one line per
 * message with sender and signals, the multiplexer tree of multiplexed messages). --json: the whole database as JSON.
 * --write: the database written back as DBC text by can-db's writer (normalised order and number forms; everything
 * read is kept, so a script can load, change and save a file).
 * --check: validation findings with line numbers (overlaps, ranges, duplicate names, signals beyond the message);
 * exit 1 when there are errors.
 */
import { Option, type Command } from "commander";
import { loadDbcFile } from "../../can-db/load";
import { checkDatabase } from "../../can-db/check";
import { writeDbc } from "../../can-db/dbc-writer";
import { attributeValue, type Database, type MessageDef } from "../../can-db/model";
import { resolveMultiplexing } from "../../can-db/multiplexing";
import { log } from "../../host/log";
import { writeStdout } from "../stdout";

interface DbcOptions {
  json?: boolean;
  check?: boolean;
  write?: boolean;
}

function hexId(m: MessageDef): string {
  return "0x" + m.id.toString(16).toUpperCase().padStart(m.ext ? 8 : 3, "0");
}

export function summarize(db: Database): string {
  const msgs = db.messages.filter((m) => !m.pseudo);
  const signals = msgs.reduce((n, m) => n + m.signals.length, 0);
  const out: string[] = [];
  out.push(`${db.file ?? "<dbc>"}: ${msgs.length} messages, ${signals} signals, ${db.nodes.length} nodes${db.version ? `, version "${db.version}"` : ""}`);
  if (db.nodes.length) out.push(`nodes: ${db.nodes.map((n) => n.name).join(", ")}`);
  for (const m of msgs) {
    const flags = [m.ext ? "ext" : "std", ...(m.fd ? ["FD"] : [])];
    const cycle = attributeValue(db, m.attributes, "GenMsgCycleTime");
    const extra = typeof cycle === "number" && cycle > 0 ? `, every ${cycle} ms` : "";
    out.push(`${hexId(m)} ${m.name} (${m.length} bytes, ${flags.join(" ")}, from ${m.sender}${extra}): ${m.signals.length} signals`);
    const mux = resolveMultiplexing(m);
    const plain = m.signals.filter((_, i) => mux.conditions[i] === undefined && !m.signals[i].isMultiplexer).map((s) => s.name);
    if (plain.length) out.push(`    ${plain.join(", ")}`);
    // The multiplexer tree: each switch, then per value range the signals it selects.
    const tree = (sw: number, indent: string) => {
      const children = new Map<string, number[]>();
      mux.conditions.forEach((c, i) => {
        if (!c || c.switchIndex !== sw) return;
        const key = c.ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");
        children.set(key, [...(children.get(key) ?? []), i]);
      });
      out.push(`${indent}switch ${m.signals[sw].name}`);
      for (const [key, members] of children) {
        const names = members.filter((i) => !m.signals[i].isMultiplexer).map((i) => m.signals[i].name);
        out.push(`${indent}  = ${key}${names.length ? `: ${names.join(", ")}` : ""}`);
        for (const i of members) if (m.signals[i].isMultiplexer) tree(i, indent + "    ");
      }
    };
    m.signals.forEach((s, i) => {
      if (s.isMultiplexer && mux.conditions[i] === undefined) tree(i, "    ");
    });
    for (const p of mux.problems) out.push(`    ! ${p}`);
  }
  return out.join("\n");
}

/** The database as plain JSON: Maps become objects, value tables keyed by raw value. */
export function databaseJson(db: Database): string {
  return JSON.stringify(
    db,
    (key, value) => {
      if (value instanceof Map) return Object.fromEntries(value);
      return value;
    },
    2,
  );
}

export async function dbcCommand(file: string, opts: DbcOptions): Promise<void> {
  const db = loadDbcFile(file);
  if (opts.check) {
    const findings = checkDatabase(db);
    const errors = findings.filter((f) => f.severity === "error").length;
    const lines = findings.map((f) => `${file}:${f.line}: ${f.severity}: ${f.message}`);
    if (lines.length) await writeStdout(lines.join("\n") + "\n");
    log.info(`dbc --check: ${errors} error(s), ${findings.length - errors} warning(s)`);
    if (errors > 0) process.exitCode = 1;
    return;
  }
  if (opts.write) {
    await writeStdout(writeDbc(db));
    if (db.warnings.length > 0) log.info(`note: ${db.warnings.length} statement(s) read leniently or dropped are not in the output; 'vgw dbc --check ${file}' lists them`);
    return;
  }
  await writeStdout((opts.json ? databaseJson(db) : summarize(db)) + "\n");
  // Statements dropped or read leniently change what decodes; the summary alone would hide them.
  if (db.warnings.length > 0) log.info(`note: ${db.warnings.length} statement(s) read leniently or dropped; 'vgw dbc --check ${file}' lists them`);
}

export function registerDbc(program: Command): void {
  program
    .command("dbc")
    .description("summarise, dump (--json), validate (--check) or rewrite (--write) a CAN database")
    .argument("<file>", "the DBC file")
    .addOption(new Option("--json", "print the whole database as JSON").conflicts(["check", "write"]))
    .addOption(new Option("--check", "validate: overlaps, ranges, duplicate names, signals beyond the message; exit 1 on errors").conflicts("write"))
    .option("--write", "print the database back as DBC text (normalised; what was read is kept)")
    .addHelpText(
      "after",
      `
Examples:
  vgw dbc vw_mqb.dbc                  messages, senders, signals and multiplexer trees
  vgw dbc --json abs.dbc > abs.json   the whole database, for scripts
  vgw dbc --check tesla_can.dbc       findings as FILE:LINE: severity: text (exit 1 if any is an error)
  vgw dbc --write car.dbc > tidy.dbc  the same database, normalised by the DBC writer`,
    )
    .action(async (file: string, opts: DbcOptions) => dbcCommand(file, opts));
}
