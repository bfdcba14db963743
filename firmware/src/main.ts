/**
 * vgw gateway firmware: CAN (through the CanBus service) to MQTT, and MQTT commands back to CAN.
 *
 * Flow: settings -> CanBus client (bound to the simulator's server or the on-board MCP2515 server) -> on bind:
 * mode, bitrate, enabled -> every `frames` report goes through Gateway.ingest (filters, downsampling, batching) ->
 * publishLoop sends closed batches from the outbox; the MQTT session reconnects by itself; statusLoop publishes the
 * retained status. See docs/firmware.md.
 */
import * as ds from "@devicescript/core"
import { makeBootId } from "./bootid"
import { loadConfig } from "./config"
import { FRAMES_REPORT, Gateway, RX_BYTES } from "./gateway"
import { MqttSession } from "./mqtt/session"

async function main() {
    const { config, errors } = await loadConfig()
    for (const e of errors) console.warn(e)
    if (config.canServer === "mcp2515") {
        // The MCP2515 server is started by the board configuration (firmware/src/mcp2515/); until it is bound the
        // status says "unbound", exactly as with a missing simulator.
        console.warn("canServer mcp2515: waiting for the on-board CanBus server")
    }
    const can = new ds.CanBus()
    const gw = new Gateway(config, can, await makeBootId())

    can.report().subscribe((pkt: ds.Packet) => {
        if (pkt.serviceCommand === FRAMES_REPORT) gw.ingest(pkt.payload, ds.millis())
    })
    can.binding().subscribe(async (bound: boolean) => {
        gw.bound = bound
        if (!bound) return
        // listen-only unless configured otherwise; enabled last: it is the handshake the server waits for
        await can.mode.write(config.canMode === "normal" ? ds.CanBusMode.Normal : ds.CanBusMode.ListenOnly)
        await can.bitrate.write(config.canBitrate)
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
        },
        {
            connected: async () => await gw.onConnected(),
            puback: (pid: number) => gw.onPuback(pid),
            message: async (topic: string, payload: Buffer, length: number) => await gw.onMessage(topic, payload, length),
        }
    )
    gw.session = session
    const tls = config.mqttTls ? " tls" : ""
    const where = config.topicPrefix + "/" + config.deviceId
    console.log(`vgw ${where}: broker ${config.mqttHost}:${config.mqttPort}${tls}, CAN ${config.canMode} ${config.canBitrate}`)
    // three fibers: the session (connect/read/keep-alive), the publisher, the status
    setTimeout(async () => await session.run(), 0)
    setTimeout(async () => await gw.publishLoop(), 0)
    setTimeout(async () => await gw.statusLoop(), 0)
}

main.start()
