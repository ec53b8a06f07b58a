/**
 * RMSNorm as in Hugging Face LlamaRMSNorm: y = x * rsqrt(mean(x^2) + eps) * w over the last dim.
 * Backward: with r = rsqrt(mean(x^2)+eps), dx = r*w*g - x * r^3 * mean(g*w*x), dw = sum_rows(g*x*r).
 */
import { grid1d } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, requireF32, requireShape, pickRowKernel, rowKernels, RW, shapeStr } from "./kernel.ts"
import { sumRows, withLayoutOf } from "./util.ts"

export const rmsnormKernels = rowKernels({
  name: "rmsnorm",
  bindings: [binding("x"), binding("w"), binding("out", "read_write"), binding("rstd", "read_write")],
  params: [["rows", "u32"], ["row0", "u32"], ["D", "u32"], ["eps", "f32"]],
  body: `  let base = row * P.D;
  var ss = 0.0;
  for (var j = lid; j < P.D; j += ${RW}u) { let v = x[base + j]; ss += v * v; }
  let r = inverseSqrt(rowSum(ss, lid) / f32(P.D) + P.eps);
  for (var j = lid; j < P.D; j += ${RW}u) { out[base + j] = x[base + j] * r * w[j]; }
  if (lid == 0u) { rstd[P.row0 + row] = r; }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const w = views.f32("w")
    const out = views.f32("out")
    const rstd = views.f32("rstd")
    const { rows, row0, D, eps } = p
    for (let n = 0; n < rows; n++) {
      let ss = 0
      for (let j = 0; j < D; j++) ss += x[n * D + j]! ** 2
      const r = 1 / Math.sqrt(ss / D + eps)
      for (let j = 0; j < D; j++) out[n * D + j] = x[n * D + j]! * r * w[j]!
      rstd[row0 + n] = r
    }
  }
})

/** The shared-memory variant (also what the fast CPU backend replaces). */
export const rmsnormKernel = rmsnormKernels.shared

export const rmsnormGradKernels = rowKernels({
  name: "rmsnormGrad",
  bindings: [binding("x"), binding("w"), binding("g"), binding("rstd"), binding("dx", "read_write"), binding("gxr", "read_write")],
  params: [["rows", "u32"], ["row0", "u32"], ["D", "u32"]],
  body: `  let base = row * P.D;
  let r = rstd[P.row0 + row];
  var dot = 0.0;
  for (var j = lid; j < P.D; j += ${RW}u) { dot += g[base + j] * w[j] * x[base + j]; }
  let m = rowSum(dot, lid) / f32(P.D);
  for (var j = lid; j < P.D; j += ${RW}u) {
    let xv = x[base + j];
    dx[base + j] = r * w[j] * g[base + j] - xv * r * r * r * m;
    gxr[base + j] = g[base + j] * xv * r;
  }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const w = views.f32("w")
    const g = views.f32("g")
    const rstd = views.f32("rstd")
    const dx = views.f32("dx")
    const gxr = views.f32("gxr")
    const { rows, row0, D } = p
    for (let n = 0; n < rows; n++) {
      const r = rstd[row0 + n]!
      let dot = 0
      for (let j = 0; j < D; j++) dot += g[n * D + j]! * w[j]! * x[n * D + j]!
      const m = dot / D
      for (let j = 0; j < D; j++) {
        const xv = x[n * D + j]!
        dx[n * D + j] = r * w[j]! * g[n * D + j]! - xv * r * r * r * m
        gxr[n * D + j] = g[n * D + j]! * xv * r
      }
    }
  }
})

/** The shared-memory variant (also what the fast CPU backend replaces). */
export const rmsnormGradKernel = rmsnormGradKernels.shared

export const rmsnorm = (rt: Runtime, x: Tensor, w: Tensor, eps: number): Tensor => {
  requireF32("rmsnorm", x, w)
  requireShape(
    x.shape.length >= 1 && w.shape.length === 1 && w.shape[0] === x.rowLength,
    `rmsnorm: x ${shapeStr(x.shape)} and weight ${shapeStr(w.shape)} disagree`
  )
  const D = x.rowLength
  const out = rt.empty(x.shape, "f32", x)
  const rstd = rt.empty([x.size / Math.max(1, D)])
  if (D > 0) {
    for (let c = 0; c < x.chunks; c++) {
      const rows = x.chunkSize(c) / D
      rt.run(
        pickRowKernel(rt, rmsnormKernels),
        { x: x.binding(c), w: w.binding(), out: out.binding(c), rstd: rstd.binding() },
        { rows, row0: (c * x.chunkElems) / D, D, eps },
        grid1d(rows, 1)
      )
    }
  }
  return rt.record(out, "rmsnorm", [x, w], [rstd], { eps })
}

export const rmsnormRule: DerivativeRule = (rt, g, node) => {
  const [x, w] = node.inputs as [Tensor, Tensor]
  const rstd = node.saved[0]!
  const D = x.rowLength
  const dx = rt.empty(x.shape, "f32", x)
  const gxr = rt.empty(x.shape, "f32", x)
  withLayoutOf(rt, [g], x, ([gg]) => {
    for (let c = 0; c < x.chunks; c++) {
      const rows = x.chunkSize(c) / D
      rt.run(
        pickRowKernel(rt, rmsnormGradKernels),
        { x: x.binding(c), w: w.binding(), g: gg!.binding(c), rstd: rstd.binding(), dx: dx.binding(c), gxr: gxr.binding(c) },
        { rows, row0: (c * x.chunkElems) / D, D },
        grid1d(rows, 1)
      )
    }
  })
  const dw = w.requiresGrad ? sumRows(rt, gxr, D) : null
  gxr.dispose()
  return [x.requiresGrad ? dx : (dx.dispose(), null), dw]
}
