/** The LLaMA model spec: @covenant/dsl's ModelSpec, decoded into the engine's typed error. */
import { formatParseError, ModelSpec } from "@covenant/dsl"
import { Data, Either, Schema } from "effect"

/** The engine's name for dsl's ModelSpec; the runtime imports it under this name. */
export type LlamaSpec = ModelSpec

/** A spec whose numbers are individually fine but do not fit together, or that fails to decode. */
export class ModelSpecError extends Data.TaggedError("ModelSpecError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

/** Decodes an unknown value as a spec, with dsl's field and shape checks (heads, head_dim, kv heads). */
export const decodeLlamaSpec = (input: unknown): Either.Either<LlamaSpec, ModelSpecError> =>
  Schema.decodeUnknownEither(ModelSpec, { errors: "all" })(input).pipe(
    Either.mapLeft((error) =>
      new ModelSpecError({
        reason: formatParseError(error).map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("; ")
      })
    )
  )
