/**
 * Straight-loop versions of the hottest element-wise kernels (and rope, row by row; the
 * exp-bound ones, cross-entropy and swiglu, are in src/cpu/fastExpKernels.ts). The references go through
 * `mapKernel`'s per-element callback with named-view lookups; these are the same arithmetic in
 * the same order (so results are bitwise equal), without the per-element indirection.
 */
import type { CpuViews, KernelParams } from "../backend.ts"
import { addKernel, mulKernel, subKernel } from "../ops/binary.ts"
import { ropeKernel } from "../ops/rope.ts"
import { axpbyKernel, fillKernel } from "../ops/util.ts"
import { scaleInPlaceKernel } from "../optim/clip.ts"
import { type FastKernel, fastFor } from "./fastKernel.ts"
import type { BinaryOp, WasmBinary } from "./wasmBinary.ts"

/** Without broadcast (and above a few vectors) in SIMD, src/cpu/wasmBinary.ts: bitwise the same. */
const binary = (op: (x: number, y: number) => number, simd: BinaryOp, w: WasmBinary) => (views: CpuViews, p: KernelParams<"n" | "bcast">): void => {
  const a = views.f32("a")
  const b = views.f32("b")
  const out = views.f32("out")
  const n = p.n
  const bc = p.bcast
  if (bc === 0 && n >= 64) {
    w.run(simd, a, b, out, n)
  } else if (bc === 0) {
    for (let i = 0; i < n; i++) out[i] = op(a[i]!, b[i]!)
  } else {
    for (let r = 0; r < n; r += bc) {
      const len = Math.min(bc, n - r)
      for (let j = 0; j < len; j++) out[r + j] = op(a[r + j]!, b[j]!)
    }
  }
}

export const elementwiseFast = (w: WasmBinary): ReadonlyArray<readonly [string, FastKernel]> => [
  fastFor(addKernel, binary((x, y) => x + y, "add", w)),
  fastFor(subKernel, binary((x, y) => x - y, "sub", w)),
  fastFor(mulKernel, binary((x, y) => x * y, "mul", w)),
  fastFor(fillKernel, (views, p) => views.f32("out").fill(p.value, 0, p.n)),
  fastFor(axpbyKernel, (views, p) => {
    const x = views.f32("x")
    const y = views.f32("y")
    const n = p.n
    const alpha = p.alpha
    const beta = p.beta
    if (beta !== 0) for (let i = 0; i < n; i++) y[i] = y[i]! * beta + x[i]! * alpha
    else for (let i = 0; i < n; i++) y[i] = 0 + x[i]! * alpha
  }),
  fastFor(scaleInPlaceKernel, (views, p) => {
    const y = views.f32("y")
    const n = p.n
    const s = p.s
    for (let i = 0; i < n; i++) y[i] = y[i]! * s
  }),
  fastFor(ropeKernel, (views, p) => {
    const x = views.f32("x")
    const table = views.f32("table")
    const out = views.f32("out")
    const n = p.n
    const T = p.T
    const H = p.H
    const hd = p.hd
    const sign = p.sign
    const row0 = p.row0
    const half = hd / 2
    const sinAt = T * half
    // rows of hd: the reference's per-element index arithmetic hoisted out of the inner loops,
    // each row's two halves in their own loop (no branch per element)
    for (let r = 0, i0 = 0; i0 < n; r++, i0 += hd) {
      const t = Math.floor((row0 + r) / H) % T
      const tb = t * half
      if (n - i0 >= hd) {
        const i1 = i0 + half
        for (let j = 0; j < half; j++) {
          const c = table[tb + j]!
          const s = table[sinAt + tb + j]! * sign
          const a = x[i0 + j]!
          const b = x[i1 + j]!
          out[i0 + j] = a * c - b * s
          out[i1 + j] = b * c + a * s
        }
        continue
      }
      const end = n - i0
      for (let d = 0; d < end; d++) {
        const i = i0 + d
        const j = d < half ? d : d - half
        const c = table[tb + j]!
        const s = table[sinAt + tb + j]! * sign
        out[i] = d < half ? x[i]! * c - x[i + half]! * s : x[i]! * c + x[i - half]! * s
      }
    }
  })
]
