/**
 * The numbering of CanBus `frames` reports (firmware/services/canbus.md, v1.2): every report starts with
 * `first_frame`, the running number of its first record since the controller was enabled. Jacdac does not
 * guarantee delivery and the VM drops reports silently (while the CanBus role is unbound, e.g. after the server's
 * device was not heard from for 2 s); the gap between the number a report should start at and the one it does is
 * the count of frames lost on the way, which the gateway reports as `drop.report`.
 */

/** Bytes of `first_frame` before the records. */
export const REPORT_HEADER = 4

export class ReportSequence {
    /** `first_frame` the next report should have; -1 while unknown (before the controller is enabled). */
    private next = -1

    /** This program (re)started the controller (`enabled` false -> true): its reports are numbered from 0. */
    restart() {
        this.next = 0
    }

    /**
     * A report that starts at `first` arrived: returns how many frames were reported before it and never arrived.
     * A number behind the expected one means the server restarted its numbering (a restarted server, not a loss).
     */
    arrived(first: number): number {
        if (this.next < 0) return 0
        const gap = (first - this.next) >>> 0
        return gap < 0x80000000 ? gap : 0
    }

    /**
     * After the report starting at `first` was handled: `frames` of its records were read; `whole` is false when a
     * record was invalid (the rest of that report is unread, so where the next one starts is unknown: resynchronise).
     */
    handled(first: number, frames: number, whole: boolean) {
        this.next = whole ? (first + frames) >>> 0 : -1
    }
}
