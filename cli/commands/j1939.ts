/**
 * `vgw j1939 send`: sends one J1939 message (host/j1939/sender.ts): one frame up to 8 bytes, BAM to the global address
 * (up to 1785 bytes), RTS/CTS to an ECU's address (up to 1785 bytes) or ETP beyond that, answering its CTS frames
 * until EndOfMsgAck.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { UsageError } from "../../frame/errors";
import { openBus } from "../../host/bus";
import { sendJ1939 } from "../../host/j1939/sender";
import { ETP_MAX_SIZE, J1939_GLOBAL, TP_MAX_SIZE } from "../../host/j1939/transport";
import { log } from "../../host/log";
import { positiveNumber } from "../options";

interface J1939SendOptions {
  interface: string;
  pgn: number;
  source: number;
  dest: number;
  priority?: number;
  file?: string;
  gap?: number;
}

/** A number in decimal or 0x hex, within [0, max]. */
function integerOption(name: string, max: number) {
  return (text: string): number => {
    const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`${name} must be 0..${max} (decimal or 0x hex), got '${text}'`);
    return n;
  };
}

function payload(hex: string | undefined, file: string | undefined): Uint8Array {
  if (hex !== undefined && file !== undefined) throw new UsageError("give the data as hex or --file, not both");
  if (file !== undefined) return readFileSync(file);
  if (hex === undefined) throw new UsageError("nothing to send: give the data as hex (0102AB...) or --file FILE");
  const clean = hex.replace(/[.\s]/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new UsageError(`data must be hex bytes (e.g. 0102AB), got '${hex}'`);
  return Uint8Array.from(Buffer.from(clean, "hex"));
}

export async function j1939Send(hex: string | undefined, opts: J1939SendOptions): Promise<void> {
  const data = payload(hex, opts.file);
  if (opts.dest === J1939_GLOBAL && data.length > TP_MAX_SIZE) throw new UsageError(`${data.length} bytes: BAM carries at most ${TP_MAX_SIZE} (ETP needs a destination address)`);
  if (data.length > ETP_MAX_SIZE) throw new UsageError(`${data.length} bytes: ETP carries at most ${ETP_MAX_SIZE}`);
  const bus = await openBus(opts.interface);
  try {
    await sendJ1939(bus, { pgn: opts.pgn, source: opts.source, destination: opts.dest, data, priority: opts.priority }, { bamGapMs: opts.gap });
    const how = data.length <= 8 ? "one frame" : opts.dest === J1939_GLOBAL ? "BAM" : data.length > TP_MAX_SIZE ? "ETP" : "RTS/CTS";
    log.info(`j1939 send: ${data.length} bytes of PGN ${opts.pgn} from ${opts.source} to ${opts.dest} sent (${how})`);
  } finally {
    await bus.close();
  }
}

export function registerJ1939(program: Command): void {
  const j1939 = program.command("j1939").description("J1939 transport: send multi-packet messages (BAM, RTS/CTS, ETP)");
  j1939
    .command("send")
    .description("send one J1939 message: one frame up to 8 bytes, BAM to 0xFF, RTS/CTS to an address, ETP beyond 1785 bytes")
    .argument("[data]", "the message as hex bytes (0102AB...)")
    .requiredOption("-i, --interface <bus>", "the bus: can0, vcan0, virtual:name")
    .requiredOption("--pgn <pgn>", "parameter group number (decimal or 0x hex)", integerOption("--pgn", 0x3ffff))
    .requiredOption("--source <sa>", "source address (0..253; vgw takes part in no address claim)", integerOption("--source", 0xfd))
    .option("--dest <da>", "destination address; 0xFF (the default) broadcasts with BAM", integerOption("--dest", 0xff), 0xff)
    .option("--priority <p>", "priority of a single-frame message (0..7, default 6)", integerOption("--priority", 7))
    .option("--file <file>", "send this file's bytes instead of hex")
    .option("--gap <ms>", "gap between BAM packets (default 50, the least J1939-21 allows)", positiveNumber("--gap"))
    .addHelpText(
      "after",
      `
Examples:
  vgw j1939 send -i can0 --pgn 0xFECA --source 0x00 0400640001030810    DM1 as one frame
  vgw j1939 send -i vcan0 --pgn 0xFEEC --source 0x80 --file vin.bin      BAM to everyone
  vgw j1939 send -i vcan0 --pgn 0x12300 --source 0x80 --dest 0x90 --file data.bin   RTS/CTS (ETP above 1785 bytes) to 0x90
RTS/CTS waits for the receiver's CTS frames (T3 1250 ms, T4 1050 ms) and fails with the receiver's Abort reason.`,
    )
    .action(async (data: string | undefined, opts: J1939SendOptions) => j1939Send(data, opts));
}
