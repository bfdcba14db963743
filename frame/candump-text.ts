/**
 * candump's long text form, the one `vgw dump` prints (the short form, `123#DEADBEEF`, is frame.ts).
 */
import { bytesToHex, type Frame } from "./frame";
import { describeErrorFrame } from "./error-frame";

/**
 * candump's long form (can-utils lib.c, "sprint_long_canframe" with the indent candump switches on after the first
 * 29-bit frame): interface right-aligned to the longest name, 11-bit IDs right-aligned in 8 columns once a 29-bit
 * frame has been seen, `[4]` for classic and `[04]` for FD lengths, `remote request` for RTR frames.
 */
export class CandumpText {
  private indentSff = false;
  private readonly width: number;
  private lastT: number | undefined;
  private firstT: number | undefined;

  constructor(
    interfaces: string[],
    private readonly timestamps: "none" | "a" | "d" | "z" = "none",
  ) {
    this.width = Math.max(...interfaces.map((i) => i.length));
  }

  format(f: Frame): string {
    let id: string;
    if (f.err) {
      id = ((f.id | 0x20000000) >>> 0).toString(16).toUpperCase().padStart(8, "0");
    } else if (f.ext) {
      this.indentSff = true;
      id = f.id.toString(16).toUpperCase().padStart(8, "0");
    } else {
      id = f.id.toString(16).toUpperCase().padStart(3, "0");
      if (this.indentSff) id = id.padStart(8, " ");
    }
    const len = f.rtr ? (f.dlc ?? 0) : f.data.length;
    const lenText = f.fd ? `[${String(len).padStart(2, "0")}]` : ` [${len}]`;
    let body: string;
    if (f.rtr) body = "  remote request";
    else {
      const hex = bytesToHex(f.data);
      body = " ";
      for (let i = 0; i < hex.length; i += 2) body += " " + hex.slice(i, i + 2);
    }
    let line = `${this.stamp(f)}  ${(f.bus ?? "").padStart(this.width)}  ${id}  ${lenText}${body}`;
    if (f.err) line += `   ERRORFRAME  ${describeErrorFrame(f)}`;
    return line;
  }

  private stamp(f: Frame): string {
    if (this.timestamps === "none") return "";
    const t = f.t ?? 0;
    let shown = t;
    if (this.timestamps === "d") shown = this.lastT === undefined ? 0 : t - this.lastT;
    if (this.timestamps === "z") shown = t - (this.firstT ??= t);
    this.lastT = t;
    return ` (${shown.toFixed(6).padStart(this.timestamps === "a" ? 17 : 10, "0")})`;
  }
}
