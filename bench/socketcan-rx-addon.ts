/**
 * The ceiling of any Node program that receives through the `socketcan` addon (node-can, which vgw's SocketCAN bus used
 * before its own raw socket, host/bus/native): the addon alone, kernel timestamps on, with a listener that only counts.
 * Run by bench/socketcan-rx-vm.sh beside candump and `vgw record` when TOOLS includes `addon`.
 *   node dist/bench/socketcan-rx-addon.js IFACE N     stops after N frames or on SIGINT
 * Prints `listening` when open, then `addon: <frames> frames, first <t> last <t>` (kernel timestamps, seconds).
 */
interface Message {
  ts_sec?: number;
  ts_usec?: number;
}
interface Channel {
  addListener(event: "onMessage", cb: (m: Message) => void): void;
  start(): void;
  stop(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the addon's typings reference a module that does not resolve
const addon = require("socketcan") as { createRawChannelWithOptions(name: string, o: object): Channel };

const [iface, countText] = process.argv.slice(2);
const limit = Number(countText);
const channel = addon.createRawChannelWithOptions(iface, { timestamps: true, non_block_send: true });
let frames = 0;
let first = 0;
let last = 0;
const stop = () => {
  channel.stop();
  process.stderr.write(`addon: ${frames} frames, first ${first.toFixed(6)} last ${last.toFixed(6)}\n`);
  process.exit(0);
};
channel.addListener("onMessage", (m) => {
  last = (m.ts_sec ?? 0) + (m.ts_usec ?? 0) / 1e6;
  if (frames++ === 0) first = last;
  if (frames >= limit) stop();
});
channel.start();
process.on("SIGINT", stop);
process.stderr.write("listening\n");
