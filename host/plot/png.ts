/**
 * SVG to PNG with resvg (@resvg/resvg-js: the Rust SVG renderer, its prebuilt binary shipped inside an npm package
 * per platform, so nothing is compiled or downloaded at install). Text needs a font on the machine: the DejaVu or
 * Liberation fonts Debian installs with Chromium (scripts/setup-test.sh installs fonts-dejavu-core).
 */
import { existsSync } from "node:fs";
import { VgwError } from "../../frame/errors";
import { log } from "../log";

/** Font files tried in order; resvg also reads the system's font directories. */
const FONT_FILES = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"];
let warnedNoFont = false;

export async function svgToPng(svg: string): Promise<Buffer> {
  let resvg: typeof import("@resvg/resvg-js");
  try {
    // Loaded here, not at start-up: only PNG output needs the native renderer.
    resvg = await import("@resvg/resvg-js");
  } catch (e) {
    throw new VgwError(`PNG output needs @resvg/resvg-js, which did not load (${e instanceof Error ? e.message : String(e)}): run npm ci, or write .svg or .html`, { cause: e });
  }
  const fontFiles = FONT_FILES.filter((f) => existsSync(f));
  if (fontFiles.length === 0 && !warnedNoFont) {
    warnedNoFont = true;
    log.warn("warning: neither DejaVu Sans nor Liberation Sans is installed (apt-get install fonts-dejavu-core): the PNG's text uses whatever font the system has, if any");
  }
  const renderer = new resvg.Resvg(svg, {
    font: { fontFiles, loadSystemFonts: fontFiles.length === 0, defaultFontFamily: fontFiles.length ? "DejaVu Sans" : "sans-serif" },
    background: "#ffffff",
  });
  return renderer.render().asPng();
}
