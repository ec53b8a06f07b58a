import { describe, expect, test } from "bun:test"
import { type CompressionSpec, tensorWireSize } from "@covenant/dsl"
import { Either, FastCheck as fc } from "effect"
import { chunkBase, chunkEdge, clampK, compress, decompress, defaultParams, layoutOf, roundHalfEven } from "../src/index.ts"
import type { SparseLoCoParams } from "../src/index.ts"
import { randn, refChunks, refEdge, refK, refStep } from "./reference.ts"

const f32 = Math.fround

describe("chunking", () => {
  test("chunk edge: the largest divisor <= 64 (README examples)", () => {
    const cases: Array<[number, number]> = [[4096, 64], [96, 48], [80, 40], [200, 50], [75, 25], [320, 64], [67, 1], [64, 64], [10, 10], [2048, 64], [32000, 64], [768, 64]]
    for (const [d, e] of cases) expect(chunkEdge(d, 64)).toBe(e)
  })
  test("chunk edge agrees with a brute-force divisor search", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 64 }), (d, t) => chunkEdge(d, t) === refEdge(d, t)))
  })
  test("k clamping: min(k, totalk), at least 2, even", () => {
    expect(clampK(64, 50)).toBe(50)
    expect(clampK(64, 25)).toBe(24)
    expect(clampK(64, 4096)).toBe(64)
    expect(clampK(1, 4096)).toBe(2)
    expect(clampK(7, 4096)).toBe(6)
    fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 2, max: 4096 }), (k, t) => clampK(k, t) === refK(k, t)))
  })
  test("layout maps (chunk, local index) to the same dense positions as explicit rearrangement", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 150 }), fc.integer({ min: 1, max: 150 }), fc.boolean(), (r, c, twoD) => {
        const shape = twoD ? [r, c] : [r * c]
        const l = Either.getOrThrow(layoutOf(shape, 64))
        const ref = refChunks(shape)
        if (ref.length !== l.nChunks || ref[0]!.length !== l.totalk) return false
        for (let ch = 0; ch < l.nChunks; ch++) {
          for (let j = 0; j < l.totalk; j++) if (chunkBase(l, ch) + l.localOffset[j]! !== ref[ch]![j]) return false
        }
        return true
      }),
      { numRuns: 60 },
    )
  }, 60_000)
  test("the plan (dsl) and the codec agree on every rank: same chunks and k for 1-D and 2-D, and neither chunks 3-D or more", () => {
    const spec: CompressionSpec = { kind: "sparseloco", chunk: 64, topk: 64, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding: "packed12" }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 4 }), (shape) => {
        const l = layoutOf(shape, spec.chunk)
        if (shape.length > 2) {
          expect(Either.isLeft(l) && l.left.reason).toBe("BadShape")
          expect(() => tensorWireSize({ name: "t", shape }, spec)).toThrow(RangeError)
          return
        }
        const layout = Either.getOrThrow(l)
        expect(tensorWireSize({ name: "t", shape }, spec).kept).toBe(layout.nChunks * clampK(spec.topk, layout.totalk))
      }),
      { numRuns: 300 },
    )
  })
  test("round half to even, as torch.round", () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999, 2.5001, 0, 3].map((t) => roundHalfEven(t) + 0)).toEqual([0, 2, 2, 4, 0, -2, 2, 3, 0, 3])
  })
  test("bad shapes and params are typed errors", () => {
    const e = compress(new Float32Array(8), new Float32Array(8), [2, 2, 2], defaultParams)
    expect(Either.isLeft(e) && e.left.reason).toBe("BadShape")
    const p = compress(new Float32Array(8), new Float32Array(8), [8], { ...defaultParams, chunk: 128 })
    expect(Either.isLeft(p) && p.left.reason).toBe("BadParams")
    const m = compress(new Float32Array(8), new Float32Array(7), [8], defaultParams)
    expect(Either.isLeft(m) && m.left.reason).toBe("LengthMismatch")
    const nan = new Float32Array(8).fill(Number.NaN)
    const n = compress(nan, new Float32Array(8), [8], defaultParams)
    expect(Either.isLeft(n) && n.left.reason).toBe("NonFinite")
  })
})

const params = (topk: number, indexCoding: SparseLoCoParams["indexCoding"] = "rice"): SparseLoCoParams => ({ ...defaultParams, topk, indexCoding })

/** Shapes with 1-D rows, non-64 edges, prime dimensions and single chunks. */
const shapeArb = fc.oneof(
  fc.integer({ min: 2, max: 300 }).map((n) => [n]),
  fc.tuple(fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 140 })).map(([a, b]) => [a, b]),
  fc.constantFrom([64, 64], [128, 192], [96, 80], [67, 64], [200], [75], [7, 7]),
)
const caseArb = fc.record({ shape: shapeArb, k: fc.integer({ min: 1, max: 80 }), seed: fc.integer({ min: 1, max: 1e9 }), scale: fc.constantFrom(1e-5, 1e-3, 1, 1e3) })

describe("compress", () => {
  test("matches the slow reference bit for bit (ascending index order)", () => {
    fc.assert(
      fc.property(caseArb, ({ shape, k, seed, scale }) => {
        const numel = shape.reduce((a, b) => a * b, 1)
        const efIn = randn(numel, seed, 2 * scale)
        const delta = randn(numel, seed + 1, scale)
        const ref = refStep(efIn, delta, shape, k, "ascending")
        const r = Either.getOrThrow(compress(efIn.slice(), delta, shape, params(k)))
        const u = r.update
        expect(Array.from(u.indices)).toEqual(ref.idx.flat())
        expect(Array.from(u.codes)).toEqual(ref.codes)
        expect(u.shift).toBe(ref.shift)
        expect(u.scale).toBe(ref.scale)
        expect(Array.from(u.lookup)).toEqual(ref.lookup)
        expect(r.ef).toEqual(ref.efOut)
        expect(Either.getOrThrow(decompress(u))).toEqual(ref.decoded)
      }),
      { numRuns: 150 },
    )
  }, 60_000)

  test("error feedback is conserved: beta*ef + delta == ef_new + sent (float32 tolerance)", () => {
    fc.assert(
      fc.property(caseArb, ({ shape, k, seed, scale }) => {
        const numel = shape.reduce((a, b) => a * b, 1)
        const efIn = randn(numel, seed, 2 * scale)
        const delta = randn(numel, seed + 1, scale)
        const r = Either.getOrThrow(compress(efIn.slice(), delta, shape, params(k)))
        const sent = Either.getOrThrow(decompress(r.update))
        for (let i = 0; i < numel; i++) {
          const lhs = 0.95 * efIn[i]! + delta[i]!
          const rhs = r.ef[i]! + sent[i]!
          // float32 roundings of 0.95, of ef*beta, of the sum and of ef_new: a few ulps of the terms
          const tol = 4 * 2 ** -24 * (Math.abs(0.95 * efIn[i]!) + Math.abs(delta[i]!) + Math.abs(sent[i]!) + Math.abs(r.ef[i]!))
          if (!(Math.abs(lhs - rhs) <= tol)) return false
          // unselected coordinates keep ef_mid exactly
          if (sent[i] === 0 && r.ef[i] !== f32(f32(efIn[i]! * f32(0.95)) + delta[i]!)) return false
        }
        return true
      }),
      { numRuns: 150 },
    )
  }, 60_000)

  test("the kept entries are a top-k by |x| in every chunk, including exact ties", () => {
    // many equal magnitudes: the cut falls inside a run of ties
    const shape = [64, 128]
    const ef = new Float32Array(64 * 128).map((_, i) => ((i * 7919) % 5) - 2)
    const r = Either.getOrThrow(compress(ef.slice(), new Float32Array(ef.length), shape, params(64)))
    const l = Either.getOrThrow(layoutOf(shape, 64))
    const mid = ef.map((v) => f32(v * f32(0.95)))
    for (let c = 0; c < l.nChunks; c++) {
      const sel = new Set(r.update.indices.subarray(c * 64, (c + 1) * 64))
      expect(sel.size).toBe(64)
      let minSel = Infinity
      let maxUnsel = 0
      for (let j = 0; j < l.totalk; j++) {
        const v = Math.abs(mid[chunkBase(l, c) + l.localOffset[j]!]!)
        if (sel.has(j)) minSel = Math.min(minSel, v)
        else maxUnsel = Math.max(maxUnsel, v)
      }
      expect(minSel).toBeGreaterThanOrEqual(maxUnsel)
    }
  })
})
