/**
 * Shared op cases for the op tests: each case draws small random shapes (FastCheck), builds its
 * inputs from a seed, and computes a scalar loss = sum(op(inputs) * R) with a fixed random R so
 * every output element gets a distinct weight in the gradient.
 */
import { expect } from "bun:test"
import { FastCheck as fc } from "effect"
import type { Engine, Tensor } from "../src/index.ts"
import { mulberry32 } from "../src/model/init.ts"

export interface InputSpec {
  readonly shape: readonly number[]
  readonly dtype: "f32" | "i32"
  /** i32: values in [lo, hi); f32: uniform in [lo, hi). */
  readonly lo: number
  readonly hi: number
  readonly grad: boolean
  /**
   * f32 only: magnitudes uniform in [awayFromZero, hi) with either sign, for ops that are singular
   * at zero (rmsnorm of a row whose rms is near 0 is ~sign(x): no finite difference of step 1e-2 sees its slope).
   */
  readonly awayFromZero?: number
}

export interface OpCase<P> {
  readonly name: string
  readonly params: fc.Arbitrary<P>
  readonly inputs: (p: P) => readonly InputSpec[]
  readonly forward: (e: Engine, xs: readonly Tensor[], p: P) => Tensor
  /** Fewer property runs for cases that are slow on the CPU reference. */
  readonly runs?: number
}

/** Deterministic PRNG (mulberry32, the init's) so a case's data is a function of its seed. */
export const rng = mulberry32

export const makeData = (spec: InputSpec, rand: () => number): Float32Array | Int32Array => {
  const n = spec.shape.reduce((a, b) => a * b, 1)
  if (spec.dtype === "i32") return Int32Array.from({ length: n }, () => spec.lo + Math.floor(rand() * (spec.hi - spec.lo)))
  const away = spec.awayFromZero
  if (away !== undefined) return Float32Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (away + rand() * (spec.hi - away)))
  return Float32Array.from({ length: n }, () => spec.lo + rand() * (spec.hi - spec.lo))
}

const f = (shape: readonly number[], grad = true, lo = -1, hi = 1): InputSpec => ({ shape, dtype: "f32", lo, hi, grad })
const ids = (shape: readonly number[], lo: number, hi: number): InputSpec => ({ shape, dtype: "i32", lo, hi, grad: false })
const dim = (max: number) => fc.integer({ min: 1, max })

// Erases P for the heterogeneous list; sound because a case's params only ever flow back into itself.
export const op = <P>(c: OpCase<P>): OpCase<unknown> => c as unknown as OpCase<unknown>

export const cases: readonly OpCase<unknown>[] = [
  op({
    name: "matmul",
    params: fc.record({ batch: fc.constantFrom<number[]>([], [2], [2, 3]), m: dim(9), k: dim(9), n: dim(9), transA: fc.boolean(), transB: fc.boolean() }),
    inputs: ({ batch, m, k, n, transA, transB }) => [f([...batch, ...(transA ? [k, m] : [m, k])]), f([...batch, ...(transB ? [n, k] : [k, n])])],
    forward: (e, [a, b], { transA, transB }) => e.matmul(a!, b!, { transA, transB })
  }),
  op({
    // multiples of 4 take the vec4 kernels; K = 4j+r splits into a vec4 and a scalar part
    name: "matmul (vec4 kernels)",
    params: fc.record({
      batch: fc.constantFrom<number[]>([], [2]),
      m: fc.constantFrom(4, 8, 12),
      k: fc.constantFrom(4, 8, 13),
      n: fc.constantFrom(4, 8, 16),
      transA: fc.boolean(),
      transB: fc.boolean()
    }),
    inputs: ({ batch, m, k, n, transA, transB }) => [f([...batch, ...(transA ? [k, m] : [m, k])]), f([...batch, ...(transB ? [n, k] : [k, n])])],
    forward: (e, [a, b], { transA, transB }) => e.matmul(a!, b!, { transA, transB })
  }),
  op({
    name: "matmul (2-D right operand shared over batches)",
    params: fc.record({ batch: fc.constantFrom([1], [3], [2, 2]), m: dim(6), k: dim(7), n: dim(6), transB: fc.boolean() }),
    inputs: ({ batch, m, k, n, transB }) => [f([...batch, m, k]), f(transB ? [n, k] : [k, n])],
    forward: (e, [a, b], { transB }) => e.matmul(a!, b!, { transB })
  }),
  ...(["add", "sub", "mul"] as const).flatMap((name) => [
    op({
      name,
      params: fc.record({ r: dim(5), c: dim(7) }),
      inputs: ({ r, c }) => [f([r, c]), f([r, c])],
      forward: (e, [a, b]) => e[name](a!, b!)
    }),
    op({
      name: `${name} (broadcast last dim)`,
      params: fc.record({ r: dim(5), c: dim(7), lead: fc.constantFrom<number[]>([], [2]) }),
      inputs: ({ r, c, lead }) => [f([...lead, r, c]), f([c])],
      forward: (e, [a, b]) => e[name](a!, b!)
    })
  ]),
  op({
    name: "scale",
    params: fc.record({ n: dim(12), s: fc.double({ min: -3, max: 3, noNaN: true }) }),
    inputs: ({ n }) => [f([n])],
    forward: (e, [a], { s }) => e.scale(a!, s)
  }),
  op({ name: "sum", params: fc.record({ r: dim(4), c: dim(6) }), inputs: ({ r, c }) => [f([r, c])], forward: (e, [a]) => e.sum(a!) }),
  op({ name: "mean", params: fc.record({ r: dim(4), c: dim(6) }), inputs: ({ r, c }) => [f([r, c])], forward: (e, [a]) => e.mean(a!) }),
  op({
    name: "reshape",
    params: fc.record({ r: dim(4), c: dim(6) }),
    inputs: ({ r, c }) => [f([r, c])],
    forward: (e, [a], { r, c }) => e.reshape(a!, [c, r])
  }),
  op({
    name: "embedding",
    params: fc.record({ V: dim(8), D: dim(6), N: dim(10) }),
    inputs: ({ V, D, N }) => [f([V, D]), ids([N], 0, V)],
    forward: (e, [w, i]) => e.embedding(w!, i!)
  }),
  op({
    name: "rmsnorm",
    params: fc.record({ N: dim(5), D: dim(9), eps: fc.constantFrom(1e-5, 1e-6, 0.1) }),
    // Rows of rms >= 0.25: the finite-difference check (step 1e-2) needs the op smooth at that scale.
    inputs: ({ N, D }) => [{ ...f([N, D]), awayFromZero: 0.25 }, f([D], true, 0.5, 1.5)],
    forward: (e, [x, w], { eps }) => e.rmsnorm(x!, w!, eps)
  }),
  op({
    name: "rope",
    params: fc.record({ B: dim(2), T: dim(6), H: dim(3), half: dim(4), theta: fc.constantFrom(10000, 500000) }),
    inputs: ({ B, T, H, half }) => [f([B, T, H, 2 * half])],
    forward: (e, [x], { theta }) => e.rope(x!, theta)
  }),
  op({
    name: "attention (causal, grouped-query)",
    params: fc.record({ B: dim(2), T: dim(5), Hkv: dim(2), group: dim(3), hd: dim(6) }),
    inputs: ({ B, T, Hkv, group, hd }) => [f([B, T, Hkv * group, hd]), f([B, T, Hkv, hd]), f([B, T, Hkv, hd])],
    forward: (e, [q, k, v]) => e.attention(q!, k!, v!)
  }),
  op({
    // long enough for several 64-position workgroups and several k/v tiles in the tiled kernels
    name: "attention (long sequence, wide heads)",
    params: fc.record({ T: fc.integer({ min: 60, max: 140 }), hd: fc.constantFrom(32, 64) }),
    inputs: ({ T, hd }) => [f([1, T, 2, hd], true, -0.5, 0.5), f([1, T, 1, hd], true, -0.5, 0.5), f([1, T, 1, hd])],
    forward: (e, [q, k, v]) => e.attention(q!, k!, v!),
    runs: 2
  }),
  op({ name: "silu", params: fc.record({ n: dim(16) }), inputs: ({ n }) => [f([n], true, -4, 4)], forward: (e, [x]) => e.silu(x!) }),
  op({
    name: "swiglu",
    params: fc.record({ r: dim(4), c: dim(6) }),
    inputs: ({ r, c }) => [f([r, c], true, -4, 4), f([r, c])],
    forward: (e, [g, u]) => e.swiglu(g!, u!)
  }),
  op({
    name: "softmax",
    params: fc.record({ r: dim(5), c: dim(9) }),
    inputs: ({ r, c }) => [f([r, c], true, -3, 3)],
    forward: (e, [x]) => e.softmax(x!)
  }),
  op({
    name: "crossEntropy (ignore index -100)",
    params: fc.record({ N: dim(6), V: fc.integer({ min: 2, max: 9 }) }),
    // targets drawn from [-1, V): -1 is mapped to the ignore index below
    inputs: ({ N, V }) => [f([N, V], true, -3, 3), ids([N], -1, V)],
    forward: (e, [x, t]) => e.crossEntropy(x!, t!, -100)
  })
]

/** Uploads a case's inputs (ignore-index mapping for negative targets included). */
export const buildInputs = (e: Engine, specs: readonly InputSpec[], data: ReadonlyArray<Float32Array | Int32Array>): Tensor[] =>
  specs.map((s, i) => {
    const d = data[i]!
    if (d instanceof Int32Array) return e.fromArray(d.map((v) => (v < 0 ? -100 : v)), s.shape)
    return e.fromArray(d, s.shape, { requiresGrad: s.grad })
  })

/** loss = sum(out * R) with R drawn from `seed`; returns the loss and the output. */
export const lossOf = (e: Engine, out: Tensor, seed: number): { loss: Tensor; r: Tensor } => {
  const rand = rng(seed ^ 0x5bd1e995)
  const r = e.fromArray(Float32Array.from({ length: out.size }, () => rand() * 2 - 1), out.shape)
  const flat = out.shape.length === 0 ? e.reshape(out, [1]) : out
  const rr = out.shape.length === 0 ? e.reshape(r, [1]) : r
  return { loss: e.sum(e.mul(flat, rr)), r }
}

/** One case on one engine: its forward output and the gradients of the seeded loss. */
export const runCase = async (e: Engine, c: (typeof cases)[number], p: unknown, data: ReadonlyArray<Float32Array | Int32Array>, seed: number) => {
  const xs = buildInputs(e, c.inputs(p), data)
  const out = c.forward(e, xs, p)
  const y = await e.read(out)
  const { loss } = lossOf(e, out, seed)
  e.backward(loss)
  loss.dispose()
  const grads = await Promise.all(xs.map((x) => (x.grad === null ? null : e.read(x.grad))))
  for (const x of xs) {
    x.grad?.dispose()
    x.dispose()
  }
  return { y, grads }
}

/** |got - want| <= abs + rel * |want| element by element; `names` say which engine gave which side. */
export const expectClose = (names: readonly [got: string, want: string], what: string, got: Float32Array, want: Float32Array, abs = 1e-4, rel = 1e-3) => {
  expect(got.length).toBe(want.length)
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= abs + rel * Math.abs(want[i]!))) {
      throw new Error(`${what}[${i}]: ${names[0]} ${got[i]} vs ${names[1]} ${want[i]}`)
    }
  }
}

/** The property that engine `e` gives `reference`'s outputs and gradients on case `c`, over random params and data. */
export const agreesWith = (reference: Engine, c: (typeof cases)[number], names: readonly [got: string, want: string]) => async (e: Engine) => {
  await fc.assert(
    fc.asyncProperty(c.params, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (p, seed) => {
      const rand = rng(seed)
      const data = c.inputs(p).map((s) => makeData(s, rand))
      const want = await runCase(reference, c, p, data, seed)
      const got = await runCase(e, c, p, data, seed)
      expectClose(names, `${c.name} ${JSON.stringify(p)} output`, got.y, want.y)
      want.grads.forEach((g, i) => {
        if (g === null) expect(got.grads[i]).toBeNull()
        else expectClose(names, `${c.name} ${JSON.stringify(p)} grad ${i}`, got.grads[i]!, g)
      })
    }),
    { numRuns: c.runs ?? 10 }
  )
}
