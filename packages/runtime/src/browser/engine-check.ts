/**
 * A check a page can run on its own WebGPU: three training steps of the debug model on the
 * engine over `navigator.gpu` and on the CPU reference engine, from the same initial parameters
 * and batch; returns both losses and the largest parameter difference. Used by
 * test/browser-page.test.ts in headless Chromium (bundled on its own, not part of the peer page).
 */
import { Effect, Layer, Context, Scope, Exit } from "effect"
import { debug } from "@covenant/dsl"
import { CpuBackend, Engine, EngineWebGpuFromGpu, initLlamaParameters, makeEngine, Trainer } from "@covenant/gpu-webgpu"

export interface EngineCheck {
  readonly adapter: string
  readonly gpuLosses: ReadonlyArray<number>
  readonly cpuLosses: ReadonlyArray<number>
  /** max |gpu - cpu| over every parameter after the steps, and the largest |cpu| value for scale. */
  readonly maxDiff: number
  readonly maxAbs: number
}

export const checkEngineOnPage = async (gpu: GPU): Promise<EngineCheck> => {
  const spec = debug().model
  const batch = 4
  const ids = new Int32Array(batch * spec.seqLen).map((_, i) => (i * 7919 + 13) % spec.vocabSize)
  const scope = Effect.runSync(Scope.make())
  try {
    const context = await Effect.runPromise(Layer.buildWithScope(EngineWebGpuFromGpu(gpu), scope))
    const engines = [Context.get(context, Engine), makeEngine(new CpuBackend())] as const
    const runs: Array<{ losses: number[]; params: Map<string, Float32Array> }> = []
    for (const engine of engines) {
      const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 3), { microBatch: 2, lr: 1e-3 })
      const losses: number[] = []
      for (let i = 0; i < 3; i++) losses.push(await trainer.step(ids, [batch, spec.seqLen]))
      runs.push({ losses, params: await trainer.readParameters() })
      trainer.dispose()
    }
    const [g, c] = runs as [(typeof runs)[0], (typeof runs)[0]]
    let maxDiff = 0
    let maxAbs = 0
    for (const [name, want] of c.params) {
      const got = g.params.get(name)!
      for (let i = 0; i < want.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!))
        maxAbs = Math.max(maxAbs, Math.abs(want[i]!))
      }
    }
    return { adapter: engines[0].backend.name, gpuLosses: g.losses, cpuLosses: c.losses, maxDiff, maxAbs }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
