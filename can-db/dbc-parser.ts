/**
 * DBC parser: text -> Database. Covers the grammar real files use (Vector's "DBC File Format Documentation" v1.0.1 plus
 * what CANdb++ and other tools write in practice): VERSION, NS_, BS_, BU_, VAL_TABLE_, BO_/SG_ (with `M`, `mN`, `mNM`),
 * BO_TX_BU_, EV_/ENVVAR_DATA_, CM_, BA_DEF_/BA_DEF_REL_/BA_DEF_DEF_/BA_DEF_DEF_REL_/BA_/BA_REL_, VAL_, SIG_VALTYPE_,
 * SG_MUL_VAL_, SIG_GROUP_. Statements the model does not interpret (SGTYPE_, CAT_DEF_, FILTER, ...) are kept verbatim.
 *
 * Every grammar violation is a DbcParseError naming line, column and the offending text; nothing else escapes.
 * Statements are dispatched from one table keyed by keyword.
 */
import { DbcParseError } from "../frame/errors";
import { tokenize, Tok, type Token } from "./dbc-lexer";
import {
  emptyDatabase,
  finishDatabase,
  type AttrObjectKind,
  type AttributeDef,
  type AttrValue,
  type Database,
  type EnvVar,
  type MessageDef,
  type SignalDef,
  type ValueTable,
} from "./model";

/** Keywords that start a statement; an identifier at column 1 with one of these names ends a free-form list (NS_, BU_). */
const KEYWORDS = new Set([
  "VERSION", "NS_", "BS_", "BU_", "VAL_TABLE_", "BO_", "SG_", "BO_TX_BU_", "EV_", "ENVVAR_DATA_", "CM_", "BA_DEF_",
  "BA_DEF_REL_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "BA_", "BA_REL_", "VAL_", "SIG_VALTYPE_", "SG_MUL_VAL_", "SIG_GROUP_",
  "SGTYPE_", "SGTYPE_VAL_", "BA_DEF_SGTYPE_", "BA_SGTYPE_", "SIG_TYPE_REF_", "SIGTYPE_VALTYPE_", "CAT_DEF_", "CAT_",
  "FILTER", "NS_DESC_", "EV_DATA_", "BU_SG_REL_", "BU_EV_REL_", "BU_BO_REL_",
]);

/** Statements kept verbatim: the model has no use for them, the writer must not lose them. */
const KEPT_VERBATIM = new Set([
  "SGTYPE_", "SGTYPE_VAL_", "BA_DEF_SGTYPE_", "BA_SGTYPE_", "SIG_TYPE_REF_", "SIGTYPE_VALTYPE_", "CAT_DEF_", "CAT_",
  "FILTER", "NS_DESC_", "EV_DATA_",
]);

/** Decodes DBC bytes: UTF-16 with a byte-order mark, UTF-8 when the bytes are valid UTF-8, else Windows-1252 (what CANdb++ writes). */
export function decodeDbcBytes(bytes: Uint8Array): string {
  // Some Windows tools export "Unicode" text: UTF-16 with its byte-order mark (the decoder drops the mark).
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return decodeWindows1252(bytes);
  }
}

// Node's TextDecoder("windows-1252") decodes as ISO-8859-1 (0x80-0x9F become C1 controls, not € ‚ ƒ ...),
// so the 32 bytes where the two differ are mapped here. Undefined bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to themselves.
const CP1252_80_9F = "€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8DŽ\x8F\x90‘’“”•–—˜™š›œ\x9DžŸ";
function decodeWindows1252(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    s += b >= 0x80 && b <= 0x9f ? CP1252_80_9F[b - 0x80] : String.fromCharCode(b);
  }
  return s;
}

/** Parses DBC text. `file` only names the source in errors. */
export function parseDbc(text: string, file?: string): Database {
  return new DbcParser(text, file).parse();
}

/**
 * A statement that refers to a message, signal, node or variable the file never defines. Real files have these
 * (opendbc's tesla_can.dbc, vw_mqb.dbc); the statement is dropped and counted as a warning, as cantools does.
 */
class DanglingReference {
  constructor(
    readonly reason: string,
    readonly token: Token,
  ) {}
}

type StatementParser = (p: DbcParser, keyword: Token) => void;

const STATEMENTS: Record<string, StatementParser> = {
  VERSION: (p) => {
    p.db.version = p.string();
  },
  NS_: (p) => {
    p.optionalPunct(":");
    // The symbol list is indented; it ends at the first keyword written at the start of a line.
    while (p.peek().kind === Tok.Ident && !(p.peek().column === 1 && KEYWORDS.has(p.peek().text))) p.db.newSymbols.push(p.next().text);
  },
  BS_: (p, kw) => {
    p.expectPunct(":");
    if (p.peek().kind === Tok.Number && p.peek().line === kw.line) {
      const baudrate = p.number();
      p.expectPunct(":");
      const btr1 = p.number();
      p.expectPunct(",");
      const btr2 = p.number();
      p.db.busTiming = { baudrate, btr1, btr2 };
    }
  },
  BU_: (p) => {
    p.expectPunct(":");
    while (p.peek().kind === Tok.Ident && !KEYWORDS.has(p.peek().text)) {
      const t = p.next();
      p.db.nodes.push({ name: t.text, attributes: new Map(), line: t.line });
      p.optionalPunct(",");
    }
  },
  VAL_TABLE_: (p) => {
    const name = p.ident();
    p.db.valueTables.set(name, p.valueDescriptions());
    p.expectPunct(";");
  },
  BO_: (p, kw) => p.message(kw),
  SG_: (p, kw) => p.fail("SG_ outside a BO_ message", kw),
  BO_TX_BU_: (p) => {
    const m = p.messageById();
    p.expectPunct(":");
    while (p.peek().kind === Tok.Ident) {
      m.transmitters.push(p.next().text);
      p.optionalPunct(",");
    }
    p.expectPunct(";");
  },
  EV_: (p, kw) => p.envVar(kw),
  ENVVAR_DATA_: (p) => {
    const ev = p.envVarByName();
    p.expectPunct(":");
    ev.dataSize = p.number();
    p.expectPunct(";");
  },
  CM_: (p) => p.comment(),
  BA_DEF_: (p, kw) => p.attributeDef(kw, false),
  BA_DEF_REL_: (p, kw) => p.attributeDef(kw, true),
  BA_DEF_DEF_: (p) => p.attributeDefault(false),
  BA_DEF_DEF_REL_: (p) => p.attributeDefault(true),
  BA_: (p) => p.attribute(),
  BA_REL_: (p, kw) => p.relationAttribute(kw),
  VAL_: (p) => p.valueDescriptionsFor(),
  SIG_VALTYPE_: (p) => {
    const m = p.messageById();
    const sig = p.signalOf(m);
    p.optionalPunct(":");
    const t = p.peek();
    const type = p.number();
    if (type === 1) sig.valueType = "float32";
    else if (type === 2) sig.valueType = "float64";
    else if (type !== 0) p.fail(`SIG_VALTYPE_ must be 0, 1 or 2, got ${type}`, t);
    if (sig.valueType === "float32" && sig.length !== 32) p.fail(`float signal ${sig.dbcName} must be 32 bits, is ${sig.length}`, t);
    if (sig.valueType === "float64" && sig.length !== 64) p.fail(`double signal ${sig.dbcName} must be 64 bits, is ${sig.length}`, t);
    p.expectPunct(";");
  },
  SG_MUL_VAL_: (p) => {
    const m = p.messageById();
    const sig = p.signalOf(m);
    const sw = p.ident();
    const ranges: Array<[number, number]> = [];
    do {
      const t = p.peek();
      const lo = p.integer();
      // `8-8` lexes as 8 and -8: the second number's sign is the range dash.
      const hiTok = p.peek();
      let hi: number;
      if (hiTok.kind === Tok.Number && hiTok.text.startsWith("-")) hi = -p.integer();
      else {
        p.expectPunct("-");
        hi = p.integer();
      }
      if (hi < lo) p.fail(`multiplexer range ${lo}-${hi} is empty`, t);
      ranges.push([lo, hi]);
    } while (p.optionalPunct(","));
    sig.muxSwitch = sw;
    sig.muxRanges = ranges;
    p.expectPunct(";");
  },
  SIG_GROUP_: (p, kw) => {
    const m = p.messageById();
    const name = p.ident();
    const repetitions = p.integer();
    p.expectPunct(":");
    const signals: string[] = [];
    while (p.peek().kind === Tok.Ident) {
      signals.push(p.next().text);
      p.optionalPunct(",");
    }
    p.expectPunct(";");
    m.signalGroups.push({ name, repetitions, signals, line: kw.line });
  },
};

class DbcParser {
  readonly db: Database;
  private readonly tokens: Token[];
  private pos = 0;
  private readonly messagesById = new Map<number, MessageDef>();

  constructor(
    private readonly src: string,
    private readonly file?: string,
  ) {
    this.db = emptyDatabase(file);
    this.tokens = tokenize(src, file);
  }

  parse(): Database {
    while (this.peek().kind !== Tok.End) {
      const kw = this.next();
      if (kw.kind !== Tok.Ident) this.fail("expected a DBC keyword", kw);
      const handler = STATEMENTS[kw.text];
      if (handler) {
        try {
          handler(this, kw);
        } catch (e) {
          if (!(e instanceof DanglingReference)) throw e;
          this.warn(e.reason, e.token);
          this.skipStatement(kw);
        }
      } else if (KEPT_VERBATIM.has(kw.text)) this.keepVerbatim(kw);
      else this.fail(`unknown statement ${kw.text}`, kw);
    }
    return finishDatabase(this.db);
  }

  // ---- token helpers -------------------------------------------------------------------------------------------

  peek(): Token {
    return this.tokens[this.pos];
  }
  next(): Token {
    const t = this.tokens[this.pos];
    if (t.kind !== Tok.End) this.pos++;
    return t;
  }
  fail(reason: string, t: Token): never {
    const text = t.kind === Tok.End ? "end of file" : this.src.slice(t.start, Math.min(t.end, t.start + 60));
    throw new DbcParseError(reason, this.file, t.line, t.column, text);
  }
  warn(reason: string, t: Token, severity?: "error"): void {
    const text = this.src.slice(t.start, Math.min(t.end, t.start + 60));
    this.db.warnings.push({ line: t.line, column: t.column, reason, text, ...(severity ? { severity } : {}) });
  }
  dangling(reason: string, t: Token): never {
    throw new DanglingReference(reason, t);
  }
  /** Skips to just past the `;` that ends the current statement. */
  skipStatement(kw: Token): void {
    for (;;) {
      const t = this.next();
      if (t.kind === Tok.End) this.fail(`${kw.text} statement without ';'`, kw);
      if (t.kind === Tok.Punct && t.text === ";") return;
    }
  }
  expectPunct(p: string): void {
    const t = this.next();
    if (t.kind !== Tok.Punct || t.text !== p) this.fail(`expected '${p}'`, t);
  }
  optionalPunct(p: string): boolean {
    const t = this.peek();
    if (t.kind === Tok.Punct && t.text === p) {
      this.pos++;
      return true;
    }
    return false;
  }
  ident(): string {
    const t = this.next();
    if (t.kind !== Tok.Ident) this.fail("expected a name", t);
    return t.text;
  }
  string(): string {
    const t = this.next();
    if (t.kind !== Tok.String) this.fail("expected a quoted string", t);
    return t.text;
  }
  number(): number {
    const t = this.next();
    if (t.kind !== Tok.Number) this.fail("expected a number", t);
    const v = Number(t.text);
    if (!Number.isFinite(v)) this.fail("number out of range", t);
    return v;
  }
  integer(): number {
    const t = this.peek();
    const v = this.number();
    if (!Number.isSafeInteger(v)) this.fail("expected an integer", t);
    return v;
  }
  /** `"..."` or a number, as attribute values are written. */
  attrValue(): AttrValue {
    const t = this.peek();
    if (t.kind === Tok.String) return this.string();
    if (t.kind === Tok.Number) return this.number();
    return this.fail("expected a number or a quoted string", t);
  }

  // ---- statements ----------------------------------------------------------------------------------------------

  /** Keeps a statement we do not interpret, from its keyword to its `;`, exactly as written. */
  keepVerbatim(kw: Token): void {
    for (;;) {
      const t = this.next();
      if (t.kind === Tok.End) this.fail(`${kw.text} statement without ';'`, kw);
      if (t.kind === Tok.Punct && t.text === ";") {
        this.db.otherStatements.push(this.src.slice(kw.start, t.end));
        return;
      }
    }
  }

  messageById(): MessageDef {
    const t = this.peek();
    const raw = this.integer();
    const m = this.messagesById.get(raw);
    if (!m) this.dangling(`no message with ID ${raw}; statement ignored`, t);
    return m;
  }

  signalOf(m: MessageDef): SignalDef {
    const t = this.peek();
    const name = this.ident();
    const s = m.signals.find((x) => x.dbcName === name);
    if (!s) this.dangling(`message ${m.dbcName} has no signal ${name}; statement ignored`, t);
    return s;
  }

  envVarByName(): EnvVar {
    const t = this.peek();
    const name = this.ident();
    const ev = this.db.envVars.find((e) => e.name === name);
    if (!ev) this.dangling(`no environment variable ${name}; statement ignored`, t);
    return ev;
  }

  nodeByName(): { attributes: Map<string, AttrValue>; comment?: string } {
    const t = this.peek();
    const name = this.ident();
    const node = this.db.nodes.find((n) => n.name === name);
    if (!node) this.dangling(`no node ${name} in BU_; statement ignored`, t);
    return node;
  }

  /** `int "label"` pairs up to (not including) `;`. */
  valueDescriptions(): ValueTable {
    const table: ValueTable = new Map();
    while (this.peek().kind === Tok.Number) {
      const t = this.peek();
      const raw = this.number();
      if (!Number.isInteger(raw)) this.fail("value descriptions need integer raw values", t);
      table.set(raw, this.string());
    }
    return table;
  }

  valueDescriptionsFor(): void {
    if (this.peek().kind === Tok.Ident) {
      const ev = this.envVarByName();
      ev.choices = this.valueDescriptions();
    } else {
      const m = this.messageById();
      const sig = this.signalOf(m);
      sig.choices = this.valueDescriptions();
    }
    this.expectPunct(";");
  }

  message(kw: Token): void {
    const idTok = this.peek();
    const raw = this.integer();
    if (raw < 0 || raw > 0xffffffff) this.fail("message ID out of range", idTok);
    const first = this.messagesById.get(raw);
    const dbcName = this.ident();
    this.expectPunct(":");
    const lenTok = this.peek();
    const length = this.integer();
    if (length < 0 || length > 64) this.fail(`message length ${length} is not 0..64`, lenTok);
    const sender = this.ident();
    const flagged = raw >= 0x80000000;
    const id = flagged ? raw - 0x80000000 : raw;
    const m: MessageDef = {
      name: dbcName,
      dbcName,
      id,
      ext: flagged || id > 0x7ff,
      extImplied: !flagged && id > 0x7ff,
      length,
      sender,
      transmitters: [],
      signals: [],
      signalGroups: [],
      attributes: new Map(),
      fd: false,
      pseudo: false,
      line: kw.line,
    };
    // A second message with the same ID cannot be told apart on the bus: the first is kept, the second is read (so
    // its signals parse) and dropped, as an error `vgw dbc --check` reports with both lines; decoding still works.
    if (first) {
      this.warn(`duplicate message ID ${raw}: ${dbcName} is dropped, ${first.dbcName} (line ${first.line}) is kept`, idTok, "error");
    } else {
      this.messagesById.set(raw, m);
      this.db.messages.push(m);
    }
    while (this.peek().kind === Tok.Ident && this.peek().text === "SG_") {
      const sgTok = this.next();
      this.signal(m, sgTok);
    }
  }

  signal(m: MessageDef, kw: Token): void {
    const nameTok = this.peek();
    const dbcName = this.ident();
    const first = m.signals.find((s) => s.dbcName === dbcName);
    // As for messages: the first keeps the name, the second is read and dropped, reported as an error by --check.
    if (first) this.warn(`duplicate signal ${dbcName} in message ${m.dbcName}: the one on line ${first.line} is kept`, nameTok, "error");
    let isMultiplexer = false;
    let muxValue: number | undefined;
    const muxTok = this.peek();
    if (muxTok.kind === Tok.Ident) {
      const mux = /^(?:(M)|m(\d+)(M?)|(m))$/.exec(muxTok.text);
      if (!mux) this.fail("expected a multiplexer indicator (M, mN or mNM) or ':'", muxTok);
      this.pos++;
      if (mux[4]) this.warn("lone 'm' read as the multiplexer switch 'M'", muxTok);
      if (mux[1] || mux[4]) isMultiplexer = true;
      else {
        muxValue = Number(mux[2]);
        isMultiplexer = mux[3] === "M";
      }
    }
    this.expectPunct(":");
    const startTok = this.peek();
    const startBit = this.integer();
    this.expectPunct("|");
    const lenTok = this.peek();
    const length = this.integer();
    this.expectPunct("@");
    // `@1+` lexes as 1 then '+'; `@1-(` the same with '-'. A lexer number like `1` is followed by a sign punct.
    const orderTok = this.next();
    if (orderTok.kind !== Tok.Number || (orderTok.text !== "0" && orderTok.text !== "1")) this.fail("byte order must be 0 or 1", orderTok);
    const signTok = this.next();
    if (signTok.kind !== Tok.Punct || (signTok.text !== "+" && signTok.text !== "-")) this.fail("expected '+' or '-' after the byte order", signTok);
    this.expectPunct("(");
    const factor = this.number();
    this.expectPunct(",");
    const offset = this.number();
    this.expectPunct(")");
    const [min, max] = this.range();
    const unit = this.string();
    const receivers: string[] = [];
    // Receivers are on the SG_ line, separated by commas (some tools use spaces).
    let last = this.tokens[this.pos - 1].line;
    while (this.peek().kind === Tok.Ident && this.peek().line === last && this.peek().text !== "SG_") {
      receivers.push(this.next().text);
      if (this.optionalPunct(",")) last = this.tokens[this.pos - 1].line;
    }
    if (length < 1 || length > 64) this.fail(`signal length ${length} is not 1..64`, lenTok);
    const byteOrder = orderTok.text === "1" ? "little_endian" : "big_endian";
    if (startBit < 0 || startBit >= 512) this.fail(`start bit ${startBit} is not 0..511`, startTok);
    if (byteOrder === "little_endian" && startBit + length > 512) this.fail("signal extends beyond 64 bytes", startTok);
    if (factor === 0) this.fail(`signal ${dbcName} has factor 0`, startTok);
    if (first) return;
    m.signals.push({
      name: dbcName,
      dbcName,
      startBit,
      length,
      byteOrder,
      signed: signTok.text === "-",
      valueType: "integer",
      factor,
      offset,
      min,
      max,
      unit,
      receivers,
      isMultiplexer,
      muxValue,
      attributes: new Map(),
      line: kw.line,
    });
  }

  /** `[min|max]`, as SG_ and EV_ write a value range. */
  range(): [number, number] {
    this.expectPunct("[");
    const min = this.number();
    this.expectPunct("|");
    const max = this.number();
    this.expectPunct("]");
    return [min, max];
  }

  envVar(kw: Token): void {
    const name = this.ident();
    this.expectPunct(":");
    const type = this.integer();
    const [min, max] = this.range();
    const unit = this.string();
    const initial = this.number();
    const evId = this.number();
    const accessType = this.ident();
    const accessNodes: string[] = [];
    while (this.peek().kind === Tok.Ident) {
      accessNodes.push(this.next().text);
      this.optionalPunct(",");
    }
    this.expectPunct(";");
    this.db.envVars.push({ name, type, min, max, unit, initial, evId, accessType, accessNodes, attributes: new Map(), line: kw.line });
  }

  comment(): void {
    const t = this.peek();
    if (t.kind === Tok.String) {
      this.db.comment = this.string();
    } else {
      const kind = this.ident();
      if (kind === "BU_") this.nodeByName().comment = this.string();
      else if (kind === "BO_") this.messageById().comment = this.string();
      else if (kind === "SG_") this.signalOf(this.messageById()).comment = this.string();
      else if (kind === "EV_") this.envVarByName().comment = this.string();
      else this.fail("CM_ object must be BU_, BO_, SG_ or EV_", t);
    }
    this.expectPunct(";");
  }

  attributeDef(kw: Token, relation: boolean): void {
    let objectKind: AttrObjectKind = "";
    const kinds = relation ? ["BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_"] : ["BU_", "BO_", "SG_", "EV_"];
    if (this.peek().kind === Tok.Ident) {
      const t = this.next();
      if (!kinds.includes(t.text)) this.fail(`attribute object kind must be one of ${kinds.join(", ")}`, t);
      objectKind = t.text as AttrObjectKind;
    }
    const nameTok = this.peek();
    const name = this.string();
    if (this.db.attributeDefs.some((d) => d.name === name && d.relation === relation)) this.fail(`attribute ${name} defined twice`, nameTok);
    const typeTok = this.next();
    const def = { name, objectKind, relation, line: kw.line } as AttributeDef;
    switch (typeTok.text) {
      case "INT":
      case "HEX":
      case "FLOAT":
        def.type = typeTok.text;
        def.min = this.number();
        def.max = this.number();
        break;
      case "STRING":
        def.type = "STRING";
        break;
      case "ENUM":
        def.type = "ENUM";
        def.enumValues = [];
        while (this.peek().kind === Tok.String) {
          def.enumValues.push(this.string());
          if (!this.optionalPunct(",")) break;
        }
        break;
      default:
        this.fail("attribute type must be INT, HEX, FLOAT, STRING or ENUM", typeTok);
    }
    this.expectPunct(";");
    this.db.attributeDefs.push(def);
  }

  attributeDefault(relation: boolean): void {
    const nameTok = this.peek();
    const name = this.string();
    const def = this.db.attributeDefs.find((d) => d.name === name && d.relation === relation);
    if (!def) this.dangling(`default for undefined attribute ${name}; statement ignored`, nameTok);
    def.defaultValue = this.attrValue();
    this.expectPunct(";");
  }

  attribute(): void {
    const nameTok = this.peek();
    const name = this.string();
    const def = this.db.attributeDefs.find((d) => d.name === name && !d.relation);
    if (!def) this.dangling(`value for undefined attribute ${name}; statement ignored`, nameTok);
    let target: Map<string, AttrValue>;
    let kind: AttrObjectKind = "";
    if (this.peek().kind === Tok.Ident) {
      const t = this.next();
      kind = t.text as AttrObjectKind;
      if (kind === "BU_") target = this.nodeByName().attributes;
      else if (kind === "BO_") target = this.messageById().attributes;
      else if (kind === "SG_") target = this.signalOf(this.messageById()).attributes;
      else if (kind === "EV_") target = this.envVarByName().attributes;
      else this.fail("BA_ object must be BU_, BO_, SG_ or EV_", t);
    } else {
      target = this.db.attributes;
    }
    if (def.objectKind !== kind) {
      this.warn(`attribute ${name} is defined for ${def.objectKind || "the network"}, set here on ${kind || "the network"}; kept`, nameTok);
    }
    target.set(name, this.attrValue());
    this.expectPunct(";");
  }

  relationAttribute(kw: Token): void {
    const nameTok = this.peek();
    const name = this.string();
    if (!this.db.attributeDefs.some((d) => d.name === name && d.relation)) this.dangling(`value for undefined relation attribute ${name}; statement ignored`, nameTok);
    const relTok = this.next();
    const node = this.ident();
    const rel = relTok.text;
    let messageId: number | undefined;
    let target: string | undefined;
    if (rel === "BU_SG_REL_") {
      const sg = this.next();
      if (sg.text !== "SG_") this.fail("expected SG_", sg);
      const idTok = this.peek();
      messageId = this.integer();
      const m = this.messagesById.get(messageId);
      if (!m) this.fail(`no message with ID ${messageId}`, idTok);
      target = this.signalOf(m).dbcName;
    } else if (rel === "BU_BO_REL_") {
      const idTok = this.peek();
      messageId = this.integer();
      if (!this.messagesById.has(messageId)) this.fail(`no message with ID ${messageId}`, idTok);
    } else if (rel === "BU_EV_REL_") {
      target = this.envVarByName().name;
    } else {
      this.fail("relation must be BU_SG_REL_, BU_BO_REL_ or BU_EV_REL_", relTok);
    }
    const value = this.attrValue();
    this.expectPunct(";");
    this.db.relationAttributes.push({ name, relation: rel, node, messageId, target, value, line: kw.line });
  }
}
