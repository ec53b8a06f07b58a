/** Training data: where tokens come from, how they are tokenized, and which samples a peer uses. */
import { Schema } from "effect"
import { NonEmptyString, NonNegativeInt, PositiveInt } from "./fields.ts"

export const DataSource = Schema.Union(
  /**
   * Pre-tokenized shards (`train_{i:06d}.npy`, flat uint32 token arrays, with their manifest); a
   * folder or `s3://bucket/prefix` (S3 or R2, read with ranged GETs of just the samples a window
   * needs). `cacheBytes` bounds the on-disk cache of samples read from object storage (default
   * 1 GiB; 0 keeps none).
   */
  Schema.Struct({ kind: Schema.Literal("shards"), uri: NonEmptyString, cacheBytes: Schema.optional(NonNegativeInt) }),
  /** A text file or a folder of `.txt`/`.jsonl` documents, tokenized into shards when the run starts. */
  Schema.Struct({ kind: Schema.Literal("text"), path: NonEmptyString }),
  /** Deterministic pseudo-random tokens, for smoke runs that need no files. */
  Schema.Struct({ kind: Schema.Literal("synthetic") }),
)
export type DataSource = typeof DataSource.Type

/** Ids of the byte-level tokenizer: 256 bytes, end of document (256), padding (257). */
export const BYTE_VOCAB_SIZE = 258

export const Tokenizer = Schema.Union(
  /** Byte-level: ids 0..255 are UTF-8 bytes, 256 ends a document, 257 pads (258 ids). */
  Schema.Struct({ kind: Schema.Literal("bytes") }),
  /** A Hugging Face `tokenizer.json`, by path or hub name. */
  Schema.Struct({ kind: Schema.Literal("huggingface"), name: NonEmptyString }),
)
export type Tokenizer = typeof Tokenizer.Type

/**
 * The per-(uid, window) rule of the reference network: a pool of `poolSize` samples drawn
 * without replacement from a generator seeded by `(uid * 1_000_003 ^ window) & 0xFFFFFFFF`
 * (@covenant/runtime's `windowSeed`), of which a miner trains on `samplesPerWindow`
 * (batch x inner steps). Samples are `model.seqLen` tokens.
 */
export const Sampling = Schema.Struct({
  kind: Schema.Literal("uidWindowSeed"),
  poolSize: PositiveInt,
  samplesPerWindow: PositiveInt,
}).pipe(
  Schema.filter((s) =>
    s.samplesPerWindow <= s.poolSize
      ? undefined
      : { path: ["samplesPerWindow"], message: `expected at most poolSize (${s.poolSize}), got ${s.samplesPerWindow}` },
  ),
)
export type Sampling = typeof Sampling.Type

/** One stage of an explicit schedule: from outer step `fromOuterStep` on, these shards are live. */
export const ShardStage = Schema.Struct({
  fromOuterStep: NonNegativeInt,
  shards: Schema.NonEmptyArray(NonNegativeInt),
})
export type ShardStage = typeof ShardStage.Type

/**
 * Which shards the per-(uid, window) pool is drawn from at each outer step (outer step = window -
 * the run's start window), the same on every node and validator:
 * - `all`: every shard, always (the default);
 * - `rotate`: the reference's shard swap: `liveShards` consecutive shards at a time, moving on to
 *   the next `liveShards` every `everyOuterSteps` outer steps, wrapping around the corpus;
 * - `stages`: explicit shard lists, each live from its `fromOuterStep` (the first at 0, increasing).
 */
export const ShardSchedule = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("all") }),
  Schema.Struct({ kind: Schema.Literal("rotate"), liveShards: PositiveInt, everyOuterSteps: PositiveInt }),
  Schema.Struct({ kind: Schema.Literal("stages"), stages: Schema.NonEmptyArray(ShardStage) }).pipe(
    Schema.filter((s) => {
      if (s.stages[0].fromOuterStep !== 0) return { path: ["stages", 0, "fromOuterStep"], message: `expected 0 (the first stage starts the run), got ${s.stages[0].fromOuterStep}` }
      for (let i = 1; i < s.stages.length; i++) {
        if (s.stages[i]!.fromOuterStep <= s.stages[i - 1]!.fromOuterStep) {
          return { path: ["stages", i, "fromOuterStep"], message: `expected more than the previous stage's (${s.stages[i - 1]!.fromOuterStep}), got ${s.stages[i]!.fromOuterStep}` }
        }
      }
      for (const [i, stage] of s.stages.entries()) {
        if (new Set(stage.shards).size !== stage.shards.length) return { path: ["stages", i, "shards"], message: "expected distinct shard indices" }
      }
      return undefined
    }),
  ),
)
export type ShardSchedule = typeof ShardSchedule.Type

export const DataSpec = Schema.Struct({
  source: DataSource,
  tokenizer: Tokenizer,
  /** End-of-document token id; absent: the tokenizer's own. */
  eosTokenId: Schema.optional(NonNegativeInt),
  sampling: Sampling,
  /** Which shards are live from which outer step; absent: all of them, always. */
  schedule: Schema.optional(ShardSchedule),
}).annotations({ identifier: "DataSpec" })
export type DataSpec = typeof DataSpec.Type

