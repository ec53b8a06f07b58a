import { afterAll, describe, expect, test } from "bun:test"
import { Either } from "effect"
import { aggregate, aggregateAll, closeCodecWorkers, compress, decode, decodeAll, defaultParams, encode } from "../src/index.ts"
import type { Manifest, TensorUpdate } from "../src/index.ts"
import { randn } from "./reference.ts"

afterAll(() => closeCodecWorkers())

const SHAPES = [[200, 130], [64, 64], [96, 80], [300], [75], [128, 192], [67, 64], [1000, 64]]

/** Random peers' updates of a model with the shapes above; peers share a common component. */
const model = (seed: number, peers: number) => {
  const manifest: Manifest = { tensors: SHAPES.map((shape, i) => ({ name: `t${i}`, shape })) }
  const perPeer: TensorUpdate[][] = Array.from({ length: peers }, (_, p) =>
    manifest.tensors.map(({ name, shape }, i) => {
      const n = shape.reduce((a, b) => a * b, 1)
      const common = randn(n, seed * 31 + i, 1e-3)
      const own = randn(n, seed * 977 + p * 101 + i, 1e-3 * (1 + (p % 4)))
      const g = common.map((v, j) => v + own[j]!)
      const k = 2 + ((seed + i + p) % 60)
      return Either.getOrThrow(compress(new Float32Array(n), g, shape, { ...defaultParams, topk: k }, name)).update
    }),
  )
  const perTensor = manifest.tensors.map((_, i) => perPeer.map((ups) => ups[i]!))
  return { manifest, perPeer, perTensor }
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length)

describe("receive side on worker threads", () => {
  for (const [caller, threads] of [[false, 2], [true, 2], [true, 3], [false, 1]] as const) {
    test(`aggregateAll is bitwise aggregate() per tensor on random inputs (caller ${caller}, ${threads} threads)`, async () => {
      for (const seed of [1, 2, 3]) {
        const { perTensor } = model(seed + threads * 10, 3 + seed * 3)
        const ours = await aggregateAll(perTensor, { threads, caller, minWork: 0 })
        expect(ours.length).toBe(perTensor.length)
        perTensor.forEach((ups, i) => {
          const one = Either.getOrThrow(aggregate(ups))
          const got = Either.getOrThrow(ours[i]!)
          expect(bits(got.dense)).toEqual(bits(one.dense))
          expect(bits(got.norms)).toEqual(bits(one.norms))
          expect(bits(got.factors)).toEqual(bits(one.factors))
          expect(got.median).toBe(one.median)
        })
      }
    }, 60_000)
  }

  test("aggregateAll with shared outputs writes the same bytes in place (outputs dirty beforehand)", async () => {
    const { perTensor } = model(5, 7)
    const outs = perTensor.map((ups) => {
      const o = new Float32Array(new SharedArrayBuffer(4 * ups[0]!.shape.reduce((a, b) => a * b, 1)))
      o.fill(123.5)
      return o
    })
    const ours = await aggregateAll(perTensor, { threads: 2, caller: false, outs, minWork: 0 })
    perTensor.forEach((ups, i) => {
      const got = Either.getOrThrow(ours[i]!)
      expect(got.dense).toBe(outs[i]!)
      expect(bits(outs[i]!)).toEqual(bits(Either.getOrThrow(aggregate(ups)).dense))
    })
  }, 60_000)

  test("aggregateAll gives a tensor's CodecError as aggregate() does, the other tensors unaffected", async () => {
    const { perTensor } = model(7, 4)
    const bad = perTensor.map((ups, i) => (i === 2 ? ups.map((u, p) => (p === 1 ? { ...u, chunk: 32 } : u)) : ups))
    const ours = await aggregateAll(bad, { threads: 2, caller: false, minWork: 0 })
    const one = aggregate(bad[2]!)
    expect(Either.isLeft(one)).toBe(true)
    const got = ours[2]!
    expect(Either.isLeft(got) && Either.isLeft(one) && got.left.reason === one.left.reason && got.left.message === one.left.message).toBe(true)
    expect(Either.isLeft(got) && got.left._tag).toBe("CodecError")
    expect(ours.filter(Either.isRight).length).toBe(bad.length - 1)
  }, 60_000)

  test("decodeAll is decode() per message (shared buffers, same contents and errors), and feeds aggregateAll", async () => {
    const { manifest, perPeer, perTensor } = model(11, 6)
    const msgs = perPeer.map((ups, p) =>
      Either.getOrThrow(
        encode({
          meta: { runId: "t", window: 1, uid: p, hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", sampleDigest: "", sampleCount: 0 },
          tensors: ups.map((update) => ({ coding: p % 2 === 0 ? ("packed12" as const) : ("rice" as const), update })),
        }),
      ),
    )
    const corrupt = msgs[3]!.slice()
    corrupt[corrupt.length - 9] = corrupt[corrupt.length - 9]! ^ 1
    const inputs = [...msgs, corrupt]
    const ours = await decodeAll(inputs, manifest, { threads: 2, caller: false, minWork: 0 })
    inputs.forEach((m, i) => {
      const one = decode(m, manifest)
      const got = ours[i]!
      if (Either.isLeft(one)) {
        expect(Either.isLeft(got) && got.left.reason === one.left.reason && got.left._tag === "WireError").toBe(true)
        return
      }
      const g = Either.getOrThrow(got)
      expect(g.meta).toEqual(one.right.meta)
      g.tensors.forEach((t, j) => {
        const o = one.right.tensors[j]!
        if (t.coding === "f32" || o.coding === "f32") throw new Error("dense")
        expect(t.update.indices.buffer instanceof SharedArrayBuffer).toBe(true)
        expect(Array.from(t.update.indices)).toEqual(Array.from(o.update.indices))
        expect(Array.from(t.update.codes)).toEqual(Array.from(o.update.codes))
        expect({ ...t.update, indices: 0, codes: 0 }).toEqual({ ...o.update, indices: 0, codes: 0 })
      })
    })
    expect(Either.isLeft(ours[msgs.length]!)).toBe(true)
    // decoded (shared) updates aggregate to the same bytes as the updates that were encoded
    const decoded = ours.slice(0, msgs.length).map((r) => Either.getOrThrow(r))
    const fromWire = manifest.tensors.map((_, i) => decoded.map((m) => { const t = m.tensors[i]!; if (t.coding === "f32") throw new Error("dense"); return t.update }))
    const agg = await aggregateAll(fromWire, { threads: 2, minWork: 0 })
    agg.forEach((r, i) => expect(bits(Either.getOrThrow(r).dense)).toEqual(bits(Either.getOrThrow(aggregate(perTensor[i]!)).dense)))
  }, 60_000)
})

test("a small job runs on the caller alone and still gives aggregate()'s bytes", async () => {
  const { perTensor } = model(3, 2)
  const ours = await aggregateAll(perTensor.slice(1, 2))
  expect(bits(Either.getOrThrow(ours[0]!).dense)).toEqual(bits(Either.getOrThrow(aggregate(perTensor[1]!)).dense))
})
