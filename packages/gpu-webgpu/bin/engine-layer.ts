import type { Layer } from "effect"
import type { Engine } from "../src/engine.ts"
import { EngineCpu } from "../src/engine.ts"
import { EngineWebGpu } from "../src/webgpu/layer.ts"
import type { NoAdapterError } from "../src/webgpu/device.ts"

export type BackendChoice = "cpu" | "webgpu"

export const isBackendChoice = (s: string): s is BackendChoice => s === "cpu" || s === "webgpu"

/** The engine for a `--backend` choice; WebGPU fails with NoAdapterError (saying what to install) when there is no adapter. */
export const engineLayer = (choice: BackendChoice): Layer.Layer<Engine, NoAdapterError> =>
  choice === "cpu" ? EngineCpu : EngineWebGpu
