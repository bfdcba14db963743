/**
 * What `vgw monitor` shows, as plain data: the screen is a list of lines, each a list of segments with a style.
 * Kept apart from the terminal so it can be checked without one; monitor.ts only draws these lines.
 */
import { bytesToHex } from "../frame/frame";
import { BusStats, idText, jitter, meanGap, type IdStats } from "../host/bus/stats";
import type { FrameDecoder } from "../can-db/annotate";

export interface Segment {
  text: string;
  inverse?: boolean;
  bold?: boolean;
  dim?: boolean;
}
export type Line = Segment[];

export const SORT_KEYS = ["id", "name", "count", "period"] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface ViewState {
  paused: boolean;
  sort: SortKey;
  /** Case-insensitive substring of the ID (hex) or message name; "" shows all. */
  filter: string;
  /** Typing a filter: keys go to `filter` until Enter/Escape. */
  editingFilter: boolean;
  /** Bytes changed within this many seconds are highlighted. */
  highlight: number;
}

export function initialView(): ViewState {
  return { paused: false, sort: "id", filter: "", editingFilter: false, highlight: 1 };
}

function messageName(s: IdStats, decoder?: FrameDecoder): string {
  if (!decoder || !s.last) return "";
  return decoder.decode(s.last).message ?? "";
}

function rowsOf(stats: BusStats, view: ViewState, decoder?: FrameDecoder): IdStats[] {
  const f = view.filter.toLowerCase();
  const rows = [...stats.ids.values()].filter(
    (s) => !f || idText(s.id, s.ext).toLowerCase().includes(f) || messageName(s, decoder).toLowerCase().includes(f),
  );
  const byId = (a: IdStats, b: IdStats) => a.bus.localeCompare(b.bus) || Number(a.ext) - Number(b.ext) || a.id - b.id;
  const cmp: Record<SortKey, (a: IdStats, b: IdStats) => number> = {
    id: byId,
    name: (a, b) => messageName(a, decoder).localeCompare(messageName(b, decoder)) || byId(a, b),
    count: (a, b) => b.count - a.count || byId(a, b),
    period: (a, b) => (meanGap(a) || Infinity) - (meanGap(b) || Infinity) || byId(a, b),
  };
  return rows.sort(cmp[view.sort]);
}

const fmtMs = (s: number) => (Number.isFinite(s) ? (s * 1000).toFixed(1) : "-");

/** The whole screen for a terminal of `width` x `height` at receive time `now` (seconds, the frames' clock). */
export function renderScreen(stats: BusStats, view: ViewState, width: number, height: number, now: number, decoder?: FrameDecoder): Line[] {
  const seconds = stats.span(1e-9);
  const head: Line[] = [
    [
      { text: "vgw monitor", bold: true },
      {
        text:
          `  ${stats.frames} frames, ${stats.ids.size} IDs, load ${stats.load(seconds).toFixed(1)}%, ` +
          `${stats.errors.total} error frames${stats.errors.busOff ? ` (${stats.errors.busOff} bus-off)` : ""}` +
          `  sort: ${view.sort}${view.filter ? `  filter: ${view.filter}` : ""}${view.paused ? "  PAUSED" : ""}`,
      },
    ],
    [{ text: `${"bus".padEnd(6)} ${"ID".padStart(8)} ${"message".padEnd(20)} ${"count".padStart(7)} ${"period".padStart(8)} ${"jitter".padStart(7)}  data / signals`, bold: true }],
  ];
  const footer: Line = view.editingFilter
    ? [{ text: `filter (ID or name, Enter to apply, Esc to clear): ${view.filter}_`, inverse: true }]
    : view.paused
      ? // At the start of the last line, so it is seen even on a narrow terminal that cuts the header.
        [{ text: "PAUSED", inverse: true }, { text: "  q quit  p resume  s sort  f filter  c clear", dim: true }]
      : [{ text: "q quit  p pause  s sort  f filter  c clear", dim: true }];
  const room = Math.max(height - head.length - 1, 0);
  const rows = rowsOf(stats, view, decoder);
  const body: Line[] = [];
  for (const s of rows.slice(0, rows.length > room ? Math.max(room - 1, 0) : room)) {
    const name = messageName(s, decoder);
    const line: Line = [
      {
        text:
          `${s.bus.slice(0, 6).padEnd(6)} ${idText(s.id, s.ext).padStart(8)} ${name.slice(0, 20).padEnd(20)} ` +
          `${String(s.count).padStart(7)} ${fmtMs(meanGap(s)).padStart(8)} ${fmtMs(jitter(s)).padStart(7)}  `,
      },
    ];
    const f = s.last;
    if (f?.rtr) line.push({ text: `remote request [${f.dlc ?? 0}]` });
    else if (f) {
      const hex = bytesToHex(f.data);
      for (let i = 0; i < f.data.length; i++) {
        const changed = now - (s.changedAt[i] ?? -Infinity) < view.highlight && s.count > 1;
        line.push({ text: hex.slice(2 * i, 2 * i + 2), inverse: changed }, { text: " " });
      }
      if (decoder) {
        const text = decoder.text(f);
        const sigs = text.slice(text.indexOf(" ") + 1);
        if (text && sigs !== text) line.push({ text: " " + sigs });
      }
    }
    body.push(line);
  }
  if (rows.length > body.length) body.push([{ text: `... ${rows.length - body.length} more IDs (filter with f)`, dim: true }]);
  if (stats.errors.total > 0 && body.length < room) {
    body.push([{ text: `errors: ${[...stats.errors.byClass].map(([k, v]) => `${k} ${v}`).join(", ")}`, bold: true }]);
  }
  const lines = [...head, ...body];
  while (lines.length < height - 1) lines.push([]);
  lines.length = Math.max(height - 1, 0);
  lines.push(footer);
  return lines.map((l) => clip(l, width));
}

function clip(line: Line, width: number): Line {
  const out: Line = [];
  let used = 0;
  for (const seg of line) {
    if (used >= width) break;
    const text = seg.text.slice(0, width - used);
    used += text.length;
    out.push({ ...seg, text });
  }
  return out;
}

/** Applies one key (terminal-kit names: "q", "CTRL_C", "ENTER", "BACKSPACE", "ESCAPE") to the view; "quit" to stop. */
export function applyKey(view: ViewState, key: string): "quit" | "clear" | undefined {
  if (view.editingFilter) {
    if (key === "ENTER") view.editingFilter = false;
    else if (key === "ESCAPE") {
      view.filter = "";
      view.editingFilter = false;
    } else if (key === "BACKSPACE") view.filter = view.filter.slice(0, -1);
    else if (key === "CTRL_C") return "quit";
    else if (key.length === 1) view.filter += key;
    return undefined;
  }
  switch (key) {
    case "q":
    case "Q":
    case "CTRL_C":
    case "ESCAPE":
      return "quit";
    case "p":
    case " ":
      view.paused = !view.paused;
      return undefined;
    case "s":
      view.sort = SORT_KEYS[(SORT_KEYS.indexOf(view.sort) + 1) % SORT_KEYS.length];
      return undefined;
    case "f":
    case "/":
      view.editingFilter = true;
      return undefined;
    case "c":
      return "clear";
    default:
      return undefined;
  }
}
