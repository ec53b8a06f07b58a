/**
 * The GPU codec equals the CPU one bit for bit: indices, codes, stats, the new EF buffer and the
 * dense decode. It runs on WebGPU (lavapipe on CI machines) and, through the kernels' CPU
 * references, on the engine's CPU backend. Without a WebGPU adapter the WebGPU tests fail with
 * the typed NoAdapterError unless COVENANT_ALLOW_NO_GPU=1, where they are skipped and say so.
 */
import { describe, expect, test } from "bun:test"
import { Cause, Effect, Either, Exit } from "effect"
import { CpuBackend, EngineWebGpuWith, makeEngine } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import { webgpuEngine, webgpuTest } from "@covenant/gpu-webgpu/testing"
import type { EngineOrError } from "@covenant/gpu-webgpu/testing"
import { aggregate, compress, decompress, defaultParams } from "../src/index.ts"
import type { SparseLoCoParams, TensorUpdate } from "../src/index.ts"
import { aggregateGpu, compressGpu, compressGpuMany, decompressGpu } from "../src/gpu/compress.ts"

const gpuEngine = await webgpuEngine()
const cpuEngine = makeEngine(new CpuBackend())
/** Bindings of 5120 values: [192, 80] (block rows of 64 x 80) and [10240] (rows of 64) span several. */
const SPLIT_BYTES = 20480
const gpuSplitEngine = "_tag" in gpuEngine ? gpuEngine : await webgpuEngine(EngineWebGpuWith({ maxBindingBytes: SPLIT_BYTES }))
const cpuSplitEngine = makeEngine(new CpuBackend(SPLIT_BYTES))

/** Gaussian-ish values (sum of three uniforms of an LCG); `levels` > 0 puts them on a grid of scale/levels to force ties. */
const randomF32 = (n: number, seed: number, scale: number, levels = 0): Float32Array => {
  let s = seed >>> 0
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
  return Float32Array.from({ length: n }, () => {
    const x = u() + u() + u() - 1.5
    return (levels > 0 ? Math.round(x * levels) / levels : x) * scale
  })
}

interface Case {
  readonly shape: readonly number[]
  readonly k: number
  readonly levels?: number
}
const cases: readonly Case[] = [
  { shape: [96, 80], k: 16 },
  { shape: [96, 80], k: 64 },
  { shape: [128, 192], k: 4 },
  { shape: [64, 64], k: 2048 },
  { shape: [7, 130], k: 3 },
  { shape: [200], k: 64 },
  { shape: [75], k: 64 },
  { shape: [768], k: 8 },
  // values on a coarse grid: many equal |x| at the k-th place exercise the tie rule
  { shape: [96, 80], k: 32, levels: 4 },
  { shape: [300], k: 16, levels: 2 },
]

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))

const expectSameUpdate = (g: TensorUpdate, c: TensorUpdate) => {
  expect(g.kEff).toBe(c.kEff)
  expect(Array.from(g.indices)).toEqual(Array.from(c.indices))
  expect(Array.from(g.codes)).toEqual(Array.from(c.codes))
  expect(Object.is(g.shift, c.shift)).toBe(true)
  expect(Object.is(g.scale, c.scale)).toBe(true)
  expect(bitsOf(g.lookup)).toEqual(bitsOf(c.lookup))
}

/** Two rounds on the same EF buffer (so the second starts from a GPU-made buffer), checked against the CPU path. */
const checkCase = async (engine: Engine, { shape, k, levels }: Case, seed: number) => {
  const numel = shape.reduce((a, b) => a * b, 1)
  const params: SparseLoCoParams = { ...defaultParams, topk: k }
  const efCpu = randomF32(numel, seed, 2e-3, levels)
  const efT = engine.fromArray(efCpu.slice(), [numel])
  for (let round = 0; round < 2; round++) {
    const delta = randomF32(numel, seed * 7 + round, 1e-3, levels)
    const deltaT = engine.fromArray(delta, [numel])
    const cpu = Either.getOrThrow(compress(efCpu, delta, shape, params, "t")).update
    const gpu = await Effect.runPromise(compressGpu(engine, efT, deltaT, shape, params, "t"))
    deltaT.dispose()
    expectSameUpdate(gpu, cpu)
    expect(bitsOf(await engine.read(efT))).toEqual(bitsOf(efCpu))
    const dense = await Effect.runPromise(decompressGpu(engine, gpu))
    expect(bitsOf(await engine.read(dense))).toEqual(bitsOf(Either.getOrThrow(decompress(cpu))))
    dense.dispose()
  }
  efT.dispose()
}

/** Every case as one batch (one download, one upload), two rounds, against per-tensor CPU compress. */
const checkBatch = async (engine: Engine) => {
  const params: SparseLoCoParams = { ...defaultParams, topk: 16 }
  const shapes = cases.map((c) => c.shape)
  const efCpu = shapes.map((s, i) => randomF32(s.reduce((a, b) => a * b, 1), 500 + i, 2e-3))
  const efT = efCpu.map((e) => engine.fromArray(e.slice(), [e.length]))
  for (let round = 0; round < 2; round++) {
    const deltas = efCpu.map((e, i) => randomF32(e.length, 900 + 10 * i + round, 1e-3))
    const deltaT = deltas.map((d) => engine.fromArray(d, [d.length]))
    const steps = shapes.map((shape, i) => ({ ef: efT[i]!, delta: deltaT[i]!, shape, name: `t${i}` }))
    const gpu = await Effect.runPromise(compressGpuMany(engine, steps, params))
    for (let i = 0; i < shapes.length; i++) {
      expectSameUpdate(gpu[i]!, Either.getOrThrow(compress(efCpu[i]!, deltas[i]!, shapes[i]!, params, `t${i}`)).update)
      expect(bitsOf(await engine.read(efT[i]!))).toEqual(bitsOf(efCpu[i]!))
    }
    deltaT.forEach((d) => d.dispose())
  }
  efT.forEach((t) => t.dispose())
}

/**
 * Peers sharing a common component (so selections overlap and coordinates get several
 * contributions), one of them x100 so it is clipped: the device aggregate equals `aggregate`.
 */
const checkAggregate = async (engine: Engine, shape: readonly number[]) => {
  const numel = shape.reduce((a, b) => a * b, 1)
  const params: SparseLoCoParams = { ...defaultParams, topk: 16 }
  const common = randomF32(numel, 4242, 1e-3)
  const updates = [1, 100, 1, 1].map((mult, p) => {
    const own = randomF32(numel, 77 + p, 5e-4)
    const delta = common.map((v, i) => (v + own[i]!) * mult)
    return Either.getOrThrow(compress(new Float32Array(numel), delta, shape, params, "t")).update
  })
  const selectedBy = new Uint8Array(numel)
  for (const u of updates) Either.getOrThrow(decompress(u)).forEach((v, i) => (selectedBy[i]! += v !== 0 ? 1 : 0))
  // coordinates with several contributions exercise the in-order sum and the division
  expect(selectedBy.some((c) => c >= 2)).toBe(true)
  const cpu = Either.getOrThrow(aggregate(updates))
  const gpu = await Effect.runPromise(aggregateGpu(engine, updates))
  expect(bitsOf(gpu.factors)).toEqual(bitsOf(cpu.factors))
  expect(gpu.factors[1]!).toBeLessThan(1)
  const dense = await engine.read(gpu.dense)
  expect(bitsOf(dense)).toEqual(bitsOf(cpu.dense))
  gpu.dense.dispose()
}

/** Tensors stored over several storage bindings, run binding by binding; two rounds against the CPU path. */
const checkSplit = async (engine: Engine) => {
  const params: SparseLoCoParams = { ...defaultParams, topk: 16 }
  const shapes = [[192, 80], [10240]]
  const efCpu = shapes.map((s, i) => randomF32(s.reduce((a, b) => a * b, 1), 700 + i, 2e-3))
  const efT = efCpu.map((e) => engine.fromArray(e.slice(), [e.length]))
  efT.forEach((t) => expect(t.chunks).toBeGreaterThan(1))
  for (let round = 0; round < 2; round++) {
    const deltas = efCpu.map((e, i) => randomF32(e.length, 800 + 10 * i + round, 1e-3))
    const deltaT = deltas.map((d) => engine.fromArray(d, [d.length]))
    const steps = shapes.map((shape, i) => ({ ef: efT[i]!, delta: deltaT[i]!, shape }))
    const gpu = await Effect.runPromise(compressGpuMany(engine, steps, params))
    for (let i = 0; i < shapes.length; i++) {
      expectSameUpdate(gpu[i]!, Either.getOrThrow(compress(efCpu[i]!, deltas[i]!, shapes[i]!, params)).update)
      expect(bitsOf(await engine.read(efT[i]!))).toEqual(bitsOf(efCpu[i]!))
    }
    deltaT.forEach((d) => d.dispose())
  }
  efT.forEach((t) => t.dispose())
}

const label = ({ shape, k, levels }: Case) => `[${shape.join("x")}] k=${k}${levels !== undefined ? " with ties" : ""}`

describe("compressGpu on the CPU backend (kernel references)", () => {
  cases.forEach((c, i) => test(label(c), () => checkCase(cpuEngine, c, 11 + i)))
  test("a batch of all shapes (compressGpuMany)", () => checkBatch(cpuEngine))
  test("tensors over several storage bindings", () => checkSplit(cpuSplitEngine))
  test("aggregateGpu [96x80] and [200], 4 peers", async () => {
    await checkAggregate(cpuEngine, [96, 80])
    await checkAggregate(cpuEngine, [200])
  })
})

describe("compressGpu on WebGPU", () => {
  const gpuTest = (name: string, fn: (e: Engine) => Promise<void>, engine: EngineOrError = gpuEngine) =>
    webgpuTest(engine)(name, fn, 20_000)
  cases.forEach((c, i) => gpuTest(label(c), (e) => checkCase(e, c, 11 + i)))
  gpuTest("a batch of all shapes (compressGpuMany)", checkBatch)
  gpuTest("tensors over several storage bindings", checkSplit, gpuSplitEngine)
  gpuTest("aggregateGpu [96x80] and [200], 4 peers", async (e) => {
    await checkAggregate(e, [96, 80])
    await checkAggregate(e, [200])
  })
})

describe("compressGpu refuses what it cannot take", () => {
  test("a tensor whose storage bindings split block rows is a typed BadTensor", async () => {
    const small = makeEngine(new CpuBackend(1024))
    const ef = small.fromArray(new Float32Array(64 * 64), [64, 64])
    const delta = small.fromArray(new Float32Array(64 * 64), [64, 64])
    const exit = await Effect.runPromiseExit(compressGpu(small, ef, delta, [64, 64], defaultParams))
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
    expect(failure?._tag === "Some" && failure.value._tag === "GpuCodecError" && failure.value.reason === "BadTensor").toBe(true)
  })
  test("non-finite EF values are a NonFinite CodecError, as on the CPU path", async () => {
    const ef = cpuEngine.fromArray(new Float32Array(64).fill(Number.POSITIVE_INFINITY), [64])
    const delta = cpuEngine.fromArray(new Float32Array(64), [64])
    const exit = await Effect.runPromiseExit(compressGpu(cpuEngine, ef, delta, [64], defaultParams))
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
    expect(failure?._tag === "Some" && failure.value._tag === "CodecError" && failure.value.reason === "NonFinite").toBe(true)
  })
})
