import { describe, expect, test } from "bun:test"
import { Either, FastCheck as fc } from "effect"
import { aggregate, clipFactors, compress, decompress, defaultParams, lowerMedian, peerNorm } from "../src/index.ts"
import type { TensorUpdate } from "../src/index.ts"
import { randn, refAggregate, refStep } from "./reference.ts"

const f32 = Math.fround

const peerArb = fc.record({
  shape: fc.constantFrom([64, 64], [96, 80], [200], [75], [67, 64], [128, 64]),
  k: fc.integer({ min: 2, max: 64 }),
  peers: fc.integer({ min: 1, max: 9 }),
  seed: fc.integer({ min: 1, max: 1e9 }),
  scale: fc.constantFrom(1e-5, 1e-3, 1),
})

/** Peers sharing a common component (so selections overlap), each with its own magnitude. */
const peersOf = (shape: number[], k: number, peers: number, seed: number, scale: number) => {
  const n = shape.reduce((a, b) => a * b, 1)
  const common = randn(n, seed, scale)
  return Array.from({ length: peers }, (_, i) => {
    const mult = 1 + ((seed + i * 7) % 5) * (i % 3 === 1 ? 50 : 0.3)
    const own = randn(n, seed + 1 + i, scale)
    const efIn = common.map((v, j) => (v + own[j]!) * mult)
    const delta = randn(n, seed + 100 + i, scale * mult)
    const update = Either.getOrThrow(compress(efIn.slice(), delta, shape, { ...defaultParams, topk: k })).update
    return { efIn, delta, update }
  })
}

/** Scales every dequantized value of an update by s (exactly representable: s a power of two). */
const scaled = (u: TensorUpdate, s: number): TensorUpdate => ({ ...u, shift: f32(u.shift * s), lookup: u.lookup.map((v) => v * s) })

describe("aggregate", () => {
  test("matches the slow reference bit for bit (norms, lower median, clip factors, per-coordinate mean)", () => {
    fc.assert(
      fc.property(peerArb, ({ shape, k, peers, seed, scale }) => {
        const ps = peersOf(shape, k, peers, seed, scale)
        const ref = refAggregate(
          shape,
          ps.map((p) => refStep(p.efIn, p.delta, shape, k, "ascending")),
        )
        const ours = Either.getOrThrow(aggregate(ps.map((p) => p.update)))
        expect(Array.from(ours.norms)).toEqual(ref.norms)
        expect(ours.median).toBe(ref.median)
        expect(Array.from(ours.factors)).toEqual(ref.factors)
        expect(new Uint32Array(ours.dense.buffer)).toEqual(new Uint32Array(ref.aggregated.buffer))
      }),
      { numRuns: 60 },
    )
  }, 60_000)

  test("peerNorm's word-wise code count equals a per-code sum for any view offset and length, codes >= 4 as bin 0", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (raw, offset, wide) => {
          const bytes = raw.map((b) => (wide ? b & 7 : b & 3))
          const codes = bytes.subarray(Math.min(offset, bytes.length))
          const u: TensorUpdate = { name: "t", shape: [codes.length], chunk: 64, kEff: 1, indices: new Uint16Array(codes.length), codes, shift: 0.5, scale: 1, lookup: Float32Array.of(-1.5, -0.25, 0.75, 2) }
          const dq = [f32(-1.5 + 0.5), f32(-0.25 + 0.5), f32(0.75 + 0.5), f32(2 + 0.5)]
          const counts = [0, 0, 0, 0]
          for (const q of codes) counts[q < 4 ? q : 0]! += 1
          const ss = counts.reduce((a, c, b) => a + c * dq[b]! * dq[b]!, 0)
          expect(peerNorm(u)).toBe(f32(Math.sqrt(ss)))
        },
      ),
      { numRuns: 300 },
    )
  })

  test("the median of an even count is the lower middle; factors never exceed 1", () => {
    expect(lowerMedian([4, 1, 3, 2])).toBe(2)
    expect(lowerMedian([5])).toBe(5)
    const f = clipFactors([1, 100, 2, 3])
    expect(f[0]).toBe(1)
    expect(f[1]).toBe(f32(2 / f32(100 + f32(1e-8))))
    expect(f[3]).toBe(f32(2 / f32(3 + f32(1e-8))))
  })

  test("invariant under any permutation of peers, up to float32 summation order (tolerance P * 2^-23 of the largest contribution)", () => {
    fc.assert(
      fc.property(peerArb, fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), ({ shape, k, peers, seed, scale }, rs) => {
        const us = peersOf(shape, k, peers, seed, scale).map((p) => p.update)
        const perm = us.map((u, i) => ({ u, r: rs.next().value as number, i })).sort((a, b) => a.r - b.r)
        const a = Either.getOrThrow(aggregate(us))
        const b = Either.getOrThrow(aggregate(perm.map((p) => p.u)))
        // norms, median and factors are per peer and exact; only the sum order changes
        perm.forEach((p, j) => expect(b.factors[j]).toBe(a.factors[p.i]!))
        let maxContribution = 0
        us.forEach((u, i) => {
          const d = Either.getOrThrow(decompress(u))
          for (const v of d) maxContribution = Math.max(maxContribution, Math.abs(v * a.factors[i]!))
        })
        const tol = us.length * 2 ** -23 * maxContribution
        for (let i = 0; i < a.dense.length; i++) if (!(Math.abs(a.dense[i]! - b.dense[i]!) <= tol)) return false
        return true
      }),
      { numRuns: 40 },
    )
  }, 60_000)

  test("a peer scaled up by any factor is clipped to the median norm: its influence saturates", () => {
    fc.assert(
      fc.property(peerArb.filter((p) => p.peers >= 3), fc.integer({ min: 1, max: 40 }), ({ shape, k, peers, seed, scale }, e) => {
        const us = peersOf(shape, k, peers, seed, scale).map((p) => p.update)
        const norms = us.map(peerNorm)
        const j = norms.indexOf(Math.max(...norms))
        const s = 2 ** e
        const withBig = us.map((u, i) => (i === j ? scaled(u, s) : u))
        const r = Either.getOrThrow(aggregate(withBig))
        // the scaled peer's clipped contribution has at most the median norm
        expect(r.median).toBe(lowerMedian(norms))
        expect(r.factors[j]! * r.norms[j]!).toBeLessThanOrEqual(r.median * (1 + 1e-6))
        // and pushing it further changes nothing beyond rounding
        const further = Either.getOrThrow(aggregate(us.map((u, i) => (i === j ? scaled(u, s * 1024) : u))))
        let maxAbs = 0
        for (const v of r.dense) maxAbs = Math.max(maxAbs, Math.abs(v))
        for (let i = 0; i < r.dense.length; i++) if (!(Math.abs(r.dense[i]! - further.dense[i]!) <= 1e-5 * maxAbs)) return false
        return true
      }),
      { numRuns: 40 },
    )
  }, 60_000)

  test("all-equal peers aggregate to their common value on selected coordinates (tolerance P * 2^-23 + 1e-8 / norm, relative)", () => {
    fc.assert(
      fc.property(peerArb, ({ shape, k, peers, seed, scale }) => {
        const u = peersOf(shape, k, 1, seed, scale)[0]!.update
        const r = Either.getOrThrow(aggregate(Array.from({ length: peers }, () => u)))
        const d = Either.getOrThrow(decompress(u))
        const tol = peers * 2 ** -23 + 1e-8 / r.norms[0]!
        for (let i = 0; i < d.length; i++) if (!(Math.abs(r.dense[i]! - d[i]!) <= tol * Math.abs(d[i]!))) return false
        return true
      }),
      { numRuns: 40 },
    )
  }, 60_000)

  test("more peers than a 16-bit count holds still average exactly", () => {
    const u: TensorUpdate = { name: "t", shape: [2], chunk: 64, kEff: 2, indices: Uint16Array.of(0, 1), codes: Uint8Array.of(0, 1), shift: 0, scale: 1, lookup: Float32Array.of(1, 2) }
    const peers = 70_000
    // integer sums below 2^24 are exact in float32, so the mean is exactly the common value
    expect(Array.from(Either.getOrThrow(aggregate(Array.from({ length: peers }, () => u))).dense)).toEqual([1, 2])
  })

  test("mismatched peers and empty input are typed errors", () => {
    const a = peersOf([64, 64], 8, 1, 1, 1)[0]!.update
    const b = peersOf([64, 128], 8, 1, 1, 1)[0]!.update
    expect(Either.isLeft(aggregate([])) && Either.getLeft(aggregate([]))).toBeTruthy()
    const m = aggregate([a, b])
    expect(Either.isLeft(m) && m.left.reason).toBe("PeerMismatch")
    const bad = aggregate([{ ...a, indices: a.indices.slice(1) }])
    expect(Either.isLeft(bad) && bad.left.reason).toBe("LengthMismatch")
  })
})
