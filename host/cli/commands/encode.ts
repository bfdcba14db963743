/**
 * `vgw encode --dbc FILE MESSAGE SIG=VALUE...`: builds one frame from signal values and prints it in can-utils form
 * (`123#...`), ready for `cansend` or `vgw send`. Values are physical numbers or value-table labels; signals left out
 * take their GenSigStartValue (raw) or 0. A value outside a signal's range is a usage error naming signal and range.
 */
import type { Command } from "commander";
import { CodecError, UsageError } from "../../../can-db/errors";
import { formatFrame, type Frame } from "../../../can-db/frame";
import { loadDbcFile } from "../../../can-db/load";
import { encodeFrame } from "../../../can-db/encoder";
import { findMessage, type Database, type MessageDef } from "../../../can-db/model";
import { writeStdout } from "./stdout";

export function parseAssignments(args: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`'${a}' is not SIGNAL=VALUE`);
    const name = a.slice(0, eq);
    // The last value silently winning would hide a typo in a long command line.
    if (Object.hasOwn(values, name)) throw new UsageError(`signal ${name} is given twice ('${name}=${values[name]}' and '${a}')`);
    values[name] = a.slice(eq + 1);
  }
  return values;
}

/** The message for `key`, or a usage error that says which names come close and where the full list is. */
function messageOrUsage(db: Database, key: string, dbcPath: string): MessageDef {
  const m = findMessage(db, key);
  if (m) return m;
  const lower = key.toLowerCase();
  const close = db.messages.filter((x) => !x.pseudo && x.name.toLowerCase().includes(lower)).map((x) => x.name);
  const hint = close.length ? `did you mean ${close.slice(0, 5).join(", ")}?` : `run 'vgw dbc ${dbcPath}' for its messages`;
  throw new UsageError(`${dbcPath} has no message '${key}': ${hint}`);
}

export async function encodeCommand(message: string, assignments: string[], opts: { dbc: string }): Promise<void> {
  const db = loadDbcFile(opts.dbc);
  const m = messageOrUsage(db, message, opts.dbc);
  let frame: Frame;
  try {
    frame = encodeFrame(db, m, parseAssignments(assignments));
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError(e.message, { cause: e });
    throw e;
  }
  await writeStdout(formatFrame(frame) + "\n");
}

export function registerEncode(program: Command): void {
  program
    .command("encode")
    .description("encode signal values into a frame of a DBC message; prints it in can-utils form (123#...)")
    .argument("<message>", "message name or ID (0x1F0)")
    .argument("[values...]", "SIGNAL=VALUE pairs: physical values or value-table labels")
    .requiredOption("--dbc <file>", "the CAN database (DBC)")
    .addHelpText(
      "after",
      `
Signals left out take their GenSigStartValue attribute (a raw value) or raw 0. Out-of-range values exit 2.
CAN FD messages print as ID##1<data>: bit-rate switch set, unless the message's CANFD_BRS attribute is 0 (ID##0<data>).

Examples:
  vgw encode --dbc motohawk.dbc ExampleMessage Temperature=250.1 AverageRadius=3.2 Enable=Enabled
  vgw encode --dbc multiplex.dbc Message1 Multiplexor=8 BIT_J=1
  cansend can0 $(vgw encode --dbc car.dbc 0x1F0 Enable=1)`,
    )
    .action(async (message: string, values: string[], opts: { dbc: string }) => encodeCommand(message, values, opts));
}
