/** softmax over the last dim; backward dx = y * (g - sum(g*y)). */
import { grid1d } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, requireF32, requireShape, pickRowKernel, rowKernels, RW } from "./kernel.ts"
import { withLayoutOf } from "./util.ts"

export const softmaxKernels = rowKernels({
  name: "softmax",
  bindings: [binding("x"), binding("out", "read_write")],
  params: [["rows", "u32"], ["D", "u32"]],
  body: `  let base = row * P.D;
  var m = -3.4e38;
  for (var j = lid; j < P.D; j += ${RW}u) { m = max(m, x[base + j]); }
  m = rowMax(m, lid);
  var s = 0.0;
  for (var j = lid; j < P.D; j += ${RW}u) { let e = exp(x[base + j] - m); out[base + j] = e; s += e; }
  let inv = 1.0 / rowSum(s, lid);
  for (var j = lid; j < P.D; j += ${RW}u) { out[base + j] = out[base + j] * inv; }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const out = views.f32("out")
    const { rows, D } = p
    for (let n = 0; n < rows; n++) {
      let m = -Infinity
      for (let j = 0; j < D; j++) m = Math.max(m, x[n * D + j]!)
      let s = 0
      for (let j = 0; j < D; j++) s += Math.exp(x[n * D + j]! - m)
      for (let j = 0; j < D; j++) out[n * D + j] = Math.exp(x[n * D + j]! - m) / s
    }
  }
})

/** The shared-memory variant (also what the fast CPU backend replaces). */
export const softmaxKernel = softmaxKernels.shared

export const softmaxGradKernels = rowKernels({
  name: "softmaxGrad",
  bindings: [binding("y"), binding("g"), binding("dx", "read_write")],
  params: [["rows", "u32"], ["D", "u32"]],
  body: `  let base = row * P.D;
  var dot = 0.0;
  for (var j = lid; j < P.D; j += ${RW}u) { dot += g[base + j] * y[base + j]; }
  dot = rowSum(dot, lid);
  for (var j = lid; j < P.D; j += ${RW}u) { dx[base + j] = y[base + j] * (g[base + j] - dot); }
}`,
  cpu: (views, p) => {
    const y = views.f32("y")
    const g = views.f32("g")
    const dx = views.f32("dx")
    const { rows, D } = p
    for (let n = 0; n < rows; n++) {
      let dot = 0
      for (let j = 0; j < D; j++) dot += g[n * D + j]! * y[n * D + j]!
      for (let j = 0; j < D; j++) dx[n * D + j] = y[n * D + j]! * (g[n * D + j]! - dot)
    }
  }
})

/** The shared-memory variant (also what the fast CPU backend replaces). */
export const softmaxGradKernel = softmaxGradKernels.shared

export const softmax = (rt: Runtime, x: Tensor): Tensor => {
  requireF32("softmax", x)
  requireShape(x.shape.length >= 1, "softmax: needs at least one dimension")
  const D = x.rowLength
  const out = rt.empty(x.shape, "f32", x)
  if (D > 0) {
    for (let c = 0; c < x.chunks; c++) {
      const rows = x.chunkSize(c) / D
      rt.run(pickRowKernel(rt, softmaxKernels), { x: x.binding(c), out: out.binding(c) }, { rows, D }, grid1d(rows, 1))
    }
  }
  return rt.record(out, "softmax", [x])
}

export const softmaxRule: DerivativeRule = (rt, g, _node, y) => {
  const D = y.rowLength
  const dx = rt.empty(y.shape, "f32", y)
  withLayoutOf(rt, [g], y, ([gg]) => {
    for (let c = 0; c < y.chunks; c++) {
      const rows = y.chunkSize(c) / D
      rt.run(pickRowKernel(rt, softmaxGradKernels), { y: y.binding(c), g: gg!.binding(c), dx: dx.binding(c) }, { rows, D }, grid1d(rows, 1))
    }
  })
  return [dx]
}
