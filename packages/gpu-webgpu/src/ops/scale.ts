/** scale(a, s) = s * a. */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { mapKernel, requireF32 } from "./kernel.ts"

export const scaleKernel = mapKernel({
  name: "scale",
  inputs: ["a"],
  outputs: ["out"],
  params: [["s", "f32"]],
  body: "out[i] = a[i] * P.s;",
  cpu: (i, _bi, v, p) => {
    v.out[i] = v.a[i]! * p.s
  }
})

export const scale = (rt: Runtime, a: Tensor, s: number): Tensor => {
  requireF32("scale", a)
  const out = rt.empty(a.shape, "f32", a)
  for (let c = 0; c < out.chunks; c++) {
    rt.run1d(scaleKernel, { a: a.binding(c), out: out.binding(c) }, { n: out.chunkSize(c), bcast: 0, s }, out.chunkSize(c))
  }
  return rt.record(out, "scale", [a], [], { s })
}

export const scaleRule: DerivativeRule = (rt, g, node) => [scale(rt, g, Number(node.attrs["s"]))]
