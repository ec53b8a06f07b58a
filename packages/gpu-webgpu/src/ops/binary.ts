/** add / sub / mul: same shape, or `b` of shape [D] broadcast along `a`'s last dimension. */
import type { Kernel } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { mapKernel, requireF32, requireShape, sameShape, shapeStr } from "./kernel.ts"
import { sumRows, withLayoutOf } from "./util.ts"
import { scale } from "./scale.ts"

export const addKernel = mapKernel({
  name: "add",
  inputs: ["a", "b"],
  outputs: ["out"],
  body: "out[i] = a[i] + b[bi];",
  cpu: (i, bi, v) => {
    v.out[i] = v.a[i]! + v.b[bi]!
  }
})
export const subKernel = mapKernel({
  name: "sub",
  inputs: ["a", "b"],
  outputs: ["out"],
  body: "out[i] = a[i] - b[bi];",
  cpu: (i, bi, v) => {
    v.out[i] = v.a[i]! - v.b[bi]!
  }
})
export const mulKernel = mapKernel({
  name: "mul",
  inputs: ["a", "b"],
  outputs: ["out"],
  body: "out[i] = a[i] * b[bi];",
  cpu: (i, bi, v) => {
    v.out[i] = v.a[i]! * v.b[bi]!
  }
})

/** Row length `b` repeats along (0 when shapes are equal); throws ShapeError otherwise. */
const broadcastOf = (op: string, a: Tensor, b: Tensor): number => {
  if (sameShape(a.shape, b.shape)) return 0
  requireShape(
    b.shape.length === 1 && a.shape.length >= 1 && b.shape[0] === a.rowLength,
    `${op}: cannot combine ${shapeStr(a.shape)} with ${shapeStr(b.shape)} (same shape or [last dim] only)`
  )
  return a.rowLength
}

const binary = (rt: Runtime, kernel: Kernel, a: Tensor, b: Tensor): { out: Tensor; bcast: number } => {
  requireF32(kernel.name, a, b)
  const bcast = broadcastOf(kernel.name, a, b)
  requireShape(bcast === 0 || b.chunks === 1, `${kernel.name}: broadcast operand ${shapeStr(b.shape)} must fit one binding`)
  const out = rt.empty(a.shape, "f32", a)
  withLayoutOf(rt, bcast === 0 ? [b] : [], a, (aligned) => {
    const bb = aligned[0] ?? b
    for (let c = 0; c < out.chunks; c++) {
      rt.run1d(
        kernel,
        { a: a.binding(c), b: bb.binding(bcast === 0 ? c : 0), out: out.binding(c) },
        { n: out.chunkSize(c), bcast },
        out.chunkSize(c)
      )
    }
  })
  return { out, bcast }
}

export const add = (rt: Runtime, a: Tensor, b: Tensor): Tensor => {
  const { out, bcast } = binary(rt, addKernel, a, b)
  return rt.record(out, "add", [a, b], [], { bcast })
}
export const sub = (rt: Runtime, a: Tensor, b: Tensor): Tensor => {
  const { out, bcast } = binary(rt, subKernel, a, b)
  return rt.record(out, "sub", [a, b], [], { bcast })
}
export const mul = (rt: Runtime, a: Tensor, b: Tensor): Tensor => {
  const { out, bcast } = binary(rt, mulKernel, a, b)
  return rt.record(out, "mul", [a, b], [], { bcast })
}

const reduceToB = (rt: Runtime, g: Tensor, bcast: number): Tensor => (bcast === 0 ? g : sumRows(rt, g, bcast))

export const addRule: DerivativeRule = (rt, g, node) => {
  const bcast = Number(node.attrs["bcast"])
  return [g, node.inputs[1]!.requiresGrad ? reduceToB(rt, g, bcast) : null]
}

export const subRule: DerivativeRule = (rt, g, node) => {
  const bcast = Number(node.attrs["bcast"])
  if (!node.inputs[1]!.requiresGrad) return [g, null]
  const neg = scale(rt, g, -1)
  if (bcast === 0) return [g, neg]
  const gb = sumRows(rt, neg, bcast)
  neg.dispose()
  return [g, gb]
}

export const mulRule: DerivativeRule = (rt, g, node) => {
  const [a, b] = node.inputs as [Tensor, Tensor]
  const bcast = Number(node.attrs["bcast"])
  const ga = a.requiresGrad ? mul(rt, g, b) : null
  let gb: Tensor | null = null
  if (b.requiresGrad) {
    const ga2 = mul(rt, g, a)
    gb = bcast === 0 ? ga2 : sumRows(rt, ga2, bcast)
    if (bcast !== 0) ga2.dispose()
  }
  return [ga, gb]
}
