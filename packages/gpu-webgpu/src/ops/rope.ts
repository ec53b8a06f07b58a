/**
 * Rotary position embedding in Hugging Face's rotate_half layout on x [B,T,H,hd], position = t:
 * inv_freq_j = theta^(-2j/hd), angle = t * inv_freq_j for j < hd/2 (frequencies repeated for
 * both halves), y = x*cos + rotate_half(x)*sin with rotate_half(x) = cat(-x2, x1).
 * The cos/sin table is computed on the host with HF's float32 roundings and cached per shape.
 * Backward is the inverse rotation (sin negated).
 */
import { defineKernel, type Kernel } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, main1d, requireF32, requireShape, shapeStr } from "./kernel.ts"

export const ropeKernel = defineKernel({
  name: "rope",
  bindings: [binding("x"), binding("table"), binding("out", "read_write")],
  // row0: index, modulo T*H, of the chunk's first [hd] row (chunks start on whole rows)
  params: [["n", "u32"], ["T", "u32"], ["H", "u32"], ["hd", "u32"], ["sign", "f32"], ["row0", "u32"]],
  wgsl: `${main1d()}
  if (i >= P.n) { return; }
  let half = P.hd / 2u;
  let d = i % P.hd;
  let t = ((P.row0 + i / P.hd) / P.H) % P.T;
  let j = d % half;
  let c = table[t * half + j];
  let s = table[P.T * half + t * half + j] * P.sign;
  if (d < half) {
    out[i] = x[i] * c - x[i + half] * s;
  } else {
    out[i] = x[i] * c + x[i - half] * s;
  }
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const table = views.f32("table")
    const out = views.f32("out")
    const { n, T, H, hd, sign, row0 } = p
    const half = hd / 2
    for (let i = 0; i < n; i++) {
      const d = i % hd
      const t = Math.floor((row0 + Math.floor(i / hd)) / H) % T
      const j = d % half
      const c = table[t * half + j]!
      const s = table[T * half + t * half + j]! * sign
      out[i] = d < half ? x[i]! * c - x[i + half]! * s : x[i]! * c + x[i - half]! * s
    }
  }
})

/** cos then sin, each [T, hd/2], rounded like HF's float32 computation. */
export const ropeTable = (T: number, hd: number, theta: number): Float32Array => {
  const half = hd / 2
  const table = new Float32Array(2 * T * half)
  for (let j = 0; j < half; j++) {
    const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * j) / hd)))
    for (let t = 0; t < T; t++) {
      const angle = Math.fround(t * invFreq)
      table[t * half + j] = Math.cos(angle)
      table[T * half + t * half + j] = Math.sin(angle)
    }
  }
  return table
}

const tableCache = new WeakMap<Runtime, Map<string, Tensor>>()

/** The table stays alive for the runtime's life (one per (T, hd, theta)), so steps reuse it. */
const tableFor = (rt: Runtime, T: number, hd: number, theta: number): Tensor => {
  let cache = tableCache.get(rt)
  if (cache === undefined) {
    cache = new Map()
    tableCache.set(rt, cache)
  }
  const key = `${T}/${hd}/${theta}`
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  const data = ropeTable(T, hd, theta)
  const t = rt.empty([data.length])
  rt.keep(t)
  rt.backend.upload(t.storage.buf, data)
  cache.set(key, t)
  return t
}

const rotate = (rt: Runtime, x: Tensor, theta: number, sign: number): Tensor => {
  const [, T, H, hd] = x.shape as [number, number, number, number]
  const out = rt.empty(x.shape, "f32", x)
  if (x.size === 0) return out
  const table = tableFor(rt, T, hd, theta)
  for (let c = 0; c < x.chunks; c++) {
    const n = x.chunkSize(c)
    const row0 = ((c * x.chunkElems) / hd) % (T * H)
    rt.run1d(ropeKernel, { x: x.binding(c), table: table.binding(), out: out.binding(c) }, { n, T, H, hd, sign, row0 }, n)
  }
  return out
}

export const rope = (rt: Runtime, x: Tensor, theta: number): Tensor => {
  requireF32("rope", x)
  requireShape(
    x.shape.length === 4 && x.shape[3]! % 2 === 0,
    `rope: expected [B,T,H,hd] with even hd, got ${shapeStr(x.shape)}`
  )
  return rt.record(rotate(rt, x, theta, 1), "rope", [x], [], { theta })
}

export const ropeRule: DerivativeRule = (rt, g, node) => [rotate(rt, g, Number(node.attrs["theta"]), -1)]
