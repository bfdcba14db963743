/**
 * `vgw diag`: OBD-II and UDS requests on a bus, answers decoded to names and units, negative responses named; and
 * `vgw diag ecu`, a simulated ECU that answers them (tests, demos, HIL).
 *
 *   vgw diag -i BUS obd pids | read PID... | vin | dtc [--pending|--permanent] | clear
 *   vgw diag -i BUS uds read-did DID... | read-dtc [MASK] | clear-dtc | session N | tester-present | reset TYPE | raw HEX
 *   vgw diag ecu -i BUS [--config FILE]
 *
 * OBD-II goes to the functional address and prints every ECU's answer (collected until --timeout, or until
 * --expect ECUs answered); UDS talks to one ECU (--tx/--rx, ISO 15765-4's engine ECU by default). With
 * `-i mqtt://broker/device` the requests go through that gateway's `diag` command (host/diag/gateway-links.ts).
 */
import type { Command } from "commander";
import { UsageError, VgwError } from "../../frame/errors";
import { log } from "../../host/log";
import { openIsoTpLink, openObdChannels, requestIdFor, startEcus } from "../../host/diag/bus-links";
import { isGatewaySpec, openGatewayLink, openGatewayObdChannels } from "../../host/diag/gateway-links";
import { ObdClient, type EcuRefusal, type ObdResult } from "../../host/diag/obd";
import { NegativeResponseError, UdsClient, type DtcReport } from "../../host/diag/uds";
import { loadEcuConfig } from "../../host/diag/ecu-sim";
import { hex, RESET_TYPES, STANDARD_DIDS } from "../../host/diag/uds-codes";
import { OBD_PIDS, pidText } from "../../can-db/obd-pids";
import { interruptSignal, nonNegativeInteger, positiveNumber } from "../options";
import { writeStdout } from "../stdout";

interface DiagOptions {
  interface: string;
  ext?: boolean;
  tx?: number;
  rx?: number[];
  timeout: number;
  p2: number;
  p2Star: number;
  expect?: number;
  json?: boolean;
  session?: number;
  unlock?: number;
}

function hexNumber(name: string, max: number) {
  return (text: string): number => {
    const t = text.trim().replace(/^0x/i, "");
    if (!/^[0-9a-f]+$/i.test(t)) throw new UsageError(`${name}: '${text}' is not a hex number`);
    const n = parseInt(t, 16);
    if (n > max) throw new UsageError(`${name}: 0x${t} is beyond 0x${max.toString(16).toUpperCase()}`);
    return n;
  };
}

async function out(lines: string[]): Promise<void> {
  if (lines.length) await writeStdout(lines.join("\n") + "\n");
}

function ecuLabel(id: number): string {
  return hex(id, id > 0x7ff ? 8 : 3);
}

// ---- OBD-II ----

async function withObd<T>(o: DiagOptions, work: (obd: ObdClient) => Promise<ObdResult<T>>): Promise<ObdResult<T>> {
  if (!o.interface) throw new UsageError("give the bus with -i, e.g. -i vcan0 or -i virtual:car");
  const channels = isGatewaySpec(o.interface) ? await gatewayObd(o) : await openObdChannels(o.interface, { ext: o.ext ?? false, physical: o.tx, responseIds: o.rx });
  const obd = new ObdClient(channels, { timeoutMs: o.timeout, p2StarMs: o.p2Star, expect: o.expect ?? 0 });
  try {
    const r = await work(obd);
    if (r.answers.length === 0 && r.refusals.length === 0) {
      throw new VgwError(`no ECU answered within ${o.timeout} ms on ${o.interface} (is the ignition on, the bitrate right, the ECU there?)`);
    }
    return r;
  } finally {
    obd.close();
    await channels.close();
  }
}

/** OBD-II through a remote gateway: its `diag` command hears one response id, so one ECU answers. */
async function gatewayObd(o: DiagOptions) {
  if ((o.rx?.length ?? 0) > 1) throw new UsageError("through a gateway (mqtt://) a request hears one answer id: give one --rx");
  const ext = o.ext ?? false;
  const responseId = o.rx?.[0] ?? (o.tx !== undefined ? (ext ? 0x18daf100 | ((o.tx >> 8) & 0xff) : o.tx + 8) : ext ? 0x18daf110 : 0x7e8);
  return openGatewayObdChannels(o.interface, { ext, requestId: o.tx ?? (ext ? 0x18db33f1 : 0x7df), responseId, flowControlId: o.tx ?? requestIdFor(responseId, ext) });
}

function refusalLines(refusals: EcuRefusal[]): string[] {
  return refusals.map((r) => `${ecuLabel(r.ecu)}  refused: ${r.nrcName} (0x${hex(r.nrc)})`);
}

async function printObd<T>(o: DiagOptions, r: ObdResult<T>, text: (value: T) => string[], json: (value: T) => unknown): Promise<void> {
  if (o.json) {
    await out([
      JSON.stringify({
        answers: r.answers.map((a) => ({ ecu: ecuLabel(a.ecu), ...(json(a.value) as object) })),
        refusals: r.refusals.map((x) => ({ ecu: ecuLabel(x.ecu), nrc: x.nrc, name: x.nrcName })),
      }),
    ]);
  } else await out([...r.answers.flatMap((a) => text(a.value).map((l) => `${ecuLabel(a.ecu)}  ${l}`)), ...refusalLines(r.refusals)]);
  if (r.answers.length === 0) process.exitCode = 1;
}

function parsePid(text: string): number {
  const known = [...OBD_PIDS.values()].find((d) => d.name.toLowerCase() === text.toLowerCase());
  if (known) return known.pid;
  return hexNumber("PID", 0xff)(text);
}

async function obdCommand(action: string, args: string[], o: DiagOptions & { pending?: boolean; permanent?: boolean }): Promise<void> {
  switch (action) {
    case "pids": {
      const r = await withObd(o, (obd) => obd.supportedPids());
      await printObd(
        o,
        r,
        (pids) => pids.map((p) => `${hex(p)} ${OBD_PIDS.get(p)?.name ?? "(not in the PID table)"}`),
        (pids) => ({ pids: pids.map((p) => ({ pid: p, name: OBD_PIDS.get(p)?.name ?? null })) }),
      );
      return;
    }
    case "read": {
      if (args.length === 0) throw new UsageError("obd read: name the PIDs, e.g. 0C 0D 05 (hex)");
      const pids = args.map(parsePid);
      const r = await withObd(o, (obd) => obd.readPids(pids));
      await printObd(o, r, (values) => values.map(pidText), (values) => ({ pids: values }));
      return;
    }
    case "vin": {
      const r = await withObd(o, (obd) => obd.readVin());
      await printObd(o, r, (vin) => [`VIN ${vin}`], (vin) => ({ vin }));
      return;
    }
    case "dtc": {
      const kind = o.permanent ? "permanent" : o.pending ? "pending" : "stored";
      const r = await withObd(o, (obd) => obd.readDtcs(kind));
      await printObd(o, r, (codes) => [`${kind}: ${codes.length ? codes.join(" ") : "none"}`], (codes) => ({ kind, dtcs: codes }));
      return;
    }
    case "clear": {
      const r = await withObd(o, (obd) => obd.clearDtcs());
      await printObd(o, r, () => ["DTCs and stored values cleared"], () => ({ cleared: true }));
      return;
    }
    default:
      throw new UsageError(`obd: unknown action '${action}' (pids, read, vin, dtc, clear)`);
  }
}

// ---- UDS ----

function printable(data: Uint8Array): string | undefined {
  return data.length > 0 && data.every((b) => b >= 0x20 && b < 0x7f) ? Buffer.from(data).toString("latin1") : undefined;
}

function dtcLines(r: DtcReport): string[] {
  return [
    `availability mask 0x${hex(r.availabilityMask)}, ${r.dtcs.length} DTC(s)`,
    ...r.dtcs.map((d) => `${d.code}  0x${hex(d.dtc, 6)}  status 0x${hex(d.status)}  ${d.statusBits.join(", ")}`),
  ];
}

async function udsCommand(action: string, args: string[], o: DiagOptions & { suppress?: boolean }): Promise<void> {
  if (!o.interface) throw new UsageError("give the bus with -i, e.g. -i vcan0 or -i virtual:car");
  const ext = o.ext ?? false;
  const txId = o.tx ?? (ext ? 0x18da10f1 : 0x7e0);
  const rxId = o.rx?.[0] ?? (ext ? 0x18daf100 | ((txId >> 8) & 0xff) : txId + 8);
  // Validate the arguments before touching the bus.
  let run: (uds: UdsClient) => Promise<void>;
  switch (action) {
    case "read-did": {
      if (args.length === 0) throw new UsageError("uds read-did: name the DIDs, e.g. F190 (hex)");
      const dids = args.map(hexNumber("DID", 0xffff));
      run = async (uds) => {
        const results: unknown[] = [];
        let failed = 0;
        for (const did of dids) {
          const name = STANDARD_DIDS[did] ?? "";
          try {
            const data = await uds.readDataByIdentifier(did);
            const text = printable(data);
            results.push({ did: hex(did, 4), name: name || null, hex: Buffer.from(data).toString("hex").toUpperCase(), text: text ?? null });
            if (!o.json) await out([`${hex(did, 4)}${name ? ` ${name}` : ""}: ${text !== undefined ? `"${text}" ` : ""}(${Buffer.from(data).toString("hex").toUpperCase().replace(/(..)(?=.)/g, "$1 ")})`]);
          } catch (e) {
            if (!(e instanceof NegativeResponseError)) throw e;
            failed++;
            results.push({ did: hex(did, 4), name: name || null, error: { nrc: e.nrc, name: e.nrcName } });
            log.error(`vgw: DID ${hex(did, 4)}: ${e.message}`);
          }
        }
        if (o.json) await out([JSON.stringify({ ecu: ecuLabel(rxId), dids: results })]);
        if (failed) process.exitCode = 1;
      };
      break;
    }
    case "read-dtc": {
      const mask = args.length ? hexNumber("status mask", 0xff)(args[0]) : 0xff;
      run = async (uds) => {
        const r = await uds.readDtcByStatusMask(mask);
        await out(o.json ? [JSON.stringify({ ecu: ecuLabel(rxId), mask, availabilityMask: r.availabilityMask, dtcs: r.dtcs })] : dtcLines(r));
      };
      break;
    }
    case "clear-dtc": {
      const group = args.length ? hexNumber("DTC group", 0xffffff)(args[0]) : 0xffffff;
      run = async (uds) => {
        await uds.clearDiagnosticInformation(group);
        await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), cleared: hex(group, 6) }) : `DTCs cleared (group 0x${hex(group, 6)})`]);
      };
      break;
    }
    case "session": {
      if (args.length !== 1) throw new UsageError("uds session: give the session number (1 default, 2 programming, 3 extended)");
      const n = hexNumber("session", 0x7f)(args[0]);
      run = async (uds) => {
        const s = await uds.diagnosticSessionControl(n, { suppressPositive: o.suppress });
        if (!s) return void (await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), session: n, suppressed: true }) : `session ${n} requested (positive response suppressed)`]));
        const timing = s.p2ServerMs !== undefined ? ` (P2 ${s.p2ServerMs} ms, P2* ${s.p2StarServerMs} ms)` : "";
        await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), ...s }) : `session ${s.session} ${s.name}${timing}`]);
      };
      break;
    }
    case "tester-present":
      run = async (uds) => {
        await uds.testerPresent({ suppressPositive: o.suppress });
        await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), testerPresent: true }) : "tester present: ok"]);
      };
      break;
    case "reset": {
      if (args.length !== 1) throw new UsageError(`uds reset: give the reset type (${Object.entries(RESET_TYPES).map(([k, v]) => `${k} ${v}`).join(", ")})`);
      const type = hexNumber("reset type", 0x7f)(args[0]);
      run = async (uds) => {
        const r = await uds.ecuReset(type, { suppressPositive: o.suppress });
        await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), reset: type, ...r }) : `ECU reset: ${RESET_TYPES[type] ?? `type ${type}`}`]);
      };
      break;
    }
    case "raw": {
      if (args.length === 0) throw new UsageError("uds raw: give the request as hex, e.g. 22F190");
      const req = Uint8Array.from(Buffer.from(args.join("").replace(/[\s.:]/g, ""), "hex"));
      if (req.length === 0 || req.length * 2 !== args.join("").replace(/[\s.:]/g, "").length) throw new UsageError(`uds raw: '${args.join(" ")}' is not hex bytes`);
      run = async (uds) => {
        const r = await uds.request(req, { suppressPositive: o.suppress });
        const h = r ? Buffer.from(r).toString("hex").toUpperCase() : null;
        await out([o.json ? JSON.stringify({ ecu: ecuLabel(rxId), response: h }) : (h ?? "(positive response suppressed)")]);
      };
      break;
    }
    default:
      throw new UsageError(`uds: unknown action '${action}' (read-did, read-dtc, clear-dtc, session, tester-present, reset, raw)`);
  }
  const link = isGatewaySpec(o.interface) ? await openGatewayLink(o.interface, { txId, rxId, ext }) : await openIsoTpLink(o.interface, { txId, rxId, ext });
  const uds = new UdsClient(link, { p2Ms: o.p2, p2StarMs: o.p2Star });
  try {
    if (o.session !== undefined) await uds.diagnosticSessionControl(o.session);
    if (o.unlock !== undefined) {
      const mask = o.unlock;
      // The key as the seed XOR a 32-bit number, byte-aligned from the seed's end (what the simulated ECU expects).
      await uds.securityAccess(1, (seed) => seed.map((b, i) => b ^ ((mask >>> (8 * (seed.length - 1 - i))) & 0xff)));
    }
    await run(uds);
    if (uds.counters.responsePending) log.info(`uds: the ECU asked for more time ${uds.counters.responsePending} time(s) (responsePending)`);
  } finally {
    await link.close();
  }
}

// ---- simulated ECU ----

async function ecuCommand(o: { interface: string; config?: string; duration?: number }): Promise<void> {
  if (!o.interface) throw new UsageError("give the bus with -i, e.g. -i vcan0 or -i virtual:car");
  const configs = loadEcuConfig(o.config);
  const running = await startEcus(o.interface, configs);
  const { signal, dispose } = interruptSignal(o.duration);
  try {
    for (const c of configs) {
      log.info(`ecu ${c.name}: listening on ${o.interface}: requests 0x${ecuLabel(c.requestId)} and 0x${ecuLabel(c.functionalId)}, answers from 0x${ecuLabel(c.responseId)}`);
    }
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
  } finally {
    dispose();
    await running.close();
    for (const e of running.ecus) {
      const c = e.counters;
      log.info(`ecu ${e.config.name}: ${c.requests} requests: ${c.positive} positive, ${c.negative} negative, ${c.silent} unanswered, ${c.responsePending} responsePending, ${c.transportErrors} transport errors`);
    }
  }
}

export function registerDiag(program: Command): void {
  const diag = program
    .command("diag")
    .description("OBD-II and UDS diagnostics over ISO-TP: PIDs, VIN, DTCs, DIDs, sessions; and a simulated ECU")
    .option("-i, --interface <bus>", "the bus: can0, vcan0, virtual:name, or a gateway: mqtt://broker/device (its diag command)")
    .option("--ext", "29-bit IDs (ISO 15765-4: functional 18DB33F1, physical 18DA<ecu>F1, answers 18DAF1<ecu>)")
    .option("--tx <id>", "request ID (hex): UDS default 7E0; for obd, physical addressing to this ECU instead of functional 7DF", hexNumber("--tx", 0x1fffffff))
    .option("--rx <ids>", "answer IDs (hex, comma-separated): UDS default tx+8; obd default 7E8-7EF (--ext: 18DAF110-18DAF117)", (t: string) =>
      t.split(",").map(hexNumber("--rx", 0x1fffffff)),
    )
    .option("--timeout <ms>", "obd: how long to collect answers", positiveNumber("--timeout"), 500)
    .option("--expect <n>", "obd: stop once n ECUs answered (fast polling)", nonNegativeInteger("--expect"))
    .option("--p2 <ms>", "uds: wait for the first answer (P2)", positiveNumber("--p2"), 1000)
    .option("--p2-star <ms>", "wait after each responsePending (P2*)", positiveNumber("--p2-star"), 5000)
    .option("--json", "print one JSON document instead of text")
    .addHelpText(
      "after",
      `
Examples:
  vgw diag -i vcan0 obd pids                 supported PIDs of every ECU
  vgw diag -i vcan0 obd read 0C 0D 05        engine speed, vehicle speed, coolant temperature
  vgw diag -i vcan0 obd vin
  vgw diag -i vcan0 obd dtc --pending
  vgw diag -i vcan0 uds read-did F190 F18C
  vgw diag -i vcan0 uds --session 3 read-dtc 08
  vgw diag -i vcan0 --json uds session 3
  vgw diag -i vcan0 uds raw 1901FF            any request, the positive response in hex
  vgw diag -i mqtt://localhost/gw1 obd read 0C   through a gateway's diag command (its diagAllow must list 7DF/7E8)
  vgw diag ecu -i vcan0 --config ecu.yaml    a simulated ECU answering all of the above`,
    );
  const opts = (cmd: Command) => cmd.optsWithGlobals() as DiagOptions;
  diag
    .command("obd")
    .description("OBD-II (SAE J1979): pids | read PID... | vin | dtc [--pending|--permanent] | clear")
    .argument("<action>", "pids, read, vin, dtc or clear")
    .argument("[pids...]", "read: PIDs in hex (0C 0D) or by name")
    .option("--pending", "dtc: pending DTCs (service 07)")
    .option("--permanent", "dtc: permanent DTCs (service 0A)")
    .action(async (action: string, args: string[], _o, cmd: Command) => obdCommand(action, args, opts(cmd)));
  diag
    .command("uds")
    .description("UDS (ISO 14229): read-did DID... | read-dtc [MASK] | clear-dtc [GROUP] | session N | tester-present | reset TYPE | raw HEX")
    .argument("<action>", "read-did, read-dtc, clear-dtc, session, tester-present, reset or raw")
    .argument("[args...]", "DIDs (hex), a status mask (hex, default FF), a session or reset type, a raw request (hex)")
    .option("--session <n>", "open this diagnostic session first (3: extended)", hexNumber("--session", 0x7f))
    .option("--suppress", "session, tester-present, reset: suppress the positive response")
    .option("--unlock <xor>", "SecurityAccess level 1 first, the key being the seed XOR this hex number (the simulated ECU's algorithm)", hexNumber("--unlock", 0xffffffff))
    .action(async (action: string, args: string[], _o, cmd: Command) => udsCommand(action, args, opts(cmd)));
  diag
    .command("ecu")
    .description("a simulated ECU answering OBD-II and UDS on the bus until Ctrl-C")
    .option("--config <file>", "the ECU's state (YAML or JSON; docs/diagnostics.md); default: a built-in engine ECU")
    .option("--duration <s>", "stop after this many seconds", positiveNumber("--duration"))
    .action(async (_o, cmd: Command) => ecuCommand(cmd.optsWithGlobals() as { interface: string; config?: string; duration?: number }));
}
