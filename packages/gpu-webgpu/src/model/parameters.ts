/**
 * The model's parameter list is a fact of the spec and lives in @covenant/dsl (`modelTensors`,
 * `parameterCount`, `isNormWeight`); the engine's names for it are aliases.
 */
import { modelTensors, type TensorSpec } from "@covenant/dsl"
import type { LlamaSpec } from "./spec.ts"

/** One parameter: its Hugging Face LlamaForCausalLM name and torch shape (Linear weights are [out, in]). */
export type ParameterInfo = TensorSpec

/** All parameters of the model in dsl's fixed order (`modelTensors`); init, checkpoints and the wire follow it. */
export const llamaParameters: (spec: LlamaSpec) => ReadonlyArray<ParameterInfo> = modelTensors
