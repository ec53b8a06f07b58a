/**
 * Engine layers for the fast CPU backend and `EngineAuto`, which picks the fastest correct
 * backend on the machine:
 *   - WebGPU when Dawn finds a real GPU adapter;
 *   - otherwise the fast CPU backend (the machine's OpenBLAS through bun:ffi where it loads, else
 *     WebAssembly SIMD kernels on worker threads) when the JavaScript engine runs WebAssembly
 *     SIMD: a CPU Vulkan emulation (lavapipe, SwiftShader) runs the same arithmetic on the same
 *     cores through an extra layer; bench/train.ts measured it 3-5x slower than cpu-fast here;
 *   - otherwise the CPU reference backend.
 * All three compute the same results to fp32 rounding (their kernels are tested against the
 * CPU reference).
 */
import { Effect, Layer } from "effect"
import type { Backend } from "./backend.ts"
import { CpuBackend } from "./cpu/backend.ts"
import { FastCpuBackend } from "./cpu/fast.ts"
import { Engine, makeEngine } from "./engine.ts"
import { acquireDevice } from "./webgpu/device.ts"
import { WebGpuBackend } from "./webgpu/backend.ts"

/** Whether an adapter description names a CPU emulation of Vulkan rather than a GPU. */
export const isCpuEmulation = (adapterDescription: string): boolean => /llvmpipe|lavapipe|swiftshader/i.test(adapterDescription)

/** The fast CPU backend where WebAssembly SIMD runs, else the reference. */
export const makeCpuBackend = (maxBindingBytes?: number): Backend =>
  FastCpuBackend.supported() ? new FastCpuBackend(maxBindingBytes) : new CpuBackend(maxBindingBytes)

export const EngineCpuFastWith = (maxBindingBytes?: number): Layer.Layer<Engine> =>
  Layer.scoped(
    Engine,
    Effect.acquireRelease(
      Effect.sync(() => makeEngine(makeCpuBackend(maxBindingBytes))),
      (e) => Effect.sync(() => e.backend.destroy())
    )
  )

/** The fast CPU engine (the reference where WebAssembly SIMD is missing). */
export const EngineCpuFast: Layer.Layer<Engine> = EngineCpuFastWith()

/** The backend and, on a GPU, the device it owns (destroyed after the backend). */
const pickBackend = Effect.gen(function*() {
  const gpu = yield* Effect.either(acquireDevice)
  if (gpu._tag === "Right" && !isCpuEmulation(gpu.right.adapterDescription)) {
    const { device, adapterDescription, features } = gpu.right
    return { backend: new WebGpuBackend(device, adapterDescription, undefined, undefined, features) as Backend, device: device as GPUDevice | null }
  }
  if (gpu._tag === "Right") gpu.right.device.destroy()
  return { backend: makeCpuBackend(), device: null }
})

/** WebGPU on a real GPU, else the fast CPU backend, else the CPU reference; never fails. */
export const EngineAuto: Layer.Layer<Engine> = Layer.scoped(
  Engine,
  Effect.map(
    Effect.acquireRelease(pickBackend, ({ backend, device }) =>
      Effect.sync(() => {
        backend.destroy()
        device?.destroy()
      })),
    ({ backend }) => makeEngine(backend)
  )
)
