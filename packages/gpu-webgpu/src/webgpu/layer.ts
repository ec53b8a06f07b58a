/** The WebGPU engine layer: acquires the device, builds the backend, releases both on scope close. */
import { Effect, Layer } from "effect"
import { Engine, makeEngine } from "../engine.ts"
import { WebGpuBackend } from "./backend.ts"
import { acquireDevice, type NoAdapterError } from "./device.ts"

export interface WebGpuOptions {
  /** Lower the per-binding chunk size (tests of big-tensor chunking use a few KiB). */
  readonly maxBindingBytes?: number
  /** Force a matmul kernel family (default: "blocked" on CPU emulations, else "tiled"). */
  readonly matmul?: "tiled" | "blocked"
}

export const EngineWebGpuWith = (opts: WebGpuOptions = {}): Layer.Layer<Engine, NoAdapterError> =>
  Layer.scoped(
    Engine,
    Effect.gen(function* () {
      const d = yield* Effect.acquireRelease(acquireDevice, (d) => Effect.sync(() => d.device.destroy()))
      return yield* Effect.acquireRelease(
        Effect.sync(() => makeEngine(new WebGpuBackend(d.device, d.adapterDescription, opts.maxBindingBytes, opts.matmul))),
        (e) => Effect.sync(() => e.backend.destroy())
      )
    })
  )

export const EngineWebGpu: Layer.Layer<Engine, NoAdapterError> = EngineWebGpuWith()
