import { Data, Layer } from "effect"
import type { Engine } from "../src/engine.ts"
import { EngineCpu } from "../src/engine.ts"

export type BackendChoice = "cpu" | "webgpu"

export const isBackendChoice = (s: string): s is BackendChoice => s === "cpu" || s === "webgpu"

export class BackendUnavailableError extends Data.TaggedError("BackendUnavailableError")<{ readonly reason: string }> {}

export const engineLayer = (choice: BackendChoice): Layer.Layer<Engine, BackendUnavailableError> =>
  choice === "cpu" ? EngineCpu : Layer.fail(new BackendUnavailableError({ reason: "the webgpu engine layer has not landed yet" }))
