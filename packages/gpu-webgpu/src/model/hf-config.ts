/**
 * Hugging Face LlamaConfig (config.json) <-> LlamaSpec. Only the plain LLaMA architecture is
 * accepted: SiLU MLP, no biases, no rope scaling; anything else is a typed error rather than a
 * silently different model.
 */
import { Data, Either, ParseResult, Schema } from "effect"
import type { LlamaSpec } from "./spec.ts"
import { decodeLlamaSpec } from "./spec.ts"

export class HfConfigError extends Data.TaggedError("HfConfigError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

export const HfLlamaConfigSchema = Schema.Struct({
  model_type: Schema.optional(Schema.String),
  hidden_size: PositiveInt,
  intermediate_size: PositiveInt,
  num_attention_heads: PositiveInt,
  num_key_value_heads: Schema.optional(Schema.NullOr(PositiveInt)),
  num_hidden_layers: PositiveInt,
  vocab_size: PositiveInt,
  rms_norm_eps: Schema.Number.pipe(Schema.positive()),
  rope_theta: Schema.optional(Schema.Number.pipe(Schema.positive())),
  tie_word_embeddings: Schema.optional(Schema.Boolean),
  max_position_embeddings: PositiveInt,
  head_dim: Schema.optional(Schema.NullOr(PositiveInt)),
  rope_scaling: Schema.optional(Schema.Unknown),
  hidden_act: Schema.optional(Schema.String),
  attention_bias: Schema.optional(Schema.Boolean),
  mlp_bias: Schema.optional(Schema.Boolean),
  torch_dtype: Schema.optional(Schema.Literal("float32", "float16", "bfloat16"))
})
export type HfLlamaConfig = Schema.Schema.Type<typeof HfLlamaConfigSchema>

/**
 * Decodes a parsed config.json. `seqLen` defaults to max_position_embeddings (the config has no
 * training sequence length of its own).
 */
export const specFromHfConfig = (
  json: unknown,
  options: { readonly seqLen?: number } = {}
): Either.Either<LlamaSpec, HfConfigError> => {
  const decoded = Schema.decodeUnknownEither(HfLlamaConfigSchema)(json)
  if (Either.isLeft(decoded)) {
    return Either.left(new HfConfigError({ reason: ParseResult.TreeFormatter.formatErrorSync(decoded.left) }))
  }
  const c = decoded.right
  const fail = (reason: string) => Either.left(new HfConfigError({ reason }))
  if (c.model_type !== undefined && c.model_type !== "llama") return fail(`model_type "${c.model_type}" is not "llama"`)
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    return fail(`rope_scaling ${JSON.stringify(c.rope_scaling)} is not supported (only plain RoPE)`)
  }
  if (c.hidden_act !== undefined && c.hidden_act !== "silu") return fail(`hidden_act "${c.hidden_act}" is not supported (only silu)`)
  if (c.attention_bias === true) return fail("attention_bias is not supported")
  if (c.mlp_bias === true) return fail("mlp_bias is not supported")
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim * c.num_attention_heads !== c.hidden_size) {
    return fail(`head_dim ${c.head_dim} must equal hidden_size / num_attention_heads = ${c.hidden_size / c.num_attention_heads}`)
  }
  const spec = decodeLlamaSpec({
    family: "llama",
    dim: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    nKvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    ffnDim: c.intermediate_size,
    vocabSize: c.vocab_size,
    seqLen: options.seqLen ?? c.max_position_embeddings,
    ropeTheta: c.rope_theta ?? 10000,
    normEps: c.rms_norm_eps,
    tiedEmbeddings: c.tie_word_embeddings ?? false,
    dtype: c.torch_dtype ?? "float32"
  })
  return Either.mapLeft(spec, (e) => new HfConfigError({ reason: e.reason }))
}

/** The config.json transformers needs to load the spec as LlamaForCausalLM. */
export const hfConfigFromSpec = (spec: LlamaSpec): Record<string, unknown> => ({
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  torch_dtype: spec.dtype,
  hidden_size: spec.dim,
  intermediate_size: spec.ffnDim,
  num_attention_heads: spec.nHeads,
  num_key_value_heads: spec.nKvHeads,
  num_hidden_layers: spec.nLayers,
  head_dim: spec.dim / spec.nHeads,
  vocab_size: spec.vocabSize,
  rms_norm_eps: spec.normEps,
  rope_theta: spec.ropeTheta,
  rope_scaling: null,
  tie_word_embeddings: spec.tiedEmbeddings,
  max_position_embeddings: spec.seqLen,
  hidden_act: "silu",
  attention_bias: false,
  mlp_bias: false,
  initializer_range: 0.02
})
