/** Reads a DBC file from disk: bytes -> text (UTF-8, else Windows-1252) -> Database. */
import { readFileSync } from "node:fs";
import { decodeDbcBytes, parseDbc } from "./dbc-parser";
import { fileReason, VgwError } from "../frame/errors";
import type { Database } from "./model";

export function loadDbcFile(path: string): Database {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new VgwError(`cannot read DBC ${path}: ${fileReason(e)}`, { cause: e });
  }
  return parseDbc(decodeDbcBytes(bytes), path);
}
