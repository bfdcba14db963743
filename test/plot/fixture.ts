/**
 * A small database and a generated trace for the plot suites: a square wave whose levels and edges are known, so a
 * test can say which pixels must be coloured.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { makeFrame, type Frame } from "../../frame/frame";
import { openTraceWriter } from "../../host/trace";

export const DBC = `VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 256 Square: 8 ECU
 SG_ Level : 0|16@1+ (0.1,0) [0|6553.5] "V" Vector__XXX
 SG_ State : 16|8@1+ (1,0) [0|3] "" Vector__XXX
 SG_ Mode : 24|4@1+ (2,0) [0|30] "" Vector__XXX

BO_ 512 Engine: 8 ECU
 SG_ Rpm : 0|16@1+ (0.25,0) [0|16383.75] "rpm" Vector__XXX
 SG_ CoolantTemp : 16|8@1+ (1,-40) [-40|215] "degC" Vector__XXX

BO_ 768 Doors: 1 ECU
 SG_ Open : 0|1@1+ (1,0) [0|1] "" Vector__XXX

VAL_ 256 State 0 "Off" 1 "On" 2 "Fault" ;
VAL_ 256 Mode 1 "Eco" 2 "Sport" ;
`;

/** Time of the first frame. */
export const T0 = 1_700_000_000;
/** Square wave: LOW for HALF seconds, then HIGH for HALF seconds, repeated; Square frames every STEP seconds. */
export const LOW = 10;
export const HIGH = 50;
export const HALF = 2;
export const STEP = 0.01;

/** Whether the square wave is high at `s` seconds after T0. */
export const isHigh = (s: number): boolean => Math.floor(s / HALF) % 2 === 1;

export function squareFrame(i: number, t: number): Frame {
  const high = isHigh(i * STEP);
  const data = Buffer.alloc(8);
  data.writeUInt16LE((high ? HIGH : LOW) * 10, 0);
  data[2] = high ? 1 : 0;
  data[3] = high ? 2 : 1;
  return makeFrame({ id: 0x100, data, t });
}

export function engineFrame(i: number, t: number): Frame {
  const data = Buffer.alloc(8);
  data.writeUInt16LE(Math.round((2000 + 1000 * Math.sin(i / 50)) * 4), 0);
  data[2] = 130;
  return makeFrame({ id: 0x200, data, t });
}

/** `seconds` of the square wave (and an Engine frame between two Square frames) from T0. */
export function squareFrames(seconds: number): Frame[] {
  const frames: Frame[] = [];
  for (let i = 0; i * STEP < seconds; i++) {
    frames.push(squareFrame(i, T0 + i * STEP));
    frames.push(engineFrame(i, T0 + i * STEP + STEP / 2));
  }
  return frames;
}

/** Writes the database and a trace of `seconds` into `dir`; returns their paths. */
export async function writeFixture(dir: string, seconds = 20, name = "square.log"): Promise<{ dbc: string; trace: string }> {
  const dbc = path.join(dir, "square.dbc");
  fs.writeFileSync(dbc, DBC);
  const trace = path.join(dir, name);
  const w = openTraceWriter(trace);
  await w.write(squareFrames(seconds).map((f) => ({ ...f, bus: "can0" })));
  await w.close();
  return { dbc, trace };
}
