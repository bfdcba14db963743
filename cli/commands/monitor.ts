/**
 * `vgw monitor`: a live full-screen table of the bus, one row per message (like cantools monitor and cansniffer):
 * decoded signals, period and jitter, changed bytes highlighted. Keys: q quit, p pause, s sort, f filter, c clear.
 * Drawn with terminal-kit's ScreenBuffer, which sends only the cells that changed (no flicker over ssh), and rebuilt
 * at the new size on every resize. The screen content comes from monitor-view.ts.
 */
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { BusStats } from "../../host/bus/stats";
import { filtersOption, parseInterfaces, parseSize, positiveNumber, RECEIVE_BUFFER_HELP } from "../options";
import { Capture } from "../../host/bus/capture";
import { loadDecoder } from "../../can-db/annotate";
import { applyKey, initialView, renderScreen } from "../monitor-view";

interface MonitorOptions {
  interface: string;
  dbc?: string;
  filter?: string;
  rcvbuf?: number;
  bitrate: number;
  refresh: number;
}

export async function monitor(opts: MonitorOptions): Promise<void> {
  if (!process.stdout.isTTY) throw new UsageError("monitor needs a terminal; use `vgw dump` or `vgw stats` in pipes and scripts");
  const interfaces = parseInterfaces(opts.interface);
  const decoder = opts.dbc ? await loadDecoder(opts.dbc) : undefined;
  // Scripts (and the SocketCAN tests) wait for its "listening" line, then for the screen.
  const capture = await Capture.open(interfaces, { command: "monitor", filters: filtersOption(opts.filter), receiveBuffer: opts.rcvbuf });
  let stats = new BusStats(opts.bitrate);
  const view = initialView();
  // Loaded here, not at start-up: every other vgw command would pay for its ~60 modules.
  const termkit = (await import("terminal-kit")).default;
  const term = termkit.terminal;
  // The size is read on every draw (not only on resize events): a terminal may report its real size late.
  const size = () => ({ width: process.stdout.columns || term.width || 80, height: process.stdout.rows || term.height || 24 });
  let screen = new termkit.ScreenBuffer({ dst: term, ...size() });
  let lastT = 0;

  /** `force`: draw even while paused (a key press must show its effect, e.g. the PAUSED mark itself). */
  const draw = (force = false) => {
    const { width, height } = size();
    if (width !== screen.width || height !== screen.height) {
      // A fresh buffer at the new size, and a full redraw: the terminal's old contents are gone.
      screen = new termkit.ScreenBuffer({ dst: term, width, height });
      term.clear();
    } else if (view.paused && !force) return;
    const lines = renderScreen(stats, view, screen.width, screen.height, lastT || Date.now() / 1000, decoder);
    screen.fill({ char: " ", attr: {} });
    lines.forEach((line, y) => {
      let x = 0;
      for (const seg of line) {
        screen.put({ x, y, attr: { inverse: !!seg.inverse, bold: !!seg.bold, dim: !!seg.dim }, wrap: false, dx: 1, dy: 0 }, "%s", seg.text);
        x += seg.text.length;
      }
    });
    screen.draw({ delta: true });
  };

  term.fullscreen(true);
  term.hideCursor(true);
  term.grabInput(true);
  let quit!: () => void;
  const done = new Promise<void>((resolve) => (quit = resolve));
  term.on("key", (name: string) => {
    const r = applyKey(view, name);
    if (r === "quit") quit();
    if (r === "clear") stats = new BusStats(opts.bitrate);
    draw(true);
  });
  term.on("resize", () => draw(true));
  process.once("SIGTERM", () => quit());
  const timer = setInterval(() => draw(), 1000 / opts.refresh);
  draw(true);
  const pump = (async () => {
    for await (const batch of capture.batches()) {
      for (const f of batch) {
        stats.add(f);
        lastT = f.t ?? lastT;
      }
    }
  })();
  try {
    await Promise.race([done, pump]);
  } finally {
    clearInterval(timer);
    await capture.close();
    term.hideCursor(false);
    term.grabInput(false);
    term.fullscreen(false);
  }
}

export function registerMonitor(program: Command): void {
  program
    .command("monitor")
    .description("live full-screen table of CAN traffic: one row per message, signals, period, jitter, changes highlighted")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .option("--dbc <file>", "decode messages and show their signals")
    .option("--filter <list>", "kernel acceptance filters (candump syntax: 123:7FF,200~700)")
    .option("--rcvbuf <size>", RECEIVE_BUFFER_HELP, parseSize)
    .option("--bitrate <bps>", "nominal bitrate, for the bus load shown in the header", positiveNumber("--bitrate"), 500000)
    .option("--refresh <hz>", "screen updates per second", positiveNumber("--refresh"), 10)
    .addHelpText(
      "after",
      `
Keys: q quit, p pause, s cycle sort (id, name, count, period), f filter by ID or name (Enter/Esc), c clear counters.

Examples:
  vgw monitor -i can0 --dbc car.dbc          decoded live view
  vgw monitor -i can0,can1 --filter 100:700  two interfaces, only IDs 0x100-0x1FF`,
    )
    .action(async (opts: MonitorOptions) => monitor(opts));
}
