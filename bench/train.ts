/**
 * Training throughput of the LLaMA Trainer (forward + backward + clip + AdamW), in tokens/s, on
 * the CPU reference engine and on WebGPU (whatever adapter Dawn finds; lavapipe here), for the
 * debug-sized model and a ~25M-parameter one. Prints numbers; asserts nothing.
 *
 *   bun bench/train.ts [--backends cpu,webgpu] [--models debug,25m] [--steps 3]
 *
 * Tokens/s counts batch * seqLen tokens per optimizer step, over the timed steps after one
 * warm-up step (which compiles pipelines and fills the buffer pool).
 */
import { Context, Effect, Layer, Scope } from "effect"
import {
  Engine,
  EngineCpu,
  EngineWebGpu,
  initLlamaParameters,
  parameterCount,
  Trainer,
  type LlamaSpec
} from "@covenant/gpu-webgpu"
import { stringArg } from "./support.ts"

const backends = stringArg("backends", "cpu,webgpu").split(",")
const modelNames = stringArg("models", "debug,25m").split(",")
const timedSteps = Number(stringArg("steps", "3"))

const base = { family: "llama", ropeTheta: 10000, normEps: 1e-5, dtype: "float32" } as const
const models: Record<string, { spec: LlamaSpec; batch: number; microBatch: number }> = {
  debug: {
    spec: { ...base, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 256, seqLen: 64, tiedEmbeddings: false },
    batch: 8,
    microBatch: 8
  },
  "25m": {
    // 8 layers at dim 384 with a tied 32000-token embedding: 24.9M parameters
    spec: { ...base, dim: 384, nLayers: 8, nHeads: 6, nKvHeads: 2, ffnDim: 1024, vocabSize: 32000, seqLen: 256, tiedEmbeddings: true },
    batch: 2,
    microBatch: 1
  }
}

const engineFor = (backend: string): Effect.Effect<Engine, unknown, Scope.Scope> =>
  Effect.map(Layer.build(backend === "cpu" ? EngineCpu : EngineWebGpu), (ctx) => Context.get(ctx, Engine))

const bench = (backend: string, name: string) =>
  Effect.gen(function*() {
    const { spec, batch, microBatch } = models[name]!
    const engine = yield* engineFor(backend)
    const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 1), { microBatch, lr: 1e-4 })
    const ids = new Int32Array(batch * spec.seqLen).map((_, i) => (i * 7919) % spec.vocabSize)
    const step = () => Effect.promise(() => trainer.step(ids, [batch, spec.seqLen]))
    const warm0 = performance.now()
    yield* step()
    const warmMs = performance.now() - warm0
    const t0 = performance.now()
    let loss = 0
    for (let i = 0; i < timedSteps; i++) loss = yield* step()
    const seconds = (performance.now() - t0) / 1000
    const tokens = timedSteps * batch * spec.seqLen
    console.log(
      `${name.padEnd(6)} ${(parameterCount(spec) / 1e6).toFixed(2).padStart(6)}M  batch ${batch}x${spec.seqLen} (micro ${microBatch})  ` +
        `${(tokens / seconds).toFixed(1).padStart(9)} tokens/s  ${(seconds / timedSteps * 1000).toFixed(0).padStart(7)} ms/step  ` +
        `first step ${warmMs.toFixed(0)} ms  loss ${loss.toFixed(3)}  live buffers ${engine.backend.liveBuffers()}  [${engine.backend.name}]`
    )
    trainer.dispose()
  }).pipe(Effect.scoped)

for (const backend of backends) {
  for (const name of modelNames) {
    if (models[name] === undefined) throw new Error(`unknown model ${name}; have ${Object.keys(models).join(", ")}`)
    await Effect.runPromise(bench(backend, name).pipe(
      Effect.catchAll((e) => Effect.sync(() => console.log(`${name} on ${backend}: ${String(e)}`)))
    ))
  }
}
