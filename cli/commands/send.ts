/**
 * `vgw send`: puts frames on a bus, written in can-utils text (`123#DEADBEEF`, `12345678#R`,
 * `123##1<data>`), or encoded from a DBC message and signal values (`--dbc`). With `--period` the frames are sent cyclically on an absolute
 * monotonic schedule (no drift) until Ctrl-C or `--count` cycles.
 */
import type { Command } from "commander";
import { parseFrame, type Frame } from "../../frame/frame";
import { FrameError, UsageError } from "../../frame/errors";
import { log } from "../../host/log";
import { MonotonicClock } from "../../host/replay/clock";
import { encodeFromArgs } from "../../can-db/assignments";
import { interruptSignal, nonNegativeInteger, parseInterfaces, positiveNumber } from "../options";
import { openBuses } from "../../host/bus/merge";

interface SendOptions {
  interface: string;
  dbc?: string;
  period?: number;
  count?: number;
}

export async function buildFrames(args: string[], dbc?: string): Promise<Frame[]> {
  if (args.length === 0) throw new UsageError("nothing to send: give frames like 123#DEADBEEF, or --dbc FILE MESSAGE SIG=VALUE ...");
  if (dbc) return [encodeFromArgs(dbc, args[0], args.slice(1))];
  return args.map((a) => {
    try {
      return parseFrame(a);
    } catch (e) {
      if (e instanceof FrameError) throw new UsageError(e.message);
      throw e;
    }
  });
}

export async function send(args: string[], opts: SendOptions): Promise<void> {
  const interfaces = parseInterfaces(opts.interface);
  const frames = await buildFrames(args, opts.dbc);
  const buses = await openBuses(interfaces, { transmitOnly: true });
  let sent = 0;
  const sendAll = async () => {
    for (const bus of buses) {
      for (const f of frames) {
        await bus.send(f);
        sent++;
      }
    }
  };
  try {
    if (opts.period === undefined) {
      await sendAll();
      return;
    }
    const clock = new MonotonicClock();
    const { signal, dispose } = interruptSignal();
    try {
      const start = clock.now();
      for (let cycle = 0; opts.count === undefined || cycle < opts.count; cycle++) {
        // Deadlines from the start instant: a slow cycle is never carried into the next one.
        await clock.waitUntil(start + (cycle * opts.period) / 1000);
        if (signal.aborted) break;
        await sendAll();
      }
    } finally {
      dispose();
    }
  } finally {
    const retries = buses.reduce((n, b) => n + (b.counters().txRetries ?? 0), 0);
    await Promise.all(buses.map((b) => b.close()));
    if (opts.period !== undefined || retries > 0) log.info(`send: ${sent} frames sent${retries ? `, ${retries} retries on a full TX queue` : ""}`);
  }
}

export function registerSend(program: Command): void {
  program
    .command("send")
    .description("send CAN frames (can-utils text, or encoded from a DBC), once or cyclically")
    .argument("[frames...]", "frames like 123#DEADBEEF 12345678#R 123##1AABB; with --dbc: MESSAGE SIG=VALUE ...")
    .requiredOption("-i, --interface <list>", "interfaces, comma-separated: can0, vcan0, virtual:name")
    .option("--dbc <file>", "encode MESSAGE (name or ID) from this DBC with SIG=VALUE pairs; unset signals get GenSigStartValue or 0")
    .option("--period <ms>", "send every <ms> milliseconds until Ctrl-C", positiveNumber("--period"))
    .option("-n, --count <n>", "with --period: stop after n cycles", nonNegativeInteger("--count"))
    .addHelpText(
      "after",
      `
Examples:
  vgw send -i can0 123#DEADBEEF                       one classic frame
  vgw send -i vcan0 12345678#11.22 7DF#R 123##1AABB    extended, remote, CAN FD with BRS
  vgw send -i can0 --dbc car.dbc EngineData EngineSpeed=2500 Gear=DRIVE
  vgw send -i can0 --period 100 123#0102               every 100 ms until Ctrl-C`,
    )
    .action(async (frames: string[], opts: SendOptions) => send(frames, opts));
}
