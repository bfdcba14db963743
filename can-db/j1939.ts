/**
 * SAE J1939 identifier helpers. A 29-bit J1939 ID is priority (3 bits), extended data page, data page, PDU format (PF),
 * PDU specific (PS) and source address (SA). When PF < 240 (PDU1) PS is a destination address and not part of the
 * parameter group number (PGN); when PF >= 240 (PDU2) PS is the group extension and belongs to the PGN.
 */

export interface J1939Id {
  priority: number;
  pgn: number;
  source: number;
  /** Destination address for PDU1 messages; undefined for PDU2 (broadcast). */
  destination?: number;
}

/** The PGN of a 29-bit identifier (EDP, DP, PF, and PS only for PDU2). */
export function j1939Pgn(id: number): number {
  const pf = (id >>> 16) & 0xff;
  const dpPf = (id >>> 16) & 0x3ff; // EDP, DP and PF
  return pf < 240 ? dpPf << 8 : (dpPf << 8) | ((id >>> 8) & 0xff);
}

export function j1939Source(id: number): number {
  return id & 0xff;
}

export function j1939Priority(id: number): number {
  return (id >>> 26) & 7;
}

export function parseJ1939Id(id: number): J1939Id {
  const pf = (id >>> 16) & 0xff;
  const out: J1939Id = { priority: j1939Priority(id), pgn: j1939Pgn(id), source: j1939Source(id) };
  if (pf < 240) out.destination = (id >>> 8) & 0xff;
  return out;
}

/** Builds a 29-bit identifier; `destination` is only used for PDU1 PGNs (PF < 240). */
export function makeJ1939Id(priority: number, pgn: number, source: number, destination = 0xff): number {
  const pf = (pgn >>> 8) & 0xff;
  const ps = pf < 240 ? destination & 0xff : pgn & 0xff;
  return (((priority & 7) << 26) | ((pgn & 0x3ff00) << 8) | (ps << 8) | (source & 0xff)) >>> 0;
}
