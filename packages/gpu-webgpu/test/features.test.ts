/**
 * Optional device features (shader-f16, subgroups): what each backend reports, the option that
 * turns them off, and the subgroup row reductions (rmsnorm, softmax, cross-entropy and their
 * gradients) against the CPU reference and against the shared-memory kernels on the same device,
 * within the op tests' tolerance |gpu - cpu| <= 1e-4 + 1e-3 * |cpu| (fp32, summation orders differ).
 * Rows run up to 300 wide, so a row spans several subgroups (lavapipe's are 8 lanes) and a
 * workgroup of 64 holds several of them.
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { BackendError, CpuBackend, FastCpuBackend, makeEngine, WebGpuBackend, type Engine } from "../src/index.ts"
import { defineKernel } from "../src/backend.ts"
import { agreesWith, cases, expectClose, makeData, op, rng, runCase, type OpCase } from "./opsCases.ts"
import { gpuEngine, gpuFeatureTest, gpuTest } from "./opsGpuEngine.ts"

const cpu = makeEngine(new CpuBackend())
const gpu = await gpuEngine()
const gpuShared = await gpuEngine({ features: { subgroups: false } })

const f = (shape: readonly number[], lo = -3, hi = 3) => ({ shape, dtype: "f32" as const, lo, hi, grad: true })
const width = fc.integer({ min: 1, max: 300 })

const wideRowCases: readonly OpCase<unknown>[] = [
  op({
    name: "rmsnorm, wide rows",
    params: fc.record({ N: fc.integer({ min: 1, max: 4 }), D: width }),
    inputs: ({ N, D }) => [{ ...f([N, D], -1, 1), awayFromZero: 0.25 }, f([D], 0.5, 1.5)],
    forward: (e, [x, w]) => e.rmsnorm(x!, w!, 1e-5)
  }),
  op({
    name: "softmax, wide rows",
    params: fc.record({ N: fc.integer({ min: 1, max: 4 }), D: width }),
    inputs: ({ N, D }) => [f([N, D])],
    forward: (e, [x]) => e.softmax(x!)
  }),
  op({
    name: "crossEntropy, wide rows",
    params: fc.record({ N: fc.integer({ min: 1, max: 4 }), V: fc.integer({ min: 2, max: 300 }) }),
    inputs: ({ N, V }) => [f([N, V]), { shape: [N], dtype: "i32" as const, lo: 0, hi: V, grad: false }],
    forward: (e, [x, t]) => e.crossEntropy(x!, t!, -100)
  })
]
const rowCases = [...cases.filter((c) => /^(rmsnorm|softmax|crossEntropy)/.test(c.name)), ...wideRowCases]

const features = (e: Engine) => e.backend.features

describe("features", () => {
  test("the CPU reference emulates both; the fast CPU backend claims neither (its fast kernels are the f32, shared-memory ones)", () => {
    expect(features(cpu)).toEqual({ shaderF16: true, subgroups: true })
    const fast = new FastCpuBackend()
    expect(fast.features).toEqual({ shaderF16: false, subgroups: false })
    fast.destroy()
  })

  gpuTest(gpu)("WebGPU has what the device was created with; lavapipe offers both", async (e) => {
    const device = (e.backend as WebGpuBackend).device
    expect(features(e)).toEqual({ shaderF16: device.features.has("shader-f16"), subgroups: device.features.has("subgroups") })
    if (/llvmpipe/.test(e.backend.name) && process.env["COVENANT_WEBGPU_DISABLE"] === undefined) {
      expect(features(e)).toEqual({ shaderF16: true, subgroups: true })
    }
  })

  gpuTest(gpuShared)("the features option turns subgroups off on the same device", async (e) => {
    expect(features(e).subgroups).toBe(false)
  })

  gpuTest(gpuShared)("a kernel that enables a feature the backend lacks fails with a BackendError naming it", async (e) => {
    const k = defineKernel({ name: "needsSubgroups", bindings: [], params: [], enable: ["subgroups"], wgsl: "@compute @workgroup_size(1) fn main() {}", cpu: () => {} })
    expect(() => e.backend.run({ kernel: k, bindings: {}, params: {}, workgroups: [1, 1, 1] })).toThrow(BackendError)
    expect(() => e.backend.run({ kernel: k, bindings: {}, params: {}, workgroups: [1, 1, 1] })).toThrow(/subgroups/)
  })
})

describe("row reductions with and without subgroups equal the CPU reference", () => {
  for (const c of rowCases) {
    gpuFeatureTest(gpu, "subgroups")(`${c.name}, subgroup kernels`, agreesWith(cpu, c, ["webgpu subgroups", "cpu"]), 60_000)
    gpuTest(gpuShared)(`${c.name}, shared-memory kernels`, agreesWith(cpu, c, ["webgpu shared", "cpu"]), 60_000)
  }
})

describe("subgroup and shared-memory kernels agree on one device", () => {
  for (const c of wideRowCases) {
    gpuFeatureTest(gpu, "subgroups")(c.name, async (e) => {
      if ("_tag" in gpuShared) throw new Error(gpuShared.message)
      const shared = gpuShared
      await fc.assert(
        fc.asyncProperty(c.params, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (p, seed) => {
          const rand = rng(seed)
          const data = c.inputs(p).map((s) => makeData(s, rand))
          const sub = await runCase(e, c, p, data, seed)
          const ref = await runCase(shared, c, p, data, seed)
          expectClose(["subgroups", "shared"], `${c.name} ${JSON.stringify(p)} output`, sub.y, ref.y)
          ref.grads.forEach((g, i) => {
            if (g !== null) expectClose(["subgroups", "shared"], `${c.name} grad ${i}`, sub.grads[i]!, g)
          })
        }),
        { numRuns: 10 }
      )
    }, 60_000)
  }
})

