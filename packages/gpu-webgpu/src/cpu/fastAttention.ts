/**
 * Fast CPU versions of the three attention kernels (src/ops/attention.ts has the references and
 * the maths): per (batch, query head) the score matrix S = scale·Q·Kᵀ [T,T] is formed with the
 * SIMD gemm, masked causally and normalised row by row, and the products with V (forward) or with
 * dO, K, Q (backward) are gemms again. The full [T,T] block is computed (twice the causal flops)
 * because the SIMD gemm is far faster than a causal scalar loop; masked entries are exact zeros.
 * Bindings, params and outputs are those of the reference kernels.
 */
import type { Gemm } from "./blasGemm.ts"
import type { WasmExp } from "./wasmExp.ts"
import { WasmSoftmax } from "./wasmSoftmax.ts"

/** The SIMD helpers: the exp, and the block softmax (used where T is a multiple of 4). */
export interface AttentionSimd {
  readonly exp: WasmExp
  readonly softmax: WasmSoftmax
}
import type { CpuViews, KernelParams } from "../backend.ts"
import type { AttentionDims, AttentionParam } from "../ops/attention.ts"

type Dims = AttentionDims & { readonly scale: number }

/** The reference attention kernels' parameters, typed by those kernels. */
type Params = KernelParams<AttentionParam>

const dimsOf = (p: Params): Dims => ({ B: p.rows / (p.T * p.H), T: p.T, H: p.H, Hkv: p.Hkv, hd: p.hd, scale: p.scale })

/** The kv head query head h reads (grouped-query attention: H / Hkv query heads per kv head). */
const kvHeadOf = (d: Dims, h: number): number => Math.floor(h / (d.H / d.Hkv))
/** Where query head h of batch b starts in q, o, dO, dq, out (rows of stride H·hd). */
const headOffset = (d: Dims, b: number, h: number): number => (b * d.T * d.H + h) * d.hd
/** Where kv head kvh of batch b starts in k, v, dk, dv (rows of stride Hkv·hd). */
const kvOffset = (d: Dims, b: number, kvh: number): number => (b * d.T * d.Hkv + kvh) * d.hd

/** The bindings every attention kernel reads. */
const inputs = (views: CpuViews) => ({ q: views.f32("q"), k: views.f32("k"), v: views.f32("v"), L: views.f32("L") })

/** out[T,T] = X·Yᵀ for query head h of batch b: X its rows of x, Y its kv head's rows of y. */
const headByKv = (gemm: Gemm, d: Dims, x: Float32Array, y: Float32Array, b: number, h: number, out: Float32Array): void => {
  const { T, H, Hkv, hd } = d
  gemm.gemm(x, headOffset(d, b, h), H * hd, 1, y, kvOffset(d, b, kvHeadOf(d, h)), 1, Hkv * hd, out, 0, T, T, T, hd, false)
}

/** Query head h's rows of out = M·Y, with M [T,T] and Y its kv head's rows of y. */
const mixKv = (gemm: Gemm, d: Dims, M: Float32Array, y: Float32Array, b: number, h: number, out: Float32Array): void => {
  const { T, H, Hkv, hd } = d
  gemm.gemm(M, 0, T, 1, y, kvOffset(d, b, kvHeadOf(d, h)), Hkv * hd, 1, out, headOffset(d, b, h), H * hd, T, hd, T, false)
}

/** Reused [T,T] scratch matrices. */
class Scratch {
  private a = new Float32Array(0)
  private b = new Float32Array(0)
  get(n: number): [Float32Array, Float32Array] {
    if (this.a.length < n) {
      this.a = new Float32Array(n)
      this.b = new Float32Array(n)
    }
    return [this.a, this.b]
  }
}

/**
 * S = scale·Q_h·K_kvhᵀ for one (b, h), then P = exp(S - lse) in place for s <= t, 0 beyond, the
 * exps in one SIMD call over the causal triangle packed row after row (row t at t(t+1)/2).
 * With `computeL` the row lse is computed (P as exp(S - max) / sum) and written to `L`, else read.
 */
const probabilities = (
  gemm: Gemm, simd: AttentionSimd, d: Dims, q: Float32Array, k: Float32Array, b: number, h: number,
  S: Float32Array, L: Float32Array, computeL: boolean
): void => {
  const { T, H, scale } = d
  headByKv(gemm, d, q, k, b, h, S)
  if (WasmSoftmax.fits(T)) {
    const f = simd.softmax.use(T)
    const TT = T * T
    f.set(S.subarray(0, TT))
    if (computeL) {
      simd.softmax.forward(scale)
      for (let t = 0; t < T; t++) L[(b * T + t) * H + h] = f[2 * TT + t]! + Math.log(f[2 * TT + T + t]!)
    } else {
      for (let t = 0; t < T; t++) f[2 * TT + t] = L[(b * T + t) * H + h]!
      simd.softmax.backward(scale)
    }
    S.set(f.subarray(0, TT))
    return
  }
  const exp = simd.exp
  const tri = (T * (T + 1)) / 2
  const e = exp.view(tri)
  const maxes = new Float64Array(computeL ? T : 0)
  for (let t = 0, at = 0; t < T; at += ++t) {
    const row = t * T
    if (computeL) {
      let m = -Infinity
      for (let s = 0; s <= t; s++) {
        const x = S[row + s]! * scale
        if (x > m || x !== x) m = x
      }
      maxes[t] = m
      for (let s = 0; s <= t; s++) e[at + s] = S[row + s]! * scale - m
    } else {
      const lse = L[(b * T + t) * H + h]!
      for (let s = 0; s <= t; s++) e[at + s] = scale * S[row + s]! - lse
    }
  }
  exp.exp(tri)
  for (let t = 0, at = 0; t < T; at += ++t) {
    const row = t * T
    if (computeL) {
      let l = 0
      for (let s = 0; s <= t; s++) l += e[at + s]!
      L[(b * T + t) * H + h] = maxes[t]! + Math.log(l)
      const inv = 1 / l
      for (let s = 0; s <= t; s++) S[row + s] = e[at + s]! * inv
    } else {
      for (let s = 0; s <= t; s++) S[row + s] = e[at + s]!
    }
    S.fill(0, row + t + 1, row + T)
  }
}

export const attentionFast = (gemm: Gemm, simd: AttentionSimd) => {
  const scratch = new Scratch()
  return (views: CpuViews, p: Params): void => {
    const d = dimsOf(p)
    const { B, T, H } = d
    const { q, k, v, L } = inputs(views)
    const out = views.f32("out")
    const [S] = scratch.get(T * T)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        probabilities(gemm, simd, d, q, k, b, h, S, L, true)
        mixKv(gemm, d, S, v, b, h, out)
      }
    }
  }
}

/** dS = scale·P∘(dO·Vᵀ - D) in place of dP, for one (b, h); P in `P`, dO·Vᵀ computed into `dS`. */
const scoreGrad = (
  gemm: Gemm, simd: AttentionSimd, d: Dims, dO: Float32Array, v: Float32Array, Drow: Float32Array, b: number, h: number,
  P: Float32Array, dS: Float32Array
): void => {
  const { T, H, scale } = d
  headByKv(gemm, d, dO, v, b, h, dS)
  if (WasmSoftmax.fits(T)) {
    const f = simd.softmax.use(T)
    const TT = T * T
    f.set(dS.subarray(0, TT))
    f.set(P.subarray(0, TT), TT)
    for (let t = 0; t < T; t++) f[2 * TT + t] = Drow[(b * T + t) * H + h]!
    simd.softmax.scoreGrad(scale)
    dS.set(f.subarray(0, TT))
    return
  }
  for (let t = 0; t < T; t++) {
    const row = t * T
    const D = Drow[(b * T + t) * H + h]!
    for (let s = 0; s <= t; s++) dS[row + s] = scale * P[row + s]! * (dS[row + s]! - D)
    dS.fill(0, row + t + 1, row + T)
  }
}

/** Counts the fast backend's dispatches, uploads and frees (src/cpu/fast.ts bumps it before each). */
export class DispatchClock {
  n = 0
}

/** Floats of P (and again of dS) the backward keeps between its two kernels: 2 x 32 MiB. */
const MAX_CACHED = 1 << 23

/**
 * P and dS of every (b, h), kept by attentionGradQ for the attentionGradKV that the attention rule
 * dispatches right after it with the same q, k, v, L, dO and Drow (src/ops/attention.ts), so the
 * backward forms each score block once instead of twice. Used only when the clock moved by exactly
 * that one dispatch (nothing else ran, was uploaded or freed in between) and gradKV binds the same
 * chunks with the same dims: then its inputs are the ones gradQ saw. Otherwise gradKV recomputes.
 */
class GradCache {
  P = new Float32Array(0)
  dS = new Float32Array(0)
  private at = -1
  private key: ReadonlyArray<unknown> = []

  constructor(private readonly clock: DispatchClock) {}

  static keyOf(views: CpuViews, d: Dims): ReadonlyArray<unknown> {
    return [...["q", "k", "v", "L", "dO", "Drow"].map((n) => views.f32(n).buffer), d.B, d.T, d.H, d.Hkv, d.hd, d.scale]
  }

  /** Room for n floats of each, or false when n is over the limit (nothing is kept then). */
  reserve(n: number): boolean {
    this.at = -1
    if (n > MAX_CACHED) return false
    if (this.P.length < n) {
      this.P = new Float32Array(n)
      this.dS = new Float32Array(n)
    }
    return true
  }

  keep(key: ReadonlyArray<unknown>): void {
    this.at = this.clock.n
    this.key = key
  }

  /** Whether P and dS hold what gradKV with `key`, dispatched now, would compute. */
  valid(key: ReadonlyArray<unknown>): boolean {
    const ok = this.at === this.clock.n - 1 && key.length === this.key.length && key.every((x, i) => x === this.key[i])
    this.at = -1
    return ok
  }
}

export const attentionGradFast = (gemm: Gemm, simd: AttentionSimd, clock: DispatchClock) => {
  const cache = new GradCache(clock)
  return { q: attentionGradQFast(gemm, simd, cache), kv: attentionGradKVFast(gemm, simd, cache) }
}

const attentionGradQFast = (gemm: Gemm, simd: AttentionSimd, cache: GradCache) => {
  const scratch = new Scratch()
  return (views: CpuViews, p: Params): void => {
    const d = dimsOf(p)
    const { B, T, H, hd } = d
    const { q, k, v, L } = inputs(views)
    const o = views.f32("o")
    const dO = views.f32("dO")
    const Drow = views.f32("Drow")
    const dq = views.f32("dq")
    const rows = p.rows
    for (let r = 0; r < rows; r++) {
      let D = 0
      const base = r * hd
      for (let i = 0; i < hd; i++) D += dO[base + i]! * o[base + i]!
      Drow[r] = D
    }
    const keep = cache.reserve(B * H * T * T)
    const [P0, dS0] = scratch.get(T * T)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const at = (b * H + h) * T * T
        const P = keep ? cache.P.subarray(at, at + T * T) : P0
        const dS = keep ? cache.dS.subarray(at, at + T * T) : dS0
        probabilities(gemm, simd, d, q, k, b, h, P, L, false)
        scoreGrad(gemm, simd, d, dO, v, Drow, b, h, P, dS)
        // dq[t] = sum_s dS[t,s] k[s]
        mixKv(gemm, d, dS, k, b, h, dq)
      }
    }
    if (keep) cache.keep(GradCache.keyOf(views, d))
  }
}

const attentionGradKVFast = (gemm: Gemm, simd: AttentionSimd, cache: GradCache) => {
  const scratch = new Scratch()
  return (views: CpuViews, p: Params): void => {
    const d = dimsOf(p)
    const { B, T, H, Hkv, hd } = d
    const { q, k, v, L } = inputs(views)
    const dO = views.f32("dO")
    const Drow = views.f32("Drow")
    const dk = views.f32("dk")
    const dv = views.f32("dv")
    const group = H / Hkv
    const cached = cache.valid(GradCache.keyOf(views, d))
    const [P0, dS0] = scratch.get(T * T)
    for (let b = 0; b < B; b++) {
      for (let kvh = 0; kvh < Hkv; kvh++) {
        const kvOff = kvOffset(d, b, kvh)
        for (let hh = 0; hh < group; hh++) {
          const h = kvh * group + hh
          const qOff = headOffset(d, b, h)
          const at = (b * H + h) * T * T
          const P = cached ? cache.P.subarray(at, at + T * T) : P0
          const dS = cached ? cache.dS.subarray(at, at + T * T) : dS0
          if (!cached) probabilities(gemm, simd, d, q, k, b, h, P, L, false)
          // dv[s] += sum_t P[t,s] dO[t]
          gemm.gemm(P, 0, 1, T, dO, qOff, H * hd, 1, dv, kvOff, Hkv * hd, T, hd, T, hh > 0)
          if (!cached) scoreGrad(gemm, simd, d, dO, v, Drow, b, h, P, dS)
          // dk[s] += sum_t dS[t,s] q[t]
          gemm.gemm(dS, 0, 1, T, q, qOff, H * hd, 1, dk, kvOff, Hkv * hd, T, hd, T, hh > 0)
        }
      }
    }
  }
}
