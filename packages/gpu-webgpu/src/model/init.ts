/**
 * Deterministic initialisation, the scheme HF LlamaPreTrainedModel uses with
 * initializer_range 0.02: every Linear and the embedding ~ normal(0, 0.02), RMSNorm gains = 1.
 *
 * The random stream is mulberry32 seeded with `seed`, turned into normals by Box–Muller (both
 * outputs used), consumed tensor by tensor in `llamaParameters` order, row-major. The same seed
 * and spec therefore give bit-identical parameters on every machine.
 */
import { isNormWeight } from "@covenant/dsl"
import { llamaParameters } from "./parameters.ts"
import type { LlamaSpec } from "./spec.ts"

export const initStd = 0.02

/** mulberry32: a small seeded generator of uniforms in [0, 1); the one copy in the packages (the runtime's adversaries import it too). */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A seeded standard-normal generator (Box–Muller over mulberry32). */
export const normalStream = (seed: number): (() => number) => {
  const uniform = mulberry32(seed)
  let spare: number | null = null
  return () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    const u1 = 1 - uniform() // (0, 1]: log stays finite
    const u2 = uniform()
    const r = Math.sqrt(-2 * Math.log(u1))
    spare = r * Math.sin(2 * Math.PI * u2)
    return r * Math.cos(2 * Math.PI * u2)
  }
}

export const initLlamaParameters = (spec: LlamaSpec, seed: number): Map<string, Float32Array> => {
  const normal = normalStream(seed)
  const out = new Map<string, Float32Array>()
  for (const { name, shape } of llamaParameters(spec)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1))
    if (isNormWeight(name)) data.fill(1)
    else for (let i = 0; i < data.length; i++) data[i] = initStd * normal()
    out.set(name, data)
  }
  return out
}
