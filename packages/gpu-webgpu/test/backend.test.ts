/**
 * Backend contract and engine lifecycle on both backends: byte-exact upload/download across
 * chunk boundaries, no buffer leaks over repeated training steps, tidy scopes, typed errors,
 * AdamW against an independent float64 transcription of torch.optim.AdamW, grad-norm clipping.
 */
import { describe, expect, test } from "bun:test"
import { AdamWState, CpuBackend, ShapeError, TensorError, WebGpuBackend, makeEngine, type Engine } from "../src/index.ts"
import { rng } from "./opsCases.ts"
import { gpuEngine, gpuTest } from "./opsGpuEngine.ts"

const gpu = await gpuEngine()
const gpuSmall = await gpuEngine({ maxBindingBytes: 1024 })

type Runner = (name: string, fn: (e: Engine) => Promise<void>, timeout?: number) => void
const cpuTest: Runner = (name, fn, timeout) => test(name, () => fn(makeEngine(new CpuBackend())), timeout)
const cpuSmallTest: Runner = (name, fn, timeout) => test(name, () => fn(makeEngine(new CpuBackend(1024))), timeout)

const suites: ReadonlyArray<readonly [string, Runner, Runner]> = [
  ["cpu", cpuTest, cpuSmallTest],
  ["webgpu", gpuTest(gpu), gpuTest(gpuSmall)]
]

/** One small step of everything a trainer does; returns the loss value. */
const step = async (e: Engine, params: ReturnType<typeof makeParams>, state: AdamWState, t: number): Promise<number> => {
  const { emb, w1, norm } = params
  const ids = e.fromArray(Int32Array.from([1, 4, 2, 7, 3, 3]), [6])
  const targets = e.fromArray(Int32Array.from([4, 2, 7, -100, 3, 1]), [6])
  const loss = e.tidy(() => {
    const x = e.rmsnorm(e.embedding(emb, ids), norm, 1e-6)
    const q = e.rope(e.reshape(e.matmul(x, w1, { transB: true }), [1, 6, 2, 4]), 10000)
    const a = e.reshape(e.attention(q, q, q), [6, 8])
    const h = e.swiglu(a, e.silu(a))
    return e.crossEntropy(e.matmul(h, emb, { transB: true }), targets)
  })
  const [v] = await e.read(loss)
  e.backward(loss)
  loss.dispose()
  await e.clipGradNorm([emb, w1, norm], 1.0)
  e.adamwStep([emb, w1, norm], state, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: t })
  e.zeroGrad([emb, w1, norm])
  ids.dispose()
  targets.dispose()
  return v!
}

const makeParams = (e: Engine) => {
  const rand = rng(3)
  const r = (n: number) => Float32Array.from({ length: n }, () => rand() - 0.5)
  return {
    emb: e.fromArray(r(10 * 8), [10, 8], { requiresGrad: true }),
    w1: e.fromArray(r(8 * 8), [8, 8], { requiresGrad: true }),
    norm: e.fromArray(new Float32Array(8).fill(1), [8], { requiresGrad: true })
  }
}

for (const [backend, run, runSmall] of suites) {
  describe(`${backend} backend`, () => {
    runSmall("upload/download round-trip bytes across chunk boundaries at any offset", async (e) => {
      const b = e.backend
      const buf = b.alloc(4000, 1000)
      const data = Int32Array.from({ length: 1000 }, (_, i) => i * 7919 - 3)
      b.upload(buf, data)
      expect(new Int32Array(await b.download(buf))).toEqual(data)
      b.upload(buf, Int32Array.from([-1, -2, -3]), 996) // straddles the first chunk boundary
      const mid = new Int32Array(await b.download(buf, 992, 20))
      expect([...mid]).toEqual([data[248]!, -1, -2, -3, data[252]!])
      b.free(buf)
      expect(b.liveBuffers()).toBe(0)
    })

    run("training steps leak no buffers and the loss goes down", async (e) => {
      const params = makeParams(e)
      const state = new AdamWState()
      const losses: number[] = []
      losses.push(await step(e, params, state, 1))
      const live = e.backend.liveBuffers()
      for (let t = 2; t <= 15; t++) {
        losses.push(await step(e, params, state, t))
        expect(e.backend.liveBuffers()).toBe(live)
      }
      expect(losses[14]!).toBeLessThan(losses[0]! * 0.9)
      state.dispose()
      for (const p of Object.values(params)) p.dispose()
    }, 60_000)

    run("tidy keeps returned tensors and grads, frees the rest", async (e) => {
      const base = e.backend.liveBuffers()
      const w = e.fromArray(Float32Array.from([1, 2, 3, 4]), [2, 2], { requiresGrad: true })
      const kept = e.tidy(() => {
        const y = e.matmul(w, w)
        e.backward(e.sum(e.mul(y, y)))
        return e.noGrad(() => e.scale(w, 2))
      })
      expect([...(await e.read(kept))]).toEqual([2, 4, 6, 8])
      // d/dw sum((w w)^2) = 2 (Y w^T + w^T Y) with Y = w w = [[7,10],[15,22]]:
      // Y w^T = [[27,61],[59,133]], w^T Y = [[52,76],[74,108]]
      expect([...(await e.read(w.grad!))]).toEqual([2 * (27 + 52), 2 * (61 + 76), 2 * (59 + 74), 2 * (133 + 108)])
      kept.dispose()
      w.grad!.dispose()
      w.dispose()
      expect(e.backend.liveBuffers()).toBe(base)
    })

    run("bad input gets typed errors", async (e) => {
      const a = e.zeros([2, 3])
      const b = e.zeros([2, 3])
      expect(() => e.matmul(a, b)).toThrow(ShapeError)
      expect(() => e.add(a, e.zeros([2]))).toThrow(ShapeError)
      expect(() => e.fromArray(new Float32Array(5), [2, 3])).toThrow(ShapeError)
      expect(() => e.reshape(a, [4, 2])).toThrow(ShapeError)
      expect(() => e.attention(e.zeros([1, 2, 3, 4]), e.zeros([1, 2, 2, 4]), e.zeros([1, 2, 2, 4]))).toThrow(ShapeError)
      a.dispose()
      await expect(a.read()).rejects.toBeInstanceOf(TensorError)
      expect(() => e.backward(e.sum(b))).toThrow(TensorError)
    })

    run("AdamW matches a float64 transcription of torch.optim.AdamW", async (e) => {
      const rand = rng(11)
      const n = 50
      const p0 = Float64Array.from({ length: n }, () => rand() * 2 - 1)
      const grads = Array.from({ length: 4 }, () => Float64Array.from({ length: n }, () => rand() * 2 - 1))
      const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }
      const p = Float64Array.from(p0)
      const m = new Float64Array(n)
      const v = new Float64Array(n)
      grads.forEach((g, s) => {
        const t = s + 1
        for (let i = 0; i < n; i++) {
          p[i] = p[i]! * (1 - hp.lr * hp.weightDecay)
          m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g[i]!
          v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g[i]! ** 2
          const mhat = m[i]! / (1 - hp.beta1 ** t)
          const vhat = v[i]! / (1 - hp.beta2 ** t)
          p[i] = p[i]! - (hp.lr * mhat) / (Math.sqrt(vhat) + hp.eps)
        }
      })
      const param = e.fromArray(Float32Array.from(p0), [n], { requiresGrad: true })
      const state = new AdamWState()
      for (const [s, g] of grads.entries()) {
        param.grad = e.fromArray(Float32Array.from(g), [n])
        e.adamwStep([param], state, { ...hp, step: s + 1 })
        e.zeroGrad([param])
      }
      const got = await e.read(param)
      for (let i = 0; i < n; i++) expect(Math.abs(got[i]! - p[i]!)).toBeLessThan(1e-6 + 1e-5 * Math.abs(p[i]!))
      state.dispose()
      param.dispose()
    })

    run("sum and grad norm of 200k elements go through per-workgroup partials", async (e) => {
      const n = 200_003
      const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) + 0.25)
      let s = 0
      let sq = 0
      for (const v of x) {
        s += v
        sq += v * v
      }
      const t = e.fromArray(x, [n], { requiresGrad: true })
      const total = e.noGrad(() => e.sum(t))
      expect(Math.abs((await e.read(total))[0]! - s)).toBeLessThan(1e-5 * Math.abs(s) + 1e-2)
      t.grad = e.fromArray(x, [n])
      expect(Math.abs((await e.gradNorm([t])) - Math.sqrt(sq))).toBeLessThan(1e-5 * Math.sqrt(sq))
      total.dispose()
      t.grad.dispose()
      t.dispose()
    })

    runSmall("global grad norm and clipping over chunked grads", async (e) => {
      const rand = rng(5)
      const a = Float32Array.from({ length: 700 }, () => rand() * 4 - 2)
      const b = Float32Array.from({ length: 33 }, () => rand() * 4 - 2)
      const pa = e.zeros([700], { requiresGrad: true })
      const pb = e.zeros([33], { requiresGrad: true })
      pa.grad = e.fromArray(a, [700])
      pb.grad = e.fromArray(b, [33])
      let sq = 0
      for (const x of [...a, ...b]) sq += x * x
      const norm = Math.sqrt(sq)
      expect(Math.abs((await e.gradNorm([pa, pb])) - norm)).toBeLessThan(1e-4 * norm)
      expect(Math.abs((await e.clipGradNorm([pa, pb], 1.5)) - norm)).toBeLessThan(1e-4 * norm)
      expect(Math.abs((await e.gradNorm([pa, pb])) - 1.5)).toBeLessThan(1e-4)
      const ga = await e.read(pa.grad)
      expect(Math.abs(ga[10]! - (a[10]! * 1.5) / (norm + 1e-6))).toBeLessThan(1e-5)
      expect(await e.clipGradNorm([pa, pb], 100)).toBeLessThan(1.5 + 1e-4) // no-op under the max
    })
  })
}

gpuTest(gpu)("profiling with timestamp queries attributes GPU time to each kernel", async (e) => {
  const b = e.backend
  if (!(b instanceof WebGpuBackend)) throw new Error("expected the WebGPU backend")
  expect(b.startProfiling()).toBe(true)
  const x = e.fromArray(new Float32Array(64 * 64).fill(0.5), [64, 64])
  const y = e.noGrad(() => e.softmax(e.matmul(x, x)))
  expect((await e.read(y))[0]).toBeCloseTo(1 / 64, 6)
  const prof = await b.stopProfiling()
  const names = [...prof.keys()]
  expect(names.some((n) => n.startsWith("matmul"))).toBe(true)
  // the subgroup variant where the device has subgroups (lavapipe does)
  expect(prof.get(b.features.subgroups ? "softmax_subgroup" : "softmax")?.calls).toBe(1)
  for (const { ms } of prof.values()) expect(ms).toBeGreaterThanOrEqual(0)
  x.dispose()
  y.dispose()
})

test("the WebGPU engine runs on a real adapter", () => {
  if ("_tag" in gpu) {
    if (process.env["COVENANT_ALLOW_NO_GPU"] === "1") return
    throw new Error(`${gpu._tag}: ${gpu.message}`)
  }
  expect(gpu.backend.name).toStartWith("webgpu (")
})

test("without a Vulkan driver, acquiring the device fails with NoAdapterError saying what to install", () => {
  const script = `import { Effect } from "effect"
import { acquireDevice } from "./src/webgpu/device.ts"
const r = await Effect.runPromise(Effect.either(acquireDevice))
console.log(JSON.stringify(r._tag === "Left" ? { tag: r.left._tag, message: r.left.message } : { adapter: r.right.adapterDescription }))
process.exit(0)`
  const out = Bun.spawnSync([process.execPath, "-e", script], {
    cwd: `${import.meta.dir}/..`,
    env: { ...process.env, VK_ICD_FILENAMES: "/nonexistent/icd.json", VK_DRIVER_FILES: "/nonexistent/icd.json" }
  })
  const line = out.stdout.toString().trim().split("\n").pop()!
  const result = JSON.parse(line) as { tag?: string; message?: string }
  expect(result.tag).toBe("NoAdapterError")
  expect(result.message).toContain("Mesa >= 25 lavapipe")
  expect(result.message).toContain("bookworm-backports")
}, 30_000)
