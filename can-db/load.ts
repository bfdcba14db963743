/** Reads a DBC file from disk: bytes -> text (UTF-8, else Windows-1252) -> Database. */
import { readFileSync } from "node:fs";
import { decodeDbcBytes, parseDbc } from "./dbc-parser";
import { VgwError } from "./errors";
import type { Database } from "./model";

export function loadDbcFile(path: string): Database {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    throw new VgwError(`cannot read DBC ${path}: ${reason}`, { cause: e });
  }
  return parseDbc(decodeDbcBytes(bytes), path);
}
