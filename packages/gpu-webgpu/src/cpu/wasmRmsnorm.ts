/**
 * RMSNorm forward and backward over rows of D floats (D a multiple of 4) in WebAssembly SIMD
 * (emitted as bytes like src/cpu/wasmSoftmax.ts, whose helpers it uses), for the fast CPU
 * backend's rmsnorm kernels (src/cpu/fastElementwise.ts's JavaScript-free path). The arithmetic
 * is the reference's (src/ops/rmsnorm.ts) in f32 lanes, the row sums as four partial sums, so
 * results agree with it to fp32 rounding, not bitwise.
 *  - forward(x, w, rstd, rows, D, eps): r = 1/sqrt(Σx²/D + eps); x = x·r·w in place; rstd[n] = r
 *  - backward(x, g, w, rstd, rows, D): m = Σ(g·w·x)/D; x = r·w·g - x·r·r·r·m (dx) and
 *    g = g·x·r (gxr), in place
 */
import { uleb, str, section, vec, I32, F32, V128, get, set, tee, i32c, add, mul, end, f32load, f32store, f32c, f32add, f32div, v128load, v128store, f32x4, splat, fadd, fsub, fmul, forLoop, hsum, WasmInstance } from "./wasmEncoding.ts"
import { rmsnormGradKernel, rmsnormKernel } from "../ops/rmsnorm.ts"
import { type FastKernel, fastFor } from "./fastKernel.ts"

const f32sqrt = [0x91]
const f32fromU32 = [0xb3]

// forward: params x, w, rstd, rows, D, eps; i32 n, rowp, j, rowEnd; f32 ss, r; v128 VS, X, RV
const forward = (() => {
  const [px, pw, prstd, rows, D, eps] = [0, 1, 2, 3, 4, 5]
  const [n, rowp, j, rowEnd] = [6, 7, 8, 9]
  const [ss, r] = [10, 11]
  const [VS, X, RV] = [12, 13, 14]
  const at = [...get(rowp), ...get(j), ...add]
  return [
    ...vec([[4, I32], [2, F32], [3, V128]]),
    ...get(D), ...i32c(4), ...mul, ...set(rowEnd),
    ...forLoop(n, i32c(0), rows, 1, [
      ...get(px), ...get(n), ...get(rowEnd), ...mul, ...add, ...set(rowp),
      ...f32x4(0), ...set(VS),
      ...forLoop(j, i32c(0), rowEnd, 16, [...at, ...v128load(0), ...tee(X), ...get(X), ...fmul, ...get(VS), ...fadd, ...set(VS)]),
      ...hsum(VS), ...set(ss),
      ...f32c(1), ...get(ss), ...get(D), ...f32fromU32, ...f32div, ...get(eps), ...f32add, ...f32sqrt, ...f32div, ...set(r),
      ...get(prstd), ...get(n), ...i32c(4), ...mul, ...add, ...get(r), ...f32store,
      ...get(r), ...splat, ...set(RV),
      ...forLoop(j, i32c(0), rowEnd, 16, [...at, ...at, ...v128load(0), ...get(RV), ...fmul, ...get(pw), ...get(j), ...add, ...v128load(0), ...fmul, ...v128store(0)])
    ]),
    ...end
  ]
})()

// backward: params x, g, w, rstd, rows, D; i32 n, rowp, rowg, j, rowEnd; f32 r, m; v128 VS, RV, MV, X, G, W
const backward = (() => {
  const [px, pg, pw, prstd, rows, D] = [0, 1, 2, 3, 4, 5]
  const [n, rowp, rowg, j, rowEnd] = [6, 7, 8, 9, 10]
  const [r, m] = [11, 12]
  const [VS, RV, MV, X, G, W] = [13, 14, 15, 16, 17, 18]
  const atX = [...get(rowp), ...get(j), ...add]
  const atG = [...get(rowg), ...get(j), ...add]
  const atW = [...get(pw), ...get(j), ...add]
  return [
    ...vec([[5, I32], [2, F32], [6, V128]]),
    ...get(D), ...i32c(4), ...mul, ...set(rowEnd),
    ...forLoop(n, i32c(0), rows, 1, [
      ...get(px), ...get(n), ...get(rowEnd), ...mul, ...add, ...set(rowp),
      ...get(pg), ...get(n), ...get(rowEnd), ...mul, ...add, ...set(rowg),
      ...get(prstd), ...get(n), ...i32c(4), ...mul, ...add, ...f32load(), ...set(r),
      ...f32x4(0), ...set(VS),
      // Σ (g·w)·x
      ...forLoop(j, i32c(0), rowEnd, 16, [...atG, ...v128load(0), ...atW, ...v128load(0), ...fmul, ...atX, ...v128load(0), ...fmul, ...get(VS), ...fadd, ...set(VS)]),
      ...hsum(VS), ...get(D), ...f32fromU32, ...f32div, ...set(m),
      ...get(r), ...splat, ...set(RV),
      ...get(m), ...splat, ...set(MV),
      ...forLoop(j, i32c(0), rowEnd, 16, [
        ...atX, ...v128load(0), ...set(X),
        ...atG, ...v128load(0), ...set(G),
        ...atW, ...v128load(0), ...set(W),
        // dx = (r·w)·g - (((x·r)·r)·r)·m
        ...atX, ...get(RV), ...get(W), ...fmul, ...get(G), ...fmul,
        ...get(X), ...get(RV), ...fmul, ...get(RV), ...fmul, ...get(RV), ...fmul, ...get(MV), ...fmul, ...fsub, ...v128store(0),
        // gxr = (g·x)·r
        ...atG, ...get(G), ...get(X), ...fmul, ...get(RV), ...fmul, ...v128store(0)
      ])
    ]),
    ...end
  ]
})()

const fn = (body: number[]) => [...uleb(body.length), ...body]

/** The module's bytes: imports memory env.mem, exports forward(x, w, rstd, rows, D, eps) and backward(x, g, w, rstd, rows, D). */
export const rmsnormModuleBytes = (): Uint8Array => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [F32]]), 0x00], [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 0x00]])),
  ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([[0x00], [0x01]])),
  ...section(7, vec([[...str("forward"), 0x00, 0x00], [...str("backward"), 0x00, 0x01]])),
  ...section(10, vec([fn(forward), fn(backward)]))
])

/** The two functions with their memory; the arrays are copied in and the results out. Not reentrant. */
export class WasmRmsnorm {
  private readonly wasm = new WasmInstance<{
    forward: (x: number, w: number, rstd: number, rows: number, D: number, eps: number) => void
    backward: (x: number, g: number, w: number, rstd: number, rows: number, D: number) => void
  }>(rmsnormModuleBytes())

  static fits(D: number): boolean {
    return D % 4 === 0 && D > 0
  }

  /** out = x·r·w per row, rstd[row0 + n] = r (rows of D from the start of x and out). */
  forward(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array, rows: number, row0: number, D: number, eps: number): void {
    const N = rows * D
    const f = this.wasm.floats(N + D + rows)
    f.set(x.subarray(0, N))
    f.set(w.subarray(0, D), N)
    this.wasm.fns.forward(0, 4 * N, 4 * (N + D), rows, D, eps)
    out.set(f.subarray(0, N))
    rstd.set(f.subarray(N + D, N + D + rows), row0)
  }

  /** dx and gxr of rows of D (rstd read from row0). */
  backward(
    x: Float32Array, w: Float32Array, g: Float32Array, rstd: Float32Array, dx: Float32Array, gxr: Float32Array,
    rows: number, row0: number, D: number
  ): void {
    const N = rows * D
    const f = this.wasm.floats(2 * N + D + rows)
    f.set(x.subarray(0, N))
    f.set(g.subarray(0, N), N)
    f.set(w.subarray(0, D), 2 * N)
    f.set(rstd.subarray(row0, row0 + rows), 2 * N + D)
    this.wasm.fns.backward(0, 4 * N, 8 * N, 4 * (2 * N + D), rows, D)
    dx.set(f.subarray(0, N))
    gxr.set(f.subarray(N, 2 * N))
  }
}

/** The fast backend's rmsnorm kernels: these functions where D is a multiple of 4, else the references. */
export const rmsnormKernelsFast = (r: WasmRmsnorm): ReadonlyArray<readonly [string, FastKernel]> => [
  fastFor(rmsnormKernel, (views, p) => {
    if (!WasmRmsnorm.fits(p.D)) return rmsnormKernel.cpu(views, p)
    r.forward(views.f32("x"), views.f32("w"), views.f32("out"), views.f32("rstd"), p.rows, p.row0, p.D, p.eps)
  }),
  fastFor(rmsnormGradKernel, (views, p) => {
    if (!WasmRmsnorm.fits(p.D)) return rmsnormGradKernel.cpu(views, p)
    r.backward(views.f32("x"), views.f32("w"), views.f32("g"), views.f32("rstd"), views.f32("dx"), views.f32("gxr"), p.rows, p.row0, p.D)
  })
]
