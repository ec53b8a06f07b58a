/**
 * One WebGPU device per test file, shared by every engine the file builds on it. Without an
 * adapter the WebGPU tests FAIL with the typed NoAdapterError message, unless
 * COVENANT_ALLOW_NO_GPU=1 is set (then they are skipped).
 */
import { test } from "bun:test"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Engine, EngineWebGpuOn, WebGpuDevice, WebGpuDeviceLive, type WebGpuOptions } from "../src/index.ts"

export const allowNoGpu = process.env["COVENANT_ALLOW_NO_GPU"] === "1"

const scope = Effect.runSync(Scope.make())
const device = await Effect.runPromiseExit(Layer.buildWithScope(WebGpuDeviceLive, scope))

const asError = (u: unknown): Error => (u instanceof Error ? u : new Error(String(u)))

/** An engine on this file's device, or the error that kept the device from being acquired. */
export const gpuEngine = async (opts: WebGpuOptions = {}): Promise<Engine | Error> => {
  if (Exit.isFailure(device)) return asError(device.cause._tag === "Fail" ? device.cause.error : device.cause)
  const dev: Context.Context<WebGpuDevice> = device.value
  const exit = await Effect.runPromiseExit(
    Layer.buildWithScope(EngineWebGpuOn(opts), scope).pipe(Effect.provide(dev), Effect.map((ctx) => Context.get(ctx, Engine)))
  )
  return Exit.isSuccess(exit) ? exit.value : asError(exit.cause)
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
