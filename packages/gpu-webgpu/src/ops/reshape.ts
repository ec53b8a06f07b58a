/** reshape: a free view sharing storage; its gradient is the gradient reshaped back. */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { requireShape, shapeStr } from "./kernel.ts"
import { sizeOf } from "../tensor.ts"
import { copyRange } from "./util.ts"

export const reshape = (rt: Runtime, a: Tensor, shape: readonly number[]): Tensor => {
  a.assertLive()
  requireShape(
    shape.every((d) => Number.isInteger(d) && d >= 0) && sizeOf(shape) === a.size,
    `reshape: ${shapeStr(a.shape)} has ${a.size} elements, ${shapeStr(shape)} needs ${sizeOf(shape)}`
  )
  return rt.record(reshaped(rt, a, shape), "reshape", [a])
}

/** A view when the chunks hold whole rows of the new shape, else a copy in the new shape's layout. */
const reshaped = (rt: Runtime, a: Tensor, shape: readonly number[]): Tensor => {
  const row = shape.length <= 1 ? 1 : shape[shape.length - 1]!
  if (a.chunks === 1 || (row > 0 && a.chunkElems % row === 0)) return rt.view(a, [...shape])
  const out = rt.empty(shape, a.dtype)
  copyRange(rt, a, 0, out, 0, a.size)
  return out
}

export const reshapeRule: DerivativeRule = (rt, g, node) => [reshaped(rt, g, node.inputs[0]!.shape)]
