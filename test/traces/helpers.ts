import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Trace fixtures live in the source tree (test/fixtures/traces); tests run from dist/test/traces. */
export const FIXTURES = path.resolve(__dirname, "../../../test/fixtures/traces");

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "vgw-trace-"));
}
