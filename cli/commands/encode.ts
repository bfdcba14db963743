/**
 * `vgw encode --dbc FILE MESSAGE SIG=VALUE...`: builds one frame from signal values and prints it in can-utils form
 * (`123#...`), ready for `cansend` or `vgw send`. Values are physical numbers or value-table labels; signals left out
 * take their GenSigStartValue (raw) or 0. A value outside a signal's range is a usage error naming signal and range.
 */
import type { Command } from "commander";
import { formatFrame } from "../../frame/frame";
import { encodeFromArgs } from "../../can-db/assignments";
import { writeStdout } from "../stdout";

export async function encodeCommand(message: string, assignments: string[], opts: { dbc: string }): Promise<void> {
  await writeStdout(formatFrame(encodeFromArgs(opts.dbc, message, assignments)) + "\n");
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
