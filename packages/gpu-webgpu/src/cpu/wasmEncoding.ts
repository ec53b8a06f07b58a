/**
 * The WebAssembly binary encoding the fast CPU kernels are emitted with (no build step, no
 * compiler dependency): the module format, the opcodes they use, a few code helpers, and the
 * instance each kernel runs on. One home for these, so every module (wasmGemm, wasmExp,
 * wasmSoftmax, wasmRmsnorm, wasmAdamw, wasmBinary) spells an instruction the same way.
 */

// ---- the module format ----

export const uleb = (n: number): number[] => {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

export const sleb = (n: number): number[] => {
  const out: number[] = []
  for (;;) {
    const byte = n & 0x7f
    n >>= 7
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte)
      return out
    }
    out.push(byte | 0x80)
  }
}

export const str = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))]
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]

// ---- value types, locals, i32 ----

export const I32 = 0x7f
export const F32 = 0x7d
export const V128 = 0x7b
export const get = (i: number) => [0x20, ...uleb(i)]
export const set = (i: number) => [0x21, ...uleb(i)]
export const tee = (i: number) => [0x22, ...uleb(i)]
export const i32c = (n: number) => [0x41, ...sleb(n)]
export const add = [0x6a]
export const sub = [0x6b]
export const mul = [0x6c]
export const ltU = [0x49]
export const geU = [0x4f]
export const shl = [0x74]
export const shrU = [0x76]

// ---- control ----

export const loop = [0x03, 0x40]
export const block = [0x02, 0x40]
export const end = [0x0b]
export const br0 = [0x0c, 0]
export const brIf = (d: number) => [0x0d, ...uleb(d)]
export const ifThen = [0x04, 0x40]
export const elseOp = [0x05]

// ---- f32 scalars ----

export const f32load = (offset = 0) => [0x2a, 2, ...uleb(offset)]
export const f32store = [0x38, 2, 0]
export const f32c = (v: number): number[] => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)]
export const f32add = [0x92]
export const f32div = [0x95]
export const f32max = [0x97]

// ---- SIMD ----

export const simd = (op: number) => [0xfd, ...uleb(op)]
export const v128load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)]
export const v128store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)]
export const v128zero = [...simd(0x0c), ...new Array<number>(16).fill(0)]
/** An f32x4 constant with `v` in every lane. */
export const f32x4 = (v: number): number[] => {
  const b = new Uint8Array(16)
  new Float32Array(b.buffer).fill(v)
  return [...simd(0x0c), ...b]
}
/** An i32x4 constant with `v` in every lane. */
export const i32x4 = (v: number): number[] => {
  const b = new Uint8Array(16)
  new Int32Array(b.buffer).fill(v)
  return [...simd(0x0c), ...b]
}
/** f32x4.splat */
export const splat = simd(0x13)
export const lane = (i: number) => [...simd(0x1f), i]
export const fadd = simd(0xe4)
export const fsub = simd(0xe5)
export const fmul = simd(0xe6)
export const fdiv = simd(0xe7)
// pmin/pmax (b < a ? b : a): one minps/maxps on x86, where min/max need NaN fix-ups
export const fmin = simd(0xea)
export const fmax = simd(0xeb)
export const fneg = simd(0xe1)
export const iadd = simd(0xae)
export const ishl = simd(0xab)

// ---- code helpers ----

/** for (i = from; i < to; i += step) body, all i32 locals / code */
export const forLoop = (i: number, from: number[], to: number, stepBytes: number, body: number[]): number[] => [
  ...from, ...set(i),
  ...block, ...loop,
  ...get(i), ...get(to), ...geU, ...brIf(1),
  ...body,
  ...get(i), ...i32c(stepBytes), ...add, ...set(i),
  ...br0,
  ...end, ...end
]

/** horizontal sum of a v128 local */
export const hsum = (x: number) => [...get(x), ...lane(0), ...get(x), ...lane(1), ...f32add, ...get(x), ...lane(2), ...f32add, ...get(x), ...lane(3), ...f32add]

// ---- the instance ----

/**
 * A kernel module instantiated on a memory of its own (imported as env.mem), with that memory as
 * floats, grown on demand. Not reentrant: one per kernel user.
 */
export class WasmInstance<Fns> {
  private readonly memory = new WebAssembly.Memory({ initial: 1 })
  /** The module's exports; their signatures are the ones its bytes declare (WebAssembly exports are untyped). */
  readonly fns: Fns
  private f32: Float32Array

  constructor(bytes: Uint8Array) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: this.memory } })
    this.fns = instance.exports as unknown as Fns
    this.f32 = new Float32Array(this.memory.buffer)
  }

  /** The memory as floats, at least `n` of them; valid until the next call (growing detaches the old view). */
  floats(n: number): Float32Array {
    if (this.f32.length < n) {
      this.memory.grow(Math.ceil((n * 4 - this.memory.buffer.byteLength) / 65536))
      this.f32 = new Float32Array(this.memory.buffer)
    }
    return this.f32
  }
}
