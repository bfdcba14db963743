/**
 * Preloaded (`node --require dist/test/socketcan/without-native.js`) by the SocketCAN suite (in-vm.sh) to run vgw as on
 * a machine where its SocketCAN module did not build: loading vgw_can_raw.node fails as a missing file does, and
 * nothing else changes. The built module stays where it is for every other run.
 */
import Module from "node:module";

type NodeLoader = (module: unknown, filename: string) => unknown;
const extensions = (Module as unknown as { _extensions: Record<string, NodeLoader> })._extensions;
const loadNative = extensions[".node"];
extensions[".node"] = (module, filename) => {
  if (filename.endsWith("vgw_can_raw.node")) {
    throw Object.assign(new Error(`Cannot find module '${filename}' (hidden by without-native.js)`), { code: "MODULE_NOT_FOUND" });
  }
  return loadNative(module, filename);
};
