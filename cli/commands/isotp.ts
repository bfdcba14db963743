/**
 * `vgw isotp`: ISO-TP (ISO 15765-2) from the command line, with the option names of can-utils' isotpsend, isotprecv
 * and isotpdump:
 *   dump  the frames between two IDs (live on a bus or from a trace file) and, beside them, the messages they carry
 *   send  one message (hex on the command line or on stdin), segmented with flow control
 *   recv  messages, printed as space-separated hex, once or in a loop
 */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { UsageError } from "../../frame/errors";
import type { Frame } from "../../frame/frame";
import { openBus } from "../../host/bus";
import { IsoTpError, openIsoTp, type IsoTpEndpoint, type IsoTpOptions } from "../../host/diag/isotp";
import { IsoTpWatcher, formatIsoTpFrame, formatIsoTpResult, isoTpItemJson, type IsoTpSide, type IsoTpWatchItem } from "../../host/diag/isotp-dump";
import { log } from "../../host/log";
import { findFormat, openTraceReader } from "../../host/trace";
import { interruptSignal, nonNegativeInteger, positiveNumber } from "../options";
import { writeStdout } from "../stdout";

interface LinkOptions {
  interface: string;
  source: string;
  dest: string;
  extAddress?: string;
  padding?: string;
  paddingCheck?: string;
  link?: string;
  nTimeout?: number;
}

/** A CAN ID in hex as can-utils takes it: 8 digits make a 29-bit ID. */
export function parseCanId(text: string, option: string): { id: number; ext: boolean } {
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) throw new UsageError(`${option} must be a CAN ID in hex (8 digits for a 29-bit one), got '${text}'`);
  const id = parseInt(text, 16);
  const ext = text.length === 8;
  if (!ext && id > 0x7ff) throw new UsageError(`${option} ${text} exceeds 0x7FF: write 29-bit IDs with 8 digits (e.g. ${id.toString(16).toUpperCase().padStart(8, "0")})`);
  if (id > 0x1fffffff) throw new UsageError(`${option} ${text} exceeds 0x1FFFFFFF`);
  return { id, ext };
}

function hexByte(text: string, option: string): number {
  if (!/^[0-9a-fA-F]{1,2}$/.test(text)) throw new UsageError(`${option} takes a byte in hex (00..FF), got '${text}'`);
  return parseInt(text, 16);
}

/** The endpoint options shared by send and recv, from can-utils-style flags. */
export function linkOptions(o: LinkOptions): IsoTpOptions {
  const tx = parseCanId(o.source, "-s");
  const rx = parseCanId(o.dest, "-d");
  const options: IsoTpOptions = { txId: tx.id, txExt: tx.ext, rxId: rx.id, rxExt: rx.ext };
  if (o.extAddress !== undefined) {
    const [txa, rxa] = o.extAddress.split(":");
    options.txAddress = hexByte(txa, "-x");
    options.rxAddress = rxa !== undefined && rxa !== "" ? hexByte(rxa, "-x") : options.txAddress;
  }
  let rxPad: number | undefined;
  if (o.padding !== undefined) {
    const [txp, rxp] = o.padding.includes(":") ? o.padding.split(":") : [o.padding, ""];
    if (txp) options.txPadding = hexByte(txp, "-p");
    if (rxp) rxPad = hexByte(rxp, "-p");
  }
  if (o.paddingCheck !== undefined) {
    const mode = o.paddingCheck;
    if (!["l", "c", "a"].includes(mode)) throw new UsageError(`-P takes l (length), c (content) or a (all), got '${mode}'`);
    if ((mode === "c" || mode === "a") && rxPad === undefined) throw new UsageError(`-P ${mode} checks the padding content: give the expected byte with -p :RX (e.g. -p :CC)`);
    options.rxPadding = { length: mode !== "c", content: mode === "l" ? undefined : rxPad };
  }
  if (o.link !== undefined) {
    // can-utils' -L <mtu>:<tx_dl>:<tx_flags>: MTU 72 is CAN FD; tx_flags bit 0 is BRS.
    const m = /^(16|72):(\d+):([0-9a-fA-F]+)$/.exec(o.link);
    if (!m) throw new UsageError(`-L takes <mtu>:<tx_dl>:<tx_flags>, e.g. 72:64:1 for CAN FD with 64-byte frames and BRS; got '${o.link}'`);
    const txDl = Number(m[2]);
    if (![8, 12, 16, 20, 24, 32, 48, 64].includes(txDl)) throw new UsageError(`-L: tx_dl ${txDl} is not 8, 12, 16, 20, 24, 32, 48 or 64`);
    if (m[1] === "16" && txDl !== 8) throw new UsageError(`-L: a tx_dl of ${txDl} needs the CAN FD MTU 72`);
    options.fd = m[1] === "72";
    options.txDl = txDl;
    options.brs = (parseInt(m[3], 16) & 1) !== 0;
  }
  if (o.nTimeout !== undefined) options.nAs = options.nBs = options.nCr = o.nTimeout;
  return options;
}

/** Hex bytes as isotpsend reads them (`11 22 33`), or run together (`112233`), or dotted (`11.22`). */
export function parseHexPayload(text: string): Uint8Array {
  const tokens = text.split(/[\s.,]+/).filter((t) => t.length > 0);
  const out: number[] = [];
  for (const t of tokens) {
    if (!/^[0-9a-fA-F]+$/.test(t)) throw new UsageError(`'${t}' is not hex data`);
    if (t.length <= 2) out.push(parseInt(t, 16));
    else if (t.length % 2 === 0) for (let i = 0; i < t.length; i += 2) out.push(parseInt(t.slice(i, i + 2), 16));
    else throw new UsageError(`'${t}' has an odd number of hex digits`);
  }
  return Uint8Array.from(out);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

interface SendOptions extends LinkOptions {
  force?: number;
  length?: number;
}

export async function isotpSend(args: string[], o: SendOptions): Promise<void> {
  const options = linkOptions(o);
  if (o.force !== undefined) options.forceStMinUs = o.force / 1000;
  let payload: Uint8Array;
  if (o.length !== undefined) {
    if (args.length > 0) throw new UsageError("-D sends a generated message: give no data with it");
    // The message isotpsend -D sends (01 02 .. FF 01 ..), so both tools can send the same test message.
    payload = Uint8Array.from({ length: o.length }, (_, i) => (i % 0xff) + 1);
  } else payload = parseHexPayload(args.length > 0 ? args.join(" ") : await readStdin());
  if (payload.length === 0) throw new UsageError("nothing to send: give hex bytes (11 22 33) as arguments or on stdin, or -D LEN");
  const link = await openIsoTp(o.interface, options);
  try {
    await link.send(payload);
    log.debug(`isotp send: ${payload.length} bytes in ${link.counters().txFrames} frames`);
  } finally {
    await link.close();
  }
}

interface RecvOptions extends LinkOptions {
  blockSize?: number;
  stmin?: string;
  loop?: boolean;
  count?: number;
  timeout?: number;
}

export async function isotpRecv(o: RecvOptions): Promise<void> {
  const options = linkOptions(o);
  if (o.blockSize !== undefined) {
    if (o.blockSize > 255) throw new UsageError(`-b takes 0..255, got ${o.blockSize}`);
    options.blockSize = o.blockSize;
  }
  if (o.stmin !== undefined) options.stMin = hexByte(o.stmin.replace(/^0x/i, ""), "-m");
  const link: IsoTpEndpoint = await openIsoTp(o.interface, options);
  const { signal, dispose } = interruptSignal(o.timeout);
  const want = o.count ?? (o.loop ? Infinity : 1);
  let received = 0;
  log.info(`isotp recv: listening on ${o.interface} for 0x${o.dest.toUpperCase()}`);
  try {
    while (received < want && !signal.aborted) {
      let message: Uint8Array;
      try {
        message = await receiveOrAbort(link, signal);
      } catch (e) {
        if (e instanceof IsoTpError && (e.code === "timeout" || e.code === "closed")) break;
        if (e instanceof IsoTpError) {
          log.warn(`isotp recv: ${e.message}`);
          continue;
        }
        throw e;
      }
      received++;
      if (!(await writeStdout(hexLine(message)))) break;
    }
  } finally {
    dispose();
    const c = link.counters();
    await link.close();
    const errors = Object.entries(c.errors).map(([k, v]) => `${v} ${k}`);
    const early = c.stMinViolations ? `, ${c.stMinViolations} consecutive frames sooner than the STmin granted` : "";
    log.info(`isotp recv: ${received} messages${errors.length ? `, errors: ${errors.join(", ")}` : ""}${early}`);
  }
  if (received < want && want !== Infinity && !signal.aborted) throw new Error(`isotp recv: ${received} of ${want} messages received`);
}

/** Waits for the next message until Ctrl-C or the --timeout fires (then an IsoTpError "timeout"). */
function receiveOrAbort(link: IsoTpEndpoint, signal: AbortSignal): Promise<Uint8Array> {
  if (signal.aborted) return Promise.reject(new IsoTpError("timeout", "stopped"));
  return new Promise((resolve, reject) => {
    const stop = () => reject(new IsoTpError("timeout", "stopped"));
    signal.addEventListener("abort", stop, { once: true });
    // A long wait, renewed: receive() needs a bound, the command waits until told to stop.
    const wait = (): void => {
      link.receive(3_600_000).then(
        (m) => {
          signal.removeEventListener("abort", stop);
          resolve(m);
        },
        (e: unknown) => {
          if (e instanceof IsoTpError && e.code === "timeout" && !signal.aborted) return wait();
          signal.removeEventListener("abort", stop);
          reject(e);
        },
      );
    };
    wait();
  });
}

/** A message as isotprecv prints it: `11 22 33 ` and a newline. */
export function hexLine(m: Uint8Array): string {
  let s = "";
  for (const b of m) s += b.toString(16).toUpperCase().padStart(2, "0") + " ";
  return s + "\n";
}

interface DumpOptions {
  interface: string;
  source: string;
  dest: string;
  extAddress?: string;
  rxExtAddress?: string;
  timestamp?: string;
  format: string;
  count?: number;
  timeout?: number;
}

function side(idText: string, option: string, address: string | undefined, addrOption: string): IsoTpSide {
  const { id, ext } = parseCanId(idText, option);
  const s: IsoTpSide = { id, ext };
  if (address !== undefined) s.address = address.toLowerCase() === "any" ? "any" : hexByte(address, addrOption);
  return s;
}

/** A trace file (or `-`, candump text on stdin) rather than a bus: an existing file of a known trace format. */
function isTraceInput(spec: string): boolean {
  return spec === "-" || (findFormat(spec) !== undefined && existsSync(spec));
}

export async function isotpDump(o: DumpOptions): Promise<void> {
  if (o.format !== "text" && o.format !== "jsonl") throw new UsageError(`--format must be text or jsonl, got '${o.format}'`);
  const stamp = o.timestamp;
  if (stamp !== undefined && !["a", "d", "z"].includes(stamp)) throw new UsageError(`-t must be a, d or z, got '${stamp}'`);
  const source = side(o.source, "-s", o.extAddress, "-x");
  const dest = side(o.dest, "-d", o.rxExtAddress ?? o.extAddress, "-X");
  const watcher = new IsoTpWatcher({ source, dest });
  const { signal, dispose } = interruptSignal(o.timeout);
  let out: string[] = [];
  let frames = 0;
  let first: number | undefined;
  let previous: number | undefined;
  let lastT = 0;
  let gone = false;
  const flush = async () => {
    if (out.length === 0) return;
    const text = out.join("\n") + "\n";
    out = [];
    if (!(await writeStdout(text))) gone = true;
  };
  const emit = (items: IsoTpWatchItem[]) => {
    for (const item of items) {
      if (o.format === "jsonl") {
        out.push(JSON.stringify(isoTpItemJson(item)));
        continue;
      }
      if (item.kind !== "frame") {
        out.push(formatIsoTpResult(item));
        continue;
      }
      let prefix = "";
      const t = item.frame.t ?? 0;
      if (stamp) {
        first ??= t;
        const shown = stamp === "a" ? t : stamp === "z" ? t - first : t - (previous ?? t);
        previous = t;
        prefix = `(${shown.toFixed(6)}) `;
      }
      out.push(prefix + formatIsoTpFrame(item));
    }
  };
  const ticker = setInterval(() => void flush(), 50);
  const take = (f: Frame): boolean => {
    const items = watcher.push(f);
    if (items.length === 0) return true;
    frames++;
    lastT = f.t ?? lastT;
    emit(items);
    return o.count === undefined || frames < o.count;
  };
  try {
    if (isTraceInput(o.interface)) {
      const reader = openTraceReader(o.interface, { signal });
      read: for await (const batch of reader) {
        for (const f of batch) if (!take(f)) break read;
        if (out.length >= 256) await flush();
        if (gone) break;
      }
      // Messages cut off by the end of the trace (or by -n) are reported as what they are: incomplete.
      emit(watcher.finish(Infinity));
    } else {
      const filters = [source, dest].map((s) => ({ id: s.id, mask: s.ext ? 0x1fffffff : 0x7ff, ext: s.ext }));
      const bus = await openBus(o.interface, { filters });
      signal.addEventListener("abort", () => void bus.close(), { once: true });
      log.info(`isotp dump: listening on ${o.interface} for 0x${o.source.toUpperCase()} and 0x${o.dest.toUpperCase()}`);
      try {
        read: for await (const f of bus) {
          if (!take(f)) break read;
          if (out.length >= 64) await flush();
          if (gone) break;
        }
      } finally {
        await bus.close();
      }
    }
    await flush();
  } finally {
    clearInterval(ticker);
    dispose();
    const errors = Object.entries(watcher.errors).map(([k, v]) => `${v} ${k}`);
    log.info(`isotp dump: ${frames} frames, ${watcher.messages} messages${errors.length ? `, errors: ${errors.join(", ")}` : ""}`);
  }
}

const LINK_OPTIONS: Array<[string, string, ((v: string) => number)?]> = [
  ["-x, --ext-address <addr[:rxaddr]>", "extended addressing: the address byte sent before the PCI (and the one expected, if different)"],
  ["-p, --padding <[tx]:[rx]>", "pad frames sent with byte tx; rx is the padding byte -P c expects"],
  ["-P, --padding-check <mode>", "check received padding: l (length), c (content), a (all)"],
  ["-L, --link <mtu:tx_dl:tx_flags>", "link layer: 16:8:0 classic (default), 72:64:0 CAN FD with 64-byte frames, tx_flags 1 = BRS"],
  ["--n-timeout <ms>", "N_As, N_Bs and N_Cr in ms (default 1000; raise it for a gateway reached over mqtt://)", positiveNumber("--n-timeout")],
];

function addOption(c: Command, flags: string, help: string, parse?: (v: string) => number): void {
  if (parse) c.option(flags, help, parse);
  else c.option(flags, help);
}

export function registerIsotp(program: Command): void {
  const isotp = program.command("isotp").description("ISO-TP (ISO 15765-2): dump a conversation, send and receive messages (can-utils' isotpdump/isotpsend/isotprecv)");

  isotp
    .command("dump")
    .description("frames between two IDs with the messages they carry, live or from a trace (isotpdump)")
    .requiredOption("-i, --interface <bus|file>", "a bus (can0, vcan0, virtual:name, mqtt://host/device) or a trace file (.log, .asc, .blf, .trc, .jsonl; - for candump text on stdin)")
    .requiredOption("-s, --source <id>", "one ID in hex (8 digits: 29-bit)")
    .requiredOption("-d, --dest <id>", "the other ID in hex")
    .option("-x, --ext-address <addr>", "extended addressing: the address byte of frames on the source ID, or 'any'")
    .option("-X, --rx-ext-address <addr>", "the address byte of frames on the dest ID (default: as -x), or 'any'")
    .option("-t, --timestamp <mode>", "prefix a timestamp: a absolute, d delta, z from zero")
    .option("--format <format>", "text (isotpdump's wording, messages on => lines) or jsonl", "text")
    .option("-n, --count <n>", "stop after n frames", nonNegativeInteger("--count"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .addHelpText(
      "after",
      `
Examples:
  vgw isotp dump -i vcan0 -s 7E0 -d 7E8            a tester and one ECU, live
  vgw isotp dump -i drive.log -s 7E0 -d 7E8        the same from a candump log
  vgw isotp dump -i can0 -s 18DA10F1 -d 18DAF110 --format jsonl
Lines starting '=>' are the reassembled messages; '!!' a message that failed, with its reason (wrong-sn, timeout-cr, ..).`,
    )
    .action(async (o: DumpOptions) => isotpDump(o));

  const send = isotp
    .command("send")
    .description("send one message, segmented with flow control (isotpsend)")
    .argument("[hex...]", "the message in hex (11 22 33 or 112233); default: read from stdin")
    .requiredOption("-i, --interface <bus>", "can0, vcan0, virtual:name, mqtt://host/device")
    .requiredOption("-s, --source <id>", "the ID to send on, in hex (8 digits: 29-bit)")
    .requiredOption("-d, --dest <id>", "the ID the receiver's flow control comes on");
  for (const [flags, help, parse] of LINK_OPTIONS) addOption(send, flags, help, parse);
  send
    .option("-f, --force <ns>", "ignore the receiver's STmin and wait this many nanoseconds between consecutive frames", positiveNumber("-f"))
    .option("-D, --length <n>", "send a generated message of n bytes (01 02 .. FF 01 .., as isotpsend -D) instead of data", nonNegativeInteger("-D"))
    .addHelpText(
      "after",
      `
Examples:
  vgw isotp send -i vcan0 -s 7E0 -d 7E8 22 F1 90            UDS read VIN request
  echo "11 22 33 44 55 66 77 88 99" | vgw isotp send -i can0 -s 7E0 -d 7E8 -p CC:
  vgw isotp send -i vcan1 -s 7E0 -d 7E8 -L 72:64:1 -D 5000   5000 bytes over CAN FD with BRS`,
    )
    .action(async (args: string[], o: SendOptions) => isotpSend(args, o));

  const recv = isotp
    .command("recv")
    .description("receive messages and print them as hex (isotprecv)")
    .requiredOption("-i, --interface <bus>", "can0, vcan0, virtual:name, mqtt://host/device")
    .requiredOption("-s, --source <id>", "the ID flow control is sent on, in hex")
    .requiredOption("-d, --dest <id>", "the ID messages arrive on");
  for (const [flags, help, parse] of LINK_OPTIONS) addOption(recv, flags, help, parse);
  recv
    .option("-b, --block-size <bs>", "block size granted to the sender (0 = off)", nonNegativeInteger("-b"))
    .option("-m, --stmin <val>", "STmin granted, the raw byte in hex: 00-7F ms, F1-F9 100-900 us")
    .option("-l, --loop", "keep receiving (do not exit after one message)")
    .option("-n, --count <n>", "exit after n messages", nonNegativeInteger("--count"))
    .option("--timeout <s>", "stop after this many seconds", positiveNumber("--timeout"))
    .addHelpText(
      "after",
      `
Examples:
  vgw isotp recv -i vcan0 -s 7E8 -d 7E0                  one message
  vgw isotp recv -i can0 -s 7E8 -d 7E0 -b 8 -m F5 -l     blocks of 8 frames, 500 us apart, until Ctrl-C`,
    )
    .action(async (o: RecvOptions) => isotpRecv(o));
}
