/**
 * embedding(weight [V,D], ids i32 [N]) -> [N,D]: a row gather. Its gradient is a scatter-add
 * into a zeroed [V,D]; one invocation per column walks the ids in order, so repeated ids add up
 * deterministically without float atomics. A weight larger than one binding is visited chunk by
 * chunk (each chunk holds whole rows); ids outside [0, V) read as zero rows and get no gradient.
 */
import { defineKernel, type Kernel } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, main1d, requireShape, shapeStr } from "./kernel.ts"
import { fill } from "./util.ts"

export const gatherKernel = defineKernel({
  name: "embeddingGather",
  bindings: [binding("W"), binding("ids", "read", "i32"), binding("out", "read_write")],
  params: [["rows", "u32"], ["outRow0", "u32"], ["D", "u32"], ["wRow0", "u32"], ["wRows", "u32"], ["V", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.rows * P.D) { return; }
  let n = i / P.D;
  let d = i % P.D;
  let id = ids[P.outRow0 + n];
  if (id >= i32(P.wRow0) && id < i32(P.wRow0 + P.wRows)) {
    out[i] = W[u32(id - i32(P.wRow0)) * P.D + d];
  } else if (P.wRow0 == 0u && (id < 0 || id >= i32(P.V))) {
    out[i] = 0.0;
  }
}`,
  cpu: (views, p) => {
    const W = views.f32("W")
    const ids = views.i32("ids")
    const out = views.f32("out")
    const { rows, outRow0, D, wRow0, wRows, V } = p
    for (let n = 0; n < rows; n++) {
      const id = ids[outRow0 + n]!
      for (let d = 0; d < D; d++) {
        if (id >= wRow0 && id < wRow0 + wRows) out[n * D + d] = W[(id - wRow0) * D + d]!
        else if (wRow0 === 0 && (id < 0 || id >= V)) out[n * D + d] = 0
      }
    }
  }
})

export const scatterAddKernel = defineKernel({
  name: "embeddingScatterAdd",
  bindings: [binding("g"), binding("ids", "read", "i32"), binding("dW", "read_write")],
  params: [["rows", "u32"], ["gRow0", "u32"], ["D", "u32"], ["wRow0", "u32"], ["wRows", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.D) { return; }
  for (var n = 0u; n < P.rows; n++) {
    let id = ids[P.gRow0 + n];
    if (id >= i32(P.wRow0) && id < i32(P.wRow0 + P.wRows)) {
      let at = u32(id - i32(P.wRow0)) * P.D + i;
      dW[at] = dW[at] + g[n * P.D + i];
    }
  }
}`,
  cpu: (views, p) => {
    const g = views.f32("g")
    const ids = views.i32("ids")
    const dW = views.f32("dW")
    const { rows, gRow0, D, wRow0, wRows } = p
    for (let n = 0; n < rows; n++) {
      const id = ids[gRow0 + n]!
      if (id < wRow0 || id >= wRow0 + wRows) continue
      for (let d = 0; d < D; d++) dW[(id - wRow0) * D + d]! += g[n * D + d]!
    }
  }
})

/** Rows held by chunk c of a [rows, D] tensor. */
const chunkRows = (t: Tensor, c: number, D: number): { row0: number; rows: number } => ({
  row0: (c * t.chunkElems) / D,
  rows: t.chunkSize(c) / D
})

export const embedding = (rt: Runtime, weight: Tensor, ids: Tensor): Tensor => {
  weight.assertLive()
  ids.assertLive()
  requireShape(
    weight.dtype === "f32" && weight.shape.length === 2 && ids.dtype === "i32" && ids.shape.length === 1,
    `embedding: expected f32 [V,D] and i32 [N], got ${weight.dtype} ${shapeStr(weight.shape)} and ${ids.dtype} ${shapeStr(ids.shape)}`
  )
  requireShape(ids.chunks === 1, `embedding: ids [${ids.size}] must fit one binding`)
  const [V, D] = weight.shape as [number, number]
  const N = ids.size
  const out = rt.empty([N, D])
  if (D > 0) {
    for (let oc = 0; oc < out.chunks; oc++) {
      const o = chunkRows(out, oc, D)
      for (let wc = 0; wc < weight.chunks; wc++) {
        const w = chunkRows(weight, wc, D)
        rt.run1d(
          gatherKernel,
          { W: weight.binding(wc), ids: ids.binding(), out: out.binding(oc) },
          { rows: o.rows, outRow0: o.row0, D, wRow0: w.row0, wRows: w.rows, V },
          o.rows * D
        )
      }
    }
  }
  return rt.record(out, "embedding", [weight, ids])
}

export const embeddingRule: DerivativeRule = (rt, g, node) => {
  const [weight, ids] = node.inputs as [Tensor, Tensor]
  const D = weight.shape[1]!
  const dW = rt.empty(weight.shape, "f32", weight)
  fill(rt, dW, 0)
  if (D > 0) {
    for (let wc = 0; wc < dW.chunks; wc++) {
      const w = chunkRows(dW, wc, D)
      for (let gc = 0; gc < g.chunks; gc++) {
        const gr = chunkRows(g, gc, D)
        rt.run1d(
          scatterAddKernel,
          { g: g.binding(gc), ids: ids.binding(), dW: dW.binding(wc) },
          { rows: gr.rows, gRow0: gr.row0, D, wRow0: w.row0, wRows: w.rows },
          D
        )
      }
    }
  }
  return [dW, null]
}
