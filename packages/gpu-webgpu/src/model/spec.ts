/**
 * The LLaMA model spec. @covenant/dsl owns the canonical definition; this is a structurally
 * identical local copy so the engine does not depend on the DSL's internals.
 */
import { Data, Either, ParseResult, Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())

export const LlamaSpecSchema = Schema.Struct({
  family: Schema.Literal("llama"),
  dim: PositiveInt,
  nLayers: PositiveInt,
  nHeads: PositiveInt,
  nKvHeads: PositiveInt,
  ffnDim: PositiveInt,
  vocabSize: PositiveInt,
  seqLen: PositiveInt,
  ropeTheta: Schema.Number.pipe(Schema.positive()),
  normEps: Schema.Number.pipe(Schema.positive()),
  tiedEmbeddings: Schema.Boolean,
  dtype: Schema.Literal("float32", "float16", "bfloat16")
})

export interface LlamaSpec extends Schema.Schema.Type<typeof LlamaSpecSchema> {}

/** A spec whose numbers are individually fine but do not fit together, or that fails to decode. */
export class ModelSpecError extends Data.TaggedError("ModelSpecError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

export const headDim = (spec: LlamaSpec): number => spec.dim / spec.nHeads

/** Decodes an unknown value as a spec and checks the shape constraints the model relies on. */
export const decodeLlamaSpec = (input: unknown): Either.Either<LlamaSpec, ModelSpecError> => {
  const decoded = Schema.decodeUnknownEither(LlamaSpecSchema)(input)
  if (Either.isLeft(decoded)) {
    return Either.left(new ModelSpecError({ reason: ParseResult.TreeFormatter.formatErrorSync(decoded.left) }))
  }
  const spec = decoded.right
  const fail = (reason: string) => Either.left(new ModelSpecError({ reason }))
  if (spec.dim % spec.nHeads !== 0) return fail(`dim ${spec.dim} is not a multiple of nHeads ${spec.nHeads}`)
  if (spec.nHeads % spec.nKvHeads !== 0) return fail(`nHeads ${spec.nHeads} is not a multiple of nKvHeads ${spec.nKvHeads}`)
  if (headDim(spec) % 2 !== 0) return fail(`head dim ${headDim(spec)} must be even for rotary embeddings`)
  return Either.right(spec)
}
