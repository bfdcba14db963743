/**
 * vgw gateway firmware: CAN (through the CanBus service) to MQTT, and MQTT commands back to CAN.
 *
 * Flow: settings -> CanBus client (bound to the simulator's server or the on-board MCP2515 server) -> on bind:
 * mode, bitrate, enabled -> every `frames` report: its numbering checked (frames lost on the way counted in
 * `drop.report`), its records through Gateway.ingest (filters, downsampling, batching) ->
 * publishLoop sends closed batches from the outbox; the MQTT session reconnects by itself; statusLoop publishes the
 * retained status. See docs/firmware.md.
 */
import * as ds from "@devicescript/core"
import { makeBootId } from "./bootid"
import { loadConfig } from "./config"
import { loadDiagConfig } from "./diag"
import { FRAMES_REPORT, Gateway, MAX_PACKET, RX_BYTES, RX_CAP } from "./gateway"
import { startMcp2515CanBusFromSettings } from "./mcp2515/server"
import { MqttSession } from "./mqtt/session"
import { REPORT_HEADER, ReportSequence } from "./reports"

/**
 * Hands every `frames` report to the gateway synchronously, from inside the role's packet handler. The role passes
 * reports to `this._report.emit(pkt)` (core/src/jacdac.ts); the emitter that `report()` would install starts a fiber
 * per packet and keeps only the latest value while its handler is pending (core/src/events.ts), which is both the
 * most expensive step of the frame path and a way to lose packets in a burst. This object takes its place.
 */
function routeFrameReports(can: ds.CanBus, gw: Gateway, numbering: ReportSequence) {
    ;(can as any)._report = {
        emit: (pkt: ds.Packet) => {
            if (pkt.serviceCommand !== FRAMES_REPORT) return
            const c = gw.counters
            const p = pkt.payload
            if (p.length < REPORT_HEADER) {
                c.malformed++
                return
            }
            const first = p.getAt(0, "u32")
            c.dropReport += numbering.arrived(first)
            const rx = c.rx
            const malformed = c.malformed
            gw.ingest(p, ds.millis(), REPORT_HEADER)
            numbering.handled(first, c.rx - rx, c.malformed === malformed)
        },
    }
}

async function main() {
    const { config, errors, fatal, sigError } = await loadConfig()
    for (const e of errors) console.warn(e)
    for (const e of fatal) console.error(e)
    let can: ds.CanBus
    if (config.canServer === "mcp2515") {
        // the board's controller: the MCP2515 CanBus server over SPI, pins from the mcp* settings (docs/mcp2515.md)
        try {
            can = new ds.CanBus(await startMcp2515CanBusFromSettings(config.canBitrate))
        } catch (e) {
            // no controller: the gateway still runs (MQTT, status "unbound") so the fault is visible remotely
            console.error("mcp2515: " + (e as Error).message)
            can = new ds.CanBus()
        }
    } else can = new ds.CanBus()
    const diag = await loadDiagConfig()
    for (const e of diag.errors) console.warn(e)
    const gw = new Gateway(config, can, makeBootId(), diag.config)
    if (sigError) gw.signals.refuse(sigError)
    else await gw.loadSignals()

    const numbering = new ReportSequence()
    routeFrameReports(can, gw, numbering)
    let started = false
    can.binding().subscribe(async (bound: boolean) => {
        gw.bound = bound
        if (!bound) return
        if (!started) {
            // First bind of this boot: restart the controller, so its reports are numbered from 0 and reports lost
            // before the first one that arrives are counted too (a server may still be enabled from a previous run
            // of the program). A later bind (the server's device was lost and found again) keeps the numbering:
            // the reports lost meanwhile show as a gap.
            started = true
            await can.enabled.write(false)
            numbering.restart()
        }
        // listen-only unless configured otherwise; enabled last: it is the handshake the server waits for
        await can.mode.write(config.canMode === "normal" ? ds.CanBusMode.Normal : ds.CanBusMode.ListenOnly)
        await can.bitrate.write(config.canBitrate)
        // FD frames are refused unless the controller says it sends them (the MCP2515 would drop them silently)
        gw.fdCapable = !!(await can.fdSupported.read())
        await can.enabled.write(true)
    })

    const session = new MqttSession(
        {
            host: config.mqttHost,
            port: config.mqttPort,
            tls: config.mqttTls,
            clientId: "vgw-" + config.deviceId,
            keepAlive: config.keepAlive,
            username: config.mqttUser,
            password: config.mqttPass,
            willTopic: gw.statusTopic(),
            willPayload: gw.willPayload(),
            willQos: 1,
            willRetain: true,
            cleanSession: true,
            rxBytes: RX_BYTES,
            maxPacket: MAX_PACKET,
            rxCap: RX_CAP,
            v5: config.mqttV5,
        },
        {
            connected: async () => await gw.onConnected(),
            puback: (pid: number) => gw.onPuback(pid),
            message: async (topic: string, payload: Buffer, length: number, retain: boolean) =>
                await gw.onMessage(topic, payload, length, retain),
            subscribed: (granted: boolean) => gw.onSubscribed(granted),
            refused: (pid: number) => gw.onRefused(pid),
        }
    )
    gw.session = session
    const tls = config.mqttTls ? " tls" : ""
    const where = config.topicPrefix + "/" + config.deviceId
    console.log(`vgw ${where}: broker ${config.mqttHost}:${config.mqttPort}${tls}, CAN ${config.canMode} ${config.canBitrate}`)
    // three fibers: the session (connect/read/keep-alive), the publisher, the status; no session at all when a
    // broker setting is invalid (fail closed: never plain TCP or no password by default)
    if (fatal.length) console.error("mqtt: not connecting: invalid broker settings (see above)")
    else setTimeout(async () => await session.run(), 0)
    setTimeout(async () => await gw.publishLoop(), 0)
    setTimeout(async () => await gw.statusLoop(), 0)
    setTimeout(async () => await gw.diag.pollLoop(), 0)
}

main.start()
