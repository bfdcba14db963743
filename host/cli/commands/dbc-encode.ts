/**
 * `MESSAGE SIG=VALUE ...` from the command line -> one frame, through can-db's encoder. MESSAGE is a message name
 * or its ID (`0x1F0`, `496`); a VALUE is a number (physical, scaled by the DBC) or a value-table label.
 */
import type { Frame } from "../../../can-db/frame";
import { CodecError, UsageError } from "../../../can-db/errors";
import { loadDbcFile } from "../../../can-db/load";
import { encodeFrame, type EncodeValue } from "../../../can-db/encoder";

function parseValue(text: string): EncodeValue {
  if (/^-?\d+$/.test(text) && !Number.isSafeInteger(Number(text))) return BigInt(text);
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

export function encodeFromArgs(dbcPath: string, message: string, assignments: string[]): Frame {
  const db = loadDbcFile(dbcPath);
  const byId = /^(0x[0-9a-f]+|\d+)$/i.test(message) ? Number(message) : undefined;
  const m = db.messages.find((x) => !x.pseudo && (x.name === message || x.dbcName === message || x.id === byId));
  if (!m) {
    const names = db.messages.filter((x) => !x.pseudo).map((x) => x.name);
    throw new UsageError(`no message '${message}' in ${dbcPath} (it has: ${names.slice(0, 20).join(", ")}${names.length > 20 ? ", ..." : ""})`);
  }
  const values: Record<string, EncodeValue> = {};
  for (const a of assignments) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`'${a}' is not SIG=VALUE`);
    values[a.slice(0, eq)] = parseValue(a.slice(eq + 1));
  }
  try {
    // can-db's encodeFrame, as `vgw encode` uses it: CAN FD lengths padded, CANFD_BRS honoured.
    return encodeFrame(db, m, values);
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError(`${m.name}: ${e.message}`);
    throw e;
  }
}
