/**
 * The half-precision path: the f32 -> f16 cast kernel and the f16 matmul (f16 operands, f32
 * accumulation) on WebGPU against their CPU references, and the f16 matmul's meaning (the f32
 * matmul of the operands rounded to halves). Tolerance as for the f32 kernels,
 * |gpu - cpu| <= 1e-4 + 1e-3 * |cpu|: both sides multiply the same halves exactly and differ only
 * in f32 summation order.
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, f16BitsToF32, f16round, f32ToF16Bits, grid1d, makeEngine, type Backend, type Engine } from "../src/index.ts"
import { castF16Kernel } from "../src/ops/cast.ts"
import { agreesWith, expectClose, op, rng, type OpCase } from "./opsCases.ts"
import { gpuEngine, gpuFeatureTest } from "./opsGpuEngine.ts"

const cpu = makeEngine(new CpuBackend())
const gpu = await gpuEngine()
const gpuTiled = await gpuEngine({ kernels: "tiled" })
// 4 KiB bindings: operands of a few hundred elements span several chunks
const gpuChunked = await gpuEngine({ maxBindingBytes: 4096 })

/** Runs the cast kernel on a backend over `x`; the halves' bits. */
const castOn = async (b: Backend, x: Float32Array): Promise<Uint16Array> => {
  const src = b.alloc(x.byteLength)
  const dst = b.alloc(Math.ceil(x.length / 2) * 4)
  b.upload(src, x)
  b.run({ kernel: castF16Kernel, bindings: { x: { buf: src, chunk: 0 }, y: { buf: dst, chunk: 0 } }, params: { n: x.length }, workgroups: grid1d(x.length, 256) })
  const bits = new Uint16Array(await b.download(dst), 0, x.length)
  b.free(src)
  b.free(dst)
  return bits
}

describe("cast f32 -> f16", () => {
  // |x| <= 65504: WGSL leaves the conversion of values outside the finite f16 range undefined
  const rand = rng(7)
  const values = [0, -0, 1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -26, 1e-9, 0.1, -1 / 3]
  for (let i = 0; i < 4000; i++) values.push((rand() * 2 - 1) * 2 ** Math.floor(rand() * 40 - 26))
  const x = Float32Array.from(values)

  test("the CPU reference rounds to nearest even", async () => {
    const bits = await castOn(new CpuBackend(), x)
    x.forEach((v, i) => expect(f16BitsToF32(bits[i]!)).toBe(f16round(v)))
  })

  gpuFeatureTest(gpu, "shaderF16")("WebGPU gives the reference's half, or (where WGSL allows) the other half next to x", async (e) => {
    const got = await castOn(e.backend, x)
    let exact = 0
    x.forEach((v, i) => {
      const want = f32ToF16Bits(v)
      if (got[i] === want) exact++
      else {
        // the other neighbour: the adjacent bit pattern, on the far side of x from the nearest
        expect(Math.abs(got[i]! - want)).toBe(1)
        expect(Math.sign(f16BitsToF32(got[i]!) - v)).toBe(-Math.sign(f16BitsToF32(want) - v))
      }
    })
    // lavapipe rounds to nearest even like the reference
    if (/llvmpipe/.test(e.backend.name)) expect(exact).toBe(x.length)
  })
})

const f = (shape: readonly number[], lo = -1, hi = 1) => ({ shape, dtype: "f32" as const, lo, hi, grad: true })
const dim = (max: number) => fc.integer({ min: 1, max })

const f16Cases: readonly OpCase<unknown>[] = [
  op({
    name: "matmul f16",
    params: fc.record({ batch: fc.constantFrom<number[]>([], [2], [2, 3]), m: dim(9), k: dim(9), n: dim(9), transA: fc.boolean(), transB: fc.boolean() }),
    inputs: ({ batch, m, k, n, transA, transB }) => [f([...batch, ...(transA ? [k, m] : [m, k])]), f([...batch, ...(transB ? [n, k] : [k, n])])],
    forward: (e, [a, b], { transA, transB }) => e.matmul(a!, b!, { transA, transB, precision: "f16" })
  }),
  op({
    name: "matmul f16, 2-D right operand shared over batches (a linear layer)",
    params: fc.record({ batch: fc.constantFrom([1], [3], [2, 2]), m: dim(6), k: dim(7), n: dim(6), transB: fc.boolean() }),
    inputs: ({ batch, m, k, n, transB }) => [f([...batch, m, k]), f(transB ? [n, k] : [k, n])],
    forward: (e, [a, b], { transB }) => e.matmul(a!, b!, { transB, precision: "f16" })
  }),
  op({
    // larger than one 32x32 blocked tile and one 64x64 tiled tile, K past one 16-deep k-tile
    name: "matmul f16, several tiles",
    params: fc.record({ m: fc.integer({ min: 30, max: 70 }), k: fc.integer({ min: 14, max: 40 }), n: fc.integer({ min: 30, max: 70 }), transB: fc.boolean() }),
    inputs: ({ m, k, n, transB }) => [f([m, k]), f(transB ? [n, k] : [k, n])],
    forward: (e, [a, b], { transB }) => e.matmul(a!, b!, { transB, precision: "f16" }),
    runs: 4
  })
]

describe("f16 matmul (forward and backward) equals the CPU reference", () => {
  for (const c of f16Cases) {
    gpuFeatureTest(gpu, "shaderF16")(`${c.name}, blocked kernel`, agreesWith(cpu, c, ["webgpu f16", "cpu f16"]), 60_000)
    gpuFeatureTest(gpuTiled, "shaderF16")(`${c.name}, tiled kernel`, agreesWith(cpu, c, ["webgpu tiled f16", "cpu f16"]), 60_000)
    gpuFeatureTest(gpuChunked, "shaderF16")(`${c.name}, operands in 4 KiB chunks`, agreesWith(cpu, c, ["webgpu chunked f16", "cpu f16"]), 60_000)
  }
})

describe("what the f16 matmul computes", () => {
  const rand = rng(3)
  // values with more significand bits than a half holds
  const a = Float32Array.from({ length: 6 * 40 }, () => rand() * 2 - 1)
  const b = Float32Array.from({ length: 40 * 5 }, () => rand() * 2 - 1)
  const product = async (e: Engine, x: Float32Array, y: Float32Array, precision: "f32" | "f16") =>
    e.read(e.noGrad(() => e.matmul(e.fromArray(x, [6, 40]), e.fromArray(y, [40, 5]), { precision })))

  test("CPU: the f32 product of the operands rounded to halves, which is not the f32 product", async () => {
    const half = await product(cpu, a, b, "f16")
    const ofRounded = await product(cpu, a.map(f16round), b.map(f16round), "f32")
    const full = await product(cpu, a, b, "f32")
    expect(half).toEqual(ofRounded)
    expect(half).not.toEqual(full)
    // operand rounding (relative 2^-11 each) moves a K=40 sum of ~unit terms by ~1e-3, not more
    expectClose(["f16", "f32"], "product", half, full, 1e-2, 0)
  })

  gpuFeatureTest(gpu, "shaderF16")("WebGPU: the same, within f32 summation order", async (e) => {
    const half = await product(e, a, b, "f16")
    expectClose(["webgpu f16", "cpu f32 of halves"], "product", half, await product(cpu, a.map(f16round), b.map(f16round), "f32"))
  })

  test("a backend without shaderF16 refuses an f16 matmul, saying which feature is missing", () => {
    class NoHalf extends CpuBackend {
      override readonly features = { shaderF16: false, subgroups: false }
    }
    const e = makeEngine(new NoHalf())
    const x = e.fromArray(new Float32Array(4), [2, 2])
    expect(() => e.matmul(x, x, { precision: "f16" })).toThrow(/shaderF16/)
  })
})
