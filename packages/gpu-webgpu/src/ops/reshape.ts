/** reshape: a free view sharing storage; its gradient is the gradient reshaped back. */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { requireShape, shapeStr } from "./kernel.ts"
import { sizeOf } from "../tensor.ts"

export const reshape = (rt: Runtime, a: Tensor, shape: readonly number[]): Tensor => {
  a.assertLive()
  requireShape(
    shape.every((d) => Number.isInteger(d) && d >= 0) && sizeOf(shape) === a.size,
    `reshape: ${shapeStr(a.shape)} has ${a.size} elements, ${shapeStr(shape)} needs ${sizeOf(shape)}`
  )
  const row = shape.length === 0 ? 1 : shape[shape.length - 1]!
  requireShape(
    a.chunks === 1 || (row > 0 && a.chunkElems % row === 0),
    `reshape: chunked tensor ${shapeStr(a.shape)} (chunks of ${a.chunkElems} elements) cannot take rows of ${row}`
  )
  const out = rt.view(a, [...shape])
  return rt.record(out, "reshape", [a])
}

export const reshapeRule: DerivativeRule = (rt, g, node) => [rt.view(g, node.inputs[0]!.shape)]
