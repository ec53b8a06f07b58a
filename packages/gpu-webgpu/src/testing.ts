/**
 * For test suites that run on the WebGPU engine (this package's and others'): acquire an engine
 * or the typed reason there is none, and gate tests on it. Without an adapter such tests FAIL
 * with the engine's typed error (NoAdapterError names what to install), unless
 * COVENANT_ALLOW_NO_GPU=1, where they are skipped and say so.
 */
import { test } from "bun:test"
import { Cause, Context, Effect, Exit, Layer, Scope } from "effect"
import type { BackendFeatures } from "./backend.ts"
import { Engine } from "./engine.ts"
import type { NoAdapterError } from "./webgpu/device.ts"
import { EngineWebGpu } from "./webgpu/layer.ts"

export const allowNoGpu = process.env["COVENANT_ALLOW_NO_GPU"] === "1"

export type EngineOrError = Engine | { readonly _tag: string; readonly message: string }

/** Runs an engine-building effect once: the engine, or its typed failure (a defect is pretty-printed). */
export const engineOrError = async (build: Effect.Effect<Engine, NoAdapterError>): Promise<EngineOrError> => {
  const exit = await Effect.runPromiseExit(build)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  return failure._tag === "Some" ? failure.value : { _tag: "Defect", message: Cause.pretty(exit.cause) }
}

/** A WebGPU engine for the rest of the process, or the typed acquisition error (NoAdapterError). */
export const webgpuEngine = (layer: Layer.Layer<Engine, NoAdapterError> = EngineWebGpu): Promise<EngineOrError> =>
  engineOrError(Effect.flatMap(Scope.make(), (scope) => Layer.buildWithScope(layer, scope)).pipe(Effect.map((ctx) => Context.get(ctx, Engine))))

/** `test` on the WebGPU engine: fails with the acquisition error, or is skipped when allowed. */
export const webgpuTest = (engine: EngineOrError) =>
  (name: string, fn: (e: Engine) => Promise<void>, timeout?: number): void => {
    if ("_tag" in engine && allowNoGpu) {
      test.skip(`${name} (skipped: ${engine._tag}, COVENANT_ALLOW_NO_GPU=1)`, () => {})
      return
    }
    test(name, async () => {
      if ("_tag" in engine) throw new Error(`${engine._tag}: ${engine.message}`)
      await fn(engine)
    }, timeout)
  }

/**
 * `webgpuTest` for tests of an optional feature: skipped, saying so, where the engine lacks it
 * (a device without it, or COVENANT_WEBGPU_DISABLE); whether an adapter that offers a feature
 * gets it is test/features.test.ts's to check.
 */
export const webgpuFeatureTest = (engine: EngineOrError, feature: keyof BackendFeatures) =>
  (name: string, fn: (e: Engine) => Promise<void>, timeout?: number): void => {
    if (!("_tag" in engine) && !engine.backend.features[feature]) {
      test.skip(`${name} (skipped: ${engine.backend.name} has no ${feature})`, () => {})
      return
    }
    webgpuTest(engine)(name, fn, timeout)
  }
