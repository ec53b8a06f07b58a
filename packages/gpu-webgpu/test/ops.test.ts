/**
 * CPU reference: every primitive's gradient matches central finite differences.
 * Tolerance: |fd - analytic| <= 5e-3 + 1e-2 * |analytic| (fp32 storage, h = 1e-2).
 */
import { describe, expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, makeEngine, type Tensor } from "../src/index.ts"
import { buildInputs, cases, lossOf, makeData, rng } from "./opsCases.ts"

const e = makeEngine(new CpuBackend())
const H = 1e-2

const lossValue = async (c: (typeof cases)[number], p: unknown, data: ReadonlyArray<Float32Array | Int32Array>, seed: number): Promise<number> => {
  const t = e.noGrad(() =>
    e.tidy(() => {
      const xs = buildInputs(e, c.inputs(p), data)
      return lossOf(e, c.forward(e, xs, p), seed).loss
    })
  )
  const [v] = await e.read(t)
  t.dispose()
  return v!
}

describe("CPU gradients vs finite differences", () => {
  for (const c of cases) {
    test(c.name, async () => {
      await fc.assert(
        fc.asyncProperty(c.params, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (p, seed) => {
          const specs = c.inputs(p)
          const rand = rng(seed)
          const data = specs.map((s) => makeData(s, rand))
          await lossValue(c, p, data, seed) // warms per-shape caches (the rope table) before counting buffers
          const before = e.backend.liveBuffers()
          const grads = await e.tidy(() => {
            const xs = buildInputs(e, specs, data)
            const { loss } = lossOf(e, c.forward(e, xs, p), seed)
            e.backward(loss)
            return xs
          }) as Tensor[]
          const analytic = await Promise.all(grads.map((x) => (x.grad === null ? null : e.read(x.grad))))
          for (const x of grads) {
            x.grad?.dispose()
            x.dispose()
          }
          expect(e.backend.liveBuffers()).toBe(before)
          for (let i = 0; i < specs.length; i++) {
            const an = analytic[i]
            if (!specs[i]!.grad) continue
            expect(an).not.toBeNull()
            const base = data[i] as Float32Array
            for (let probe = 0; probe < Math.min(4, base.length); probe++) {
              const j = Math.floor(rand() * base.length)
              const plus = base.slice()
              plus[j]! += H
              const minus = base.slice()
              minus[j]! -= H
              const dp = data.map((d, k) => (k === i ? plus : d))
              const dm = data.map((d, k) => (k === i ? minus : d))
              const fd = ((await lossValue(c, p, dp, seed)) - (await lossValue(c, p, dm, seed))) / (2 * H)
              const a = an![j]!
              if (Math.abs(fd - a) > 5e-3 + 1e-2 * Math.abs(a)) {
                throw new Error(`${c.name} ${JSON.stringify(p)} input ${i}[${j}]: analytic ${a} vs finite difference ${fd}`)
              }
            }
          }
        }),
        { numRuns: c.runs ?? 12 }
      )
    }, 30_000)
  }
})
