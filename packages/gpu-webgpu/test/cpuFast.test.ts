/**
 * The fast CPU backend (src/cpu/fast.ts) vs the CPU reference, in both of its gemm forms: the
 * WebAssembly SIMD kernel, and OpenBLAS through bun:ffi where the machine has the library (else
 * those cases say they are skipped, or run the wasm form under the default label):
 *  - every primitive's forward output and gradients (the shared op cases; only matmul and
 *    attention run different code, the rest checks the dispatch falls through untouched);
 *  - the SIMD gemm directly on strided, transposed, offset, accumulating, ragged operands, and
 *    its threaded form (bitwise equal to one thread);
 *  - matmul and attention at model-sized shapes, including operands split over several chunks,
 *    and T both a multiple of 4 (attention's SIMD block softmax) and not (its JavaScript loops);
 *  - three training steps of a LLaMA (loss and every parameter after the steps);
 *  - the straight-loop element-wise kernels, bitwise (same arithmetic, same order);
 *  - the exp-bound kernels (swiglu, cross-entropy) around the SIMD exp, rmsnorm and AdamW in SIMD, to
 *    1e-6 + 1e-5 * |ref|,
 *    and that exp itself within 4 ulp of Math.exp.
 * Tolerance (fp32, different summation order): |fast - ref| <= 1e-4 + 1e-3 * |ref| per element,
 * 2e-4 + 2e-3 * |ref| for parameters after three AdamW steps.
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, FastCpuBackend, initLlamaParameters, makeEngine, Trainer, type Engine } from "../src/index.ts"
import { WasmGemm } from "../src/cpu/wasmGemm.ts"
import { BlasGemm, type Gemm } from "../src/cpu/blasGemm.ts"
import type { Kernel } from "../src/backend.ts"
import { addKernel, mulKernel, subKernel } from "../src/ops/binary.ts"
import { axpbyKernel, fillKernel } from "../src/ops/util.ts"
import { scaleInPlaceKernel } from "../src/optim/clip.ts"
import { adamwKernel } from "../src/optim/adamw.ts"
import { ropeKernel } from "../src/ops/rope.ts"
import { ceGradKernel, ceRowsKernel } from "../src/ops/crossEntropy.ts"
import { swigluGradKernel, swigluKernel } from "../src/ops/swiglu.ts"
import { WasmExp } from "../src/cpu/wasmExp.ts"
import { rmsnormGradKernel, rmsnormKernel } from "../src/ops/rmsnorm.ts"
import { attentionGradKVKernel, attentionGradQKernel, attentionKernel } from "../src/ops/attention.ts"
import { agreesWith, cases, expectClose, rng } from "./opsCases.ts"
import { debugSpec, randomIds } from "./model-engines.ts"

const ref = makeEngine(new CpuBackend())
// the default fast backend (OpenBLAS where the machine has it) and the WebAssembly one, 2 threads
const fast = makeEngine(new FastCpuBackend(undefined, 2))
const fastWasm = makeEngine(new FastCpuBackend(undefined, 2, "wasm"))
const blasHere = BlasGemm.available()

const close = (what: string, got: Float32Array, want: Float32Array, abs = 1e-4, rel = 1e-3) => expectClose(["fast", "reference"], what, got, want, abs, rel)

test("WebAssembly SIMD runs here (else EngineAuto falls back to the reference)", () => {
  expect(FastCpuBackend.supported()).toBe(true)
})

describe("fast CPU forward and gradients equal the CPU reference", () => {
  for (const [label, eng] of [["wasm", fastWasm], [blasHere ? "openblas" : "default (no OpenBLAS here: wasm)", fast]] as const) for (const c of cases) {
    test(`${c.name} [${label}]`, () => agreesWith(ref, c, ["fast", "reference"])(eng), 60_000)
  }
})

const withEnv = <A>(name: string, value: string, f: () => A): A => {
  const before = process.env[name]
  process.env[name] = value
  try {
    return f()
  } finally {
    if (before === undefined) delete process.env[name]
    else process.env[name] = before
  }
}

describe("SIMD gemm", () => {
  const gemms: ReadonlyArray<readonly [string, () => Gemm]> = [
    ["wasm", () => new WasmGemm()],
    ...(blasHere
      ? [
          ["openblas (odd strides fall back to wasm; these small products on one thread)", () => new BlasGemm(2, new WasmGemm())] as const,
          ["openblas, 2 threads at every size (COVENANT_BLAS_SMALL=0)", () => withEnv("COVENANT_BLAS_SMALL", "0", () => new BlasGemm(2, new WasmGemm()))] as const
        ]
      : [])
  ]
  if (!blasHere) test.skip("openblas gemm (skipped: no OpenBLAS loaded: not Bun, COVENANT_BLAS=0, or no library; apt-get install libopenblas0-pthread)", () => {})
  for (const [label, make] of gemms) test(`${label}: strided, transposed, offset and accumulating operands, ragged M/N/K, vs a float64 loop`, () => {
    const gemm = make()
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
          // without accumulation the old contents must not leak in, not even NaNs
          if (!acc) for (let i = 0; i < M; i++) C0.fill(NaN, pad + i * ldc, pad + i * ldc + N)
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

describe("threaded SIMD gemm", () => {
  test("3 threads give bitwise the single-thread result (each output is one thread's strip, same k order)", async () => {
    const one = new WasmGemm(1)
    const three = new WasmGemm(3)
    try {
      for (let i = 0; i < 200 && three.readyWorkers < 2; i++) await Bun.sleep(25)
      expect(three.readyWorkers).toBe(2)
      for (const [M, N, K, transB] of [[130, 300, 77, false], [64, 1000, 520, true], [257, 64, 64, false]] as const) {
        const rand = rng(M + N + K)
        const A = Float32Array.from({ length: M * K }, () => rand() - 0.5)
        const B = Float32Array.from({ length: K * N }, () => rand() - 0.5)
        const [rsB, csB] = transB ? [1, K] : [N, 1]
        const c1 = new Float32Array(M * N)
        const c3 = new Float32Array(M * N)
        one.gemm(A, 0, K, 1, B, 0, rsB, csB, c1, 0, N, M, N, K, false)
        three.gemm(A, 0, K, 1, B, 0, rsB, csB, c3, 0, N, M, N, K, false)
        expect(c3).toEqual(c1)
      }
    } finally {
      three.close()
    }
  })
})

/** The same op on both engines from the same data, with a lowered binding limit on both. */
const both = async (maxBindingBytes: number, shapes: readonly (readonly number[])[], f: (e: Engine, xs: ReturnType<Engine["fromArray"]>[]) => ReturnType<Engine["fromArray"]>) => {
  const rand = rng(7)
  const data = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1))
  const results: { y: Float32Array; grads: Float32Array[] }[] = []
  for (const e of [makeEngine(new CpuBackend(maxBindingBytes)), makeEngine(new FastCpuBackend(maxBindingBytes)), makeEngine(new FastCpuBackend(maxBindingBytes, 2, "wasm"))]) {
    const xs = shapes.map((s, i) => e.fromArray(data[i]!, s, { requiresGrad: true }))
    const y = f(e, xs)
    const out = await e.read(y)
    const w = e.fromArray(Float32Array.from({ length: y.size }, (_, i) => Math.sin(i)), y.shape)
    e.backward(e.sum(e.mul(y, w)))
    results.push({ y: out, grads: await Promise.all(xs.map((x) => e.read(x.grad!))) })
  }
  const [want, ...gots] = results as [(typeof results)[0], ...(typeof results)]
  for (const got of gots) {
    close("output", got.y, want.y)
    want.grads.forEach((g, i) => close(`grad ${i}`, got.grads[i]!, g))
  }
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
  test("attention [2,50,4,16] with 2 kv heads: T not a multiple of 4 (the JavaScript softmax, not the SIMD block one)", async () => {
    await both(1 << 27, [[2, 50, 4, 16], [2, 50, 2, 16], [2, 50, 2, 16]], (e, [q, k, v]) => e.attention(q!, k!, v!))
  }, 60_000)
})

test("three LLaMA training steps: same losses and parameters as the reference", async () => {
  const spec = debugSpec
  const ids = randomIds(4 * spec.seqLen, spec.vocabSize, 5)
  const runs: { losses: number[]; params: Map<string, Float32Array> }[] = []
  for (const e of [ref, fast, fastWasm]) {
    const trainer = Trainer.create(e, spec, initLlamaParameters(spec, 3), { microBatch: 2, lr: 1e-3 })
    const losses: number[] = []
    for (let i = 0; i < 3; i++) losses.push(await trainer.step(ids, [4, spec.seqLen]))
    runs.push({ losses, params: await trainer.readParameters() })
    trainer.dispose()
  }
  const [want, ...gots] = runs as [(typeof runs)[0], ...(typeof runs)]
  for (const got of gots) {
    got.losses.forEach((l, i) => expect(Math.abs(l - want.losses[i]!)).toBeLessThan(1e-4 + 1e-4 * Math.abs(want.losses[i]!)))
    for (const [name, w] of want.params) close(name, got.params.get(name)!, w, 2e-4, 2e-3)
  }
}, 60_000)

type KernelCase = readonly [Kernel, Readonly<Record<string, number>>, Readonly<Record<string, number>>]

/** Inputs of a kernel case: targets `t` (some ignored), `count` 7, adamw's `v` non-negative, else `data`. */
const kernelInputs = (kernel: Kernel, sizes: Readonly<Record<string, number>>, data: (len: number) => Float32Array) =>
  Object.entries(sizes).map(([name, len]) => [
    name,
    name === "t" ? Int32Array.from({ length: len }, (_, i) => (i % 4 === 1 ? -100 : (i * 37) % 100))
    : name === "count" ? new Float32Array([7])
    : kernel.name === "adamw" && name === "v" ? data(len).map(Math.abs)
    : data(len)
  ] as const)

/** Every binding after running `kernel` from `inputs`, on the reference [0] and the fast backend [1]. */
const runBoth = async (kernel: Kernel, params: Readonly<Record<string, number>>, inputs: ReadonlyArray<readonly [string, Float32Array | Int32Array]>) => {
  const outs: Float32Array[][] = []
  for (const backend of [new CpuBackend(), new FastCpuBackend(undefined, 1)]) {
    const bufs = inputs.map(([name, d]) => {
      const buf = backend.alloc(d.byteLength)
      backend.upload(buf, d)
      return [name, buf] as const
    })
    backend.run({ kernel, bindings: Object.fromEntries(bufs.map(([name, buf]) => [name, { buf, chunk: 0 }])), params, workgroups: [1, 1, 1] })
    outs.push(await Promise.all(bufs.map(async ([, buf]) => new Float32Array(await backend.download(buf)))))
  }
  return outs
}

describe("element-wise fast kernels are bitwise equal to their references", () => {
  const n = 1000
  const rand = rng(11)
  const data = (len: number) => Float32Array.from({ length: len }, () => rand() * 2 - 1)
  const kernels: ReadonlyArray<KernelCase> = [
    // add/sub/mul without broadcast: SIMD from 64 elements (999: not a multiple of 4), loops below
    [addKernel, { a: n, b: n, out: n }, { n, bcast: 0 }],
    [subKernel, { a: n, b: n, out: n }, { n: 999, bcast: 0 }],
    [addKernel, { a: 50, b: 50, out: 50 }, { n: 50, bcast: 0 }],
    [addKernel, { a: n, b: 40, out: n }, { n, bcast: 40 }],
    [subKernel, { a: n, b: 40, out: n }, { n, bcast: 40 }],
    [mulKernel, { a: n, b: n, out: n }, { n, bcast: 0 }],
    [fillKernel, { out: n }, { n: 999, bcast: 0, value: 0.3 }],
    [axpbyKernel, { x: n, y: n }, { n, bcast: 0, alpha: 0.7, beta: 0.9 }],
    [axpbyKernel, { x: n, y: n }, { n, bcast: 0, alpha: 1.3, beta: 0 }],
    [scaleInPlaceKernel, { y: n }, { n, bcast: 0, s: 0.37 }],
    // [2 batches, T 5, H 4, hd 10] in a chunk starting at row 3, forward and inverse rotation
    [ropeKernel, { x: 400, table: 5 * 5 * 2, out: 400 }, { n: 360, T: 5, H: 4, hd: 10, sign: 1, row0: 3 }],
    [ropeKernel, { x: 400, table: 5 * 5 * 2, out: 400 }, { n: 400, T: 5, H: 4, hd: 10, sign: -1, row0: 0 }]
  ]
  for (const [kernel, sizes, params] of kernels) {
    test(`${kernel.name} ${JSON.stringify(params)}`, async () => {
      const inputs = kernelInputs(kernel, sizes, data)
      const [want, got] = await runBoth(kernel, params, inputs)
      // compared as bit patterns (the i32 targets read as f32 are NaNs)
      want!.forEach((w, i) => expect(new Uint32Array(got![i]!.buffer)).toEqual(new Uint32Array(w.buffer)))
      // and the kernel wrote something
      expect(want!.some((o, i) => !new Uint32Array(o.buffer).every((x, j) => x === new Uint32Array(inputs[i]![1].buffer)[j]))).toBe(true)
    })
  }
})

describe("exp-bound and SIMD fast kernels agree with their references to fp32 rounding", () => {
  const rand = rng(12)
  // wide logits/gates (-30..30), so the exp sees large and tiny values; sizes not multiples of 4
  const data = (len: number) => Float32Array.from({ length: len }, () => (rand() * 2 - 1) * 30)
  const n = 1001
  const kernels: ReadonlyArray<KernelCase> = [
    [swigluKernel, { gate: n, up: n, out: n }, { n, bcast: 0 }],
    [swigluGradKernel, { gate: n, up: n, g: n, dgate: n, dup: n }, { n, bcast: 0 }],
    // 10 rows of V 100 from row 2 (a later chunk's rows); targets (i32 slot t) include ignored ones;
    // V 100 runs the SIMD rows (V a multiple of 4), V 99 the loops around the SIMD exp
    [ceRowsKernel, { x: 1000, t: 12, lse: 12, loss: 12, valid: 12 }, { rows: 10, row0: 2, V: 100 }],
    [ceRowsKernel, { x: 990, t: 12, lse: 12, loss: 12, valid: 12 }, { rows: 10, row0: 1, V: 99 }],
    [ceGradKernel, { x: 1000, t: 12, lse: 12, g: 1, count: 1, dx: 1000 }, { n: 1000, row0: 2, V: 100 }],
    [ceGradKernel, { x: 1000, t: 12, lse: 12, g: 1, count: 1, dx: 1000 }, { n: 1000, row0: 0, V: 99 }],
    // rmsnorm in SIMD (D a multiple of 4; rstd written / read from row 2), and D 50 (the reference)
    [rmsnormKernel, { x: 1000, w: 100, out: 1000, rstd: 12 }, { rows: 10, row0: 2, D: 100, eps: 1e-5 }],
    [rmsnormGradKernel, { x: 1000, w: 100, g: 1000, rstd: 12, dx: 1000, gxr: 1000 }, { rows: 10, row0: 2, D: 100 }],
    [rmsnormKernel, { x: 1000, w: 50, out: 1000, rstd: 22 }, { rows: 20, row0: 2, D: 50, eps: 1e-5 }],
    // AdamW in SIMD (n not a multiple of 4)
    [adamwKernel, { g: n, p: n, m: n, v: n }, { n, bcast: 0, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: 0.1, bc1: 0.19, sqrtBc2: Math.sqrt(0.0975) }]
  ]
  for (const [kernel, sizes, params] of kernels) {
    test(`${kernel.name} ${JSON.stringify(params)}`, async () => {
      const inputs = kernelInputs(kernel, sizes, data)
      const [want, got] = await runBoth(kernel, params, inputs)
      want!.forEach((w, i) => {
        if (inputs[i]![0] === "t") return
        close(`${kernel.name} ${inputs[i]![0]}`, new Float32Array(got![i]!.buffer), new Float32Array(w.buffer), 1e-6, 1e-5)
      })
      expect(want!.some((o, i) => !new Uint32Array(o.buffer).every((x, j) => x === new Uint32Array(inputs[i]![1].buffer)[j]))).toBe(true)
    })
  }

  test("the SIMD exp and sigmoid: within 4 ulp of Math.exp over the f32 range, 0/huge beyond, NaN kept", () => {
    const w = new WasmExp()
    const xs = Float32Array.from({ length: 20_003 }, (_, i) => -87 + (175 * i) / 20_002)
    for (const [mode, f] of [["exp", Math.exp], ["sigmoid", (x: number) => 1 / (1 + Math.exp(-x))]] as const) {
      const v = w.view(xs.length)
      v.set(xs)
      w[mode](xs.length)
      for (let i = 0; i < xs.length; i++) {
        const want = Math.fround(f(xs[i]!))
        if (want < 1e-37) continue
        const ulp = Math.fround(want * (1 + 2 ** -23)) - want || 2 ** -149
        if (!(Math.abs(v[i]! - want) <= 4 * Math.max(ulp, want * 2 ** -24))) throw new Error(`${mode}(${xs[i]}) = ${v[i]}, want ${want}`)
      }
      const edge = Float32Array.of(-1000, -Infinity, 0, 1000, NaN)
      const e = w.view(edge.length)
      e.set(edge)
      w[mode](edge.length)
      const got = Array.from(e.subarray(0, edge.length))
      expect(got[0]!).toBeLessThan(mode === "exp" ? 1.2e-38 : 1e-38)
      expect(got[1]!).toBeLessThan(1.2e-38)
      expect(got[2]).toBe(mode === "exp" ? 1 : 0.5)
      expect(got[3]!).toBeGreaterThan(mode === "exp" ? 1e38 : 0.999)
      expect(got[4]).toBeNaN()
    }
  })
})

describe("attention backward: gradKV reuses gradQ's score blocks only when its inputs are unchanged", () => {
  // [B 2, T 12, H 4, Hkv 2, hd 8]: forward for L and o, then gradQ, then (maybe something) gradKV
  const [B, T, H, Hkv, hd] = [2, 12, 4, 2, 8]
  const params = { rows: B * T * H, T, H, Hkv, hd, scale: 1 / Math.sqrt(hd) }
  const rand = rng(21)
  const data = (len: number) => Float32Array.from({ length: len }, () => rand() * 2 - 1)
  const q = data(B * T * H * hd)
  const k = data(B * T * Hkv * hd)
  const v = data(B * T * Hkv * hd)
  const dO = data(B * T * H * hd)
  const dO2 = data(B * T * H * hd)
  const run = async (backend: CpuBackend, between: "nothing" | "upload dO" | "a dispatch") => {
    const sizes = { q: q.length, k: k.length, v: v.length, out: q.length, L: B * T * H, dO: q.length, Drow: B * T * H, dq: q.length, dk: k.length, dv: v.length, x: 4 }
    const bufs = Object.fromEntries(Object.entries(sizes).map(([name, n]) => [name, backend.alloc(n * 4)]))
    for (const [name, d] of [["q", q], ["k", k], ["v", v], ["dO", dO]] as const) backend.upload(bufs[name]!, d)
    const dispatch = (kernel: Kernel, names: readonly string[], rename: Readonly<Record<string, string>> = {}, p: Readonly<Record<string, number>> = params) =>
      backend.run({ kernel, bindings: Object.fromEntries(names.map((n) => [n, { buf: bufs[rename[n] ?? n]!, chunk: 0 }])), params: p, workgroups: [1, 1, 1] })
    dispatch(attentionKernel, ["q", "k", "v", "out", "L"])
    dispatch(attentionGradQKernel, ["q", "k", "v", "o", "dO", "L", "Drow", "dq"], { o: "out" })
    if (between === "upload dO") backend.upload(bufs["dO"]!, dO2)
    if (between === "a dispatch") dispatch(scaleInPlaceKernel, ["y"], { y: "dO" }, { n: dO.length, bcast: 0, s: -0.5 })
    dispatch(attentionGradKVKernel, ["q", "k", "v", "dO", "L", "Drow", "dk", "dv"])
    return Promise.all(["dq", "dk", "dv"].map(async (n) => new Float32Array(await backend.download(bufs[n]!))))
  }
  for (const between of ["nothing", "upload dO", "a dispatch"] as const) {
    test(`with ${between} between gradQ and gradKV`, async () => {
      const want = await run(new CpuBackend(), between)
      const got = await run(new FastCpuBackend(undefined, 1), between)
      want.forEach((w, i) => close(["dq", "dk", "dv"][i]!, got[i]!, w))
    })
  }
})
