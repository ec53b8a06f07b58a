/**
 * Tensors larger than one storage binding: with the binding limit lowered to 4 KiB, a [300 x 24]
 * "vocabulary" weight spans 8 chunks and the [40 x 300] logits 14. Embedding (and its scatter-add
 * gradient), a tied lm-head matmul (all three transposition cases of its backward), row-wise ops
 * on chunked rows, rope and attention on a chunked q, elementwise ops and AdamW must give the
 * same numbers as an unchunked run.
 * Tolerance: |chunked - whole| <= 1e-5 + 1e-4 * |whole|.
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { AdamWState, CpuBackend, makeEngine, type Engine } from "../src/index.ts"
import { rng } from "./opsCases.ts"
import { gpuEngine, gpuTest } from "./opsGpuEngine.ts"

const LIMIT = 4096
const V = 300
const D = 24
const N = 40

const scenario = async (e: Engine): Promise<Record<string, Float32Array>> => {
  const rand = rng(7)
  const W = e.fromArray(Float32Array.from({ length: V * D }, () => rand() - 0.5), [V, D], { requiresGrad: true })
  const g = e.fromArray(Float32Array.from({ length: D }, () => 0.5 + rand()), [D], { requiresGrad: true })
  const ids = e.fromArray(Int32Array.from({ length: N }, () => Math.floor(rand() * V)), [N])
  const targets = e.fromArray(Int32Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rand() * V))), [N])
  const bigA = e.fromArray(Float32Array.from({ length: 2 * 50 * 24 }, () => rand() - 0.5), [2, 50, 24], { requiresGrad: true })
  const bigB = e.fromArray(Float32Array.from({ length: 2 * 24 * 60 }, () => rand() - 0.5), [2, 24, 60], { requiresGrad: true })
  // q is a [32, 48] leaf (chunks of 21 rows) viewed as [2, 16, 6, 8]: its second chunk starts
  // mid-sequence, and it is laid out unlike a fresh [2, 16, 6, 8] (chunks of one batch element)
  const q = e.fromArray(Float32Array.from({ length: 2 * 16 * 6 * 8 }, () => rand() - 0.5), [32, 48], { requiresGrad: true })
  const k = e.fromArray(Float32Array.from({ length: 2 * 16 * 2 * 8 }, () => rand() - 0.5), [2, 16, 2, 8], { requiresGrad: true })
  const v = e.fromArray(Float32Array.from({ length: 2 * 16 * 2 * 8 }, () => rand() - 0.5), [2, 16, 2, 8], { requiresGrad: true })
  const out: Record<string, Float32Array> = {}
  const params = [W, g, bigA, bigB, q, k, v]
  const state = new AdamWState()
  for (let step = 1; step <= 2; step++) {
    const loss = e.tidy(() => {
      const x = e.rmsnorm(e.embedding(W, ids), g, 1e-5)
      const logits = e.matmul(x, W, { transB: true })
      const probs = e.softmax(logits)
      const ce = e.crossEntropy(logits, targets)
      const reg = e.scale(e.sum(e.mul(e.sub(W, e.scale(W, 0.5)), e.add(W, W))), 1e-3)
      const bm = e.mean(e.mul(e.matmul(bigA, bigB), e.silu(e.matmul(bigA, bigB))))
      const q4 = e.reshape(q, [2, 16, 6, 8])
      const att = e.add(e.attention(e.rope(q4, 10000), e.rope(k, 10000), v), q4)
      const qt = e.reshape(q, [48, 32]) // chunks of 21 rows of 48 cannot hold rows of 32: a copy
      const qq = e.mean(e.swiglu(qt, e.silu(qt)))
      const l = e.add(e.add(ce, reg), e.add(e.add(bm, e.mean(e.mul(att, att))), e.add(qq, e.scale(e.sum(probs), 0))))
      return l
    })
    out[`loss${step}`] = await e.read(loss)
    e.backward(loss)
    loss.dispose()
    for (const [i, p] of params.entries()) out[`grad${step}.${i}`] = await e.read(p.grad!)
    e.adamwStep(params, state, { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step })
    e.zeroGrad(params)
  }
  for (const [i, p] of params.entries()) out[`param.${i}`] = await e.read(p)
  const gram = e.noGrad(() => e.matmul(W, W, { transB: true }))
  out["gram"] = await e.read(gram)
  gram.dispose()
  for (const t of [...params, ids, targets]) t.dispose()
  state.dispose()
  return out
}

const compare = (got: Record<string, Float32Array>, want: Record<string, Float32Array>) => {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort())
  for (const [k, w] of Object.entries(want)) {
    const gv = got[k]!
    expect(gv.length).toBe(w.length)
    for (let i = 0; i < w.length; i++) {
      if (!(Math.abs(gv[i]! - w[i]!) <= 1e-5 + 1e-4 * Math.abs(w[i]!))) throw new Error(`${k}[${i}]: chunked ${gv[i]} vs whole ${w[i]}`)
    }
  }
}

const whole = await scenario(makeEngine(new CpuBackend()))
const gpu = await gpuEngine({ maxBindingBytes: LIMIT })
const gpuTiled = await gpuEngine({ maxBindingBytes: LIMIT, kernels: "tiled" })
const gpuSmallest = await gpuEngine({ maxBindingBytes: 256 })

describe("big tensors split across bindings", () => {
  test("the scenario really is chunked under a 4 KiB limit", () => {
    const e = makeEngine(new CpuBackend(LIMIT))
    const W = e.zeros([V, D])
    const logits = e.zeros([N, V])
    expect(e.backend.chunkBytes(W.storage.buf)).toBe(42 * D * 4)
    expect(Math.ceil((V * D * 4) / e.backend.chunkBytes(W.storage.buf))).toBe(8)
    expect(e.backend.chunkBytes(logits.storage.buf)).toBe(3 * V * 4)
    const q = e.zeros([2, 16, 6, 8])
    expect(e.backend.chunkBytes(q.storage.buf)).toBe(16 * 6 * 8 * 4)
    const q2 = e.zeros([32, 48])
    expect(e.backend.chunkBytes(q2.storage.buf)).toBe(21 * 48 * 4)
    for (const t of [W, logits, q, q2]) t.dispose()
  })

  test("CPU backend, chunked == unchunked", async () => {
    const e = makeEngine(new CpuBackend(LIMIT))
    compare(await scenario(e), whole)
    expect(e.backend.liveBuffers()).toBe(1) // only the rope cos/sin table, cached per (T, hd, theta)
  }, 30_000)

  gpuTest(gpu)("WebGPU backend, chunked == unchunked CPU", async (e) => {
    expect(e.backend.maxBindingBytes).toBe(LIMIT)
    compare(await scenario(e), whole)
  }, 60_000)

  gpuTest(gpuTiled)("WebGPU backend with tiled matmuls, chunked == unchunked CPU", async (e) => {
    compare(await scenario(e), whole)
  }, 60_000)
})

/** matmul forward + both gradients with every operand cut at random chunk sizes vs unchunked. */
const chunkedMatmul = async (e: Engine, whole: Engine, numRuns: number) => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        batch: fc.constantFrom<number[]>([], [2], [3]),
        m: fc.integer({ min: 1, max: 19 }),
        k: fc.integer({ min: 1, max: 19 }),
        n: fc.integer({ min: 1, max: 19 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        shared: fc.boolean(),
        seed: fc.integer({ min: 0, max: 2 ** 31 - 1 })
      }),
      async ({ batch, m, k, n, transA, transB, shared, seed }) => {
        const sharedB = shared && batch.length > 0 && !transA
        const aShape = [...batch, ...(transA ? [k, m] : [m, k])]
        const bShape = [...(sharedB ? [] : batch), ...(transB ? [n, k] : [k, n])]
        const rand = rng(seed)
        const size = (s: number[]) => s.reduce((x, y) => x * y, 1)
        const ad = Float32Array.from({ length: size(aShape) }, () => rand() - 0.5)
        const bd = Float32Array.from({ length: size(bShape) }, () => rand() - 0.5)
        const run = async (eng: Engine) => {
          const a = eng.fromArray(ad, aShape, { requiresGrad: true })
          const b = eng.fromArray(bd, bShape, { requiresGrad: true })
          const c = eng.matmul(a, b, { transA, transB })
          const r = eng.fromArray(Float32Array.from({ length: c.size }, (_, i) => Math.cos(i)), c.shape)
          const y = await eng.read(c)
          const loss = eng.sum(eng.mul(c, r))
          eng.backward(loss)
          const out = { y, ga: await eng.read(a.grad!), gb: await eng.read(b.grad!) }
          for (const t of [a, b, r, loss, a.grad!, b.grad!]) t.dispose()
          return out
        }
        const got = await run(e)
        const want = await run(whole)
        compare(got, want)
      }
    ),
    { numRuns }
  )
}

describe("matmul planner over random chunk cuts", () => {
  const whole = makeEngine(new CpuBackend())
  // 80..256-byte bindings (rows are at most 19 floats) cut every operand into pieces that rarely line up
  test("CPU backend", async () => {
    for (const limit of [80, 100, 256]) await chunkedMatmul(makeEngine(new CpuBackend(limit)), whole, 20)
  }, 60_000)
  gpuTest(gpuSmallest)("WebGPU backend", (e) => chunkedMatmul(e, whole, 10), 60_000)
})
