/**
 * Splits DBC text into tokens with 1-based line and column, so every parse error can point at the offending text.
 * Written by hand because the DBC lexical rules are small and peculiar (a sign is part of a number only when a digit
 * follows, so `@1+ (` and `8-8` both lex the way the grammar needs) and speed matters for 500 KB files.
 */
import { DbcParseError } from "../frame/errors";

export const enum Tok {
  Ident,
  Number,
  String,
  Punct,
  End,
}

export interface Token {
  kind: Tok;
  /** Identifier or punctuation text; the number's source text; the string's unescaped contents. */
  text: string;
  line: number;
  column: number;
  /** Offset of the token's first character in the source. */
  start: number;
  /** Offset just past the token. */
  end: number;
}

const PUNCT = ":;|@()[],";

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57);
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Tokenises the whole text. Throws DbcParseError on an unterminated string or a character no statement can use. */
export function tokenize(src: string, file?: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = src.length;
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 10) {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11 || c === 0xfeff) {
      i++;
      continue;
    }
    // `//` comments appear in hand-edited files; they run to the end of the line.
    if (c === 47 && src.charCodeAt(i + 1) === 47) {
      while (i < n && src.charCodeAt(i) !== 10) i++;
      continue;
    }
    const start = i;
    const column = i - lineStart + 1;
    if (isIdentStart(c)) {
      i++;
      while (i < n && isIdentPart(src.charCodeAt(i))) i++;
      out.push({ kind: Tok.Ident, text: src.slice(start, i), line, column, start, end: i });
      continue;
    }
    const next = src.charCodeAt(i + 1);
    if (isDigit(c) || ((c === 43 || c === 45 || c === 46) && (isDigit(next) || (next === 46 && isDigit(src.charCodeAt(i + 2)))))) {
      i = scanNumber(src, i);
      out.push({ kind: Tok.Number, text: src.slice(start, i), line, column, start, end: i });
      continue;
    }
    if (c === 34) {
      const startLine = line;
      let text = "";
      let from = i + 1;
      i++;
      for (;;) {
        if (i >= n) throw new DbcParseError("unterminated string", file, startLine, column, src.slice(start, start + 40));
        const d = src.charCodeAt(i);
        if (d === 92 && (src.charCodeAt(i + 1) === 34 || src.charCodeAt(i + 1) === 92)) {
          text += src.slice(from, i) + src[i + 1];
          i += 2;
          from = i;
          continue;
        }
        if (d === 10) {
          line++;
          lineStart = i + 1;
        }
        if (d === 34) break;
        i++;
      }
      text += src.slice(from, i);
      i++;
      out.push({ kind: Tok.String, text, line: startLine, column, start, end: i });
      continue;
    }
    if (PUNCT.includes(src[i]) || c === 43 || c === 45) {
      i++;
      out.push({ kind: Tok.Punct, text: src[start], line, column, start, end: i });
      continue;
    }
    throw new DbcParseError(`unexpected character ${JSON.stringify(src[i])}`, file, line, column, src.slice(i, i + 20).split("\n")[0]);
  }
  out.push({ kind: Tok.End, text: "", line, column: i - lineStart + 1, start: n, end: n });
  return out;
}

/** Scans `[+-]digits[.digits][e[+-]digits]` or a `0x` hex integer from `i`; returns the end offset. */
function scanNumber(src: string, i: number): number {
  const n = src.length;
  if (src[i] === "+" || src[i] === "-") i++;
  if (src[i] === "0" && (src[i + 1] === "x" || src[i + 1] === "X")) {
    i += 2;
    while (i < n && /[0-9a-fA-F]/.test(src[i])) i++;
    return i;
  }
  while (i < n && isDigit(src.charCodeAt(i))) i++;
  if (src[i] === ".") {
    i++;
    while (i < n && isDigit(src.charCodeAt(i))) i++;
  }
  if ((src[i] === "e" || src[i] === "E") && (isDigit(src.charCodeAt(i + 1)) || ((src[i + 1] === "+" || src[i + 1] === "-") && isDigit(src.charCodeAt(i + 2))))) {
    i += 2;
    while (i < n && isDigit(src.charCodeAt(i))) i++;
  }
  return i;
}
