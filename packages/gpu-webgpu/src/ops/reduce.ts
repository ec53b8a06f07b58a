/** sum(a) and mean(a): whole-tensor reductions to a scalar [] tensor. */
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { requireF32 } from "./kernel.ts"
import { broadcastScalar, sumAllInto } from "./util.ts"

const reduceAll = (rt: Runtime, op: "sum" | "mean", a: Tensor): Tensor => {
  requireF32(op, a)
  const s = op === "mean" ? 1 / Math.max(1, a.size) : 1
  const out = rt.empty([])
  sumAllInto(rt, a, out, s, false, false)
  return rt.record(out, op, [a], [], { s })
}

export const sum = (rt: Runtime, a: Tensor): Tensor => reduceAll(rt, "sum", a)
export const mean = (rt: Runtime, a: Tensor): Tensor => reduceAll(rt, "mean", a)

/** d sum / d a_i = 1, d mean / d a_i = 1/n: broadcast the scalar gradient. */
export const reduceRule: DerivativeRule = (rt, g, node) => {
  const a = node.inputs[0]!
  return [broadcastScalar(rt, g, a.shape, Number(node.attrs["s"]))]
}
