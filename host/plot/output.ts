/**
 * Writing a figure: the output's kind comes from the file's extension (.html, .svg, .png), and the file is replaced
 * in one step (written beside it, then renamed) so a browser reloading a live plot never reads half a file.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { UsageError, VgwError, fileReason } from "../../frame/errors";
import { htmlPage, renderSvg, type Figure, type Rendered } from "./render";
import { svgToPng } from "./png";

export type PlotFormat = "html" | "svg" | "png";

const BY_EXTENSION: Record<string, PlotFormat> = { ".html": "html", ".htm": "html", ".svg": "svg", ".png": "png" };

/** The format of an output path ("-" is HTML on stdout); a usage error for an extension it cannot write. */
export function plotFormat(file: string): PlotFormat {
  if (file === "-") return "html";
  const f = BY_EXTENSION[path.extname(file).toLowerCase()];
  if (!f) throw new UsageError(`cannot tell the plot format of '${file}': use a name ending in .html, .svg or .png`);
  return f;
}

/** The figure as the bytes of one format. */
export async function plotBytes(fig: Figure, format: PlotFormat, options: { refreshSeconds?: number } = {}): Promise<{ bytes: Buffer; rendered: Rendered }> {
  const rendered = renderSvg(fig);
  if (format === "png") return { bytes: await svgToPng(rendered.svg), rendered };
  const text = format === "svg" ? `<?xml version="1.0" encoding="UTF-8"?>\n${rendered.svg}\n` : htmlPage(rendered, fig.title, options.refreshSeconds);
  return { bytes: Buffer.from(text, "utf8"), rendered };
}

/** Replaces `file` with `bytes` atomically (a reader sees the old file or the new one). */
export async function replaceFile(file: string, bytes: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fsp.writeFile(tmp, bytes);
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw new VgwError(`cannot write ${file}: ${fileReason(e)}`, { cause: e });
  }
}
