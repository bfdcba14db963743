/** Reads a DBC file from disk: bytes -> text (UTF-8, else Windows-1252) -> Database. */
import { readFileSync } from "node:fs";
import { decodeDbcBytes, parseDbc } from "./dbc-parser";
import type { Database } from "./model";

export function loadDbcFile(path: string): Database {
  return parseDbc(decodeDbcBytes(readFileSync(path)), path);
}
