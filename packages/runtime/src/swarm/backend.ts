/**
 * The engines a node can train and evaluate on, and the `auto` choice: time a few training steps
 * of the run's model on each (WebGPU only where an adapter exists) and take the fastest. The CPU
 * reference is timed too: where WebAssembly SIMD is missing `cpu-fast` is the reference itself.
 */
import { Effect, Exit, Layer } from "effect"
import { Engine, EngineCpu, EngineCpuFast, EngineWebGpu, initLlamaParameters, Trainer } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import { EngineFailure, type RuntimeFailure } from "../errors.ts"

/** cpu: the readable reference engine; cpu-fast: its WebAssembly SIMD kernels (checked against it); webgpu. */
export type EngineBackend = "cpu" | "cpu-fast" | "webgpu"

export const engineLayerOf = (backend: EngineBackend): Layer.Layer<Engine, RuntimeFailure> =>
  backend === "webgpu"
    ? Layer.mapError(EngineWebGpu, (cause) => new EngineFailure({ phase: "engine", cause }))
    : backend === "cpu-fast" ? EngineCpuFast : EngineCpu

export interface BackendChoice {
  readonly backend: EngineBackend
  /** Milliseconds a training step took on each; webgpu null: no adapter (or it failed). */
  readonly stepMs: { readonly cpu: number; readonly "cpu-fast": number; readonly webgpu: number | null }
}

const timeSteps = (spec: LlamaSpec, batch: number, steps = 3) =>
  Effect.gen(function* () {
    const engine = yield* Engine
    return yield* Effect.promise(async () => {
      const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 0), { microBatch: batch, lr: 1e-3 })
      try {
        const T = spec.seqLen + 1
        const ids = Int32Array.from({ length: batch * T }, (_, i) => (i * 31) % spec.vocabSize)
        await trainer.step(ids, [batch, T])
        const t = performance.now()
        for (let i = 0; i < steps; i++) await trainer.step(ids, [batch, T])
        return (performance.now() - t) / steps
      } finally {
        trainer.dispose()
      }
    })
  })

export const measureBackends = (spec: LlamaSpec, batch: number): Effect.Effect<BackendChoice> =>
  Effect.gen(function* () {
    const cpu = yield* Effect.scoped(Effect.provide(timeSteps(spec, batch), EngineCpu))
    const cpuFast = yield* Effect.scoped(Effect.provide(timeSteps(spec, batch), EngineCpuFast))
    // Any failure on the GPU side (no adapter, a device error, a defect) just means: not WebGPU.
    const gpu = yield* Effect.exit(Effect.scoped(Effect.provide(timeSteps(spec, batch), EngineWebGpu as Layer.Layer<Engine, unknown>)))
    const webgpu = Exit.isSuccess(gpu) ? gpu.value : null
    const timed: Array<[EngineBackend, number]> = [["cpu", cpu], ["cpu-fast", cpuFast], ...(webgpu === null ? [] : [["webgpu", webgpu] as [EngineBackend, number]])]
    const fastest = timed.reduce((best, t) => (t[1] < best[1] ? t : best))
    return { backend: fastest[0], stepMs: { cpu, "cpu-fast": cpuFast, webgpu } }
  })
