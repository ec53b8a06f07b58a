/** swiglu(gate, up) = silu(gate) * up, fused forward and backward. */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { mapKernel, requireF32, requireShape, sameShape, shapeStr, sigmoid, sigmoidWgsl } from "./kernel.ts"
import { withLayoutOf } from "./util.ts"

export const swigluKernel = mapKernel({
  name: "swiglu",
  inputs: ["gate", "up"],
  outputs: ["out"],
  helpers: sigmoidWgsl,
  body: "let x = gate[i]; out[i] = x * sigmoid(x) * up[i];",
  cpu: (i, _bi, v) => {
    const x = v.gate[i]!
    v.out[i] = x * sigmoid(x) * v.up[i]!
  }
})

export const swigluGradKernel = mapKernel({
  name: "swigluGrad",
  inputs: ["gate", "up", "g"],
  outputs: ["dgate", "dup"],
  helpers: sigmoidWgsl,
  body: `let x = gate[i]; let s = sigmoid(x);
  dup[i] = g[i] * x * s;
  dgate[i] = g[i] * up[i] * s * (1.0 + x * (1.0 - s));`,
  cpu: (i, _bi, v) => {
    const x = v.gate[i]!
    const s = sigmoid(x)
    const g = v.g[i]!
    v.dup[i] = g * x * s
    v.dgate[i] = g * v.up[i]! * s * (1 + x * (1 - s))
  }
})

export const swiglu = (rt: Runtime, gate: Tensor, up: Tensor): Tensor => {
  requireF32("swiglu", gate, up)
  requireShape(sameShape(gate.shape, up.shape), `swiglu: ${shapeStr(gate.shape)} vs ${shapeStr(up.shape)}`)
  const out = rt.empty(gate.shape, "f32", gate)
  withLayoutOf(rt, [up], gate, ([u]) => {
    for (let c = 0; c < out.chunks; c++) {
      rt.run1d(swigluKernel, { gate: gate.binding(c), up: u!.binding(c), out: out.binding(c) }, { n: out.chunkSize(c), bcast: 0 }, out.chunkSize(c))
    }
  })
  return rt.record(out, "swiglu", [gate, up])
}

export const swigluRule: DerivativeRule = (rt, g, node) => {
  const [gate, up] = node.inputs as [Tensor, Tensor]
  const dgate = rt.empty(gate.shape, "f32", gate)
  const dup = rt.empty(gate.shape, "f32", gate)
  withLayoutOf(rt, [up, g], gate, ([u, gg]) => {
    for (let c = 0; c < gate.chunks; c++) {
      rt.run1d(
        swigluGradKernel,
        { gate: gate.binding(c), up: u!.binding(c), g: gg!.binding(c), dgate: dgate.binding(c), dup: dup.binding(c) },
        { n: gate.chunkSize(c), bcast: 0 },
        gate.chunkSize(c)
      )
    }
  })
  return [dgate, dup]
}
