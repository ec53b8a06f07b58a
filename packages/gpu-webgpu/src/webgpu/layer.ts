/**
 * WebGPU layers: `WebGpuDeviceLive` acquires the Dawn device (and destroys it on scope close);
 * `EngineWebGpuOn` builds an engine on that device; `EngineWebGpu` is both together. Several
 * engines (e.g. with different binding limits) can share one device through `WebGpuDevice`.
 */
import { Context, Effect, Layer } from "effect"
import type { BackendFeatures } from "../backend.ts"
import { Engine, makeEngine } from "../engine.ts"
import { WebGpuBackend } from "./backend.ts"
import { acquireDevice, deviceFromGpu, type AcquiredDevice, type NoAdapterError } from "./device.ts"

export class WebGpuDevice extends Context.Tag("@covenant/gpu-webgpu/WebGpuDevice")<WebGpuDevice, AcquiredDevice>() {}

export const WebGpuDeviceLive: Layer.Layer<WebGpuDevice, NoAdapterError> = Layer.scoped(
  WebGpuDevice,
  Effect.acquireRelease(acquireDevice, (d) => Effect.sync(() => d.device.destroy()))
)

export interface WebGpuOptions {
  /** Lower the per-binding chunk size (tests of big-tensor chunking use a few KiB). */
  readonly maxBindingBytes?: number
  /** Force a kernel family for matmul and attention (default: "blocked" on CPU emulations, else "tiled"). */
  readonly kernels?: "tiled" | "blocked"
  /** Turn off features the device has (e.g. `{ subgroups: false }` to run the shared-memory reductions). */
  readonly features?: Partial<BackendFeatures>
}

export const EngineWebGpuOn = (opts: WebGpuOptions = {}): Layer.Layer<Engine, never, WebGpuDevice> =>
  Layer.scoped(
    Engine,
    Effect.flatMap(WebGpuDevice, (d) =>
      Effect.acquireRelease(
        Effect.sync(() => makeEngine(
          new WebGpuBackend(d.device, d.adapterDescription, opts.maxBindingBytes, opts.kernels, {
            shaderF16: d.features.shaderF16 && opts.features?.shaderF16 !== false,
            subgroups: d.features.subgroups && opts.features?.subgroups !== false
          })
        )),
        (e) => Effect.sync(() => e.backend.destroy())
      )
    )
  )

export const EngineWebGpuWith = (opts: WebGpuOptions = {}): Layer.Layer<Engine, NoAdapterError> =>
  EngineWebGpuOn(opts).pipe(Layer.provide(WebGpuDeviceLive))

export const EngineWebGpu: Layer.Layer<Engine, NoAdapterError> = EngineWebGpuWith()

/** The engine on a `GPU` the caller holds (a page's `navigator.gpu`): the same kernels as on Dawn. */
export const EngineWebGpuFromGpu = (gpu: GPU, opts: WebGpuOptions = {}): Layer.Layer<Engine, NoAdapterError> =>
  EngineWebGpuOn(opts).pipe(
    Layer.provide(Layer.scoped(WebGpuDevice, Effect.acquireRelease(deviceFromGpu(gpu), (d) => Effect.sync(() => d.device.destroy()))))
  )
