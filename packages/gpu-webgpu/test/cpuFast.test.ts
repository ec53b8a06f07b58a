/**
 * The fast CPU backend (WebAssembly SIMD kernels, src/cpu/fast.ts) vs the CPU reference:
 *  - every primitive's forward output and gradients (the shared op cases; only matmul and
 *    attention run different code, the rest checks the dispatch falls through untouched);
 *  - the SIMD gemm directly on strided, transposed, offset, accumulating, ragged operands;
 *  - matmul and attention at model-sized shapes, including operands split over several chunks;
 *  - three training steps of a LLaMA (loss and every parameter after the steps).
 * Tolerance (fp32, different summation order): |fast - ref| <= 1e-4 + 1e-3 * |ref| per element,
 * 2e-4 + 2e-3 * |ref| for parameters after three AdamW steps.
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, FastCpuBackend, initLlamaParameters, makeEngine, Trainer, type Engine } from "../src/index.ts"
import { WasmGemm } from "../src/cpu/wasmGemm.ts"
import { buildInputs, cases, lossOf, makeData, rng } from "./opsCases.ts"
import { debugSpec, randomIds } from "./model-engines.ts"

const ref = makeEngine(new CpuBackend())
const fast = makeEngine(new FastCpuBackend())

const close = (what: string, got: Float32Array, want: Float32Array, abs = 1e-4, rel = 1e-3) => {
  expect(got.length).toBe(want.length)
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= abs + rel * Math.abs(want[i]!))) {
      throw new Error(`${what}[${i}]: fast ${got[i]} vs reference ${want[i]}`)
    }
  }
}

const runCase = async (e: Engine, c: (typeof cases)[number], p: unknown, data: ReadonlyArray<Float32Array | Int32Array>, seed: number) => {
  const xs = buildInputs(e, c.inputs(p), data)
  const out = c.forward(e, xs, p)
  const y = await e.read(out)
  const { loss } = lossOf(e, out, seed)
  e.backward(loss)
  loss.dispose()
  const grads = await Promise.all(xs.map((x) => (x.grad === null ? null : e.read(x.grad))))
  for (const x of xs) {
    x.grad?.dispose()
    x.dispose()
  }
  return { y, grads }
}

test("WebAssembly SIMD runs here (else EngineAuto falls back to the reference)", () => {
  expect(FastCpuBackend.supported()).toBe(true)
})

describe("fast CPU forward and gradients equal the CPU reference", () => {
  for (const c of cases) {
    test(c.name, async () => {
      await fc.assert(
        fc.asyncProperty(c.params, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (p, seed) => {
          const rand = rng(seed)
          const data = c.inputs(p).map((s) => makeData(s, rand))
          const want = await runCase(ref, c, p, data, seed)
          const got = await runCase(fast, c, p, data, seed)
          close(`${c.name} ${JSON.stringify(p)} output`, got.y, want.y)
          want.grads.forEach((g, i) => {
            if (g === null) expect(got.grads[i]).toBeNull()
            else close(`${c.name} ${JSON.stringify(p)} grad ${i}`, got.grads[i]!, g)
          })
        }),
        { numRuns: c.runs ?? 10 }
      )
    }, 60_000)
  }
})

describe("SIMD gemm", () => {
  test("strided, transposed, offset and accumulating operands, ragged M/N/K, vs a float64 loop", () => {
    const gemm = new WasmGemm()
    fc.assert(
      fc.property(
        fc.record({
          M: fc.integer({ min: 1, max: 37 }), N: fc.integer({ min: 1, max: 37 }), K: fc.integer({ min: 1, max: 600 }),
          transA: fc.boolean(), transB: fc.boolean(), acc: fc.boolean(), pad: fc.integer({ min: 0, max: 5 }), seed: fc.integer()
        }),
        ({ M, N, K, transA, transB, acc, pad, seed }) => {
          const rand = rng(seed)
          const A = Float32Array.from({ length: pad + M * K }, () => rand() - 0.5)
          const B = Float32Array.from({ length: pad + K * N }, () => rand() - 0.5)
          const ldc = N + pad
          const C0 = Float32Array.from({ length: pad + M * ldc }, () => rand() - 0.5)
          const [rsA, csA] = transA ? [1, M] : [K, 1]
          const [rsB, csB] = transB ? [1, K] : [N, 1]
          const C = C0.slice()
          gemm.gemm(A, pad, rsA, csA, B, pad, rsB, csB, C, pad, ldc, M, N, K, acc)
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let s = acc ? C0[pad + i * ldc + j]! : 0
              for (let k = 0; k < K; k++) s += A[pad + i * rsA + k * csA]! * B[pad + k * rsB + j * csB]!
              const got = C[pad + i * ldc + j]!
              if (!(Math.abs(got - s) <= 1e-5 * Math.sqrt(K) + 1e-4 * Math.abs(s))) throw new Error(`C[${i},${j}] ${got} vs ${s}`)
            }
          }
          // the padding between rows of C is untouched
          for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) expect(C[pad + i * ldc + j]).toBe(C0[pad + i * ldc + j]!)
        }
      ),
      { numRuns: 60 }
    )
  })
})

/** The same op on both engines from the same data, with a lowered binding limit on both. */
const both = async (maxBindingBytes: number, shapes: readonly (readonly number[])[], f: (e: Engine, xs: ReturnType<Engine["fromArray"]>[]) => ReturnType<Engine["fromArray"]>) => {
  const rand = rng(7)
  const data = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1))
  const results: { y: Float32Array; grads: Float32Array[] }[] = []
  for (const e of [makeEngine(new CpuBackend(maxBindingBytes)), makeEngine(new FastCpuBackend(maxBindingBytes))]) {
    const xs = shapes.map((s, i) => e.fromArray(data[i]!, s, { requiresGrad: true }))
    const y = f(e, xs)
    const out = await e.read(y)
    const w = e.fromArray(Float32Array.from({ length: y.size }, (_, i) => Math.sin(i)), y.shape)
    e.backward(e.sum(e.mul(y, w)))
    results.push({ y: out, grads: await Promise.all(xs.map((x) => e.read(x.grad!))) })
  }
  const [want, got] = results as [(typeof results)[0], (typeof results)[0]]
  close("output", got.y, want.y)
  want.grads.forEach((g, i) => close(`grad ${i}`, got.grads[i]!, g))
}

describe("model-sized shapes", () => {
  test("linear layer [2,40,96] x [200,96]^T with the weight split over 5 chunks", async () => {
    await both(40 * 96 * 4, [[2, 40, 96], [200, 96]], (e, [x, w]) => e.matmul(x!, w!, { transB: true }))
  }, 60_000)
  test("attention [2,48,6,32] with 2 kv heads (GQA), one binding and chunked", async () => {
    for (const limit of [1 << 27, 48 * 6 * 32 * 4]) {
      await both(limit, [[2, 48, 6, 32], [2, 48, 2, 32], [2, 48, 2, 32]], (e, [q, k, v]) => e.attention(q!, k!, v!))
    }
  }, 60_000)
})

test("three LLaMA training steps: same losses and parameters as the reference", async () => {
  const spec = debugSpec
  const ids = randomIds(4 * spec.seqLen, spec.vocabSize, 5)
  const runs: { losses: number[]; params: Map<string, Float32Array> }[] = []
  for (const e of [ref, fast]) {
    const trainer = Trainer.create(e, spec, initLlamaParameters(spec, 3), { microBatch: 2, lr: 1e-3 })
    const losses: number[] = []
    for (let i = 0; i < 3; i++) losses.push(await trainer.step(ids, [4, spec.seqLen]))
    runs.push({ losses, params: await trainer.readParameters() })
    trainer.dispose()
  }
  const [want, got] = runs as [(typeof runs)[0], (typeof runs)[0]]
  got.losses.forEach((l, i) => expect(Math.abs(l - want.losses[i]!)).toBeLessThan(1e-4 + 1e-4 * Math.abs(want.losses[i]!)))
  for (const [name, w] of want.params) close(name, got.params.get(name)!, w, 2e-4, 2e-3)
}, 60_000)
