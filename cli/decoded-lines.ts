/**
 * The lines `vgw decode` prints for frames (jsonl and text), apart from the command so that its worker threads
 * (cli/commands/decode-worker.ts) load only this and the decoder.
 */
import { writeFrameText, type Frame } from "../frame/frame";
import { NEWLINE, SPACE, TextBuffer } from "../frame/text-buffer";
import type { Decoder, CompiledMessage, DecodedFrame, DecodeOptions } from "../can-db/decoder";
import { ChannelText } from "../host/trace/channel";
import type { SignalPrinter, DirectForms } from "../can-db/annotate";
import type { IsoTpLine } from "../host/diag/isotp-view";

/** `DecodedLines.decode`'s outcome bits: the frame's ID is unknown; it could not be (fully) decoded. */
export const UNKNOWN = 1;
export const UNDECODABLE = 2;

const T_KEY = Buffer.from(`"t":`);
const ID_KEY = Buffer.from(`"id":`);
const EXT_TRUE = Buffer.from(`,"ext":true,`);
const EXT_FALSE = Buffer.from(`,"ext":false,`);

/**
 * Prints decoded frames as `vgw decode` lines, into bytes (TextBuffer): the output, not the decoding, was what
 * limited the command, so names, keys and channels are encoded once and numbers written without strings where exact.
 */
export class DecodedLines {
  private readonly out = new TextBuffer();
  private readonly busJson = new ChannelText((bus) => `"bus":${JSON.stringify(bus)},`);
  private readonly busText = new ChannelText((bus) => `${bus} `);
  /** `decode`'s look-up by (ID, kind), for `directFor` with `directChoices`. */
  private readonly directs = new Map<number, { cm: CompiledMessage; forms: DirectForms; length: number } | null>();
  private directFor: Decoder | undefined;
  private directChoices = false;
  /** The decoder's output for frames printed straight from it (`decode`). */
  private raw = new Float64Array(64);
  private phys = new Float64Array(64);

  constructor(private readonly printer: SignalPrinter) {}

  get length(): number {
    return this.out.length;
  }

  /** Prints from now on into `buf` (TextBuffer.into): for a caller that recycles its output buffers. */
  printInto(buf: Buffer): void {
    this.out.into(buf);
  }

  /** The lines printed since the last take(). */
  take(): Buffer {
    return this.out.take();
  }

  /**
   * Decodes a frame and prints its line (`json` or `text` of `decoder.decode(f, options)`); returns UNKNOWN and/or
   * UNDECODABLE, or 0. A complete data frame of a known message is decoded into arrays and printed from them
   * (SignalPrinter.direct), with no signals object per frame; everything else (unknown IDs, short, error and remote
   * frames, value-table labels) goes through the object. Both give the same bytes.
   */
  decode(f: Frame, decoder: Decoder, options: DecodeOptions, jsonl: boolean): number {
    const choices = options.choices ?? false;
    if (decoder !== this.directFor || choices !== this.directChoices) {
      this.directs.clear();
      this.directFor = decoder;
      this.directChoices = choices;
    }
    // One look-up per frame: the message's decoder and printed forms by (ID, kind), null when the object path prints it.
    const key = f.id * 2 + (f.ext ? 1 : 0);
    let direct = this.directs.get(key);
    if (direct === undefined) {
      const cm = decoder.compiledFor(f.id, f.ext);
      const forms = cm && this.printer.direct(cm, choices);
      direct = cm && forms ? { cm, forms, length: cm.def.length } : null;
      // Bounded: a trace of random 29-bit IDs must not grow this without end.
      if (this.directs.size >= 65536) this.directs.clear();
      this.directs.set(key, direct);
    }
    if (direct !== null && !f.err && !f.rtr && f.data.length >= direct.length) {
      const n = direct.cm.signals.length;
      if (n > this.raw.length) {
        this.raw = new Float64Array(n);
        this.phys = new Float64Array(n);
      }
      direct.cm.decodeInto(f.data, this.raw, this.phys);
      if (jsonl) this.jsonDirect(f, direct.forms, this.raw, this.phys);
      else this.textDirect(f, direct.forms, this.raw, this.phys);
      return 0;
    }
    const d = decoder.decode(f, options);
    if (jsonl) this.json(f, d);
    else this.text(f, d);
    return (d.message === null ? UNKNOWN : 0) | (d.error !== undefined ? UNDECODABLE : 0);
  }

  /** One jsonl line (DESIGN.md contract): {"t":1.0,"bus":"can0","id":291,"ext":false,"message":"Name","signals":{"Sig":12.5}} */
  json(f: Frame, d: DecodedFrame): void {
    this.jsonStart(f);
    this.printer.json(this.out, d);
    this.out.byte(0x7d);
    this.out.byte(NEWLINE);
  }

  /** `json` for a complete frame of a message the printer prints straight from the decoder's arrays (SignalPrinter.direct). */
  private jsonDirect(f: Frame, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    this.jsonStart(f);
    this.printer.jsonDirect(this.out, p, raw, phys);
    this.out.byte(0x7d);
    this.out.byte(NEWLINE);
  }

  /** `{"t":...,"bus":...,"id":...,"ext":...,` */
  private jsonStart(f: Frame): void {
    const out = this.out;
    out.byte(0x7b);
    if (f.t !== undefined) {
      out.bytes(T_KEY);
      // JSON has no NaN or Infinity: those become strings.
      if (Number.isInteger(f.t)) out.integer(f.t);
      else if (!out.gridDecimal(f.t, 6)) out.text(Number.isFinite(f.t) ? String(f.t) : `"${f.t}"`);
      out.byte(0x2c);
    }
    if (f.bus !== undefined) out.bytes(this.busJson.get(f.bus));
    out.bytes(ID_KEY);
    out.integer(f.id);
    out.bytes(f.ext ? EXT_TRUE : EXT_FALSE);
  }

  /** One text line: the candump line, then `Message Sig=value unit ...` (dbc-annotate's one form). */
  text(f: Frame, d: DecodedFrame): void {
    this.textStart(f);
    if (d.message !== null || d.error) {
      this.out.byte(SPACE);
      this.out.byte(SPACE);
      this.printer.text(this.out, d);
    }
    this.out.byte(NEWLINE);
  }

  /** `text` for a complete frame of a message the printer prints straight from the decoder's arrays. */
  private textDirect(f: Frame, p: DirectForms, raw: Float64Array, phys: Float64Array): void {
    this.textStart(f);
    this.out.byte(SPACE);
    this.out.byte(SPACE);
    this.printer.textDirect(this.out, p, raw, phys);
    this.out.byte(NEWLINE);
  }

  /** The candump line: `(t) bus ID#DATA` */
  private textStart(f: Frame): void {
    const out = this.out;
    if (f.t !== undefined) {
      out.byte(0x28);
      out.fixed6(f.t, 0);
      out.byte(0x29);
      out.byte(SPACE);
    }
    if (f.bus !== undefined) out.bytes(this.busText.get(f.bus));
    writeFrameText(out, f);
  }

  /** A line of a view (J1939: reassembled message, transport fault, DM1; ISO-TP: message or failure) as text or JSON. */
  viewLine(l: IsoTpLine, json: boolean): void {
    if (json) this.viewJson(l);
    else this.viewText(l);
  }

  /** The same time/bus prefix as frames, then the line's text. */
  private viewText(l: IsoTpLine): void {
    const out = this.out;
    if (l.t !== undefined) {
      out.byte(0x28);
      out.fixed6(l.t, 0);
      out.text(") ");
    }
    if (l.bus !== undefined) out.bytes(this.busText.get(l.bus));
    out.text(l.text);
    out.byte(NEWLINE);
  }

  /** A view's line as JSON: "t" and "bus" first, as frames have them. */
  private viewJson(l: IsoTpLine): void {
    const o: Record<string, unknown> = {};
    if (l.t !== undefined) o.t = l.t;
    if (l.bus !== undefined) o.bus = l.bus;
    this.out.text(JSON.stringify(Object.assign(o, l.json)));
    this.out.byte(NEWLINE);
  }
}

