/** silu(x) = x * sigmoid(x); d/dx = s * (1 + x * (1 - s)). */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { mapKernel, requireF32, sigmoid, sigmoidWgsl } from "./kernel.ts"
import { withLayoutOf } from "./util.ts"

export const siluKernel = mapKernel({
  name: "silu",
  inputs: ["x"],
  outputs: ["out"],
  helpers: sigmoidWgsl,
  body: "out[i] = x[i] * sigmoid(x[i]);",
  cpu: (i, _bi, v) => {
    const x = v.x[i]!
    v.out[i] = x * sigmoid(x)
  }
})

export const siluGradKernel = mapKernel({
  name: "siluGrad",
  inputs: ["x", "g"],
  outputs: ["out"],
  helpers: sigmoidWgsl,
  body: "let s = sigmoid(x[i]); out[i] = g[i] * s * (1.0 + x[i] * (1.0 - s));",
  cpu: (i, _bi, v) => {
    const x = v.x[i]!
    const s = sigmoid(x)
    v.out[i] = v.g[i]! * s * (1 + x * (1 - s))
  }
})

export const silu = (rt: Runtime, x: Tensor): Tensor => {
  requireF32("silu", x)
  const out = rt.empty(x.shape, "f32", x)
  for (let c = 0; c < out.chunks; c++) {
    rt.run1d(siluKernel, { x: x.binding(c), out: out.binding(c) }, { n: out.chunkSize(c), bcast: 0 }, out.chunkSize(c))
  }
  return rt.record(out, "silu", [x])
}

export const siluRule: DerivativeRule = (rt, g, node) => {
  const x = node.inputs[0]!
  const out = rt.empty(x.shape, "f32", x)
  withLayoutOf(rt, [g], x, ([gg]) => {
    for (let c = 0; c < out.chunks; c++) {
      rt.run1d(siluGradKernel, { x: x.binding(c), g: gg!.binding(c), out: out.binding(c) }, { n: out.chunkSize(c), bcast: 0 }, out.chunkSize(c))
    }
  })
  return [out]
}
