/**
 * `MESSAGE SIG=VALUE ...` from the command line -> one frame, through can-db's encoder; the one reading of such
 * arguments, shared by `vgw encode` and `vgw send --dbc`. MESSAGE is a message name or its ID (`0x1F0`, `496`); a
 * VALUE is a number (physical, scaled by the DBC) or a value-table label (can-db's toRaw tells them apart).
 */
import type { Frame } from "../frame/frame";
import { CodecError, UsageError } from "../frame/errors";
import { loadDbcFile } from "./load";
import { encodeFrame } from "./encoder";
import { findMessage, type Database, type MessageDef } from "./model";

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

/** One frame of `message` with the signal values of `assignments` (SIGNAL=VALUE); usage errors name what is wrong. */
export function encodeFromArgs(dbcPath: string, message: string, assignments: string[]): Frame {
  const db = loadDbcFile(dbcPath);
  const m = messageOrUsage(db, message, dbcPath);
  const values = parseAssignments(assignments);
  try {
    // CAN FD lengths padded, CANFD_BRS honoured (can-db's encodeFrame).
    return encodeFrame(db, m, values);
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError(`${m.name}: ${e.message}`, { cause: e });
    throw e;
  }
}
