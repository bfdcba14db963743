/**
 * `vgw encode --dbc FILE MESSAGE SIG=VALUE...`: builds one frame from signal values and prints it in can-utils form
 * (`123#...`), ready for `cansend` or `vgw send`. Values are physical numbers or value-table labels; signals left out
 * take their GenSigStartValue (raw) or 0. A value outside a signal's range is a usage error naming signal and range.
 */
import type { Command } from "commander";
import { CodecError, UsageError } from "../../../can-db/errors";
import { FD_LENGTHS, formatFrame, makeFrame } from "../../../can-db/frame";
import { loadDbcFile } from "../../../can-db/load";
import { encodeMessage } from "../../../can-db/encoder";
import type { Database, MessageDef } from "../../../can-db/model";
import { writeStdout } from "./stdout";

/** A message by name (long or DBC name) or by ID (`0x1F0`, `496`). */
export function findMessage(db: Database, key: string): MessageDef | undefined {
  const byName = db.messages.find((m) => !m.pseudo && (m.name === key || m.dbcName === key));
  if (byName) return byName;
  const id = /^(0x[0-9a-f]+|\d+)$/i.test(key) ? Number(key) : NaN;
  return Number.isNaN(id) ? undefined : db.messages.find((m) => !m.pseudo && m.id === id);
}

export function parseAssignments(args: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`'${a}' is not SIGNAL=VALUE`);
    values[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return values;
}

export async function encodeCommand(message: string, assignments: string[], opts: { dbc: string }): Promise<void> {
  const db = loadDbcFile(opts.dbc);
  const m = findMessage(db, message);
  if (!m) throw new UsageError(`${opts.dbc} has no message '${message}'`);
  let data: Uint8Array;
  try {
    data = encodeMessage(db, m, parseAssignments(assignments));
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError(e.message, { cause: e });
    throw e;
  }
  // A length that is not a CAN FD length (variable_dlc.dbc has 10) is padded with zeros, as a controller pads it.
  if (m.fd && data.length > 8 && !FD_LENGTHS.includes(data.length)) {
    const padded = new Uint8Array(FD_LENGTHS.find((l) => l >= data.length) ?? 64);
    padded.set(data);
    data = padded;
  }
  const frame = makeFrame({ id: m.id, ext: m.ext, fd: m.fd, brs: m.fd, data });
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
CAN FD messages print as ID##1<data> (bit-rate switch set).

Examples:
  vgw encode --dbc motohawk.dbc ExampleMessage Temperature=250.1 AverageRadius=3.2 Enable=Enabled
  vgw encode --dbc multiplex.dbc Message1 Multiplexor=8 BIT_J=1
  cansend can0 $(vgw encode --dbc car.dbc 0x1F0 Enable=1)`,
    )
    .action(async (message: string, values: string[], opts: { dbc: string }) => encodeCommand(message, values, opts));
}
