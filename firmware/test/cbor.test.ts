import { describe, expect, test } from "@devicescript/test"
import { CborWriter, decodeCbor, MAX_ITEMS } from "../src/cbor"

function enc(f: (w: CborWriter) => void): string {
    const w = new CborWriter(Buffer.alloc(64))
    f(w)
    expect(w.overflow).toBe(false)
    return w.result().toString("hex")
}

function throwsCbor(hexText: string): string {
    try {
        decodeCbor(Buffer.from(hexText, "hex"))
    } catch (e) {
        return (e as Error).name
    }
    return "no error"
}

describe("cbor writer", () => {
    test("integers take their shortest form", () => {
        expect(enc(w => w.int(0))).toBe("00")
        expect(enc(w => w.int(23))).toBe("17")
        expect(enc(w => w.int(24))).toBe("1818")
        expect(enc(w => w.int(255))).toBe("18ff")
        expect(enc(w => w.int(256))).toBe("190100")
        expect(enc(w => w.int(65535))).toBe("19ffff")
        expect(enc(w => w.int(65536))).toBe("1a00010000")
        expect(enc(w => w.int(0xffffffff))).toBe("1affffffff")
        expect(enc(w => w.int(-1))).toBe("20")
        expect(enc(w => w.int(-500))).toBe("3901f3")
    })
    test("text, bytes, map, array, simple values", () => {
        expect(enc(w => w.text("op"))).toBe("626f70")
        expect(enc(w => w.bytes(Buffer.from("0102", "hex"), 0, 2))).toBe("420102")
        expect(enc(w => { w.map(1); w.text("a"); w.array(2); w.bool(true); w.nil() })).toBe("a1616182f5f6")
        expect(enc(w => w.bool(false))).toBe("f4")
    })
    test("overflow is flagged, not thrown", () => {
        const w = new CborWriter(Buffer.alloc(3))
        w.text("hello")
        expect(w.overflow).toBe(true)
        const w2 = new CborWriter(Buffer.alloc(8))
        w2.int(1.5)
        expect(w2.overflow).toBe(true)
    })
})

describe("cbor reader", () => {
    test("reads what cbor-x writes (long map heads, tag 64, floats)", () => {
        // cbor-x: {op:"tx",f:new Uint8Array([1,2])}
        const v = decodeCbor(Buffer.from("b90002626f706274786166d840420102", "hex"))
        expect(v.op).toBe("tx")
        expect(v.f.toString("hex")).toBe("0102")
        // {a:1.5, b:1e10} as float64
        const f = decodeCbor(Buffer.from("a26161fb3ff80000000000006162fb4202a05f20000000", "hex"))
        expect(f.a).toBe(1.5)
        expect(f.b).toBe(10000000000)
        expect(decodeCbor(Buffer.from("f93e00", "hex"))).toBe(1.5)
        expect(decodeCbor(Buffer.from("fa3fc00000", "hex"))).toBe(1.5)
        expect(decodeCbor(Buffer.from("3901f3", "hex"))).toBe(-500)
        expect(decodeCbor(Buffer.from("1b0000000100000000", "hex"))).toBe(4294967296)
    })
    test("rejects what the protocol excludes", () => {
        expect(throwsCbor("")).toBe("CborError")
        expect(throwsCbor("a1")).toBe("CborError") // truncated map
        expect(throwsCbor("0001")).toBe("CborError") // trailing byte
        expect(throwsCbor("5f4101ff")).toBe("CborError") // indefinite bytes
        expect(throwsCbor("a10102")).toBe("CborError") // non-text key
        expect(throwsCbor("a2616101616102")).toBe("CborError") // duplicate key
        expect(throwsCbor("c11a00000000")).toBe("CborError") // tag 1
        expect(throwsCbor("d84001")).toBe("CborError") // tag 64 on a uint
        expect(throwsCbor("8181818181818100")).toBe("CborError") // too deep
        expect(throwsCbor("9bffffffffffffffff")).toBe("CborError") // huge count
        expect(throwsCbor("f7")).toBe("CborError") // undefined
        expect(throwsCbor("1c")).toBe("CborError") // reserved ai
    })
    test("bounds the items one payload decodes to (MAX_ITEMS)", () => {
        // an array of n zeros is n + 1 items
        const arr = (n: number) => {
            const b = Buffer.alloc(3 + n)
            b[0] = 0x99
            b[1] = n >> 8
            b[2] = n & 0xff
            return b
        }
        expect(decodeCbor(arr(MAX_ITEMS - 1)).length).toBe(MAX_ITEMS - 1)
        let msg = ""
        try {
            decodeCbor(arr(MAX_ITEMS))
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg).toBe(`more than ${MAX_ITEMS} items at byte ${MAX_ITEMS + 2}`)
        // floats share one scratch buffer: consecutive values stay distinct
        const two = decodeCbor(Buffer.from("82fa3fc00000fb4002000000000000", "hex"))
        expect(two[0]).toBe(1.5)
        expect(two[1]).toBe(2.25)
    })
})
