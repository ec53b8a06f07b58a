/**
 * The engines the model/trainer tests run on: the CPU reference always, and WebGPU when this
 * build has its layer and an adapter. Without an adapter the WebGPU tests fail with the engine's
 * typed error unless COVENANT_ALLOW_NO_GPU=1.
 */
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { Engine, makeEngine } from "../src/engine.ts"
import { CpuBackend } from "../src/cpu/backend.ts"
import type { LlamaSpec } from "../src/model/index.ts"

export { allowNoGpu, webgpuEngine, webgpuTest, type EngineOrError } from "../src/testing.ts"

export const cpuEngine = (): Engine => makeEngine(new CpuBackend())

/**
 * The PyTorch-computed HF LLaMA cases live in the project's shared folder beside the checkout
 * (`../shared/vectors/llama-hf/<case>/`), or where COVENANT_SHARED points. Every case folder there is
 * checked, not only the one we know of.
 */
const sharedDir = process.env["COVENANT_SHARED"] ?? join(import.meta.dir, "..", "..", "..", "..", "shared")
const llamaHfDir = join(sharedDir, "vectors", "llama-hf")
if (!existsSync(llamaHfDir)) throw new Error(`no HF LLaMA vectors at ${llamaHfDir}: set COVENANT_SHARED to the shared folder`)
export const llamaHfCases: ReadonlyArray<string> = readdirSync(llamaHfDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(llamaHfDir, d.name, "config.json")))
  .map((d) => join(llamaHfDir, d.name))
  .sort()
/** The grouped-query case the bad-input tests reuse (token ids >= its vocab of 97 are out of range). */
export const vectorDir = join(llamaHfDir, "gqa-seed3")

/** The debug-sized model of the brief. */
export const debugSpec: LlamaSpec = {
  family: "llama", dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 256, seqLen: 64,
  ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, dtype: "float32"
}

/** Small enough to train for tens of steps in seconds on lavapipe. */
export const tinySpec: LlamaSpec = {
  family: "llama", dim: 32, nLayers: 1, nHeads: 4, nKvHeads: 2, ffnDim: 64, vocabSize: 64, seqLen: 16,
  ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, dtype: "float32"
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export const randomIds = (n: number, vocab: number, seed: number): Int32Array => {
  let s = seed >>> 0
  return new Int32Array(n).map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s >>> 8) % vocab
  })
}

/** The tag and reason of the typed error `f` throws. */
export const thrown = (f: () => unknown): { tag: string; reason: string } => {
  try {
    f()
  } catch (e) {
    if (typeof e === "object" && e !== null && "_tag" in e && "reason" in e) return { tag: String(e._tag), reason: String(e.reason) }
    throw e
  }
  throw new Error("expected a typed error, nothing was thrown")
}


