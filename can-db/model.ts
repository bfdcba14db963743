/**
 * The CAN database model: Database -> MessageDef -> SignalDef, plus the DBC objects that travel with them (nodes,
 * attribute definitions, value tables, environment variables). The DBC parser builds it, the writer prints it back,
 * the codec compiles it. It holds what the file says; derived facts (effective names, CAN FD, mux structure) are
 * computed once in `finishDatabase` so every consumer sees the same answer.
 */

/** An attribute value as written in the file: numbers for INT/HEX/FLOAT (and ENUM indices), strings otherwise. */
export type AttrValue = number | string;

/** Object kinds an attribute can be defined on ("" = the network/database itself). */
export type AttrObjectKind = "" | "BU_" | "BO_" | "SG_" | "EV_" | "BU_SG_REL_" | "BU_BO_REL_" | "BU_EV_REL_";

export interface AttributeDef {
  name: string;
  objectKind: AttrObjectKind;
  /** Defined with BA_DEF_REL_ (node-relation attribute). */
  relation: boolean;
  type: "INT" | "HEX" | "FLOAT" | "STRING" | "ENUM";
  min?: number;
  max?: number;
  /** ENUM labels; an enum attribute value is an index into this list (some files write the label instead). */
  enumValues?: string[];
  /** BA_DEF_DEF_ / BA_DEF_DEF_REL_ value. */
  defaultValue?: AttrValue;
  line: number;
}

/** A BA_REL_ value: an attribute on the relation between a node and a signal, message or environment variable. */
export interface RelationAttribute {
  name: string;
  relation: "BU_SG_REL_" | "BU_BO_REL_" | "BU_EV_REL_";
  node: string;
  /** DBC message ID (with the extended flag bit) for SG_/BO_ relations. */
  messageId?: number;
  /** Signal name (BU_SG_REL_) or environment variable name (BU_EV_REL_). */
  target?: string;
  value: AttrValue;
  line: number;
}

/** Raw value -> label (VAL_ / VAL_TABLE_). Keys are RAW values, as the file writes them. */
export type ValueTable = Map<number, string>;

export type ByteOrder = "little_endian" | "big_endian";
export type ValueType = "integer" | "float32" | "float64";

export interface SignalDef {
  /** The name users see: SystemSignalLongSymbol when present, else the SG_ name. */
  name: string;
  /** The name on the SG_ line (at most 32 characters in Vector tools). */
  dbcName: string;
  /** DBC start bit: the LSB for little-endian (Intel), the MSB in sawtooth numbering for big-endian (Motorola). */
  startBit: number;
  length: number;
  byteOrder: ByteOrder;
  signed: boolean;
  valueType: ValueType;
  factor: number;
  offset: number;
  min: number;
  max: number;
  unit: string;
  receivers: string[];
  /** This signal is a multiplexer switch (`M`, or the `M` of `mNM`). */
  isMultiplexer: boolean;
  /** The `N` of `mN` / `mNM`: the switch value under which this signal is present. */
  muxValue?: number;
  /** From SG_MUL_VAL_: the switch (by DBC name) and the value ranges under which this signal is present. */
  muxSwitch?: string;
  muxRanges?: Array<[number, number]>;
  choices?: ValueTable;
  comment?: string;
  attributes: Map<string, AttrValue>;
  line: number;
}

export interface SignalGroup {
  name: string;
  repetitions: number;
  signals: string[];
  line: number;
}

export interface MessageDef {
  /** Name users see: SystemMessageLongSymbol when present, else the BO_ name. */
  name: string;
  dbcName: string;
  /** CAN identifier without flag bits. */
  id: number;
  /** 29-bit identifier. */
  ext: boolean;
  /** True when the file wrote an ID above 0x7FF without the extended flag (bit 31); see docs/dbc.md. */
  extImplied: boolean;
  /** Payload length in bytes (the BO_ DLC field; values above 8 are byte counts, as CANdb++ writes them). */
  length: number;
  sender: string;
  /** BO_TX_BU_ transmitters. */
  transmitters: string[];
  signals: SignalDef[];
  signalGroups: SignalGroup[];
  comment?: string;
  attributes: Map<string, AttrValue>;
  /** CAN FD, from the VFrameFormat attribute (or a length above 8). */
  fd: boolean;
  /** Vector's pseudo-message VECTOR__INDEPENDENT_SIG_MSG and other IDs no frame can carry: kept, never decoded. */
  pseudo: boolean;
  line: number;
}

export interface NodeDef {
  name: string;
  comment?: string;
  attributes: Map<string, AttrValue>;
  /** Where BU_ names it (nodes from other sources have none). */
  line?: number;
}

export interface EnvVar {
  name: string;
  /** 0 integer, 1 float, 2 string. */
  type: number;
  min: number;
  max: number;
  unit: string;
  initial: number;
  evId: number;
  accessType: string;
  accessNodes: string[];
  comment?: string;
  choices?: ValueTable;
  /** ENVVAR_DATA_ size, when the variable is a data variable. */
  dataSize?: number;
  attributes: Map<string, AttrValue>;
  line: number;
}

export interface Database {
  /** File name for messages (may be undefined for text parsed from memory). */
  file?: string;
  version: string;
  newSymbols: string[];
  /** BS_ line: `BS_: baudrate : btr1 , btr2` (usually empty). */
  busTiming?: { baudrate: number; btr1: number; btr2: number };
  nodes: NodeDef[];
  valueTables: Map<string, ValueTable>;
  messages: MessageDef[];
  envVars: EnvVar[];
  attributeDefs: AttributeDef[];
  /** Network (database) attributes. */
  attributes: Map<string, AttrValue>;
  relationAttributes: RelationAttribute[];
  /** CM_ without an object: the network comment. */
  comment?: string;
  /** Statements the model does not interpret (SGTYPE_, CAT_DEF_, FILTER...), kept verbatim so the writer keeps them. */
  otherStatements: string[];
  /** What the parser read leniently or dropped (references to objects the file never defines, a lone `m`), with lines. */
  warnings: DbcWarning[];
}

export interface DbcWarning {
  line: number;
  column: number;
  reason: string;
  text: string;
  /** "error": the file is wrong, not just unusual (a duplicate message ID or signal name); `vgw dbc --check` fails. */
  severity?: "error";
}

export function emptyDatabase(file?: string): Database {
  return {
    file,
    version: "",
    newSymbols: [],
    nodes: [],
    valueTables: new Map(),
    messages: [],
    envVars: [],
    attributeDefs: [],
    attributes: new Map(),
    relationAttributes: [],
    otherStatements: [],
    warnings: [],
  };
}

/** The attribute value on an object, or the definition's default, or undefined. */
export function attributeValue(db: Database, attrs: Map<string, AttrValue>, name: string): AttrValue | undefined {
  const v = attrs.get(name);
  if (v !== undefined) return v;
  return db.attributeDefs.find((d) => d.name === name && !d.relation)?.defaultValue;
}

/** An ENUM attribute's label (files write either the index or the label); other types as a string. */
export function attributeLabel(db: Database, attrs: Map<string, AttrValue>, name: string): string | undefined {
  const v = attributeValue(db, attrs, name);
  if (v === undefined) return undefined;
  const def = db.attributeDefs.find((d) => d.name === name && !d.relation);
  if (def?.type === "ENUM" && typeof v === "number" && def.enumValues) return def.enumValues[v] ?? String(v);
  return String(v);
}

/** A message by the name users see, its DBC name, or its ID (`0x1F0`, `496`); pseudo-messages are not found. */
export function findMessage(db: Database, key: string): MessageDef | undefined {
  const byName = db.messages.find((m) => !m.pseudo && (m.name === key || m.dbcName === key));
  if (byName) return byName;
  const id = /^(0x[0-9a-f]+|\d+)$/i.test(key) ? Number(key) : NaN;
  return Number.isNaN(id) ? undefined : db.messages.find((m) => !m.pseudo && m.id === id);
}

const CAN_FD_FORMATS = new Set(["StandardCAN_FD", "ExtendedCAN_FD"]);

/**
 * Derives the facts every consumer needs from what the file said: long names, CAN FD, pseudo messages.
 * Called by the parser once the whole file is read (attributes may come after the messages they describe).
 */
export function finishDatabase(db: Database): Database {
  for (const m of db.messages) {
    const long = m.attributes.get("SystemMessageLongSymbol");
    m.name = typeof long === "string" && long !== "" ? long : m.dbcName;
    const format = attributeLabel(db, m.attributes, "VFrameFormat");
    m.fd = (format !== undefined && CAN_FD_FORMATS.has(format)) || m.length > 8;
    m.pseudo = m.id > 0x1fffffff || m.dbcName === "VECTOR__INDEPENDENT_SIG_MSG";
    for (const s of m.signals) {
      const longSig = s.attributes.get("SystemSignalLongSymbol");
      s.name = typeof longSig === "string" && longSig !== "" ? longSig : s.dbcName;
    }
  }
  return db;
}

/** True when the database says it is J1939 (ProtocolType "J1939"), so frames match messages by PGN. */
export function isJ1939Database(db: Database): boolean {
  return attributeLabel(db, db.attributes, "ProtocolType") === "J1939";
}

/** True when a message is a J1939 parameter group (VFrameFormat J1939PG, or an extended message in a J1939 database). */
export function isJ1939Message(db: Database, m: MessageDef): boolean {
  if (!m.ext) return false;
  const format = attributeLabel(db, m.attributes, "VFrameFormat");
  if (format === "J1939PG") return true;
  return isJ1939Database(db) && (format === undefined || format === "ExtendedCAN");
}
