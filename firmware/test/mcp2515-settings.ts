/**
 * Board settings for the MCP2515 (docs/mcp2515.md): every bad value is refused with the setting's name, before any
 * pin is opened. Runs in the DeviceScript VM, whose settings store works in test mode (its GPIOs are not exposed,
 * so a complete, valid set ends at the first pin):
 *   devs run test/mcp2515-settings.ts --test --test-self-exit   (from firmware/)
 */
import { describe, test, expect } from "@devicescript/test"
import { deleteSetting, writeSetting } from "@devicescript/settings"
import { MCP2515_SETTINGS, readMcp2515Settings } from "../src/mcp2515/server"

async function failure(): Promise<string> {
    try {
        await readMcp2515Settings()
    } catch (e) {
        return (e as Error).message
    }
    return ""
}

describe("mcp2515 settings", () => {
    test("a missing pin setting is named", async () => {
        await deleteSetting(MCP2515_SETTINGS.sck)
        expect(await failure()).toBe("mcp2515: setting mcpSck must be a GPIO number (docs/mcp2515.md)")
    })
    test("a pin that is not a whole number is refused", async () => {
        await writeSetting(MCP2515_SETTINGS.sck, 18)
        await writeSetting(MCP2515_SETTINGS.mosi, "23")
        expect(await failure()).toBe("mcp2515: setting mcpMosi must be a GPIO number (docs/mcp2515.md)")
        await writeSetting(MCP2515_SETTINGS.mosi, 2.5)
        expect(await failure()).toBe("mcp2515: setting mcpMosi must be a GPIO number (docs/mcp2515.md)")
    })
    test("hardware filters the chip cannot hold are refused before any pin is opened", async () => {
        await writeSetting(MCP2515_SETTINGS.mosi, 23)
        await writeSetting(MCP2515_SETTINGS.miso, 19)
        await writeSetting(MCP2515_SETTINGS.cs, 5)
        await writeSetting(MCP2515_SETTINGS.filters, [
            [0x100, 0x800007ff],
            [0x200, 0x800007f0],
            [0x80000300, 0xffffff00],
        ])
        expect((await failure()).indexOf("3 distinct masks") >= 0).toBe(true)
    })
    test("a GPIO the board does not expose is named with its setting", async () => {
        await writeSetting(MCP2515_SETTINGS.filters, [[0x7e8, 0x800007f8]])
        expect(await failure()).toBe("mcp2515: setting mcpSck=18: this board does not expose that GPIO")
    })
})
