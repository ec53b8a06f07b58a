/**
 * The usage README.md shows, run as written (so its names stay defined and its types check):
 * build an engine from a layer, run ops with autograd, and train a small LLaMA.
 */
import { expect, test } from "bun:test"
import { Effect } from "effect"
import { Engine, EngineCpu, initLlamaParameters, Trainer, type LlamaSpec } from "../src/index.ts"

test("README usage: ops with autograd, then a few training steps", async () => {
  // --- README: use ---
  const engine = Effect.runSync(Effect.provide(Engine, EngineCpu)) // or EngineAuto / EngineWebGpu (Effect.runPromise)

  const x = engine.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2], { requiresGrad: true })
  const loss = engine.sum(engine.mul(engine.matmul(x, x), x))
  engine.backward(loss)
  const grad = await engine.read(x.grad!) // d loss / d x, as a Float32Array

  const spec: LlamaSpec = {
    family: "llama", dim: 32, nLayers: 1, nHeads: 4, nKvHeads: 2, ffnDim: 64, vocabSize: 64, seqLen: 16,
    ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, dtype: "float32",
  }
  const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 1), { microBatch: 2, lr: 1e-2 })
  const ids = Int32Array.from({ length: 2 * spec.seqLen }, (_, i) => (i * 7) % spec.vocabSize)
  const first = await trainer.step(ids, [2, spec.seqLen]) // mean next-token loss of the batch
  for (let i = 0; i < 20; i++) await trainer.step(ids, [2, spec.seqLen])
  const params = await trainer.readParameters() // Map: HF name -> Float32Array
  trainer.dispose()
  // --- end ---

  expect(grad.length).toBe(4)
  expect(first).toBeCloseTo(Math.log(spec.vocabSize), 0)
  expect(await (async () => {
    const t = Trainer.create(engine, spec, params, { microBatch: 2, lr: 0 })
    const l = await t.step(ids, [2, spec.seqLen])
    t.dispose()
    return l
  })()).toBeLessThan(first)
  expect(params.size).toBe(1 + 9 + 2)
})
