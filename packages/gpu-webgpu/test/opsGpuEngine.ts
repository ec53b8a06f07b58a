/**
 * One WebGPU engine per test file. Without an adapter the WebGPU tests FAIL with the typed
 * NoAdapterError message, unless COVENANT_ALLOW_NO_GPU=1 is set (then they are skipped).
 */
import { test } from "bun:test"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Engine, EngineWebGpuWith, type WebGpuOptions } from "../src/index.ts"

export const allowNoGpu = process.env["COVENANT_ALLOW_NO_GPU"] === "1"

export const gpuEngine = async (opts: WebGpuOptions = {}): Promise<Engine | Error> => {
  const scope = Effect.runSync(Scope.make())
  const exit = await Effect.runPromiseExit(
    Layer.buildWithScope(EngineWebGpuWith(opts), scope).pipe(Effect.map((ctx) => Context.get(ctx, Engine)))
  )
  if (Exit.isSuccess(exit)) return exit.value
  const err = exit.cause._tag === "Fail" ? exit.cause.error : new Error(String(exit.cause))
  return err instanceof Error ? err : new Error(String(err))
}

/** `test` that needs the GPU engine: fails with the acquisition error, or skips when allowed. */
export const gpuTest = (engine: Engine | Error) =>
  (name: string, fn: (e: Engine) => Promise<void>, timeout?: number) => {
    if (engine instanceof Error && allowNoGpu) {
      test.skip(`${name} (skipped: no WebGPU adapter, COVENANT_ALLOW_NO_GPU=1)`, () => {})
      return
    }
    test(name, async () => {
      if (engine instanceof Error) throw engine
      await fn(engine)
    }, timeout)
  }
