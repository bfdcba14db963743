/**
 * MCP2515 SPI instructions, register addresses and bit masks.
 *
 * Every value here comes from the Microchip MCP2515 data sheet, DS20001801J:
 * https://ww1.microchip.com/downloads/en/DeviceDoc/MCP2515-Stand-Alone-CAN-Controller-with-SPI-20001801J.pdf
 * Section numbers in the comments refer to that revision. The register-level test model
 * (firmware/test/mcp2515-model.ts) imports the same names, so driver and model cannot disagree on a number.
 */

// ---- SPI instruction set (section 12, table 12-1) ----
export const INSTR_RESET = 0xc0
export const INSTR_READ = 0x03
export const INSTR_WRITE = 0x02
export const INSTR_BIT_MODIFY = 0x05
export const INSTR_READ_STATUS = 0xa0
export const INSTR_RX_STATUS = 0xb0
/** READ RX BUFFER 1001 0nm0: n selects RXB1, m starts at D0 instead of SIDH (figure 12-3). */
export const INSTR_READ_RX_BUFFER = 0x90
/** LOAD TX BUFFER 0100 0abc: abc = 2 x buffer + (1 to start at D0) (figure 12-5). */
export const INSTR_LOAD_TX_BUFFER = 0x40
/** REQUEST TO SEND 1000 0nnn: bit n requests TXBn (figure 12-6). */
export const INSTR_RTS = 0x80

// ---- control and status (section 10, table 11-1 register map) ----
export const REG_BFPCTRL = 0x0c
export const REG_TXRTSCTRL = 0x0d
/** CANSTAT mirrors at every address xEh, CANCTRL at every xFh (section 10). */
export const REG_CANSTAT = 0x0e
export const REG_CANCTRL = 0x0f
export const REG_TEC = 0x1c
export const REG_REC = 0x1d
export const REG_CNF3 = 0x28
export const REG_CNF2 = 0x29
export const REG_CNF1 = 0x2a
export const REG_CANINTE = 0x2b
export const REG_CANINTF = 0x2c
export const REG_EFLG = 0x2d

// ---- acceptance filters and masks (section 4.5): four registers each, SIDH SIDL EID8 EID0 ----
/** RXF0..RXF5 start addresses. RXF0/RXF1 belong to RXB0 (mask RXM0), RXF2..RXF5 to RXB1 (mask RXM1). */
export const REG_RXF = [0x00, 0x04, 0x08, 0x10, 0x14, 0x18]
export const REG_RXM0 = 0x20
export const REG_RXM1 = 0x24

// ---- transmit buffers (section 3): TXBnCTRL, then SIDH SIDL EID8 EID0 DLC D0..D7 ----
export const REG_TXB_CTRL = [0x30, 0x40, 0x50]
export const TX_BUFFER_COUNT = 3
// ---- receive buffers (section 4): RXBnCTRL, then SIDH SIDL EID8 EID0 DLC D0..D7 ----
export const REG_RXB0CTRL = 0x60
export const REG_RXB1CTRL = 0x70

// CANCTRL (register 10-1): REQOP<2:0> in bits 7..5
export const CANCTRL_REQOP_MASK = 0xe0
export const CANCTRL_ABAT = 0x10
export const CANCTRL_OSM = 0x08
export const CANCTRL_CLKEN = 0x04
/** CANSTAT (register 10-2): OPMOD<2:0> in bits 7..5, ICOD<2:0> in bits 3..1. */
export const CANSTAT_OPMOD_MASK = 0xe0
export const CANSTAT_ICOD_MASK = 0x0e

/** Operation modes as REQOP/OPMOD values already shifted into bits 7..5 (section 10.0). */
export const OPMODE_NORMAL = 0x00
export const OPMODE_SLEEP = 0x20
export const OPMODE_LOOPBACK = 0x40
export const OPMODE_LISTEN_ONLY = 0x60
export const OPMODE_CONFIG = 0x80

/** Register values right after RESET (register 10-1, 10-2): configuration mode, CLKOUT enabled, /8. */
export const CANSTAT_AFTER_RESET = 0x80
export const CANCTRL_AFTER_RESET = 0x87

// CNF1/2/3 (registers 5-1..5-3)
export const CNF2_BTLMODE = 0x80
export const CNF2_SAM = 0x40

// CANINTE / CANINTF bits (registers 7-1, 7-2)
export const INT_RX0 = 0x01
export const INT_RX1 = 0x02
export const INT_TX0 = 0x04
export const INT_TX1 = 0x08
export const INT_TX2 = 0x10
export const INT_ERR = 0x20
export const INT_WAK = 0x40
export const INT_MERR = 0x80
/** TXnIF for buffer n is INT_TX0 << n. */
export const INT_TX_ALL = 0x1c

// EFLG bits (register 6-3)
export const EFLG_EWARN = 0x01
export const EFLG_RXWAR = 0x02
export const EFLG_TXWAR = 0x04
export const EFLG_RXEP = 0x08
export const EFLG_TXEP = 0x10
export const EFLG_TXBO = 0x20
export const EFLG_RX0OVR = 0x40
export const EFLG_RX1OVR = 0x80

// TXBnCTRL (register 3-1)
export const TXBCTRL_ABTF = 0x40
export const TXBCTRL_MLOA = 0x20
export const TXBCTRL_TXERR = 0x10
export const TXBCTRL_TXREQ = 0x08
export const TXBCTRL_TXP_MASK = 0x03

// RXB0CTRL / RXB1CTRL (registers 4-1, 4-2)
/** RXM<1:0> = 11: receive any message, filters off. 00: filters on (standard and extended). */
export const RXBCTRL_RXM_ANY = 0x60
export const RXBCTRL_RXM_FILTERED = 0x00
export const RXBCTRL_RXRTR = 0x08
/** RXB0CTRL only: rollover into RXB1 when RXB0 is full. */
export const RXB0CTRL_BUKT = 0x04
export const RXB0CTRL_BUKT1 = 0x02
export const RXB0CTRL_FILHIT0 = 0x01
export const RXB1CTRL_FILHIT_MASK = 0x07

// Identifier register fields shared by TX buffers, RX buffers, filters and masks (registers 3-3..3-6, 4-4..4-7)
/** SIDL bit 3: extended identifier (TXBnSIDL.EXIDE, RXBnSIDL.IDE, RXFnSIDL.EXIDE). */
export const SIDL_EXIDE = 0x08
/** RXBnSIDL bit 4: standard frame remote request (SRR). */
export const SIDL_SRR = 0x10
/** TXBnDLC / RXBnDLC bit 6: remote transmission request (for RX: extended frames only). */
export const DLC_RTR = 0x40
export const DLC_MASK = 0x0f

/** READ STATUS result bits (figure 12-8). */
export const STATUS_RX0IF = 0x01
export const STATUS_RX1IF = 0x02
export const STATUS_TX0REQ = 0x04
export const STATUS_TX0IF = 0x08
export const STATUS_TX1REQ = 0x10
export const STATUS_TX1IF = 0x20
export const STATUS_TX2REQ = 0x40
export const STATUS_TX2IF = 0x80

/** Registers that accept BIT MODIFY (table 11-1, shaded); on any other address the mask acts as 0xFF. */
export const BIT_MODIFY_REGISTERS = [
    REG_BFPCTRL,
    REG_TXRTSCTRL,
    REG_CANCTRL,
    REG_CNF3,
    REG_CNF2,
    REG_CNF1,
    REG_CANINTE,
    REG_CANINTF,
    REG_EFLG,
    0x30,
    0x40,
    0x50,
    REG_RXB0CTRL,
    REG_RXB1CTRL,
]

/** Identifier and data bytes of one TX/RX buffer after its CTRL register: SIDH SIDL EID8 EID0 DLC D0..D7. */
export const BUFFER_BODY_LENGTH = 13
