/**
 * The AdamW update in WebAssembly SIMD (emitted as bytes like src/cpu/wasmSoftmax.ts), for the
 * fast CPU backend's adamw kernel: the reference's arithmetic (src/optim/adamw.ts, which rounds
 * to f32 after each operation like the WGSL) in f32 lanes, its hyperparameters rounded to f32 as
 * the WGSL's uniforms are, and its last expression in f32 too (the reference's is a double
 * rounded once), so results agree with it to fp32 rounding, not bitwise.
 */
import { uleb, str, section, vec, I32, F32, V128, get, set, i32c, add, end, simd, v128load, v128store, splat, fadd, fsub, fmul, fdiv, forLoop, WasmInstance } from "./wasmEncoding.ts"
import { adamwKernel } from "../optim/adamw.ts"
import { type FastKernel, fastFor } from "./fastKernel.ts"

const fsqrt = simd(0xe3)

// params g, p, m, v (byte addresses), bytes, then f32 decay, b1, b2, c1, c2, step, sqrtBc2, eps
const [pg, pp, pm, pv, bytes] = [0, 1, 2, 3, 4]
const consts = [5, 6, 7, 8, 9, 10, 11, 12]
const o = 13
const [G, PI, MI, VI] = [14, 15, 16, 17]
// splatted constants, in the order of `consts`
const [DEC, B1, B2, C1, C2, ST, SQB, EPS] = [18, 19, 20, 21, 22, 23, 24, 25]
const at = (p: number) => [...get(p), ...get(o), ...add]

const body = [
  ...vec([[1, I32], [12, V128]]),
  ...consts.flatMap((c, i) => [...get(c), ...splat, ...set(DEC + i)]),
  ...forLoop(o, i32c(0), bytes, 16, [
    ...at(pg), ...v128load(0), ...set(G),
    ...at(pp), ...v128load(0), ...get(DEC), ...fmul, ...set(PI),
    ...get(B1), ...at(pm), ...v128load(0), ...fmul, ...get(C1), ...get(G), ...fmul, ...fadd, ...set(MI),
    ...get(B2), ...at(pv), ...v128load(0), ...fmul, ...get(C2), ...get(G), ...fmul, ...get(G), ...fmul, ...fadd, ...set(VI),
    ...at(pm), ...get(MI), ...v128store(0),
    ...at(pv), ...get(VI), ...v128store(0),
    // p = pi - (step·mi) / (sqrt(vi) / sqrtBc2 + eps)
    ...at(pp), ...get(PI), ...get(ST), ...get(MI), ...fmul, ...get(VI), ...fsqrt, ...get(SQB), ...fdiv, ...get(EPS), ...fadd, ...fdiv, ...fsub, ...v128store(0)
  ]),
  ...end
]

/** The module's bytes: imports memory env.mem, exports adamw(g, p, m, v, bytes, decay, b1, b2, c1, c2, step, sqrtBc2, eps). */
export const adamwModuleBytes = (): Uint8Array => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([...new Array(5).fill([I32]), ...new Array(8).fill([F32])]), 0x00]])),
  ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([[0x00]])),
  ...section(7, vec([[...str("adamw"), 0x00, 0x00]])),
  ...section(10, vec([[...uleb(body.length), ...body]]))
])

/** The function with its memory: g, p, m, v copied in, p, m, v out. Not reentrant. */
export class WasmAdamw {
  private readonly wasm = new WasmInstance<{ adamw: (...args: number[]) => void }>(adamwModuleBytes())

  step(
    g: Float32Array, p: Float32Array, m: Float32Array, v: Float32Array, n: number,
    h: { readonly lr: number; readonly beta1: number; readonly beta2: number; readonly eps: number; readonly wd: number; readonly bc1: number; readonly sqrtBc2: number }
  ): void {
    const f = Math.fround
    const N = Math.ceil(n / 4) * 4
    const a = this.wasm.floats(4 * N)
    a.set(g.subarray(0, n), 0)
    a.set(p.subarray(0, n), N)
    a.set(m.subarray(0, n), 2 * N)
    a.set(v.subarray(0, n), 3 * N)
    const b1 = f(h.beta1)
    const b2 = f(h.beta2)
    this.wasm.fns.adamw(0, 4 * N, 8 * N, 12 * N, 4 * N, f(1 - f(f(h.lr) * f(h.wd))), b1, b2, f(1 - b1), f(1 - b2), f(f(h.lr) / f(h.bc1)), h.sqrtBc2, h.eps)
    p.set(a.subarray(N, N + n))
    m.set(a.subarray(2 * N, 2 * N + n))
    v.set(a.subarray(3 * N, 3 * N + n))
  }
}

export const adamwFast = (w: WasmAdamw): readonly [string, FastKernel] =>
  fastFor(adamwKernel, (views, p) => w.step(views.f32("g"), views.f32("p"), views.f32("m"), views.f32("v"), p.n, p))
