/**
 * crossEntropy(logits [N,V], targets i32 [N], ignoreIndex = -100): mean over the rows whose
 * target is a class in [0, V) (rows with the ignore index, or any other out-of-range target,
 * count as ignored); 0 when every row is ignored. Backward: (softmax - onehot) * g / count.
 */
import { defineKernel, type Kernel } from "../backend.ts"
import { grid1d } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, main1d, requireShape, pickRowKernel, rowKernels, RW, shapeStr } from "./kernel.ts"
import { sumAllInto } from "./util.ts"

export const ceRowsKernels = rowKernels({
  name: "crossEntropyRows",
  bindings: [binding("x"), binding("t", "read", "i32"), binding("lse", "read_write"), binding("loss", "read_write"), binding("valid", "read_write")],
  params: [["rows", "u32"], ["row0", "u32"], ["V", "u32"]],
  body: `  let base = row * P.V;
  var m = -3.4e38;
  for (var j = lid; j < P.V; j += ${RW}u) { m = max(m, x[base + j]); }
  m = rowMax(m, lid);
  var s = 0.0;
  for (var j = lid; j < P.V; j += ${RW}u) { s += exp(x[base + j] - m); }
  let l = m + log(rowSum(s, lid));
  if (lid == 0u) {
    let gr = P.row0 + row;
    let tg = t[gr];
    lse[gr] = l;
    if (tg >= 0 && tg < i32(P.V)) {
      loss[gr] = l - x[base + u32(tg)];
      valid[gr] = 1.0;
    } else {
      loss[gr] = 0.0;
      valid[gr] = 0.0;
    }
  }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const t = views.i32("t")
    const lse = views.f32("lse")
    const loss = views.f32("loss")
    const valid = views.f32("valid")
    const { rows, row0, V } = p
    for (let n = 0; n < rows; n++) {
      let m = -Infinity
      for (let j = 0; j < V; j++) m = Math.max(m, x[n * V + j]!)
      let s = 0
      for (let j = 0; j < V; j++) s += Math.exp(x[n * V + j]! - m)
      const l = m + Math.log(s)
      const gr = row0 + n
      const tg = t[gr]!
      lse[gr] = l
      const ok = tg >= 0 && tg < V
      loss[gr] = ok ? l - x[n * V + tg]! : 0
      valid[gr] = ok ? 1 : 0
    }
  }
})

/** The shared-memory variant (also what the fast CPU backend replaces). */
export const ceRowsKernel = ceRowsKernels.shared

/** out[0] = sum[0] / max(count[0], 1) */
export const divideKernel = defineKernel({
  name: "crossEntropyMean",
  bindings: [binding("sum"), binding("count"), binding("out", "read_write")],
  params: [],
  wgsl: `@compute @workgroup_size(1) fn main() { out[0] = sum[0] / max(count[0], 1.0); }`,
  cpu: (views) => {
    views.f32("out")[0] = views.f32("sum")[0]! / Math.max(views.f32("count")[0]!, 1)
  }
})

export const ceGradKernel = defineKernel({
  name: "crossEntropyGrad",
  bindings: [binding("x"), binding("t", "read", "i32"), binding("lse"), binding("g"), binding("count"), binding("dx", "read_write")],
  params: [["n", "u32"], ["row0", "u32"], ["V", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.n) { return; }
  let r = i / P.V;
  let j = i % P.V;
  let gr = P.row0 + r;
  let tg = t[gr];
  if (tg < 0 || tg >= i32(P.V)) { dx[i] = 0.0; return; }
  var d = exp(x[i] - lse[gr]);
  if (u32(tg) == j) { d -= 1.0; }
  dx[i] = d * g[0] / max(count[0], 1.0);
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const t = views.i32("t")
    const lse = views.f32("lse")
    const g = views.f32("g")[0]!
    const count = Math.max(views.f32("count")[0]!, 1)
    const dx = views.f32("dx")
    const { n, row0, V } = p
    for (let i = 0; i < n; i++) {
      const gr = row0 + Math.floor(i / V)
      const tg = t[gr]!
      if (tg < 0 || tg >= V) {
        dx[i] = 0
        continue
      }
      const d = Math.exp(x[i]! - lse[gr]!) - (tg === i % V ? 1 : 0)
      dx[i] = (d * g) / count
    }
  }
})

export const crossEntropy = (rt: Runtime, logits: Tensor, targets: Tensor, ignoreIndex = -100): Tensor => {
  logits.assertLive()
  targets.assertLive()
  requireShape(
    logits.dtype === "f32" && logits.shape.length === 2 && targets.dtype === "i32" && targets.shape.length === 1 && targets.size === logits.shape[0],
    `crossEntropy: expected f32 [N,V] and i32 [N], got ${logits.dtype} ${shapeStr(logits.shape)} and ${targets.dtype} ${shapeStr(targets.shape)}`
  )
  requireShape(ignoreIndex < 0 || ignoreIndex >= logits.shape[1]!, `crossEntropy: ignoreIndex ${ignoreIndex} is a valid class`)
  const [N, V] = logits.shape as [number, number]
  const lse = rt.empty([N])
  const rowLoss = rt.empty([N])
  const valid = rt.empty([N])
  for (let c = 0; c < logits.chunks; c++) {
    const rows = logits.chunkSize(c) / V
    rt.run(
      pickRowKernel(rt, ceRowsKernels),
      { x: logits.binding(c), t: targets.binding(), lse: lse.binding(), loss: rowLoss.binding(), valid: valid.binding() },
      { rows, row0: (c * logits.chunkElems) / V, V },
      grid1d(rows, 1)
    )
  }
  const total = rt.empty([])
  const count = rt.empty([])
  sumAllInto(rt, rowLoss, total, 1, false, false)
  sumAllInto(rt, valid, count, 1, false, false)
  const out = rt.empty([])
  rt.run(divideKernel, { sum: total.binding(), count: count.binding(), out: out.binding() }, {}, [1, 1, 1])
  rowLoss.dispose()
  valid.dispose()
  total.dispose()
  return rt.record(out, "crossEntropy", [logits, targets], [lse, count])
}

export const crossEntropyRule: DerivativeRule = (rt, g, node) => {
  const [logits, targets] = node.inputs as [Tensor, Tensor]
  const [lse, count] = node.saved as [Tensor, Tensor]
  const V = logits.shape[1]!
  const dx = rt.empty(logits.shape, "f32", logits)
  for (let c = 0; c < logits.chunks; c++) {
    const n = logits.chunkSize(c)
    rt.run1d(
      ceGradKernel,
      { x: logits.binding(c), t: targets.binding(), lse: lse.binding(), g: g.binding(), count: count.binding(), dx: dx.binding(c) },
      { n, row0: (c * logits.chunkElems) / V, V },
      n
    )
  }
  return [dx, null]
}
