/**
 * One WebGPU device per test file, shared by every engine the file builds on it (with different
 * options). The gate is the package's one (src/testing.ts): without an adapter the WebGPU tests
 * FAIL with the typed NoAdapterError message, unless COVENANT_ALLOW_NO_GPU=1 (then they are skipped).
 */
import { Context, Effect, Layer, Scope } from "effect"
import { Engine, EngineWebGpuOn, WebGpuDeviceLive, type WebGpuOptions } from "../src/index.ts"
import { engineOrError, type EngineOrError, webgpuFeatureTest, webgpuTest } from "../src/testing.ts"

export { allowNoGpu } from "../src/testing.ts"

const scope = Effect.runSync(Scope.make())
const device = await Effect.runPromiseExit(Layer.buildWithScope(WebGpuDeviceLive, scope))

/** An engine on this file's device, or the error that kept the device from being acquired. */
export const gpuEngine = (opts: WebGpuOptions = {}): Promise<EngineOrError> =>
  engineOrError(
    Effect.flatMap(device, (dev) =>
      Layer.buildWithScope(EngineWebGpuOn(opts), scope).pipe(Effect.provide(dev), Effect.map((ctx) => Context.get(ctx, Engine)))
    )
  )

/** `test` that needs the GPU engine: fails with the acquisition error, or skips when allowed. */
export const gpuTest = webgpuTest

/** `gpuTest` for an optional feature: skipped where the engine lacks it. */
export const gpuFeatureTest = webgpuFeatureTest
