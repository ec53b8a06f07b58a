/** Training data: where tokens come from, how they are tokenized, and which samples a peer uses. */
import { Schema } from "effect"
import { NonEmptyString, NonNegativeInt, oneOf, PositiveInt } from "./fields.ts"

export const DataSource = Schema.Union(
  /** Pre-tokenized shards (`train_{i:06d}.npy`, flat token arrays); `uri` is a folder or `s3://bucket/prefix`. */
  Schema.Struct({ kind: Schema.Literal("shards"), uri: NonEmptyString, tokenDtype: oneOf("uint16", "uint32") }),
  /** A UTF-8 text file, tokenized when the run starts. */
  Schema.Struct({ kind: Schema.Literal("text"), path: NonEmptyString }),
  /** Deterministic pseudo-random tokens, for smoke runs that need no files. */
  Schema.Struct({ kind: Schema.Literal("synthetic") }),
)
export type DataSource = typeof DataSource.Type

export const Tokenizer = Schema.Union(
  /** Byte-level: token = byte, vocabulary 256. */
  Schema.Struct({ kind: Schema.Literal("bytes") }),
  /** A Hugging Face `tokenizer.json`, by path or hub name. */
  Schema.Struct({ kind: Schema.Literal("huggingface"), name: NonEmptyString }),
)
export type Tokenizer = typeof Tokenizer.Type

/**
 * The per-(uid, window) rule of the reference network: a pool of `poolSize` samples drawn
 * without replacement from a generator seeded by `sampleSeed(uid, window)`, of which a miner
 * trains on `samplesPerWindow` (batch x inner steps). Samples are `model.seqLen` tokens.
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
  /** End-of-document token, masked out of the labels; absent when documents are not delimited. */
  eosTokenId: Schema.optional(NonNegativeInt),
  sampling: Sampling,
}).annotations({ identifier: "DataSpec" })
export type DataSpec = typeof DataSpec.Type

/** The reference seed: `(uid * 1_000_003 ^ window) & 0xFFFFFFFF`, as Python evaluates it. */
export const sampleSeed = (uid: number, window: number): number =>
  // Only the low 32 bits survive the mask, and xor acts bitwise, so 64-bit BigInt arithmetic
  // gives Python's result for any non-negative integers.
  Number(((BigInt(uid) * 1_000_003n) ^ BigInt(window)) & 0xffffffffn)
