import type { LlamaSpec } from "./spec.ts"
import { headDim } from "@covenant/dsl"

export interface ParameterInfo {
  /** Hugging Face LlamaForCausalLM name */
  readonly name: string
  /** torch layout: Linear weights are [out, in] */
  readonly shape: readonly number[]
}

/** All parameters of the model, named and shaped as HF LlamaForCausalLM, in a fixed order. */
export const llamaParameters = (spec: LlamaSpec): ReadonlyArray<ParameterInfo> => {
  const kvDim = spec.nKvHeads * headDim(spec)
  const out: ParameterInfo[] = [{ name: "model.embed_tokens.weight", shape: [spec.vocabSize, spec.dim] }]
  for (let i = 0; i < spec.nLayers; i++) {
    const p = `model.layers.${i}`
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [spec.dim] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [spec.dim, spec.dim] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvDim, spec.dim] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvDim, spec.dim] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [spec.dim, spec.dim] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [spec.dim] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [spec.ffnDim, spec.dim] },
      { name: `${p}.mlp.up_proj.weight`, shape: [spec.ffnDim, spec.dim] },
      { name: `${p}.mlp.down_proj.weight`, shape: [spec.dim, spec.ffnDim] }
    )
  }
  out.push({ name: "model.norm.weight", shape: [spec.dim] })
  if (!spec.tiedEmbeddings) out.push({ name: "lm_head.weight", shape: [spec.vocabSize, spec.dim] })
  return out
}

export const parameterCount = (spec: LlamaSpec): number =>
  llamaParameters(spec).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0)

/** RMSNorm gains start at one; every other tensor is a weight matrix or embedding. */
export const isNormWeight = (name: string): boolean => name.endsWith("layernorm.weight") || name === "model.norm.weight"
