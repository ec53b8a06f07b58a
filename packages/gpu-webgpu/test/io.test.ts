import { describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Either, FastCheck as fc } from "effect"
import { decodeSafetensors, encodeSafetensors } from "../src/io/index.ts"
import type { SafetensorsInput } from "../src/io/index.ts"
import { vectorDir } from "./model-engines.ts"
import { NUMPY_TEST_TIMEOUT_MS, runNumpyScript, skipNumpy } from "./numpy.ts"


const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 })
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)
const f32Arb = (n: number) => fc.float32Array({ minLength: n, maxLength: n, noDefaultInfinity: false })

const tensorArb: fc.Arbitrary<SafetensorsInput> = shapeArb.chain((shape) =>
  fc.oneof(
    f32Arb(size(shape)).map((data) => ({ shape, data })),
    fc.int32Array({ minLength: size(shape), maxLength: size(shape) }).map((data) => ({ shape, data }))
  )
)

const bitsOf = (a: Float32Array | Int32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)]
const sameBits = (a: Float32Array | Int32Array, b: Float32Array | Int32Array) => {
  expect(bitsOf(b)).toEqual(bitsOf(a))
  return true
}

const withHeader = (header: unknown, data: Uint8Array): Uint8Array => {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

const reasonOf = (bytes: Uint8Array): string => {
  const r = decodeSafetensors(bytes)
  if (Either.isRight(r)) throw new Error("decoded a corrupt file")
  expect(r.left._tag).toBe("SafetensorsDecodeError")
  return r.left.reason
}

describe("safetensors", () => {
  test("round trip keeps names, shapes, bits and metadata (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__"), tensorArb), {
          selector: ([name]) => name,
          maxLength: 5
        }),
        fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => k !== "__proto__"), fc.string({ maxLength: 6 })),
        (entries, metadata) => {
          const bytes = Either.getOrThrow(encodeSafetensors(entries, metadata))
          expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0)
          const file = Either.getOrThrow(decodeSafetensors(bytes))
          expect(file.tensors.size).toBe(entries.length)
          for (const [name, t] of entries) {
            const got = file.tensors.get(name)!
            expect(got.shape).toEqual([...t.shape])
            expect(got.dtype).toBe(t.data instanceof Float32Array ? "F32" : "I32")
            expect(got.data.constructor).toBe(t.data.constructor)
            expect(sameBits(t.data, got.data)).toBe(true)
          }
          expect(file.metadata).toEqual(Object.keys(metadata).length > 0 ? metadata : {})
        }
      ),
      { numRuns: 150 }
    )
  })

  test("names that are Object.prototype keys survive (\"__proto__\", \"constructor\")", () => {
    const bytes = Either.getOrThrow(encodeSafetensors([
      ["__proto__", { shape: [1], data: new Float32Array([1]) }],
      ["constructor", { shape: [1], data: new Float32Array([2]) }]
    ], { toString: "x" }))
    const file = Either.getOrThrow(decodeSafetensors(bytes))
    expect([...file.tensors.keys()]).toEqual(["__proto__", "constructor"])
    expect(file.metadata["toString"]).toBe("x")
  })

  test("reads the PyTorch-written shared vector", () => {
    const file = Either.getOrThrow(decodeSafetensors(new Uint8Array(readFileSync(join(vectorDir, "model.safetensors")))))
    expect(file.tensors.get("model.layers.1.self_attn.k_proj.weight")!.shape).toEqual([16, 64])
    expect(file.tensors.get("lm_head.weight")!.data.length).toBe(97 * 64)
  })

  test("widens F16 and BF16 to f32", () => {
    // 1.0, -2.0, 65504 (max half), 2^-24 (smallest subnormal)
    const half = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001])
    // bf16 is the top half of an f32: 1.0, -2.0, 3.140625
    const bf = new Uint16Array([0x3f80, 0xc000, 0x4049])
    const data = new Uint8Array(14)
    data.set(new Uint8Array(half.buffer), 0)
    data.set(new Uint8Array(bf.buffer), 8)
    const file = Either.getOrThrow(decodeSafetensors(withHeader({
      h: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
      b: { dtype: "BF16", shape: [3], data_offsets: [8, 14] }
    }, data)))
    expect([...file.tensors.get("h")!.data]).toEqual([1, -2, 65504, 2 ** -24])
    expect([...file.tensors.get("b")!.data]).toEqual([1, -2, 3.140625])
  })

  test("corrupt files give a typed error", () => {
    const eight = new Uint8Array(8)
    expect(reasonOf(new Uint8Array(3))).toContain("shorter")
    const huge = new Uint8Array(16)
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true)
    expect(reasonOf(huge)).toContain("exceeds")
    const past = new Uint8Array(16)
    new DataView(past.buffer).setBigUint64(0, 100n, true)
    expect(reasonOf(past)).toContain("past the end")
    const notJson = new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7b, 0x20, 0x20])
    expect(reasonOf(notJson)).toContain("JSON")
    expect(reasonOf(withHeader([1, 2], eight))).toContain("object")
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 16] } }, eight))).toContain("past")
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, eight))).toContain("needs 12")
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, eight))).toContain("end before")
    expect(reasonOf(withHeader({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] }
    }, eight))).toContain("overlap")
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, eight))).toContain("gap")
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, eight))).toContain("no tensor covers")
    expect(reasonOf(withHeader({ a: { dtype: "Q4", shape: [2], data_offsets: [0, 8] } }, eight))).toContain('tensor "a"')
    expect(reasonOf(withHeader({ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, eight))).toContain('tensor "a"')
    expect(reasonOf(withHeader({ __metadata__: { k: 1 } }, new Uint8Array(0)))).toContain("__metadata__")
  })

  test.skipIf(skipNumpy)("a Python reader following the library's validation loads what we write", () => {
    // The `safetensors` wheel is not installable here (no PyPI); this script applies the same
    // checks its Rust core does (header bound, JSON, contiguous offsets covering the data) with numpy.
    const dir = mkdtempSync(join(tmpdir(), "st-"))
    const path = join(dir, "t.safetensors")
    const a = new Float32Array([1.5, -2, 3, 0.25, 5, 6])
    writeFileSync(path, Either.getOrThrow(encodeSafetensors([["b", { shape: [2, 3], data: a }], ["a", { shape: [1], data: new Int32Array([-7]) }]], { k: "v" })))
    const verdict = runNumpyScript([
      "import struct",
      "raw = open(json.load(sys.stdin), 'rb').read()",
      "(n,) = struct.unpack('<Q', raw[:8]); assert (8 + n) % 8 == 0 and n <= 100_000_000",
      "header = json.loads(raw[8:8 + n]); data = raw[8 + n:]",
      "metadata = header.pop('__metadata__')",
      "dt = {'F32': '<f4', 'I32': '<i4'}",
      "end = 0; tensors = []",
      "for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):",
      "    s, e = info['data_offsets']; assert s == end, (name, s, end); end = e",
      "    tensors.append([name, np.frombuffer(data[s:e], dtype=dt[info['dtype']]).reshape(info['shape']).tolist()])",
      "assert end == len(data)",
      "print(json.dumps({'metadata': metadata, 'tensors': tensors}))",
    ], path)
    expect(verdict).toEqual({ metadata: { k: "v" }, tensors: [["b", [[1.5, -2, 3], [0.25, 5, 6]]], ["a", [-7]]] })
  }, NUMPY_TEST_TIMEOUT_MS)

  test("encode rejects data that does not match its shape", () => {
    const r = encodeSafetensors([["a", { shape: [3], data: new Float32Array(2) }]])
    expect(Either.isLeft(r) && r.left._tag).toBe("SafetensorsEncodeError")
  })
})
