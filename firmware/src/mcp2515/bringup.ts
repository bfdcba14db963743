/**
 * Bring-up program for a board with an MCP2515: reads the pin settings (docs/mcp2515.md), runs `checkMcp2515`
 * in loopback mode (nothing reaches the bus) and prints one line per step.
 *
 *   cd firmware && npx devs devtools src/mcp2515/bringup.ts --serial     (board already running DeviceScript)
 */
import { checkMcp2515 } from "./check"
import { readMcp2515Settings } from "./server"

async function bringUp() {
    let result
    try {
        result = await checkMcp2515(await readMcp2515Settings())
    } catch (e) {
        console.log(`FAIL settings: ${(e as Error).message}`)
        return
    }
    for (const line of result.steps) console.log(line)
    console.log(result.ok ? "MCP2515 check passed" : "MCP2515 check FAILED")
}

await bringUp()
