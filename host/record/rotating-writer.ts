/**
 * A trace file that can rotate: frames go to `output` through host/trace's writer for its extension, or, with a size or
 * time limit, to numbered files (`drive-000.log`, `drive-001.log` ...), a new one started when the limit is reached.
 * Runs on the writer thread of pipeline.ts; callers must not overlap calls (each is awaited before the next).
 */
import { statSync } from "node:fs";
import type { Frame } from "../../frame/frame";
import { openTraceWriter, type TraceWriter } from "../trace";

export interface RotationOptions {
  /** Start a new file once the current one has this many bytes. */
  rotateSize?: number;
  /** Start a new file once the current one is this many seconds old. */
  rotateTime?: number;
}

/** What one finished file holds, for the summary. */
export interface FileSummary {
  path: string;
  frames: number;
  /** Frames the format could not represent. */
  dropped: number;
}

/** `drive.log.gz`, 3 -> `drive-003.log.gz`: the number goes before the format's extension so the registry still finds it. */
export function rotatedName(path: string, index: number): string {
  const m = /^(.*?)((?:\.[A-Za-z0-9]+)?(?:\.gz)?)$/i.exec(path) as RegExpExecArray;
  return `${m[1]}-${String(index).padStart(3, "0")}${m[2]}`;
}

export class RotatingTraceWriter {
  private readonly rotating: boolean;
  private fileIndex = 0;
  private writer: TraceWriter;
  private fileStarted = Date.now();
  readonly files: FileSummary[] = [];

  /** Opens the first file now, so a bad extension or an unwritable folder fails before anything is captured. */
  constructor(
    private readonly output: string,
    private readonly options: RotationOptions = {},
  ) {
    this.rotating = options.rotateSize !== undefined || options.rotateTime !== undefined;
    this.writer = this.openNext();
  }

  private openNext(): TraceWriter {
    return openTraceWriter(this.rotating ? rotatedName(this.output, this.fileIndex++) : this.output);
  }

  async write(frames: Frame[]): Promise<void> {
    if (frames.length > 0) await this.writer.write(frames);
    await this.rotateIfDue();
  }

  /** Starts the next file when the current one is big or old enough; also called by a timer, for a quiet bus. */
  async rotateIfDue(): Promise<void> {
    if (!this.rotating) return;
    const { rotateSize, rotateTime } = this.options;
    const tooBig = rotateSize !== undefined && this.writer.path !== "-" && fileSize(this.writer.path) >= rotateSize;
    const tooOld = rotateTime !== undefined && Date.now() - this.fileStarted >= rotateTime * 1000;
    if (!tooBig && !tooOld) return;
    await this.closeCurrent();
    this.writer = this.openNext();
    this.fileStarted = Date.now();
  }

  /** Closes the last file; `files` then lists every file written. */
  async close(): Promise<FileSummary[]> {
    await this.closeCurrent();
    return this.files;
  }

  private async closeCurrent(): Promise<void> {
    const w = this.writer;
    await w.close();
    this.files.push({ path: w.path, frames: w.framesWritten, dropped: w.framesDropped });
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
