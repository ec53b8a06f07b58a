/**
 * Internal kernels the derivative rules and optimisers build on: fill, copy, accumulate,
 * row sums, whole-tensor sums and scalar broadcast. Not differentiated themselves.
 */
import { defineKernel, type Kernel } from "../backend.ts"
import type { Runtime, Tensor } from "../tensor.ts"
import { binding, main1d, mapKernel, requireShape, shapeStr } from "./kernel.ts"

export const fillKernel = mapKernel({
  name: "fill",
  inputs: [],
  outputs: ["out"],
  params: [["value", "f32"]],
  body: "out[i] = P.value;",
  cpu: (i, _bi, v, p) => {
    v.out[i] = p.value
  }
})

/** y = y * beta + x * alpha (beta 0 means overwrite, so stale pool contents never leak in). */
export const axpbyKernel = mapKernel({
  name: "axpby",
  inputs: ["x"],
  outputs: ["y"],
  params: [["alpha", "f32"], ["beta", "f32"]],
  body: "var prev = 0.0; if (P.beta != 0.0) { prev = y[i] * P.beta; } y[i] = prev + x[i] * P.alpha;",
  cpu: (i, _bi, v, p) => {
    const y = v.y
    const prev = p.beta !== 0 ? y[i]! * p.beta : 0
    y[i] = prev + v.x[i]! * p.alpha
  }
})

export const fill = (rt: Runtime, t: Tensor, value: number): void => {
  for (let c = 0; c < t.chunks; c++) {
    rt.run1d(fillKernel, { out: t.binding(c) }, { n: t.chunkSize(c), bcast: 0, value }, t.chunkSize(c))
  }
}

export const zerosLike = (rt: Runtime, t: Tensor): Tensor => {
  const z = rt.empty(t.shape, "f32", t)
  fill(rt, z, 0)
  return z
}

/** y = beta*y + alpha*x over same-size tensors. */
export const axpby = (rt: Runtime, x: Tensor, y: Tensor, alpha: number, beta: number): void => {
  requireShape(x.size === y.size, `axpby: ${shapeStr(x.shape)} vs ${shapeStr(y.shape)}`)
  withLayoutOf(rt, [x], y, ([xs]) => {
    for (let c = 0; c < y.chunks; c++) {
      rt.run1d(axpbyKernel, { x: xs!.binding(c), y: y.binding(c) }, { n: y.chunkSize(c), bcast: 0, alpha, beta }, y.chunkSize(c))
    }
  })
}

/**
 * Runs `f` with `ts` chunked like `like` (same element count): tensors laid out differently are
 * copied into `like`'s chunking for the duration of `f`, so chunk c of each lines up.
 */
export const withLayoutOf = <R>(rt: Runtime, ts: readonly Tensor[], like: Tensor, f: (aligned: readonly Tensor[]) => R): R => {
  const temps: Tensor[] = []
  const aligned = ts.map((t) => {
    if (t.chunkElems === like.chunkElems || (t.chunks === 1 && like.chunks === 1)) return t
    const copy = rt.empty(like.shape, t.dtype, like)
    copyRange(rt, t, 0, copy, 0, t.size)
    temps.push(copy)
    return copy
  })
  try {
    return f(aligned)
  } finally {
    for (const t of temps) t.dispose()
  }
}

/** out[d] = (acc ? out[d] : 0) + sum over `rows` rows of x[r*D + d]. */
export const sumRowsKernel = defineKernel({
  name: "sumRows",
  bindings: [binding("x"), binding("out", "read_write")],
  params: [["rows", "u32"], ["D", "u32"], ["acc", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.D) { return; }
  var s = 0.0;
  if (P.acc != 0u) { s = out[i]; }
  for (var r = 0u; r < P.rows; r++) { s += x[r * P.D + i]; }
  out[i] = s;
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const out = views.f32("out")
    const D = p.D
    for (let d = 0; d < D; d++) {
      let s = p.acc !== 0 ? out[d]! : 0
      for (let r = 0; r < p.rows; r++) s += x[r * D + d]!
      out[d] = s
    }
  }
})

/** Sums `x` ([R, D], possibly chunked) over rows into a fresh [D] tensor. */
export const sumRows = (rt: Runtime, x: Tensor, D: number): Tensor => {
  const out = rt.empty([D])
  for (let c = 0; c < x.chunks; c++) {
    rt.run1d(sumRowsKernel, { x: x.binding(c), out: out.binding() }, { rows: x.chunkSize(c) / D, D, acc: c > 0 ? 1 : 0 }, D)
  }
  return out
}

const RED = 256
/**
 * Workgroup g reduces elements g*256 + lane, stepping by groups*256, and writes
 * out[g] = (acc ? out[g] : 0) + scale * sum (of squares when `square` is 1). With groups = 1 it
 * reduces a whole chunk; big chunks go through `groups` partials first (see sumAllInto), which
 * keeps the sum deterministic without atomics.
 */
export const sumAllKernel = defineKernel({
  name: "sumAll",
  bindings: [binding("x"), binding("out", "read_write")],
  params: [["n", "u32"], ["scale", "f32"], ["acc", "u32"], ["square", "u32"], ["groups", "u32"]],
  wgsl: `var<workgroup> part: array<f32, ${RED}>;
@compute @workgroup_size(${RED}) fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = 0.0;
  for (var i = wid.x * ${RED}u + lid.x; i < P.n; i += P.groups * ${RED}u) {
    let v = x[i];
    if (P.square != 0u) { s += v * v; } else { s += v; }
  }
  part[lid.x] = s;
  workgroupBarrier();
  for (var w = ${RED / 2}u; w > 0u; w = w / 2u) {
    if (lid.x < w) { part[lid.x] += part[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    var prev = 0.0;
    if (P.acc != 0u) { prev = out[wid.x]; }
    out[wid.x] = prev + part[0] * P.scale;
  }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const out = views.f32("out")
    const { n, scale, acc, square, groups } = p
    for (let g = 0; g < groups; g++) {
      let s = 0
      for (let base = g * RED; base < n; base += groups * RED) {
        for (let i = base; i < Math.min(base + RED, n); i++) s += square !== 0 ? x[i]! * x[i]! : x[i]!
      }
      out[g] = (acc !== 0 ? out[g]! : 0) + Math.fround(s) * scale
    }
  }
})

const PARTIAL_ABOVE = 1 << 16

/** Adds scale * sum(x) (or of squares) over all chunks of `x` into out[0]. */
export const sumAllInto = (rt: Runtime, x: Tensor, out: Tensor, scale: number, accumulate: boolean, square: boolean): void => {
  for (let c = 0; c < x.chunks; c++) {
    const n = x.chunkSize(c)
    const acc = accumulate || c > 0 ? 1 : 0
    if (n <= PARTIAL_ABOVE) {
      rt.run(sumAllKernel, { x: x.binding(c), out: out.binding() }, { n, scale, acc, square: square ? 1 : 0, groups: 1 }, [1, 1, 1])
      continue
    }
    const groups = Math.min(1024, Math.ceil(n / PARTIAL_ABOVE))
    const partials = rt.empty([groups])
    rt.run(sumAllKernel, { x: x.binding(c), out: partials.binding() }, { n, scale: 1, acc: 0, square: square ? 1 : 0, groups }, [groups, 1, 1])
    rt.run(sumAllKernel, { x: partials.binding(), out: out.binding() }, { n: groups, scale, acc, square: 0, groups: 1 }, [1, 1, 1])
    partials.dispose()
  }
}

/** out[i] = s[0] * scale for every element. */
export const broadcastScalarKernel = defineKernel({
  name: "broadcastScalar",
  bindings: [binding("s"), binding("out", "read_write")],
  params: [["n", "u32"], ["scale", "f32"]],
  wgsl: `${main1d()}
  if (i >= P.n) { return; }
  out[i] = s[0] * P.scale;
}`,
  cpu: (views, p) => {
    const s = views.f32("s")[0]! * p.scale
    views.f32("out").fill(s, 0, p.n)
  }
})

export const broadcastScalar = (rt: Runtime, s: Tensor, shape: readonly number[], scale: number): Tensor => {
  const out = rt.empty(shape)
  for (let c = 0; c < out.chunks; c++) {
    rt.run1d(broadcastScalarKernel, { s: s.binding(), out: out.binding(c) }, { n: out.chunkSize(c), scale }, out.chunkSize(c))
  }
  return out
}

/** y[dstOff + i] = x[srcOff + i] for i < n (one chunk of each). */
export const copyRangeKernel = defineKernel({
  name: "copyRange",
  bindings: [binding("x"), binding("y", "read_write")],
  params: [["n", "u32"], ["srcOff", "u32"], ["dstOff", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.n) { return; }
  y[P.dstOff + i] = x[P.srcOff + i];
}`,
  cpu: (views, p) => {
    const { n, srcOff, dstOff } = p
    views.f32("y").set(views.f32("x").subarray(srcOff, srcOff + n), dstOff)
  }
})

/** Copies `n` elements from `src` at element `srcAt` to `dst` at `dstAt`, across chunk boundaries. */
export const copyRange = (rt: Runtime, src: Tensor, srcAt: number, dst: Tensor, dstAt: number, n: number): void => {
  let pos = 0
  while (pos < n) {
    const sc = Math.floor((srcAt + pos) / src.chunkElems)
    const so = srcAt + pos - sc * src.chunkElems
    const dc = Math.floor((dstAt + pos) / dst.chunkElems)
    const dOff = dstAt + pos - dc * dst.chunkElems
    const len = Math.min(n - pos, src.chunkElems - so, dst.chunkElems - dOff)
    rt.run1d(copyRangeKernel, { x: src.binding(sc), y: dst.binding(dc) }, { n: len, srcOff: so, dstOff: dOff }, len)
    pos += len
  }
}
