/**
 * Hugging Face model folders: `config.json` + `model.safetensors` (fp32 weights with
 * LlamaForCausalLM names), the layout `LlamaForCausalLM.from_pretrained(folder)` loads.
 */
import { join } from "node:path"
import { Effect } from "effect"
import type { FileIoError, SafetensorsDecodeError, SafetensorsEncodeError } from "../io/errors.ts"
import { readBytes, writeBytes } from "../io/files.ts"
import { encodeSafetensors } from "../io/safetensors.ts"
import { checkParameters, decodeCheckpoint } from "./checkpoint.ts"
import type { CheckpointMismatchError } from "./checkpoint.ts"
import { HfConfigError, hfConfigFromSpec, specFromHfConfig } from "./hf-config.ts"
import { llamaParameters } from "./parameters.ts"
import type { LlamaSpec, ModelSpecError } from "./spec.ts"

export interface HfModel {
  readonly spec: LlamaSpec
  readonly parameters: Map<string, Float32Array>
}

export type HfFolderError = FileIoError | HfConfigError | SafetensorsDecodeError | ModelSpecError | CheckpointMismatchError

export const loadHfFolder = (folder: string): Effect.Effect<HfModel, HfFolderError> =>
  Effect.gen(function*() {
    const configText = new TextDecoder().decode(yield* readBytes(join(folder, "config.json")))
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(configText),
      catch: () => new HfConfigError({ reason: `${join(folder, "config.json")} is not JSON` })
    })
    const spec = yield* specFromHfConfig(json)
    const { parameters } = yield* decodeCheckpoint(yield* readBytes(join(folder, "model.safetensors")), spec)
    return { spec, parameters }
  })

export const writeHfFolder = (
  folder: string,
  spec: LlamaSpec,
  parameters: ReadonlyMap<string, Float32Array>
): Effect.Effect<void, FileIoError | SafetensorsEncodeError | CheckpointMismatchError> =>
  Effect.gen(function*() {
    yield* checkParameters(spec, new Map([...parameters].map(([name, data]) => [name, { data }])))
    const bytes = yield* encodeSafetensors(
      llamaParameters(spec).map(({ name, shape }) => [name, { shape, data: parameters.get(name)! }] as const),
      { format: "pt" }
    )
    yield* writeBytes(join(folder, "model.safetensors"), bytes)
    yield* writeBytes(join(folder, "config.json"), new TextEncoder().encode(JSON.stringify(hfConfigFromSpec(spec), null, 2) + "\n"))
  })
