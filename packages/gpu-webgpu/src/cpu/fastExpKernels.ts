/**
 * Fast versions of the exp-bound kernels: swiglu and its gradient (a sigmoid per element), the
 * cross-entropy's row log-sum-exp and its gradient (an exp per logit). Each is a straight loop
 * around the SIMD exp / sigmoid of src/cpu/wasmExp.ts: the arguments are written to its scratch
 * array, mapped in one call, and the rest of the reference's arithmetic follows in JavaScript;
 * the cross-entropy's, where V is a multiple of 4, run wholly in SIMD (src/cpu/wasmSoftmax.ts)
 * with only the log and the one-hot here.
 * Results agree with the references to fp32 rounding (the exp is f32, ~1-2 ulp), not bitwise.
 */
import type { CpuViews, KernelParams } from "../backend.ts"
import { ceGradKernel, ceRowsKernel } from "../ops/crossEntropy.ts"
import { swigluGradKernel, swigluKernel } from "../ops/swiglu.ts"
import { type FastKernel, fastFor } from "./fastKernel.ts"
import type { WasmExp } from "./wasmExp.ts"
import type { WasmSoftmax } from "./wasmSoftmax.ts"

/** sigmoid(gate[0..n)) in the scratch array. */
const sigmoidOf = (w: WasmExp, gate: Float32Array, n: number): Float32Array => {
  const s = w.view(n)
  s.set(gate.subarray(0, n))
  w.sigmoid(n)
  return s
}

export const swigluFast = (w: WasmExp) => (views: CpuViews, p: KernelParams<"n" | "bcast">): void => {
  const gate = views.f32("gate")
  const up = views.f32("up")
  const out = views.f32("out")
  const n = p.n
  const s = sigmoidOf(w, gate, n)
  for (let i = 0; i < n; i++) out[i] = gate[i]! * s[i]! * up[i]!
}

export const swigluGradFast = (w: WasmExp) => (views: CpuViews, p: KernelParams<"n" | "bcast">): void => {
  const gate = views.f32("gate")
  const up = views.f32("up")
  const g = views.f32("g")
  const dgate = views.f32("dgate")
  const dup = views.f32("dup")
  const n = p.n
  const sg = sigmoidOf(w, gate, n)
  for (let i = 0; i < n; i++) {
    const x = gate[i]!
    const s = sg[i]!
    const gi = g[i]!
    dup[i] = gi * x * s
    dgate[i] = gi * up[i]! * s * (1 + x * (1 - s))
  }
}

/** lse, loss and valid of `rows` rows of V logits: max per row, one exp over all of x - max, sums. */
export const ceRowsFast = (w: WasmExp, sm: WasmSoftmax) => (views: CpuViews, p: KernelParams<"rows" | "row0" | "V">): void => {
  const x = views.f32("x")
  const t = views.i32("t")
  const lse = views.f32("lse")
  const loss = views.f32("loss")
  const valid = views.f32("valid")
  const { rows, row0, V } = p
  if (V % 4 === 0) {
    // max and sum of exps per row wholly in SIMD (src/cpu/wasmSoftmax.ts)
    const f = sm.useRows(rows, V)
    f.set(x.subarray(0, rows * V))
    sm.ceRows(rows, V)
    const aux = rows * V
    for (let n = 0; n < rows; n++) {
      const l = f[aux + n]! + Math.log(f[aux + rows + n]!)
      const gr = row0 + n
      const tg = t[gr]!
      lse[gr] = l
      const ok = tg >= 0 && tg < V
      loss[gr] = ok ? l - x[n * V + tg]! : 0
      valid[gr] = ok ? 1 : 0
    }
    return
  }
  const e = w.view(rows * V)
  const maxes = new Float64Array(rows)
  for (let n = 0, base = 0; n < rows; n++, base += V) {
    let m = -Infinity
    for (let j = 0; j < V; j++) {
      const v = x[base + j]!
      if (v > m || v !== v) m = v
    }
    maxes[n] = m
    for (let j = 0; j < V; j++) e[base + j] = x[base + j]! - m
  }
  w.exp(rows * V)
  for (let n = 0, base = 0; n < rows; n++, base += V) {
    let s = 0
    for (let j = 0; j < V; j++) s += e[base + j]!
    const l = maxes[n]! + Math.log(s)
    const gr = row0 + n
    const tg = t[gr]!
    lse[gr] = l
    const ok = tg >= 0 && tg < V
    loss[gr] = ok ? l - x[base + tg]! : 0
    valid[gr] = ok ? 1 : 0
  }
}

/** dx = (softmax - onehot) * g / count over n logits (whole rows of V from row0). */
export const ceGradFast = (w: WasmExp, sm: WasmSoftmax) => (views: CpuViews, p: KernelParams<"n" | "row0" | "V">): void => {
  const x = views.f32("x")
  const t = views.i32("t")
  const lse = views.f32("lse")
  const g = views.f32("g")[0]!
  const count = Math.max(views.f32("count")[0]!, 1)
  const dx = views.f32("dx")
  const { n, row0, V } = p
  if (V % 4 === 0 && n % V === 0) {
    // exp(x - lse) · g / count in SIMD, then the one-hot and the ignored rows here
    const rows = n / V
    const f = sm.useRows(rows, V)
    f.set(x.subarray(0, n))
    for (let r = 0; r < rows; r++) f[n + r] = lse[row0 + r]!
    const gc = g / count
    sm.ceGrad(rows, V, gc)
    dx.set(f.subarray(0, n))
    for (let r = 0, i0 = 0; r < rows; r++, i0 += V) {
      const tg = t[row0 + r]!
      if (tg < 0 || tg >= V) dx.fill(0, i0, i0 + V)
      else dx[i0 + tg] = dx[i0 + tg]! - gc
    }
    return
  }
  const e = w.view(n)
  for (let i0 = 0, gr = row0; i0 < n; i0 += V, gr++) {
    const end = Math.min(V, n - i0)
    const l = lse[gr]!
    for (let j = 0; j < end; j++) e[i0 + j] = x[i0 + j]! - l
  }
  w.exp(n)
  for (let i0 = 0, gr = row0; i0 < n; i0 += V, gr++) {
    const end = Math.min(V, n - i0)
    const tg = t[gr]!
    if (tg < 0 || tg >= V) {
      dx.fill(0, i0, i0 + end)
      continue
    }
    for (let j = 0; j < end; j++) dx[i0 + j] = (e[i0 + j]! * g) / count
    if (tg < end) dx[i0 + tg] = ((e[i0 + tg]! - 1) * g) / count
  }
}

export const expKernelsFast = (w: WasmExp, sm: WasmSoftmax): ReadonlyArray<readonly [string, FastKernel]> => [
  fastFor(swigluKernel, swigluFast(w)),
  fastFor(swigluGradKernel, swigluGradFast(w)),
  fastFor(ceRowsKernel, ceRowsFast(w, sm)),
  fastFor(ceGradKernel, ceGradFast(w, sm))
]
