/**
 * Writing data to stdout from a long-running command: waits until the pipe has taken each chunk (memory stays bounded
 * when the reader is slow) and turns EPIPE (`vgw dump ... | head`) into a quiet "stop", not a crash.
 */
let gone = false;
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") gone = true;
  else throw e;
});

/** Resolves false once stdout has been closed by the reader; the caller then stops producing. */
export function writeStdout(text: string | Uint8Array): Promise<boolean> {
  if (gone) return Promise.resolve(false);
  return new Promise((resolve) => process.stdout.write(text, (err) => resolve(!err && !gone)));
}
