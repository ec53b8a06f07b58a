/**
 * `manifest.json` of a folder of token shards: what tokenized them, how samples are cut, and the
 * size and sha256 of every file, so a reader can reject a corrupt or mismatched folder up front.
 */
import { Schema } from "effect"

export const MANIFEST_FILE = "manifest.json"
export const MANIFEST_FORMAT = "covenant-token-shards/1"

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())
const U32Count = NonNegativeInt.pipe(Schema.lessThanOrEqualTo(0xffffffff))
const Sha256Hex = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
/** A bare file name inside the shard folder: no separators, no `..`. */
const FileName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/))

export const TokenizerInfo = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("bytes") }),
  /** No text: pseudo-random documents from `prepareSyntheticShards`. */
  Schema.Struct({ kind: Schema.Literal("synthetic"), seed: Schema.Int }),
  Schema.Struct({
    kind: Schema.Literal("huggingface"),
    /** Name of the tokenizer.json it came from, for humans. */
    source: Schema.String,
    /** sha256 of that tokenizer.json, to tell tokenizers apart. */
    sha256: Sha256Hex,
  }),
)
export type TokenizerInfo = typeof TokenizerInfo.Type

export const ShardEntry = Schema.Struct({
  /** `train_{i:06d}.npy`: 1-D `<u4` token array. */
  file: FileName,
  /** `train_{i:06d}.samples.npy`: `<u4` array [samples, 2] of (global sample id, token offset in shard). */
  samplesFile: FileName,
  tokens: U32Count,
  samples: U32Count,
  /** Global id of the shard's first sample; shards hold consecutive ids. */
  firstSample: U32Count,
  sha256: Sha256Hex,
  samplesSha256: Sha256Hex,
})
export type ShardEntry = typeof ShardEntry.Type

export const Manifest = Schema.Struct({
  format: Schema.Literal(MANIFEST_FORMAT),
  tokenizer: TokenizerInfo,
  vocabSize: PositiveInt,
  eosId: NonNegativeInt,
  padId: Schema.NullOr(NonNegativeInt),
  /** Tokens a model sees per sample; a sample stores seqLen + 1 tokens (inputs + shifted labels). */
  seqLen: PositiveInt,
  documents: NonNegativeInt,
  totalTokens: NonNegativeInt,
  totalSamples: U32Count,
  shards: Schema.Array(ShardEntry),
}).pipe(
  Schema.filter((m) => {
    if (m.eosId >= m.vocabSize) return `eosId ${m.eosId} is outside the vocabulary (${m.vocabSize})`
    if (m.padId !== null && m.padId >= m.vocabSize) return `padId ${m.padId} is outside the vocabulary (${m.vocabSize})`
    let nextSample = 0
    let tokens = 0
    const names = new Set<string>()
    for (const [i, s] of m.shards.entries()) {
      if (s.firstSample !== nextSample) return `shard ${i} starts at sample ${s.firstSample}, expected ${nextSample}`
      const fit = s.tokens > m.seqLen ? Math.floor((s.tokens - 1) / m.seqLen) : 0
      if (s.samples > fit) return `shard ${i} claims ${s.samples} samples but ${s.tokens} tokens hold at most ${fit}`
      for (const name of [s.file, s.samplesFile]) {
        if (names.has(name)) return `file ${name} is listed twice`
        names.add(name)
      }
      nextSample += s.samples
      tokens += s.tokens
    }
    if (nextSample !== m.totalSamples) return `totalSamples ${m.totalSamples} but shards hold ${nextSample}`
    if (tokens !== m.totalTokens) return `totalTokens ${m.totalTokens} but shards hold ${tokens}`
    return true
  }),
)
export type Manifest = typeof Manifest.Type

export const shardFileName = (index: number): string => `train_${String(index).padStart(6, "0")}.npy`
export const samplesFileName = (index: number): string => `train_${String(index).padStart(6, "0")}.samples.npy`
