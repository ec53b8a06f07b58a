/** Loss of a set of parameters on fixed token batches, without gradients (validators' model loss). */
import { Effect } from "effect"
import { LlamaModel } from "@covenant/gpu-webgpu"
import type { Engine, LlamaSpec } from "@covenant/gpu-webgpu"
import { type RuntimeFailure, awaitEngine } from "../errors.ts"

export const evalLoss = (
  engine: Engine,
  spec: LlamaSpec,
  params: ReadonlyMap<string, Float32Array>,
  batches: ReadonlyArray<Int32Array>,
  shape: readonly [number, number],
): Effect.Effect<number, RuntimeFailure> =>
  awaitEngine("eval", async () => {
    const model = LlamaModel.create(engine, spec, params)
    try {
      let total = 0
      for (const ids of batches) {
        const loss = engine.noGrad(() => engine.tidy(() => model.loss(ids, shape[0], shape[1])))
        total += (await engine.read(loss))[0]!
        loss.dispose()
      }
      return total / batches.length
    } finally {
      model.dispose()
    }
  })
