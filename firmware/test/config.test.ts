import { describe, expect, test } from "@devicescript/test"
import { checkConfig, DEFAULTS } from "../src/config"

describe("settings", () => {
    test("missing keys take their defaults", () => {
        const { config, errors } = checkConfig({})
        expect(errors.length).toBe(0)
        expect(config.mqttPort).toBe(DEFAULTS.mqttPort)
        expect(config.canMode).toBe("listen")
        expect(config.txAllow.length).toBe(0)
    })
    test("bad values are reported by key and replaced by defaults; bad broker settings are fatal; the password is never echoed", () => {
        const { config, errors, fatal } = checkConfig({
            mqttPort: 70000,
            canMode: "loud",
            canFilters: [[1]],
            deviceId: "a/b",
            mqttPass: 12345,
            batchBytes: 100,
        })
        expect(errors.length).toBe(4)
        expect(fatal.length).toBe(2)
        expect(fatal[0].indexOf("mqttPort") >= 0).toBe(true)
        for (const e of fatal) expect(e.indexOf("12345")).toBe(-1)
        expect(config.canMode).toBe("listen")
        expect(config.deviceId).toBe("gw1")
        expect(config.batchBytes).toBe(2560)
        for (const e of errors) expect(e.indexOf("12345")).toBe(-1)
        expect(errors[0].indexOf("deviceId") >= 0).toBe(true)
    })
    test("valid values are kept; mode numbers map to names; the outbox holds at least one batch", () => {
        const { config, errors } = checkConfig({
            mqttHost: "broker.local",
            canMode: 1,
            insecure: true,
            txAllow: [[0x123, 0x7ff]],
            rateRules: [[0x123, 100, 1]],
            batchBytes: 8192,
            outboxBytes: 4096,
        })
        expect(config.mqttHost).toBe("broker.local")
        expect(config.canMode).toBe("normal")
        expect(config.txAllow[0][0]).toBe(0x123)
        expect(errors.length).toBe(1)
        expect(config.outboxBytes).toBe(8192 + 64)
    })
})
