import { describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Either, FastCheck as fc } from "effect"
import { NPY_PREFIX_BYTES, decodeNpy, encodeNpy, npyHeaderLength, parseNpyHeader, tokenBatchFromNpy } from "../src/io/index.ts"
import type { NpyData } from "../src/io/index.ts"
import { vectorDir } from "./model-engines.ts"
import { NUMPY_TEST_TIMEOUT_MS, runNumpyScript, skipNumpy } from "./numpy.ts"


const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16))
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))

// Written by numpy 2.4: np.save(buf, np.array([1, 2, 0xFFFFFFFF], dtype='<u4'))
const NUMPY_U4 = hex(
  "934e554d5059010076007b276465736372273a20273c7534272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d" +
    "2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a" +
    "0100000002000000ffffffff",
)

/** A file with header text `dict` + newline (unpadded: the reader must not rely on alignment), then `data`. */
const npyWithHeader = (dict: string, data: Uint8Array = new Uint8Array(0), version = 1): Uint8Array => {
  const text = dict + "\n"
  const prefix = version === 1 ? 10 : 12
  const out = new Uint8Array(prefix + text.length + data.length)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0])
  if (version === 1) new DataView(out.buffer).setUint16(8, text.length, true)
  else new DataView(out.buffer).setUint32(8, text.length, true)
  out.set(ascii(text), prefix)
  out.set(data, prefix + text.length)
  return out
}

const bytesOf = (a: NpyData) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

interface NpyCase { readonly shape: number[]; readonly data: NpyData }
const npyArb: fc.Arbitrary<NpyCase> = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 3 }).chain((shape) => {
  const n = shape.reduce((a, b) => a * b, 1)
  const len = { minLength: n, maxLength: n }
  return fc.oneof(
    fc.float32Array({ ...len, noDefaultInfinity: false }).map((data): NpyCase => ({ shape, data })),
    fc.float64Array({ ...len, noDefaultInfinity: false }).map((data): NpyCase => ({ shape, data })),
    fc.int32Array(len).map((data): NpyCase => ({ shape, data })),
    fc.bigInt64Array(len).map((data): NpyCase => ({ shape, data })),
    fc.uint32Array(len).map((data): NpyCase => ({ shape, data })),
    fc.uint16Array(len).map((data): NpyCase => ({ shape, data })),
    fc.uint8Array(len).map((data): NpyCase => ({ shape, data }))
  )
})

describe("npy", () => {
  test("writer output is byte-identical to numpy's for a u4 vector", () => {
    const encoded = Either.getOrThrow(encodeNpy(new Uint32Array([1, 2, 0xffffffff])))
    expect(encoded).toEqual(NUMPY_U4)
  })

  test("reads numpy's file back", () => {
    const arr = Either.getOrThrow(decodeNpy(NUMPY_U4))
    expect(arr.dtype).toBe("<u4")
    expect(arr.shape).toEqual([3])
    expect([...arr.data]).toEqual([1, 2, 0xffffffff])
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
    expect([...arr.data]).toEqual([-1, 0, 7, 2 ** 31 - 1, -(2 ** 31), 42])
    expect(Either.getOrThrow(encodeNpy(arr.data, arr.shape))).toEqual(numpyI4)
  })

  test("round trip keeps dtype, shape and bits of every dtype, 0-3 D (property)", () => {
    fc.assert(
      fc.property(npyArb, ({ shape, data }) => {
        const bytes = Either.getOrThrow(encodeNpy(data, shape))
        // numpy's layout: the header pads the data start to a 64-byte boundary
        expect((bytes.length - data.byteLength) % 64).toBe(0)
        const back = Either.getOrThrow(decodeNpy(bytes))
        expect(back.shape).toEqual(shape)
        expect(back.data.constructor).toBe(data.constructor)
        expect(bytesOf(back.data)).toEqual(bytesOf(data))
      }),
      { numRuns: 300 }
    )
  })

  test("decoded data is a copy that does not alias the input", () => {
    const bytes = Either.getOrThrow(encodeNpy(new Int32Array([5, 6])))
    const back = Either.getOrThrow(decodeNpy(bytes))
    bytes.fill(0)
    expect([...back.data]).toEqual([5, 6])
    expect(back.data.buffer.byteLength).toBe(8)
  })

  test("reads numpy's files: the shared tokens and logits", () => {
    const tokens = Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(join(vectorDir, "tokens.npy")))))
    expect(tokens.dtype).toBe("<i4")
    expect(tokens.shape).toEqual([2, 24])
    const logits = Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(join(vectorDir, "expected_logits.npy")))))
    expect(logits.shape).toEqual([2, 24, 97])
  })

  test("reads v2 and v3 headers", () => {
    const data = bytesOf(new Int32Array([7, -8]))
    for (const version of [2, 3]) {
      const back = Either.getOrThrow(decodeNpy(npyWithHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data, version)))
      expect([...back.data]).toEqual([7, -8])
    }
    // v3 exists for UTF-8 header text; a header that is not UTF-8 is rejected, not mis-read
    const badUtf8 = npyWithHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data, 3)
    badUtf8[14] = 0xff
    expect(Either.isLeft(decodeNpy(badUtf8))).toBe(true)
  })

  test.skipIf(skipNumpy)("numpy loads what we write and we load what numpy writes", () => {
    const dir = mkdtempSync(join(tmpdir(), "npy-"))
    const ours = join(dir, "ours.npy")
    writeFileSync(ours, Either.getOrThrow(encodeNpy(new Float32Array([1.5, -2, 3, 4.25, 5, 6]), [2, 3])))
    const theirs = join(dir, "theirs.npy")
    const verdict = runNumpyScript([
      "paths = json.load(sys.stdin)",
      "a = np.load(paths['ours'])",
      "np.save(paths['theirs'], (a * 2).astype(np.int64))",
      "print(json.dumps({'dtype': str(a.dtype), 'shape': list(a.shape), 'sum': float(a.sum())}))",
    ], { ours, theirs })
    expect(verdict).toEqual({ dtype: "float32", shape: [2, 3], sum: 17.75 })
    const back = Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(theirs))))
    expect(back.dtype).toBe("<i8")
    expect([...back.data]).toEqual([3n, -4n, 6n, 8n, 10n, 12n])
  }, NUMPY_TEST_TIMEOUT_MS)

  test.skipIf(skipNumpy)("writer output is byte-identical to numpy's for every dtype", () => {
    const dir = mkdtempSync(join(tmpdir(), "npy-"))
    const cases: Array<[string, NpyData, number[]]> = [
      ["float32", new Float32Array([1.5, -2, 3, 4.25, 5, 6]), [2, 3]],
      ["float64", new Float64Array([0.1, -1e300]), [2]],
      ["int32", new Int32Array([-1, 2 ** 31 - 1]), [1, 2]],
      ["int64", new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), [3]],
      ["uint32", new Uint32Array([0xffffffff]), [1, 1, 1]],
      ["uint16", new Uint16Array([0, 65535, 7, 8]), [2, 2]],
      ["uint8", new Uint8Array([0, 255, 9]), [3]],
      ["uint8", new Uint8Array(0), [0, 4]],
    ]
    // Every case is saved by one interpreter; values travel as decimal strings (exact for these).
    const saves = cases.map(([dtype, data, shape], i) => ({ path: join(dir, `${i}.npy`), dtype, shape, values: [...data].map(String) }))
    const verdict = runNumpyScript([
      "cases = json.load(sys.stdin)",
      "for c in cases:",
      "    parse = float if c['dtype'].startswith('float') else int",
      "    np.save(c['path'], np.array([parse(v) for v in c['values']], dtype=c['dtype']).reshape(c['shape']))",
      "print(json.dumps({'saved': len(cases)}))",
    ], saves)
    expect(verdict).toEqual({ saved: cases.length })
    for (const [i, [dtype, data, shape]] of cases.entries()) {
      const ours = Either.getOrThrow(encodeNpy(data, shape))
      expect({ dtype, bytes: ours }).toEqual({ dtype, bytes: new Uint8Array(readFileSync(saves[i]!.path)) })
    }
  }, NUMPY_TEST_TIMEOUT_MS)

  test("rejects malformed files with a typed error that names the file and the fault", () => {
    const four = new Uint8Array(4)
    const noNewline = NUMPY_U4.slice()
    noNewline[127] = 0x20 // the header's closing newline
    const v9 = npyWithHeader("{}")
    v9[6] = 9
    const cases: Array<[string, Uint8Array, string]> = [
      ["bad magic", ascii("\x93NUMPX\x01\x00\x10\x00"), "magic"],
      ["not npy", new Uint8Array([1, 2, 3]), "magic"],
      ["too short", ascii("\x93NUM"), "too short"],
      ["unknown version", v9, "version"],
      ["header past the end", npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four).subarray(0, 20), "past the end"],
      ["unsupported dtype", npyWithHeader("{'descr': '<f2', 'fortran_order': False, 'shape': (0,), }"), "unsupported dtype"],
      ["big-endian", npyWithHeader("{'descr': '>u4', 'fortran_order': False, 'shape': (0,), }"), "unsupported dtype"],
      ["fortran order", npyWithHeader("{'descr': '<u4', 'fortran_order': True, 'shape': (2, 2), }", new Uint8Array(16)), "Fortran"],
      ["missing key", npyWithHeader("{'descr': '<u4', 'shape': (0,), }"), "exactly the keys"],
      ["extra key", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (0,), 'x': 1, }"), "parse"],
      ["extra key with a known value", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (0,), 'x': 'y', }"), "exactly the keys"],
      ["repeated key", npyWithHeader("{'descr': '<u4', 'descr': '<u4', 'shape': (0,), }"), "repeats"],
      ["one-tuple without comma", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (1), }", four), "trailing comma"],
      ["negative dim", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (-1,), }"), "non-negative"],
      ["not a dict", npyWithHeader("[1, 2]", four), "dict"],
      ["unquoted value", npyWithHeader("{'descr': <f4}", four), "parse"],
      ["junk after the dict", npyWithHeader("{'descr': '<u4', 'fortran_order': False, 'shape': (0,), } x"), "newline"],
      ["no newline", noNewline, "newline"],
      ["truncated data", NUMPY_U4.subarray(0, NUMPY_U4.length - 1), "needs 12"],
      ["extra data", Uint8Array.from([...NUMPY_U4, 0]), "needs 12"],
    ]
    for (const [name, bytes, reason] of cases) {
      const result = decodeNpy(bytes, name)
      if (Either.isRight(result)) throw new Error(`${name}: accepted`)
      expect(result.left._tag).toBe("NpyDecodeError")
      expect(result.left.source).toBe(name)
      expect(result.left.reason).toContain(reason)
      expect(result.left.message).toBe(`${name}: ${result.left.reason}`)
    }
  })

  test("header parse reports the data offset and size", () => {
    const h = Either.getOrThrow(parseNpyHeader(NUMPY_U4))
    expect(h.dataOffset).toBe(128)
    expect(h.size).toBe(3)
  })

  test("a ranged read needs only the prefix, then the header bytes", () => {
    const file = Either.getOrThrow(encodeNpy(new Uint16Array(10), [5, 2]))
    const dataOffset = Either.getOrThrow(npyHeaderLength(file.subarray(0, NPY_PREFIX_BYTES)))
    const h = Either.getOrThrow(parseNpyHeader(file.subarray(0, dataOffset)))
    expect(h).toEqual({ dtype: "<u2", shape: [5, 2], dataOffset: 128, size: 10, bytesPerElement: 2 })
    // a header longer than 65535 bytes needs the v2 u32 length field, which the prefix also covers
    const long = Either.getOrThrow(encodeNpy(new Uint8Array(0), Array.from({ length: 30000 }, () => 0)))
    expect(long[6]).toBe(2)
    const longOffset = Either.getOrThrow(npyHeaderLength(long.subarray(0, NPY_PREFIX_BYTES)))
    expect(Either.getOrThrow(parseNpyHeader(long.subarray(0, longOffset))).shape.length).toBe(30000)
  })

  test("encode rejects a shape that does not match the data", () => {
    const mismatch = encodeNpy(new Uint32Array(5), [2, 2])
    expect(Either.isLeft(mismatch) && mismatch.left._tag).toBe("NpyEncodeError")
    const negative = encodeNpy(new Uint32Array(0), [-1])
    expect(Either.isLeft(negative) && negative.left._tag).toBe("NpyEncodeError")
  })

  test("token batches accept the integer dtypes and refuse floats", () => {
    const ids = Either.getOrThrow(tokenBatchFromNpy(Either.getOrThrow(decodeNpy(Either.getOrThrow(encodeNpy(new Uint16Array([1, 2, 3, 4]), [2, 2]))))))
    expect(ids).toEqual({ ids: new Int32Array([1, 2, 3, 4]), batch: 2, seqLen: 2 })
    for (const floats of [new Float32Array([1]), new Float64Array([1])]) {
      const r = tokenBatchFromNpy(Either.getOrThrow(decodeNpy(Either.getOrThrow(encodeNpy(floats)))))
      expect(Either.isLeft(r) && r.left.reason).toContain("must be integers")
    }
  })
})
