/**
 * What the adversary tests share: the debug run, its model manifest, the one hotkey every update
 * carries, and an honest update (random deltas compressed with the spec's SparseLoCo parameters).
 */
import { Either } from "effect"
import { debug } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { compress } from "@covenant/sparseloco"
import type { UpdateMessage, WireTensor } from "@covenant/sparseloco"
import { mulberry32 } from "@covenant/gpu-webgpu"
import { modelManifest } from "../src/index.ts"

export const spec: RunSpec = debug()
export const manifest = modelManifest(spec.model)
export const HOTKEY = "5GrwvaDF5zxW5gZ2kHh4tBmPLdKN9aD3ZUtKTKhYAZWKZt6Y"

/** An honest update: random deltas compressed with the spec's SparseLoCo parameters. */
export const honestUpdate = (uid: number, window: number, seed: number): UpdateMessage => {
  const next = mulberry32(seed)
  const c = spec.compression
  if (c.kind !== "sparseloco") throw new Error("the debug preset compresses")
  const tensors: WireTensor[] = manifest.tensors.map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1)
    const delta = Float32Array.from({ length: n }, () => (next() - 0.5) * 1e-3)
    return { coding: c.indexCoding, update: Either.getOrThrow(compress(new Float32Array(n), delta, shape, c, name)).update }
  })
  return { meta: { runId: spec.name, window, uid, hotkey: HOTKEY, sampleDigest: "ab", sampleCount: 4 }, tensors }
}
