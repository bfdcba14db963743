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

/**
 * File text quoted in a message goes to a terminal: control characters (C0 but tab, DEL, C1, as latin1 decodes
 * binary junk) become `\xNN`, so a damaged file cannot move the cursor, clear the screen or break the message's line.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

const FS_REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "it is a directory",
  ENOTDIR: "a folder in the path is not a directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
};

/** Why a file could not be opened, read or written, in words (the same words for DBC files and traces). */
export function fileReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return (code && FS_REASONS[code]) ?? (e instanceof Error ? e.message : String(e));
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
    super(printable(`${file ?? "<dbc>"}:${line}:${column}: ${reason}${text ? ` (near '${text}')` : ""}`), options);
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
    super(printable(`${file}:${line}: ${reason}`), options);
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
