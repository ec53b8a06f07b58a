/**
 * Causal grouped-query attention: q [B,T,H,hd], k and v [B,T,Hkv,hd] -> [B,T,H,hd]; query head h
 * reads kv head h / (H/Hkv); scores scaled by 1/sqrt(hd); position t sees s <= t.
 *
 * Forward saves the per-row log-sum-exp L so backward recomputes probabilities instead of storing
 * the [T,T] matrix (flash-attention style): P = exp(s - L), D = rowsum(dO * O),
 * dS = P (dO·v - D), dq = scale dS k, dk = scale dS^T q, dv = P^T dO (summed over the group).
 */
import { defineKernel, type Kernel } from "../backend.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { binding, main1d, requireF32, requireShape, sameShape, shapeStr } from "./kernel.ts"
import { copyRange } from "./util.ts"

const params = [["rows", "u32"], ["T", "u32"], ["H", "u32"], ["Hkv", "u32"], ["hd", "u32"], ["scale", "f32"]] as const
/** The parameter names of every attention kernel. */
export type AttentionParam = (typeof params)[number][0]

/** Head dims up to this live in per-invocation registers / private memory. */
export const MAX_HEAD_DIM = 256

/**
 * The start of the per-row kernels: invocation i owns query row i, position t of query head
 * (i % H) in batch b, reading kv head kvh; its q starts at qb.
 */
const queryRowPreamble = `${main1d(64)}
  if (i >= P.rows) { return; }
  let t = (i / P.H) % P.T;
  let b = i / (P.H * P.T);
  let kvh = (i % P.H) / (P.H / P.Hkv);
  let qb = i * P.hd;`

export const attentionKernel = defineKernel({
  name: "attention",
  bindings: [binding("q"), binding("k"), binding("v"), binding("out", "read_write"), binding("L", "read_write")],
  params,
  // one invocation per query row; single pass with an online softmax, accumulators private
  wgsl: `${queryRowPreamble}
  var qv: array<f32, ${MAX_HEAD_DIM}>;
  var acc: array<f32, ${MAX_HEAD_DIM}>;
  for (var d = 0u; d < P.hd; d++) { qv[d] = q[qb + d] * P.scale; }
  var m = -3.4e38;
  var l = 0.0;
  for (var s = 0u; s <= t; s++) {
    let kb = ((b * P.T + s) * P.Hkv + kvh) * P.hd;
    var sc = 0.0;
    for (var d = 0u; d < P.hd; d++) { sc += qv[d] * k[kb + d]; }
    let mn = max(m, sc);
    let alpha = exp(m - mn);
    let p = exp(sc - mn);
    l = l * alpha + p;
    for (var d = 0u; d < P.hd; d++) { acc[d] = acc[d] * alpha + p * v[kb + d]; }
    m = mn;
  }
  L[i] = m + log(l);
  let inv = 1.0 / l;
  for (var d = 0u; d < P.hd; d++) { out[qb + d] = acc[d] * inv; }
}`,
  cpu: (views, p) => {
    const q = views.f32("q")
    const k = views.f32("k")
    const v = views.f32("v")
    const out = views.f32("out")
    const L = views.f32("L")
    const { rows, T, H, Hkv, hd, scale } = p
    const scores = new Float64Array(T)
    for (let r = 0; r < rows; r++) {
      const t = Math.floor(r / H) % T
      const b = Math.floor(r / (H * T))
      const kvh = Math.floor((r % H) / (H / Hkv))
      let m = -Infinity
      for (let s = 0; s <= t; s++) {
        let dot = 0
        const kb = ((b * T + s) * Hkv + kvh) * hd
        for (let d = 0; d < hd; d++) dot += q[r * hd + d]! * k[kb + d]!
        scores[s] = scale * dot
        m = Math.max(m, scores[s]!)
      }
      let l = 0
      for (let s = 0; s <= t; s++) l += Math.exp(scores[s]! - m)
      const lse = m + Math.log(l)
      L[r] = lse
      for (let d = 0; d < hd; d++) {
        let acc = 0
        for (let s = 0; s <= t; s++) acc += Math.exp(scores[s]! - lse) * v[((b * T + s) * Hkv + kvh) * hd + d]!
        out[r * hd + d] = acc
      }
    }
  }
})

export const attentionGradQKernel = defineKernel({
  name: "attentionGradQ",
  bindings: [binding("q"), binding("k"), binding("v"), binding("o"), binding("dO"), binding("L"), binding("Drow", "read_write"), binding("dq", "read_write")],
  params,
  wgsl: `${queryRowPreamble}
  var qv: array<f32, ${MAX_HEAD_DIM}>;
  var gv: array<f32, ${MAX_HEAD_DIM}>;
  var acc: array<f32, ${MAX_HEAD_DIM}>;
  var Dr = 0.0;
  for (var d = 0u; d < P.hd; d++) {
    qv[d] = q[qb + d];
    gv[d] = dO[qb + d];
    Dr += gv[d] * o[qb + d];
  }
  Drow[i] = Dr;
  let Li = L[i];
  for (var s = 0u; s <= t; s++) {
    let kb = ((b * P.T + s) * P.Hkv + kvh) * P.hd;
    var sc = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < P.hd; d++) {
      sc += qv[d] * k[kb + d];
      dp += gv[d] * v[kb + d];
    }
    let ds = P.scale * exp(P.scale * sc - Li) * (dp - Dr);
    for (var d = 0u; d < P.hd; d++) { acc[d] += ds * k[kb + d]; }
  }
  for (var d = 0u; d < P.hd; d++) { dq[qb + d] = acc[d]; }
}`,
  cpu: (views, p) => {
    const q = views.f32("q")
    const k = views.f32("k")
    const v = views.f32("v")
    const o = views.f32("o")
    const dO = views.f32("dO")
    const L = views.f32("L")
    const Drow = views.f32("Drow")
    const dq = views.f32("dq")
    const { rows, T, H, Hkv, hd, scale } = p
    for (let r = 0; r < rows; r++) {
      const t = Math.floor(r / H) % T
      const b = Math.floor(r / (H * T))
      const kvh = Math.floor((r % H) / (H / Hkv))
      const qb = r * hd
      let Dr = 0
      for (let d = 0; d < hd; d++) Dr += dO[qb + d]! * o[qb + d]!
      Drow[r] = Dr
      const acc = new Float64Array(hd)
      for (let s = 0; s <= t; s++) {
        const kb = ((b * T + s) * Hkv + kvh) * hd
        let sc = 0
        let dp = 0
        for (let d = 0; d < hd; d++) {
          sc += q[qb + d]! * k[kb + d]!
          dp += dO[qb + d]! * v[kb + d]!
        }
        const ds = scale * Math.exp(scale * sc - L[r]!) * (dp - Dr)
        for (let d = 0; d < hd; d++) acc[d]! += ds * k[kb + d]!
      }
      for (let d = 0; d < hd; d++) dq[qb + d] = acc[d]!
    }
  }
})

export const attentionGradKVKernel = defineKernel({
  name: "attentionGradKV",
  bindings: [binding("q"), binding("k"), binding("v"), binding("dO"), binding("L"), binding("Drow"), binding("dk", "read_write"), binding("dv", "read_write")],
  params,
  wgsl: `${main1d(64)}
  if (i >= P.rows) { return; }
  let s = (i / P.Hkv) % P.T;
  let b = i / (P.Hkv * P.T);
  let kvh = i % P.Hkv;
  let group = P.H / P.Hkv;
  let kb = i * P.hd;
  var kv: array<f32, ${MAX_HEAD_DIM}>;
  var vv: array<f32, ${MAX_HEAD_DIM}>;
  var ak: array<f32, ${MAX_HEAD_DIM}>;
  var av: array<f32, ${MAX_HEAD_DIM}>;
  for (var d = 0u; d < P.hd; d++) { kv[d] = k[kb + d]; vv[d] = v[kb + d]; }
  for (var hh = 0u; hh < group; hh++) {
    let h = kvh * group + hh;
    for (var t = s; t < P.T; t++) {
      let r = (b * P.T + t) * P.H + h;
      let qb = r * P.hd;
      var sc = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < P.hd; d++) {
        sc += q[qb + d] * kv[d];
        dp += dO[qb + d] * vv[d];
      }
      let p = exp(P.scale * sc - L[r]);
      let ds = P.scale * p * (dp - Drow[r]);
      for (var d = 0u; d < P.hd; d++) {
        av[d] += p * dO[qb + d];
        ak[d] += ds * q[qb + d];
      }
    }
  }
  for (var d = 0u; d < P.hd; d++) { dk[kb + d] = ak[d]; dv[kb + d] = av[d]; }
}`,
  cpu: (views, p) => {
    const q = views.f32("q")
    const k = views.f32("k")
    const v = views.f32("v")
    const dO = views.f32("dO")
    const L = views.f32("L")
    const Drow = views.f32("Drow")
    const dk = views.f32("dk")
    const dv = views.f32("dv")
    const { T, H, Hkv, hd, scale } = p
    const kvRows = (p.rows / H) * Hkv
    const group = H / Hkv
    for (let i = 0; i < kvRows; i++) {
      const s = Math.floor(i / Hkv) % T
      const b = Math.floor(i / (Hkv * T))
      const kvh = i % Hkv
      const kb = i * hd
      const ak = new Float64Array(hd)
      const av = new Float64Array(hd)
      for (let hh = 0; hh < group; hh++) {
        const h = kvh * group + hh
        for (let t = s; t < T; t++) {
          const r = (b * T + t) * H + h
          const qb = r * hd
          let sc = 0
          let dp = 0
          for (let d = 0; d < hd; d++) {
            sc += q[qb + d]! * k[kb + d]!
            dp += dO[qb + d]! * v[kb + d]!
          }
          const pr = Math.exp(scale * sc - L[r]!)
          const ds = scale * pr * (dp - Drow[r]!)
          for (let d = 0; d < hd; d++) {
            av[d]! += pr * dO[qb + d]!
            ak[d]! += ds * q[qb + d]!
          }
        }
      }
      for (let d = 0; d < hd; d++) {
        dk[kb + d] = ak[d]!
        dv[kb + d] = av[d]!
      }
    }
  }
})

/** Floats per workgroup tile of each streamed tensor (2 tiles: 16 KiB, WebGPU's default limit). */
const TILE_FLOATS = 2048
const QB = 64 // rows owned by one workgroup (one per invocation)

/** Cooperative load of `n` rows of `hd` floats, row j at `src[base(j)..]`, into `dst`. */
const tileLoad = (dst: string, src: string, base: (j: string) => string) => `
    for (var e = lid; e < n * P.hd; e += ${QB}u) {
      let j = e / P.hd;
      ${dst}[e] = ${src}[${base("j")} + e % P.hd];
    }`

/**
 * The start of the two query-side tiled kernels: k/v tiles in workgroup memory, and invocation
 * `lid` of workgroup (x, h, b) owns position t of head h in batch b (row i, q offset qb).
 */
const queryTilePreamble = `var<workgroup> Ks: array<f32, ${TILE_FLOATS}>;
var<workgroup> Vs: array<f32, ${TILE_FLOATS}>;
@compute @workgroup_size(${QB}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let h = wid.y;
  let b = wid.z;
  let t = wid.x * ${QB}u + lid;
  let valid = t < P.T;
  let kvh = h / (P.H / P.Hkv);
  let i = (b * P.T + t) * P.H + h;
  let qb = i * P.hd;`

/**
 * Workgroup-tiled variants for real GPUs: a workgroup owns 64 consecutive positions of one
 * (batch, head) and streams the rows they all read (k/v, or q/dO) through workgroup memory in
 * tiles, instead of every invocation reading them from storage. Same parameters and meaning as
 * the per-row kernels above (whose CPU references they share); dispatched [ceil(T/64), heads, B].
 */
export const attentionTiledKernel = defineKernel({
  name: "attention_tiled",
  bindings: attentionKernel.bindings,
  params,
  wgsl: `${queryTilePreamble}
  var qv: array<f32, ${MAX_HEAD_DIM}>;
  var acc: array<f32, ${MAX_HEAD_DIM}>;
  if (valid) { for (var d = 0u; d < P.hd; d++) { qv[d] = q[qb + d] * P.scale; } }
  var m = -3.4e38;
  var l = 0.0;
  let bs = ${TILE_FLOATS}u / P.hd;
  let tEnd = min(P.T, wid.x * ${QB}u + ${QB}u);
  for (var s0 = 0u; s0 < tEnd; s0 += bs) {
    let n = min(bs, tEnd - s0);
    ${tileLoad("Ks", "k", (j) => `((b * P.T + s0 + ${j}) * P.Hkv + kvh) * P.hd`)}
    ${tileLoad("Vs", "v", (j) => `((b * P.T + s0 + ${j}) * P.Hkv + kvh) * P.hd`)}
    workgroupBarrier();
    if (valid) {
      for (var j = 0u; j < n && s0 + j <= t; j++) {
        var sc = 0.0;
        for (var d = 0u; d < P.hd; d++) { sc += qv[d] * Ks[j * P.hd + d]; }
        let mn = max(m, sc);
        let alpha = exp(m - mn);
        let p = exp(sc - mn);
        l = l * alpha + p;
        for (var d = 0u; d < P.hd; d++) { acc[d] = acc[d] * alpha + p * Vs[j * P.hd + d]; }
        m = mn;
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    L[i] = m + log(l);
    let inv = 1.0 / l;
    for (var d = 0u; d < P.hd; d++) { out[qb + d] = acc[d] * inv; }
  }
}`,
  cpu: attentionKernel.cpu
})

export const attentionGradQTiledKernel = defineKernel({
  name: "attentionGradQ_tiled",
  bindings: attentionGradQKernel.bindings,
  params,
  wgsl: `${queryTilePreamble}
  var qv: array<f32, ${MAX_HEAD_DIM}>;
  var gv: array<f32, ${MAX_HEAD_DIM}>;
  var acc: array<f32, ${MAX_HEAD_DIM}>;
  var Dr = 0.0;
  var Li = 0.0;
  if (valid) {
    for (var d = 0u; d < P.hd; d++) {
      qv[d] = q[qb + d];
      gv[d] = dO[qb + d];
      Dr += gv[d] * o[qb + d];
    }
    Drow[i] = Dr;
    Li = L[i];
  }
  let bs = ${TILE_FLOATS}u / P.hd;
  let tEnd = min(P.T, wid.x * ${QB}u + ${QB}u);
  for (var s0 = 0u; s0 < tEnd; s0 += bs) {
    let n = min(bs, tEnd - s0);
    ${tileLoad("Ks", "k", (j) => `((b * P.T + s0 + ${j}) * P.Hkv + kvh) * P.hd`)}
    ${tileLoad("Vs", "v", (j) => `((b * P.T + s0 + ${j}) * P.Hkv + kvh) * P.hd`)}
    workgroupBarrier();
    if (valid) {
      for (var j = 0u; j < n && s0 + j <= t; j++) {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < P.hd; d++) {
          sc += qv[d] * Ks[j * P.hd + d];
          dp += gv[d] * Vs[j * P.hd + d];
        }
        let ds = P.scale * exp(P.scale * sc - Li) * (dp - Dr);
        for (var d = 0u; d < P.hd; d++) { acc[d] += ds * Ks[j * P.hd + d]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) { for (var d = 0u; d < P.hd; d++) { dq[qb + d] = acc[d]; } }
}`,
  cpu: attentionGradQKernel.cpu
})

/** Row capacity of the dK/dV tiles' L and D arrays; q/dO tiles shrink to keep 16 KiB in all. */
const KV_ROWS = TILE_FLOATS / 8
const KV_TILE = TILE_FLOATS - KV_ROWS

/** dK/dV: a workgroup owns 64 key positions of one (batch, kv head) and streams q/dO rows. */
export const attentionGradKVTiledKernel = defineKernel({
  name: "attentionGradKV_tiled",
  bindings: attentionGradKVKernel.bindings,
  params,
  wgsl: `var<workgroup> Qs: array<f32, ${KV_TILE}>;
var<workgroup> Gs: array<f32, ${KV_TILE}>;
var<workgroup> Ls: array<f32, ${KV_ROWS}>;
var<workgroup> Ds: array<f32, ${KV_ROWS}>;
@compute @workgroup_size(${QB}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let kvh = wid.y;
  let b = wid.z;
  let s = wid.x * ${QB}u + lid;
  let valid = s < P.T;
  let group = P.H / P.Hkv;
  let kb = ((b * P.T + s) * P.Hkv + kvh) * P.hd;
  var kv: array<f32, ${MAX_HEAD_DIM}>;
  var vv: array<f32, ${MAX_HEAD_DIM}>;
  var ak: array<f32, ${MAX_HEAD_DIM}>;
  var av: array<f32, ${MAX_HEAD_DIM}>;
  if (valid) { for (var d = 0u; d < P.hd; d++) { kv[d] = k[kb + d]; vv[d] = v[kb + d]; } }
  let bs = min(${KV_TILE}u / P.hd, ${KV_ROWS}u);
  let sStart = wid.x * ${QB}u;
  for (var hh = 0u; hh < group; hh++) {
    let h = kvh * group + hh;
    for (var t0 = sStart; t0 < P.T; t0 += bs) {
      let n = min(bs, P.T - t0);
      ${tileLoad("Qs", "q", (j) => `((b * P.T + t0 + ${j}) * P.H + h) * P.hd`)}
      ${tileLoad("Gs", "dO", (j) => `((b * P.T + t0 + ${j}) * P.H + h) * P.hd`)}
      for (var j = lid; j < n; j += ${QB}u) {
        let r = (b * P.T + t0 + j) * P.H + h;
        Ls[j] = L[r];
        Ds[j] = Drow[r];
      }
      workgroupBarrier();
      if (valid) {
        for (var j = 0u; j < n; j++) {
          if (t0 + j < s) { continue; }
          var sc = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < P.hd; d++) {
            sc += Qs[j * P.hd + d] * kv[d];
            dp += Gs[j * P.hd + d] * vv[d];
          }
          let p = exp(P.scale * sc - Ls[j]);
          let ds = P.scale * p * (dp - Ds[j]);
          for (var d = 0u; d < P.hd; d++) {
            av[d] += p * Gs[j * P.hd + d];
            ak[d] += ds * Qs[j * P.hd + d];
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) { for (var d = 0u; d < P.hd; d++) { dk[kb + d] = ak[d]; dv[kb + d] = av[d]; } }
}`,
  cpu: attentionGradKVKernel.cpu
})

/** Attention shapes: batch, sequence, query heads, kv heads, head dim (the fast CPU kernels share it). */
export interface AttentionDims {
  readonly B: number
  readonly T: number
  readonly H: number
  readonly Hkv: number
  readonly hd: number
}
type Dims = AttentionDims

const paramsFor = (d: Dims, batches: number) => ({
  rows: batches * d.T * d.H,
  T: d.T,
  H: d.H,
  Hkv: d.Hkv,
  hd: d.hd,
  scale: 1 / Math.sqrt(d.hd)
})

/**
 * Runs `f` on single-binding operands: the tensors themselves when every one fits one binding,
 * else batch element by batch element on copies ([1,T,heads,hd] each must fit one binding),
 * copying the per-batch results back. `ins` are read, `outs` written; every tensor's leading
 * dimension is the batch.
 */
const singleBinding = (
  rt: Runtime,
  d: Dims,
  ins: readonly Tensor[],
  outs: readonly Tensor[],
  f: (ins: readonly Tensor[], outs: readonly Tensor[], batches: number) => void
): void => {
  if ([...ins, ...outs].every((t) => t.chunks === 1)) {
    f(ins, outs, d.B)
    return
  }
  const slice = (t: Tensor): Tensor => {
    const per = t.size / d.B
    const s = rt.empty([per])
    requireShape(s.chunks === 1, `attention: one batch element (${per} values) must fit one binding`)
    return s
  }
  for (let b = 0; b < d.B; b++) {
    const bi = ins.map((t) => {
      const s = slice(t)
      copyRange(rt, t, b * s.size, s, 0, s.size)
      return s
    })
    const bo = outs.map(slice)
    f(bi, bo, 1)
    bo.forEach((s, i) => copyRange(rt, s, 0, outs[i]!, b * s.size, s.size))
    for (const s of [...bi, ...bo]) s.dispose()
  }
}

const dimsOf = (q: Tensor, k: Tensor): Dims => {
  const [B, T, H, hd] = q.shape as [number, number, number, number]
  return { B, T, H, hd, Hkv: k.shape[2]! }
}

export const attention = (rt: Runtime, q: Tensor, k: Tensor, v: Tensor): Tensor => {
  requireF32("attention", q, k, v)
  const bad = `attention: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}`
  requireShape(q.shape.length === 4 && k.shape.length === 4 && sameShape(k.shape, v.shape), bad)
  const d = dimsOf(q, k)
  requireShape(k.shape[0] === d.B && k.shape[1] === d.T && k.shape[3] === d.hd && d.Hkv > 0 && d.H % d.Hkv === 0, bad)
  requireShape(d.hd <= MAX_HEAD_DIM, `${bad}: head dim ${d.hd} exceeds ${MAX_HEAD_DIM}`)
  const out = rt.empty(q.shape)
  const L = rt.empty([d.B * d.T * d.H])
  if (q.size > 0) {
    singleBinding(rt, d, [q, k, v], [out, L], ([qi, ki, vi], [oi, Li], batches) => {
      const p = paramsFor(d, batches)
      const bindings = { q: qi!.binding(), k: ki!.binding(), v: vi!.binding(), out: oi!.binding(), L: Li!.binding() }
      if (rt.backend.kernelFamily === "tiled") rt.run(attentionTiledKernel, bindings, p, [Math.ceil(d.T / QB), d.H, batches])
      else rt.run1d(attentionKernel, bindings, p, p.rows, 64)
    })
  }
  return rt.record(out, "attention", [q, k, v], [L])
}

export const attentionRule: DerivativeRule = (rt, g, node, out) => {
  const [q, k, v] = node.inputs as [Tensor, Tensor, Tensor]
  const L = node.saved[0]!
  const d = dimsOf(q, k)
  const dq = rt.empty(q.shape)
  const dk = rt.empty(k.shape)
  const dv = rt.empty(v.shape)
  singleBinding(rt, d, [q, k, v, out, g, L], [dq, dk, dv], ([qi, ki, vi, oi, gi, Li], [dqi, dki, dvi], batches) => {
    const p = paramsFor(d, batches)
    const Drow = rt.empty([p.rows])
    const qBindings = { q: qi!.binding(), k: ki!.binding(), v: vi!.binding(), o: oi!.binding(), dO: gi!.binding(), L: Li!.binding(), Drow: Drow.binding(), dq: dqi!.binding() }
    const kvBindings = { q: qi!.binding(), k: ki!.binding(), v: vi!.binding(), dO: gi!.binding(), L: Li!.binding(), Drow: Drow.binding(), dk: dki!.binding(), dv: dvi!.binding() }
    if (rt.backend.kernelFamily === "tiled") {
      rt.run(attentionGradQTiledKernel, qBindings, p, [Math.ceil(d.T / QB), d.H, batches])
      rt.run(attentionGradKVTiledKernel, kvBindings, p, [Math.ceil(d.T / QB), d.Hkv, batches])
    } else {
      rt.run1d(attentionGradQKernel, qBindings, p, p.rows, 64)
      rt.run1d(attentionGradKVKernel, kvBindings, p, batches * d.T * d.Hkv, 64)
    }
    Drow.dispose()
  })
  return [dq, dk, dv]
}
