import { Data } from "effect"

/** A shard or sample-index file (on disk or in object storage) that does not match its manifest (size, header, hash). */
export class ShardCorruptError extends Data.TaggedError("ShardCorruptError")<{
  readonly file: string
  readonly reason: string
  /** Byte offset in `file` where the problem was met, when there is one (a short or failed ranged read). */
  readonly offset?: number
}> {}

/** A shard schedule that names shards the manifest does not have, or leaves no samples live. */
export class ShardScheduleError extends Data.TaggedError("ShardScheduleError")<{
  readonly outerStep: number
  readonly reason: string
}> {}

/** `manifest.json` missing, unreadable, or not a valid manifest. */
export class ManifestError extends Data.TaggedError("ManifestError")<{
  readonly file: string
  readonly reason: string
}> {}

/** A sample id outside `[0, totalSamples)`. */
export class SampleOutOfRangeError extends Data.TaggedError("SampleOutOfRangeError")<{
  readonly id: number
  readonly totalSamples: number
}> {}

/** Sampler parameters that cannot produce a pool (bad uid/window, pool larger than the dataset). */
export class SamplerError extends Data.TaggedError("SamplerError")<{
  readonly reason: string
}> {}

/** A filesystem operation failed (missing input, unwritable output, read error). */
export class DataIoError extends Data.TaggedError("DataIoError")<{
  readonly path: string
  readonly reason: string
}> {}

/** A tokenizer that could not be loaded, or produced ids outside its own vocabulary. */
export class TokenizerError extends Data.TaggedError("TokenizerError")<{
  readonly reason: string
}> {}

export const describeCause = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause)
