import { expect, test } from "bun:test"
import { Either, FastCheck as fc } from "effect"
import { clampK, compress, decodeRice, encode, layoutOf, maxIndexSectionBytes, maxUpdateBytes } from "../src/index.ts"
import type { Manifest, SparseLoCoParams, TensorUpdate, WireTensor } from "../src/index.ts"
import { randn } from "./reference.ts"

const meta = (runId: string) => ({
  runId,
  window: 2 ** 40,
  uid: 65535,
  hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  sampleDigest: "ab".repeat(64),
  sampleCount: 2 ** 40,
})

/** The update whose Rice gaps are largest: every chunk's k indices at the chunk's end. */
const worstRice = (u: TensorUpdate, totalk: number, nChunks: number): TensorUpdate => {
  const indices = new Uint16Array(u.indices.length)
  for (let c = 0; c < nChunks; c++) for (let e = 0; e < u.kEff; e++) indices[c * u.kEff + e] = totalk - u.kEff + e
  return { ...u, indices }
}

test("maxUpdateBytes bounds every legal encoding (random shapes, settings and values, worst-case Rice gaps) and is tight up to the header", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 130 }), fc.integer({ min: 1, max: 130 }), fc.boolean()), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1, max: 64 }),
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom("packed12" as const, "rice" as const),
      fc.boolean(),
      fc.string({ maxLength: 40 }),
      (dims, chunk, topkHalf, indexCoding, worst, runId) => {
        const topk = Math.min(2 * topkHalf, chunk * chunk)
        const params: SparseLoCoParams = { chunk, topk, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding }
        const manifest: Manifest = { tensors: dims.map(([r, c, twoD], i) => ({ name: `layers.${i}.w"\\`, shape: twoD ? [r, c] : [r * c] })) }
        const tensors: WireTensor[] = manifest.tensors.map(({ name, shape }, i) => {
          const n = shape.reduce((a, b) => a * b, 1)
          const c = Either.getOrThrow(compress(new Float32Array(n), randn(n, i + 1), shape, params, name))
          const l = Either.getOrThrow(layoutOf(shape, chunk))
          expect(c.update.kEff).toBe(clampK(topk, l.totalk))
          return { coding: indexCoding, update: worst ? worstRice(c.update, l.totalk, l.nChunks) : c.update }
        })
        const bytes = Either.getOrThrow(encode({ meta: meta(runId), tensors }))
        const bound = maxUpdateBytes(manifest, { kind: "sparseloco", chunk, topk, indexCoding }, runId)!
        expect(bytes.length).toBeLessThanOrEqual(bound)
        if (indexCoding === "packed12") expect(bound - bytes.length).toBeLessThan(1000 + 700 * manifest.tensors.length)
      },
    ),
    { numRuns: 80 },
  )
})

test("maxUpdateBytes for dense updates is the values plus the header, and a larger k or chunk needs more room", () => {
  const manifest: Manifest = { tensors: [{ name: "a", shape: [64, 128] }, { name: "b", shape: [128] }] }
  const values = (n: number) => randn(n, 7)
  const dense = Either.getOrThrow(encode({ meta: meta("r"), tensors: manifest.tensors.map(({ name, shape }) => ({ coding: "f32" as const, dense: { name, shape, values: values(shape.reduce((a, b) => a * b, 1)) } })) }))
  const bound = maxUpdateBytes(manifest, { kind: "none" }, "r")!
  expect(bound).toBeGreaterThanOrEqual(dense.length)
  expect(bound - dense.length).toBeLessThan(2000)
  const small = maxUpdateBytes(manifest, { kind: "sparseloco", chunk: 32, topk: 8, indexCoding: "packed12" }, "r")!
  expect(maxUpdateBytes(manifest, { kind: "sparseloco", chunk: 32, topk: 16, indexCoding: "packed12" }, "r")!).toBeGreaterThan(small)
  expect(maxUpdateBytes(manifest, { kind: "sparseloco", chunk: 32, topk: 8, indexCoding: "packed12" }, "r")!).toBeLessThan(bound)
})

/** Rice coding as encodeRice does it, but with the parameter r forced (a sender may pick any legal r). */
const riceWith = (indices: Uint16Array, nChunks: number, k: number, r: number): Uint8Array => {
  const bits: number[] = []
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    for (let e = c * k; e < (c + 1) * k; e++) {
      const g = indices[e]! - prev - 1
      prev = indices[e]!
      for (let q = g >> r; q > 0; q--) bits.push(0)
      bits.push(1)
      for (let b = r - 1; b >= 0; b--) bits.push((g >> b) & 1)
    }
  }
  const out = new Uint8Array(1 + Math.ceil(bits.length / 8))
  out[0] = r
  bits.forEach((bit, i) => {
    out[1 + (i >> 3)] = out[1 + (i >> 3)]! | (bit << (7 - (i & 7)))
  })
  return out
}

test("maxIndexSectionBytes bounds a Rice section with any legal parameter, on the largest gaps and on random indices", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 0, max: 12 }), fc.boolean(), fc.integer(),
      (totalk, nChunks, kRaw, r, worst, seed) => {
        const k = Math.min(kRaw, totalk)
        const indices = new Uint16Array(nChunks * k)
        let x = seed >>> 0
        for (let c = 0; c < nChunks; c++) {
          // k distinct ascending indices: the last k (largest first gap) or a random subset
          const picked = worst ? Array.from({ length: k }, (_, e) => totalk - k + e) : [...new Set(Array.from({ length: k * 3 }, () => ((x = (x * 1103515245 + 12345) >>> 0) % totalk)))].slice(0, k)
          if (picked.length < k) return true
          picked.sort((a, b) => a - b).forEach((j, e) => (indices[c * k + e] = j))
        }
        const section = riceWith(indices, nChunks, k, r)
        const back = new Uint16Array(nChunks * k)
        expect(decodeRice(section, 0, section.length, nChunks, k, totalk, back)).toBe(0)
        expect(back).toEqual(indices)
        expect(section.length).toBeLessThanOrEqual(maxIndexSectionBytes("rice", nChunks, k, totalk))
        return true
      }),
    { numRuns: 150 },
  )
})
