/**
 * exp and sigmoid over f32 arrays, four lanes at a time in WebAssembly SIMD (emitted as bytes
 * like the gemm in src/cpu/wasmGemm.ts). `Math.exp` costs ~3.5 ns an element in Bun, which made
 * the exp-bound kernels of a small model's step (swiglu, cross-entropy, attention's softmax) the
 * largest part of its kernel time; this runs at ~0.9 ns an element (the clamp uses pmin/pmax:
 * f32x4.min/max, with their NaN and -0 rules, cost ~1.4 ns on x86).
 *
 * The algorithm is Cephes' expf: x clamped to [-87.34, 88.38], n = round(x·log2 e) (by adding
 * 1.5·2^23), r = x - n·ln 2 (in two parts), e^r by a degree-7 polynomial, times 2^n built in the exponent
 * bits. Error ~1-2 ulp of f32 against the reference's `Math.exp` (a double rounded to f32), so
 * the kernels using it agree with their references to fp32 rounding, not bitwise. Below the clamp
 * the result is ~1.2e-38 instead of 0 (or a denormal); NaN stays NaN.
 */
import { uleb, str, section, vec, I32, V128, get, set, i32c, add, mul, geU, loop, block, end, brIf, v128load, v128store, f32x4, i32x4, fadd, fsub, fmul, fdiv, fmin, fmax, fneg, iadd, ishl, WasmInstance } from "./wasmEncoding.ts"


/** exp of the v128 in local `x` (clobbered), left on the stack; locals fx, r, t are scratch. */
export const expOf = (x: number, fx: number, r: number, t: number): number[] => [
  ...get(x), ...f32x4(88.3762626647949), ...fmin, ...f32x4(-87.3365447504019), ...fmax, ...set(x),
  // t = x·log2 e + 1.5·2^23 rounds to an integer n in t's low mantissa bits: fx = t - 1.5·2^23
  ...get(x), ...f32x4(Math.LOG2E), ...fmul, ...f32x4(12582912), ...fadd, ...set(t),
  ...get(t), ...f32x4(12582912), ...fsub, ...set(fx),
  ...get(x), ...get(fx), ...f32x4(0.693359375), ...fmul, ...fsub, ...get(fx), ...f32x4(-2.12194440e-4), ...fmul, ...fsub, ...set(r),
  ...get(r), ...f32x4(1.9875691500e-4), ...fmul, ...f32x4(1.3981999507e-3), ...fadd,
  ...get(r), ...fmul, ...f32x4(8.3334519073e-3), ...fadd,
  ...get(r), ...fmul, ...f32x4(4.1665795894e-2), ...fadd,
  ...get(r), ...fmul, ...f32x4(1.6666665459e-1), ...fadd,
  ...get(r), ...fmul, ...f32x4(5.0000001201e-1), ...fadd,
  ...get(r), ...get(r), ...fmul, ...fmul, ...get(r), ...fadd, ...f32x4(1), ...fadd,
  // 2^n: (bits(t) + 127) << 23 (t's exponent bits and the 1.5 shift out of the word)
  ...get(t), ...i32x4(127), ...iadd, ...i32c(23), ...ishl,
  ...fmul
]

/** Vectors per loop iteration (independent polynomial chains); 4 measured no faster than 1 in Bun. */
const U = 1
/** Floats per loop iteration; callers' lengths are rounded up to it. */
const STEP = 4 * U

/** func(ptr, n): mem[ptr .. ptr + 4n) = f(itself), n a multiple of STEP. */
const mapFunc = (before: number[], after: (y: number) => number[]): number[] => {
  const [ptr, n, stop] = [0, 1, 2]
  // per lane u: x, fx, r, t
  const x = (u: number) => 3 + u * 4
  const body = [
    ...get(ptr), ...get(n), ...i32c(4), ...mul, ...add, ...set(stop),
    ...block, ...loop,
    ...get(ptr), ...get(stop), ...geU, ...brIf(1),
    ...Array.from({ length: U }, (_, u) => [...get(ptr), ...v128load(16 * u), ...before, ...set(x(u))]).flat(),
    ...Array.from({ length: U }, (_, u) => [...expOf(x(u), x(u) + 1, x(u) + 2, x(u) + 3), ...set(x(u))]).flat(),
    ...Array.from({ length: U }, (_, u) => [...get(ptr), ...get(x(u)), ...after(x(u)), ...v128store(16 * u)]).flat(),
    ...get(ptr), ...i32c(16 * U), ...add, ...set(ptr),
    ...[0x0c, 0], // br 0
    ...end, ...end,
    ...end
  ]
  const func = [...vec([[1, I32], [4 * U, V128]]), ...body]
  return [...uleb(func.length), ...func]
}

/** The module's bytes: imports memory env.mem, exports exp(ptr, n) and sigmoid(ptr, n) in place. */
export const expModuleBytes = (): Uint8Array => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32]]), 0x00]])),
  ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([[0x00], [0x00]])),
  ...section(7, vec([[...str("exp"), 0x00, 0x00], [...str("sigmoid"), 0x00, 0x01]])),
  // sigmoid(x) = 1 / (1 + exp(-x))
  ...section(10, vec([mapFunc([], () => []), mapFunc(fneg, (y) => [...f32x4(1), ...fadd, ...set(y), ...f32x4(1), ...get(y), ...fdiv])]))
])

/**
 * exp / sigmoid in place on a scratch array in the module's memory: fill `view(n)`'s first n
 * values, call `exp(n)` or `sigmoid(n)`, read them back. Not reentrant; one per kernel user.
 */
export class WasmExp {
  private readonly wasm = new WasmInstance<{ exp: (ptr: number, n: number) => void; sigmoid: (ptr: number, n: number) => void }>(expModuleBytes())

  /** The scratch array, at least n values (rounded up to STEP); valid until the next `view`. */
  view(n: number): Float32Array {
    return this.wasm.floats(Math.ceil(n / STEP) * STEP)
  }

  /** view[0..n) = exp(view[0..n)) */
  exp(n: number): void {
    this.wasm.fns.exp(0, Math.ceil(n / STEP) * STEP)
  }

  /** view[0..n) = 1 / (1 + exp(-view[0..n))) */
  sigmoid(n: number): void {
    this.wasm.fns.sigmoid(0, Math.ceil(n / STEP) * STEP)
  }
}
