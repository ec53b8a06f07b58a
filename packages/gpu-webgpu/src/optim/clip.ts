/** Global gradient norm over all parameters and torch-style clipping (coef = max/(norm+1e-6)). */
import type { Runtime, Tensor } from "../tensor.ts"
import { mapKernel } from "../ops/kernel.ts"
import { sumAllInto } from "../ops/util.ts"

export const scaleInPlaceKernel = mapKernel({
  name: "scaleInPlace",
  inputs: [],
  outputs: ["y"],
  params: [["s", "f32"]],
  body: "y[i] = y[i] * P.s;",
  cpu: (i, _bi, v, p) => {
    v.y[i] = v.y[i]! * p.s
  }
})

export const gradNorm = async (rt: Runtime, params: readonly Tensor[]): Promise<number> => {
  const acc = rt.empty([])
  try {
    let first = true
    for (const p of params) {
      if (p.grad === null) continue
      sumAllInto(rt, p.grad, acc, 1, !first, true)
      first = false
    }
    if (first) return 0
    const [sq] = await acc.read()
    return Math.sqrt(sq!)
  } finally {
    acc.dispose()
  }
}

/** Scales every gradient in place when the global norm exceeds `maxNorm`; returns the norm before clipping. */
export const clipGradNorm = async (rt: Runtime, params: readonly Tensor[], maxNorm: number): Promise<number> => {
  const norm = await gradNorm(rt, params)
  const coef = maxNorm / (norm + 1e-6)
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad
      if (g === null) continue
      for (let c = 0; c < g.chunks; c++) {
        rt.run1d(scaleInPlaceKernel, { y: g.binding(c) }, { n: g.chunkSize(c), bcast: 0, s: coef }, g.chunkSize(c))
      }
    }
  }
  return norm
}
