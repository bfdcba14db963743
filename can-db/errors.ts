/**
 * The error tree every part of vgw throws. Each error says where (file, line, column where known) and why,
 * and keeps the underlying error as `cause`, so a CLI can print one clear line and a test can match the type.
 */

export class VgwError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A frame that cannot exist on a CAN bus (ID out of range, bad length, malformed can-utils text). */
export class FrameError extends VgwError {}

/** A DBC file that does not follow the grammar. `line`/`column` are 1-based; `text` is the offending source text. */
export class DbcParseError extends VgwError {
  constructor(
    readonly reason: string,
    readonly file: string | undefined,
    readonly line: number,
    readonly column: number,
    readonly text: string,
    options?: { cause?: unknown },
  ) {
    super(`${file ?? "<dbc>"}:${line}:${column}: ${reason}${text ? ` (near '${text}')` : ""}`, options);
  }
}

/** A frame that a message definition cannot decode, or values that cannot be encoded. */
export class CodecError extends VgwError {}

/** A trace line or record that cannot be read. `line` is 1-based for text formats, the byte offset's object index for binary ones. */
export class TraceParseError extends VgwError {
  constructor(
    readonly reason: string,
    readonly file: string,
    readonly line: number,
    options?: { cause?: unknown },
  ) {
    super(`${file}:${line}: ${reason}`, options);
  }
}

/** A bus that cannot be opened, read or written; `hint` is what the user can type to fix it. */
export class BusError extends VgwError {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(hint ? `${message}\n  hint: ${hint}` : message, options);
  }
}

/** A command line that does not make sense: the CLI exits 2 on these. */
export class UsageError extends VgwError {}
