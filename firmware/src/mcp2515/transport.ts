/**
 * The MCP2515 on real pins: SPI through `@devicescript/spi` with a GPIO chip select, and the INT pin.
 * Only this file touches hardware; SPI and GPIO throw in the simulator, so the VM tests use the model instead.
 *
 * The MCP2515 speaks SPI modes 0,0 and 1,1 up to 10 MHz (data sheet DS20001801J, section 12 and table 13-6).
 * `@devicescript/spi` does not drive a chip select, so the transport holds CS low for exactly one transfer:
 * the chip acts on the rising edge (READ RX BUFFER clears RXnIF then, section 12.4).
 */
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { spi } from "@devicescript/spi"
import { InterruptLine, SpiTransport } from "./driver"

export interface Mcp2515Pins {
    sck: ds.OutputPin
    mosi: ds.OutputPin
    miso: ds.InputPin
    /** chip select, active low */
    cs: ds.OutputPin
    /** INT, active low; optional (the driver polls over SPI without it) */
    int?: ds.InputPin
}

/** Default SPI clock: 8 MHz, below the chip's 10 MHz limit with margin for flying leads. */
export const DEFAULT_SPI_HZ = 8000000

/** Configure the SPI bus for the MCP2515 and return a transport that frames each transfer with CS. */
export function mcp2515Spi(pins: Mcp2515Pins, hz?: number): SpiTransport {
    const speed = hz || DEFAULT_SPI_HZ
    if (speed > 10000000) throw new RangeError("mcp2515: SPI clock above 10 MHz is out of specification")
    spi.configure({ sck: pins.sck, mosi: pins.mosi, miso: pins.miso, mode: 0, hz: speed })
    const cs = pins.cs
    cs.setMode(ds.GPIOMode.OutputHigh)
    return {
        transfer: async (tx: Buffer) => {
            cs.write(0)
            try {
                return await spi.transfer(tx)
            } finally {
                cs.write(1)
            }
        },
    }
}

/** The INT pin as an input with pull-up (the line idles high; a pull-up keeps a missing wire from reading as an interrupt). */
export function mcp2515Interrupt(pin: ds.InputPin): InterruptLine {
    pin.setMode(ds.GPIOMode.InputPullUp)
    return pin as any as InterruptLine
}
