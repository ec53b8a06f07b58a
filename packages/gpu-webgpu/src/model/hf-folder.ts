/**
 * Hugging Face model folders: `config.json` + `model.safetensors` (fp32 weights with
 * LlamaForCausalLM names), the layout `LlamaForCausalLM.from_pretrained(folder)` loads.
 */
import { join } from "node:path"
import { Effect } from "effect"
import type { FileIoError, SafetensorsDecodeError, SafetensorsEncodeError } from "../io/errors.ts"
import { readBytes, writeBytes } from "../io/files.ts"
import { decodeSafetensors, encodeSafetensors } from "../io/safetensors.ts"
import { checkParameters, checkpointFromFile } from "./checkpoint.ts"
import type { CheckpointMismatchError } from "./checkpoint.ts"
import { HfConfigError, hfConfigFromSpec, specFromHfConfig } from "./hf-config.ts"
import { llamaParameters } from "./parameters.ts"
import type { LlamaSpec, ModelSpecError } from "./spec.ts"

/**
 * Tensors HF files may hold that are not parameters of the model: the rotary `inv_freq` buffers
 * older transformers saved, and an `lm_head.weight` written beside tied embeddings (HF ties it to
 * the embedding after loading, so the stored copy is never used).
 */
export const isIgnoredHfTensor = (spec: LlamaSpec, name: string): boolean =>
  name.endsWith(".rotary_emb.inv_freq") || (spec.tiedEmbeddings && name === "lm_head.weight")

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
    const file = yield* decodeSafetensors(yield* readBytes(join(folder, "model.safetensors")))
    const tensors = new Map([...file.tensors].filter(([name]) => !isIgnoredHfTensor(spec, name)))
    const { parameters } = yield* checkpointFromFile({ tensors, metadata: file.metadata }, spec)
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
