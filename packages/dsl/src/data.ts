/** Training data: where tokens come from, how they are tokenized, and which samples a peer uses. */
import { Schema } from "effect"
import { NonEmptyString, NonNegativeInt, PositiveInt } from "./fields.ts"

export const DataSource = Schema.Union(
  /** Pre-tokenized shards (`train_{i:06d}.npy`, flat uint32 token arrays, with their manifest); a folder or `s3://bucket/prefix`. */
  Schema.Struct({ kind: Schema.Literal("shards"), uri: NonEmptyString }),
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

export const DataSpec = Schema.Struct({
  source: DataSource,
  tokenizer: Tokenizer,
  /** End-of-document token id; absent: the tokenizer's own. */
  eosTokenId: Schema.optional(NonNegativeInt),
  sampling: Sampling,
}).annotations({ identifier: "DataSpec" })
export type DataSpec = typeof DataSpec.Type

