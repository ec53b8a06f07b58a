/**
 * Element-wise add, sub and mul of two f32 arrays in WebAssembly SIMD (emitted as bytes like
 * src/cpu/wasmSoftmax.ts), for the fast CPU backend's binary kernels without broadcast. An f32
 * lane operation is the correctly rounded result, as is JavaScript's double result rounded to
 * f32 (a double holds more than twice f32's precision), so these are bitwise equal to the
 * references.
 */
import { uleb, str, section, vec, I32, get, i32c, add, end, v128load, v128store, fadd, fsub, fmul, forLoop, WasmInstance } from "./wasmEncoding.ts"

// params a, b, out (byte addresses), bytes; i32 o
const [pa, pb, po, bytes, o] = [0, 1, 2, 3, 4]
const at = (p: number) => [...get(p), ...get(o), ...add]
const func = (op: number[]): number[] => {
  const body = [
    ...vec([[1, I32]]),
    ...forLoop(o, i32c(0), bytes, 16, [...at(po), ...at(pa), ...v128load(0), ...at(pb), ...v128load(0), ...op, ...v128store(0)]),
    ...end
  ]
  return [...uleb(body.length), ...body]
}

/** The module's bytes: imports memory env.mem, exports add, sub, mul (a, b, out, bytes). */
export const binaryModuleBytes = (): Uint8Array => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32]]), 0x00]])),
  ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([[0x00], [0x00], [0x00]])),
  ...section(7, vec([[...str("add"), 0x00, 0x00], [...str("sub"), 0x00, 0x01], [...str("mul"), 0x00, 0x02]])),
  ...section(10, vec([func(fadd), func(fsub), func(fmul)]))
])

export type BinaryOp = "add" | "sub" | "mul"

/** The three functions with their memory: a and b copied in, out copied back. Not reentrant. */
export class WasmBinary {
  private readonly wasm = new WasmInstance<Record<BinaryOp, (a: number, b: number, out: number, bytes: number) => void>>(binaryModuleBytes())

  /** out[0..n) = a op b */
  run(op: BinaryOp, a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
    const N = Math.ceil(n / 4) * 4
    const f = this.wasm.floats(3 * N)
    f.set(a.subarray(0, n), 0)
    f.set(b.subarray(0, n), N)
    this.wasm.fns[op](0, 4 * N, 8 * N, 4 * N)
    out.set(f.subarray(2 * N, 2 * N + n))
  }
}
