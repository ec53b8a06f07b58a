/** The model: a LLaMA-3-style decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU). */
import { Schema } from "effect"
import { Bool, oneOf, Positive, PositiveInt } from "./fields.ts"

const ModelFields = Schema.Struct({
  family: oneOf("llama"),
  dim: PositiveInt,
  nLayers: PositiveInt,
  nHeads: PositiveInt,
  nKvHeads: PositiveInt,
  ffnDim: PositiveInt,
  vocabSize: PositiveInt,
  seqLen: PositiveInt,
  ropeTheta: Positive,
  normEps: Positive,
  tiedEmbeddings: Bool,
  dtype: oneOf("float32", "float16", "bfloat16"),
})

export const ModelSpec = ModelFields.pipe(
  Schema.filter((m) => {
    const issues: Array<{ path: ReadonlyArray<string>; message: string }> = []
    if (m.dim % m.nHeads !== 0) {
      issues.push({ path: ["nHeads"], message: `expected a divisor of dim (${m.dim}), got ${m.nHeads}` })
    } else if ((m.dim / m.nHeads) % 2 !== 0) {
      // RoPE rotates pairs of coordinates inside each head.
      issues.push({
        path: ["nHeads"],
        message: `expected head_dim = dim / nHeads to be even for RoPE, got ${m.dim} / ${m.nHeads} = ${m.dim / m.nHeads}`,
      })
    }
    if (m.nHeads % m.nKvHeads !== 0) {
      issues.push({ path: ["nKvHeads"], message: `expected a divisor of nHeads (${m.nHeads}), got ${m.nKvHeads}` })
    }
    return issues
  }),
).annotations({ identifier: "ModelSpec" })
export type ModelSpec = typeof ModelSpec.Type
export type ModelDtype = ModelSpec["dtype"]

export const headDim = (m: ModelSpec): number => m.dim / m.nHeads

/** Bytes of one value stored at `dtype`. */
export const bytesPerValue = (dtype: ModelDtype): number => (dtype === "float32" ? 4 : 2)

/** One parameter tensor, named as in Hugging Face's LlamaForCausalLM; shapes as torch stores them. */
export interface TensorSpec {
  readonly name: string
  readonly shape: ReadonlyArray<number>
}

/**
 * Every parameter tensor of the model, named and shaped as Hugging Face's LlamaForCausalLM ([out, in]
 * for Linear), in the order of the forward pass: embedding; per layer input norm, q, k, v, o,
 * post-attention norm, gate, up, down; final norm; lm_head unless tied. This order is a fact other
 * code depends on: the engine's parameter list, seeded init (consumed tensor by tensor), checkpoints
 * and the wire manifest all follow it.
 */
export const modelTensors = (m: ModelSpec): ReadonlyArray<TensorSpec> => {
  const kvDim = m.nKvHeads * headDim(m)
  const tensors: Array<TensorSpec> = [{ name: "model.embed_tokens.weight", shape: [m.vocabSize, m.dim] }]
  for (let i = 0; i < m.nLayers; i++) {
    const p = `model.layers.${i}`
    tensors.push(
      { name: `${p}.input_layernorm.weight`, shape: [m.dim] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [m.dim, m.dim] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvDim, m.dim] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvDim, m.dim] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [m.dim, m.dim] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [m.dim] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [m.ffnDim, m.dim] },
      { name: `${p}.mlp.up_proj.weight`, shape: [m.ffnDim, m.dim] },
      { name: `${p}.mlp.down_proj.weight`, shape: [m.dim, m.ffnDim] },
    )
  }
  tensors.push({ name: "model.norm.weight", shape: [m.dim] })
  if (!m.tiedEmbeddings) tensors.push({ name: "lm_head.weight", shape: [m.vocabSize, m.dim] })
  return tensors
}

/** RMSNorm gains (they start at one and take no weight decay); every other tensor is a matrix or embedding. */
export const isNormWeight = (name: string): boolean => name.endsWith("layernorm.weight") || name === "model.norm.weight"

export const tensorSize = (t: TensorSpec): number => t.shape.reduce((a, b) => a * b, 1)

export const parameterCount = (m: ModelSpec): number =>
  modelTensors(m).reduce((total, t) => total + tensorSize(t), 0)
