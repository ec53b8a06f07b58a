import { describe, expect, test } from "bun:test"
import { Either, FastCheck } from "effect"
import { decodeNpy, encodeNpy, parseNpyHeader } from "../src/data/npy.ts"

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16))
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))

// Written by numpy 2.4: np.save(buf, np.array([1, 2, 0xFFFFFFFF], dtype='<u4'))
const NUMPY_U4 = hex(
  "934e554d5059010076007b276465736372273a20273c7534272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d" +
    "2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a" +
    "0100000002000000ffffffff",
)

const npyWithHeader = (dict: string, data = new Uint8Array(0)) => {
  const text = dict + "\n"
  const out = new Uint8Array(10 + text.length + data.length)
  out.set(ascii("\x93NUMPY\x01\x00"), 0)
  new DataView(out.buffer).setUint16(8, text.length, true)
  out.set(ascii(text), 10)
  out.set(data, 10 + text.length)
  return out
}

describe("npy", () => {
  test("writer output is byte-identical to numpy's for a u4 vector", () => {
    const encoded = Either.getOrThrow(encodeNpy(new Uint32Array([1, 2, 0xffffffff])))
    expect(encoded).toEqual(NUMPY_U4)
  })

  test("reads numpy's file back", () => {
    const arr = Either.getOrThrow(decodeNpy(NUMPY_U4))
    expect(arr.dtype).toBe("<u4")
    expect(arr.shape).toEqual([3])
    expect(Array.from(arr.data)).toEqual([1, 2, 0xffffffff])
  })

  test("reads and rewrites numpy's int32 2-D file", () => {
    // np.save(buf, np.array([[-1, 0, 7], [2**31 - 1, -2**31, 42]], dtype='<i4'))
    const numpyI4 = hex(
      "934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d" +
        "202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a" +
        "ffffffff0000000007000000ffffff7f000000802a000000",
    )
    const arr = Either.getOrThrow(decodeNpy(numpyI4))
    expect(arr.dtype).toBe("<i4")
    expect(arr.shape).toEqual([2, 3])
    expect(Array.from(arr.data)).toEqual([-1, 0, 7, 2 ** 31 - 1, -(2 ** 31), 42])
    expect(Either.getOrThrow(encodeNpy(arr.data, arr.shape))).toEqual(numpyI4)
  })

  test("round trips any u4/i4/f4 array of any 1-3 D shape (property)", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(FastCheck.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }),
        FastCheck.constantFrom("u4", "i4", "f4"),
        FastCheck.integer(),
        (shape, kind, salt) => {
          const n = shape.reduce((a, b) => a * b, 1)
          const data =
            kind === "u4" ? Uint32Array.from({ length: n }, (_, i) => (i * 2654435761 + salt) >>> 0)
            : kind === "i4" ? Int32Array.from({ length: n }, (_, i) => (i * 2654435761 + salt) | 0)
            : Float32Array.from({ length: n }, (_, i) => Math.fround((i - salt) / 7))
          const bytes = Either.getOrThrow(encodeNpy(data, shape))
          expect(bytes.length % 64).toBe(data.byteLength % 64)
          const back = Either.getOrThrow(decodeNpy(bytes))
          expect(back.shape).toEqual(shape)
          expect(back.data).toEqual(data)
        },
      ),
      { numRuns: 200 },
    )
  })

  test("rejects malformed files with NpyFormatError", () => {
    const cases: Array<[string, Uint8Array]> = [
      ["bad magic", ascii("\x93NUMPX\x01\x00\x10\x00")],
      ["too short", ascii("\x93NUM")],
      ["unsupported dtype", npyWithHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }")],
      ["big-endian", npyWithHeader("{'descr': '>u4', 'fortran_order': False, 'shape': (0,), }")],
      ["fortran order", npyWithHeader("{'descr': '<u4', 'fortran_order': True, 'shape': (2, 2), }", new Uint8Array(16))],
      ["missing key", npyWithHeader("{'descr': '<u4', 'shape': (0,), }")],
      ["extra key", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (0,), 'x': 1, }")],
      ["one-tuple without comma", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (1), }", new Uint8Array(4))],
      ["negative dim", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (-1,), }")],
      ["no newline", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (0,), } x")],
      ["truncated data", NUMPY_U4.subarray(0, NUMPY_U4.length - 1)],
      ["extra data", Uint8Array.from([...NUMPY_U4, 0])],
    ]
    for (const [name, bytes] of cases) {
      const result = decodeNpy(bytes, name)
      if (Either.isRight(result)) throw new Error(`${name}: accepted`)
      expect(result.left._tag).toBe("NpyFormatError")
      expect(result.left.source).toBe(name)
    }
  })

  test("header parse reports the data offset and size", () => {
    const h = Either.getOrThrow(parseNpyHeader(NUMPY_U4))
    expect(h.dataOffset).toBe(128)
    expect(h.size).toBe(3)
  })

  test("encode rejects a shape that does not match the data", () => {
    expect(Either.isLeft(encodeNpy(new Uint32Array(5), [2, 2]))).toBe(true)
  })
})
