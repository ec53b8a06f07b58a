/**
 * WebGPU (Dawn) vs the CPU reference: forward outputs and gradients of every primitive agree
 * within |gpu - cpu| <= 1e-4 + 1e-3 * |cpu| (fp32; summation orders differ).
 */
import { describe, expect } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, makeEngine, type Engine } from "../src/index.ts"
import { buildInputs, cases, lossOf, makeData, rng } from "./opsCases.ts"
import { gpuEngine, gpuTest } from "./opsGpuEngine.ts"

const cpu = makeEngine(new CpuBackend())
const gpu = await gpuEngine()
const gtest = gpuTest(gpu)
// lavapipe defaults to the register-blocked kernels; the tiled family (real GPUs) is forced here
const gpuTiled = await gpuEngine({ kernels: "tiled" })

const runCase = async (e: Engine, c: (typeof cases)[number], p: unknown, data: ReadonlyArray<Float32Array | Int32Array>, seed: number) => {
  const specs = c.inputs(p)
  const xs = buildInputs(e, specs, data)
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

const close = (what: string, got: Float32Array, want: Float32Array) => {
  expect(got.length).toBe(want.length)
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-4 + 1e-3 * Math.abs(want[i]!))) {
      throw new Error(`${what}[${i}]: webgpu ${got[i]} vs cpu ${want[i]}`)
    }
  }
}

const check = (c: (typeof cases)[number]) => async (e: Engine) => {
  await fc.assert(
    fc.asyncProperty(c.params, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (p, seed) => {
      const rand = rng(seed)
      const data = c.inputs(p).map((s) => makeData(s, rand))
      const want = await runCase(cpu, c, p, data, seed)
      const got = await runCase(e, c, p, data, seed)
      close(`${c.name} ${JSON.stringify(p)} output`, got.y, want.y)
      want.grads.forEach((g, i) => {
        if (g === null) expect(got.grads[i]).toBeNull()
        else close(`${c.name} ${JSON.stringify(p)} grad ${i}`, got.grads[i]!, g)
      })
    }),
    { numRuns: c.runs ?? 10 }
  )
}

describe("WebGPU forward and gradients equal the CPU reference", () => {
  for (const c of cases) gtest(c.name, check(c), 60_000)
  for (const c of cases.filter((c) => c.name.startsWith("matmul") || c.name.startsWith("attention"))) {
    gpuTest(gpuTiled)(`${c.name}, tiled kernel`, check(c), 60_000)
  }
})
