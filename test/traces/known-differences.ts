/**
 * Every place where vgw's trace readers/writers and the references (python-can 4.1 from Debian, can-utils 2020.11)
 * are allowed to disagree, with the reason. The differential tests consult only this list, and fail when a listed
 * difference no longer happens, so the list cannot go stale. docs/reference-differences.md explains each.
 */
import type { Field, Comparable, PyMsg } from "./reference";

/** Systematic mappings between python-can's representation and ours (not bugs, but different models). */
export const RULES = {
  /**
   * python-can numbers ASC and BLF channels from 0 (file channel N is python-can channel N-1); vgw keeps the file's
   * number as bus "N". For candump it keeps the interface name; TRC 4.1 keeps the file's bus number.
   */
  channel(format: string, c: PyMsg["channel"]): string {
    if (c === null || c === undefined) return "";
    if ((format === "asc" || format === "blf") && typeof c === "number") return String(c + 1);
    return String(c);
  },
  /**
   * An error frame in ASC/BLF/TRC has no CAN error class; python-can reports it with ID 0 and no data, vgw as
   * CAN_ERR_BUSERROR with 8 zero bytes (what can-utils asc2log writes). For error frames only err, time and channel
   * are compared.
   */
  errorFrameFields: ["err", "t", "channel"] as Field[],
  /** python-can 4.1's TRC reader ignores $STARTTIME (times from 0); vgw's times are absolute: compare from the first frame. */
  relativeTime(format: string): boolean {
    return format === "trc";
  },
};

export interface KnownDifference {
  /** Fixture file name, or `written.<ext>` for the files our writers produce, or `pywritten.<ext>` for python-can's. */
  file: string;
  kind: "field" | "python-can fails" | "we reject" | "python-can skips";
  /** For "field": which field differs, at which frame indexes (all frames that differ, when absent). */
  field?: Field;
  frames?: number[];
  /** For "python-can fails": its error message. */
  error?: RegExp;
  /** For "we reject": how many records we report as bad instead of reading. For "python-can skips": a predicate. */
  count?: number;
  skips?: (f: Comparable) => boolean;
  reason: string;
}

export const KNOWN: KnownDifference[] = [
  {
    file: "test_CanMessage_V1_0_BUS1.trc",
    kind: "python-can fails",
    error: /invalid literal for int\(\) with base 16: 'RTR'/,
    reason: "python-can 4.1 cannot read TRC 1.0 remote frames (`RTR` in the data column); it stops there",
  },
  {
    file: "test_CanMessage_V1_1.trc",
    kind: "python-can fails",
    error: /invalid literal for int\(\) with base 16: 'RTR'/,
    reason: "python-can 4.1 cannot read TRC 1.1 remote frames; it stops there",
  },
  {
    file: "test_CanMessage_V1_3.trc",
    kind: "python-can fails",
    error: /invalid literal for int\(\) with base 10: 'Tx'/,
    reason: "python-can 4.1 has no TRC 1.3 reader (it parses the bus column as the time)",
  },
  {
    file: "test_CanMessage_V2_0_BUS1.trc",
    kind: "python-can fails",
    error: /invalid literal for int\(\) with base 16: 'DT'/,
    reason: "python-can 4.1 has no TRC 2.0 reader",
  },
  {
    file: "logfile.asc",
    kind: "field",
    field: "fd",
    frames: [17],
    reason:
      "CANFD line `50005x ... 0 0 5 0 ... 200050`: Flags 0x200050 has the remote bit (0x10) and not EDL (0x1000), so it is a " +
      "classic remote frame with DLC 5 logged through the FD controller; python-can 4.1 calls every CANFD line FD, " +
      "and an FD frame cannot be remote",
  },
  {
    file: "issue_1905.blf",
    kind: "field",
    field: "data",
    reason:
      "CAN_FD_MESSAGE_64 whose valid-bytes (64) exceed the object: python-can 4.1 reads past the object into the next " +
      "one ('LOBJ...' in the data); vgw stops at the object end and pads with zeros, as CANoe does and later python-can does (its issue 1905)",
  },
  {
    file: "issue_1905.blf",
    kind: "field",
    field: "dlc",
    frames: [21],
    reason: "same object layout: the last frame has 48 readable bytes of 64; python-can 4.1 returns 48, vgw 64 (zero-padded)",
  },
  {
    file: "test_CanMessage.blf",
    kind: "we reject",
    count: 2,
    reason: "synthetic objects with ID 0x44444444 and no extended flag: not a CAN ID; python-can returns them as 11-bit frames",
  },
  {
    file: "test_CanFdMessage64.blf",
    kind: "we reject",
    count: 2,
    reason: "synthetic objects with ID 0x55555555 (not a CAN ID) flagged both remote and FD; python-can returns them",
  },
  {
    file: "written.trc",
    kind: "python-can skips",
    skips: (f) => f.fd || f.rtr,
    reason: "python-can 4.1's TRC 2.1 reader reads only DT lines; FD (FD/FB/FE/BI) and remote (RR) lines are skipped",
  },
  {
    file: "test_CanMessage_V2_1.trc",
    kind: "python-can skips",
    skips: (f) => f.rtr,
    reason: "python-can 4.1's TRC 2.1 reader reads only DT lines: the remote request (RR) line is skipped",
  },
  ...["written.asc", "pywritten.asc"].map(
    (file): KnownDifference => ({
      file,
      kind: "field",
      field: "rtr",
      reason:
        "a CAN FD frame with no data bytes: python-can 4.1 reads every CANFD line with data length 0 as a remote frame, " +
        "ignoring the Flags column (EDL set, remote bit clear); CAN FD has no remote frames",
    }),
  ),
  {
    file: "written.log",
    kind: "field",
    field: "channel",
    reason: "python-can's candump reader drops the interface of an error frame (channel None)",
  },
  {
    file: "pywritten.log",
    kind: "field",
    field: "channel",
    reason: "python-can's candump reader drops the interface of an error frame (channel None)",
  },
  {
    file: "written.log",
    kind: "field",
    field: "err",
    reason:
      "python-can reads a candump error frame only when CAN_ERR_BUSERROR (0x80) is set; other error classes " +
      "(here CAN_ERR_CRTL 0x04) come back as a 29-bit data frame",
  },
  {
    file: "written.log",
    kind: "field",
    field: "ext",
    reason: "the same error frames (CAN_ERR_CRTL): python-can calls them 29-bit data frames",
  },
];
