/**
 * The usage README.md shows, run as written (so its names stay defined and its types check):
 * a peer compresses and encodes one tensor; a receiver decodes two peers, aggregates and steps.
 */
import { expect, test } from "bun:test"
import { Either } from "effect"
import { aggregate, compress, decode, defaultParams, encode, type Manifest, outerStep, type UpdateMeta } from "../src/index.ts"

test("README usage: compress, encode, decode, aggregate, outer step", () => {
  // what the caller has: a tensor's shape, its pseudo-gradient theta0 - thetaH, who and when
  const shape = [128, 64]
  const numel = 128 * 64
  const pseudoGradientOf = (seed: number) => Float32Array.from({ length: numel }, (_, i) => Math.sin(i * 0.37 + seed) * 1e-3)
  const pseudoGradient = pseudoGradientOf(1)
  const metaOf = (uid: number): UpdateMeta => ({
    runId: "readme", window: 7, uid, hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", sampleDigest: "", sampleCount: 0,
  })
  const meta = metaOf(1)
  const other = compress(new Float32Array(numel), pseudoGradientOf(2), shape, defaultParams, "layer.weight")
  const otherPeer = Either.getOrThrow(encode({ meta: metaOf(2), tensors: [{ coding: "rice", update: Either.getOrThrow(other).update }] }))

  // --- README: use ---
  // a peer, per tensor: ef (the error-feedback buffer) is updated in place
  const ef = new Float32Array(numel)
  const { update } = Either.getOrThrow(compress(ef, pseudoGradient, shape, defaultParams, "layer.weight"))
  const bytes = Either.getOrThrow(encode({ meta, tensors: [{ coding: "rice", update }] }))
  // (the transport seals `bytes` in a signed envelope and stores them)

  // the receiver, with the bytes of every peer it gathered
  const manifest: Manifest = { tensors: [{ name: "layer.weight", shape }] }
  const messages = [bytes, otherPeer].map((b) => Either.getOrThrow(decode(b, manifest))) // WireError on anything malformed
  const updates = messages.flatMap((m) => m.tensors.flatMap((t) => (t.coding === "f32" ? [] : [t.update])))
  const g = Either.getOrThrow(aggregate(updates)).dense // median-clipped, mean over the peers that chose each coordinate
  const params = new Float32Array(numel) // theta0 of this tensor
  outerStep(params, g, 1.0) // params -= lr * g
  // --- end ---

  expect(messages.map((m) => m.meta.uid)).toEqual([1, 2])
  expect(g.some((v) => v !== 0)).toBe(true)
  expect(params.every((v, i) => v === -g[i]!)).toBe(true)
})
