/**
 * DBC writer: Database -> text, in the statement order CANdb++ uses. Parsing the output gives back the same Database
 * (tested on every fixture), so a tool can load, change and save a file without losing what it did not touch.
 * Numbers are printed with JavaScript's shortest round-trip form, strings with `"` and `\` escaped.
 */
import type { AttrValue, Database, MessageDef, SignalDef, ValueTable } from "./model";

export function writeDbc(db: Database): string {
  const out: string[] = [];
  out.push(`VERSION ${str(db.version)}`, "", "");
  out.push("NS_ :");
  for (const s of db.newSymbols) out.push(`\t${s}`);
  out.push("");
  const bt = db.busTiming;
  out.push(bt ? `BS_: ${num(bt.baudrate)} : ${num(bt.btr1)},${num(bt.btr2)}` : "BS_:", "");
  out.push(`BU_:${db.nodes.map((n) => " " + n.name).join("")}`);
  for (const [name, table] of db.valueTables) out.push(`VAL_TABLE_ ${name}${pairs(table)} ;`);
  out.push("", "");
  for (const m of db.messages) {
    out.push(`BO_ ${dbcId(m)} ${m.dbcName}: ${m.length} ${m.sender}`);
    for (const s of m.signals) out.push(signalLine(s));
    out.push("");
  }
  for (const m of db.messages) if (m.transmitters.length) out.push(`BO_TX_BU_ ${dbcId(m)} : ${m.transmitters.join(",")};`);
  out.push("");
  for (const ev of db.envVars) {
    const nodes = ev.accessNodes.join(",");
    out.push(`EV_ ${ev.name}: ${num(ev.type)} [${num(ev.min)}|${num(ev.max)}] ${str(ev.unit)} ${num(ev.initial)} ${num(ev.evId)} ${ev.accessType} ${nodes};`);
  }
  for (const ev of db.envVars) if (ev.dataSize !== undefined) out.push(`ENVVAR_DATA_ ${ev.name}: ${num(ev.dataSize)};`);
  for (const s of db.otherStatements) out.push(s);
  if (db.comment !== undefined) out.push(`CM_ ${str(db.comment)};`);
  for (const n of db.nodes) if (n.comment !== undefined) out.push(`CM_ BU_ ${n.name} ${str(n.comment)};`);
  for (const m of db.messages) {
    if (m.comment !== undefined) out.push(`CM_ BO_ ${dbcId(m)} ${str(m.comment)};`);
    for (const s of m.signals) if (s.comment !== undefined) out.push(`CM_ SG_ ${dbcId(m)} ${s.dbcName} ${str(s.comment)};`);
  }
  for (const ev of db.envVars) if (ev.comment !== undefined) out.push(`CM_ EV_ ${ev.name} ${str(ev.comment)};`);
  for (const d of db.attributeDefs) {
    const kw = d.relation ? "BA_DEF_REL_" : "BA_DEF_";
    let type: string = d.type;
    if (d.type === "ENUM") type += " " + (d.enumValues ?? []).map(str).join(",");
    else if (d.type !== "STRING") type += ` ${num(d.min ?? 0)} ${num(d.max ?? 0)}`;
    out.push(`${kw} ${d.objectKind} ${str(d.name)} ${type};`);
  }
  for (const d of db.attributeDefs) {
    if (d.defaultValue !== undefined) out.push(`${d.relation ? "BA_DEF_DEF_REL_" : "BA_DEF_DEF_"} ${str(d.name)} ${val(d.defaultValue)};`);
  }
  for (const [name, v] of db.attributes) out.push(`BA_ ${str(name)} ${val(v)};`);
  for (const n of db.nodes) for (const [name, v] of n.attributes) out.push(`BA_ ${str(name)} BU_ ${n.name} ${val(v)};`);
  for (const m of db.messages) {
    for (const [name, v] of m.attributes) out.push(`BA_ ${str(name)} BO_ ${dbcId(m)} ${val(v)};`);
    for (const s of m.signals) for (const [name, v] of s.attributes) out.push(`BA_ ${str(name)} SG_ ${dbcId(m)} ${s.dbcName} ${val(v)};`);
  }
  for (const ev of db.envVars) for (const [name, v] of ev.attributes) out.push(`BA_ ${str(name)} EV_ ${ev.name} ${val(v)};`);
  for (const r of db.relationAttributes) {
    let target: string;
    if (r.relation === "BU_SG_REL_") target = `SG_ ${r.messageId} ${r.target}`;
    else if (r.relation === "BU_BO_REL_") target = `${r.messageId}`;
    else target = `${r.target}`;
    out.push(`BA_REL_ ${str(r.name)} ${r.relation} ${r.node} ${target} ${val(r.value)};`);
  }
  for (const m of db.messages) for (const s of m.signals) if (s.choices) out.push(`VAL_ ${dbcId(m)} ${s.dbcName}${pairs(s.choices)} ;`);
  for (const ev of db.envVars) if (ev.choices) out.push(`VAL_ ${ev.name}${pairs(ev.choices)} ;`);
  for (const m of db.messages) {
    for (const g of m.signalGroups) out.push(`SIG_GROUP_ ${dbcId(m)} ${g.name} ${g.repetitions} : ${g.signals.join(" ")};`);
  }
  for (const m of db.messages) {
    for (const s of m.signals) if (s.valueType !== "integer") out.push(`SIG_VALTYPE_ ${dbcId(m)} ${s.dbcName} : ${s.valueType === "float32" ? 1 : 2};`);
  }
  for (const m of db.messages) {
    for (const s of m.signals) {
      if (s.muxSwitch === undefined || !s.muxRanges) continue;
      const ranges = s.muxRanges.map(([lo, hi]) => `${lo}-${hi}`).join(", ");
      out.push(`SG_MUL_VAL_ ${dbcId(m)} ${s.dbcName} ${s.muxSwitch} ${ranges};`);
    }
  }
  out.push("");
  return out.join("\n");
}

/** The ID as the file writes it: bit 31 flags an extended ID, unless the source relied on the value alone. */
export function dbcId(m: MessageDef): number {
  return m.ext && !m.extImplied ? m.id + 0x80000000 : m.id;
}

function signalLine(s: SignalDef): string {
  let mux = "";
  if (s.muxValue !== undefined) mux = ` m${s.muxValue}${s.isMultiplexer ? "M" : ""}`;
  else if (s.isMultiplexer) mux = " M";
  const order = s.byteOrder === "little_endian" ? 1 : 0;
  const layout = `${s.startBit}|${s.length}@${order}${s.signed ? "-" : "+"}`;
  return ` SG_ ${s.dbcName}${mux} : ${layout} (${num(s.factor)},${num(s.offset)}) [${num(s.min)}|${num(s.max)}] ${str(s.unit)} ${s.receivers.join(",")}`.trimEnd();
}

function pairs(table: ValueTable): string {
  let s = "";
  for (const [raw, label] of table) s += ` ${num(raw)} ${str(label)}`;
  return s;
}

function num(n: number): string {
  return Object.is(n, -0) ? "-0" : String(n);
}

function str(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => "\\" + c)}"`;
}

function val(v: AttrValue): string {
  return typeof v === "string" ? str(v) : num(v);
}
