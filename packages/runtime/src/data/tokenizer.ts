/**
 * Text -> token ids for `prepare`: a byte-level tokenizer (no files needed) or a Hugging Face
 * `tokenizer.json` through `@huggingface/tokenizers`. Document boundaries are added by the caller
 * (it appends `eosId`), so `encode` never adds special tokens.
 */
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { Tokenizer } from "@huggingface/tokenizers"
import { Effect, Schema } from "effect"
import * as External from "../sim/external.ts"
import { DataIoError, TokenizerError, describeCause } from "./errors.ts"
import type { TokenizerInfo } from "./manifest.ts"

export interface TextTokenizer {
  readonly info: TokenizerInfo
  readonly vocabSize: number
  readonly eosId: number
  readonly padId: number | null
  readonly encode: (text: string) => Effect.Effect<Uint32Array, TokenizerError>
  readonly decode: (ids: ArrayLike<number>) => string
}

/** Byte-level ids: 0..255 are UTF-8 bytes, 256 closes a document, 257 pads; 258 ids in all. */
export const BYTE_EOS_ID = 256
export const BYTE_PAD_ID = 257
export const BYTE_VOCAB_SIZE = 258

export const byteTokenizer: TextTokenizer = {
  info: { kind: "bytes" },
  vocabSize: BYTE_VOCAB_SIZE,
  eosId: BYTE_EOS_ID,
  padId: BYTE_PAD_ID,
  encode: (text) => Effect.sync(() => Uint32Array.from(new TextEncoder().encode(text))),
  decode: (ids) => {
    const bytes: number[] = []
    for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i])
    return new TextDecoder().decode(Uint8Array.from(bytes))
  },
}

/** Names end-of-document tokens go by in common tokenizers, tried when no EOS is configured. */
const KNOWN_EOS = ["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|eot_id|>"] as const

const TokenSpec = Schema.Union(Schema.String, Schema.Struct({ content: Schema.String }))
const TokenizerConfig = Schema.Struct({
  eos_token: Schema.optional(Schema.NullOr(TokenSpec)),
  pad_token: Schema.optional(Schema.NullOr(TokenSpec)),
})
/** Only the shape `Tokenizer` relies on first; the library validates the rest when it builds. */
const TokenizerJson = Schema.Struct({ model: Schema.Struct({ type: Schema.optional(Schema.String) }) })

const tokenContent = (spec: typeof TokenSpec.Type | null | undefined): string | undefined =>
  spec === null || spec === undefined ? undefined : typeof spec === "string" ? spec : spec.content

const readText = (path: string) =>
  External.tryPromise({
    try: () => readFile(path),
    catch: (cause) => new DataIoError({ path, reason: describeCause(cause) }),
  })

const parseJson = (text: string, what: string) =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (cause) => new TokenizerError({ reason: `${what} is not JSON: ${describeCause(cause)}` }),
  })

export interface HfTokenizerOptions {
  /** End-of-document token text; defaults to tokenizer_config.json's eos_token, then common names. */
  readonly eosToken?: string
  /** End-of-document token id (the run spec's `data.eosTokenId`); wins over `eosToken`. */
  readonly eosId?: number
}

/**
 * Loads `tokenizer.json` (and `tokenizer_config.json` beside it, if present).
 */
export const loadHfTokenizer = (
  path: string,
  options: HfTokenizerOptions = {},
): Effect.Effect<TextTokenizer, TokenizerError | DataIoError> =>
  Effect.gen(function* () {
    const raw = yield* readText(path)
    const json = yield* parseJson(raw.toString("utf-8"), path)
    yield* Schema.decodeUnknown(TokenizerJson)(json).pipe(
      Effect.mapError((e) => new TokenizerError({ reason: `${path} is not a tokenizer.json: ${e.message}` })),
    )
    const configPath = join(dirname(path), "tokenizer_config.json")
    const configRaw = yield* readText(configPath).pipe(Effect.option)
    const configJson: unknown = configRaw._tag === "Some" ? yield* parseJson(configRaw.value.toString("utf-8"), configPath) : {}
    const config = yield* Schema.decodeUnknown(TokenizerConfig)(configJson).pipe(
      Effect.mapError((e) => new TokenizerError({ reason: `${configPath}: ${e.message}` })),
    )
    if (typeof json !== "object" || json === null || typeof configJson !== "object" || configJson === null) {
      return yield* new TokenizerError({ reason: `${path} or its tokenizer_config.json is not a JSON object` })
    }
    const tokenizer = yield* Effect.try({
      try: () => new Tokenizer(json, configJson),
      catch: (cause) => new TokenizerError({ reason: `cannot build tokenizer from ${path}: ${describeCause(cause)}` }),
    })
    const vocab = tokenizer.get_vocab(true)
    let vocabSize = 0
    for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1)
    if (vocabSize === 0) return yield* new TokenizerError({ reason: `${path} has an empty vocabulary` })

    const eosCandidates = options.eosToken !== undefined
      ? [options.eosToken]
      : [tokenContent(config.eos_token), ...KNOWN_EOS].filter((t): t is string => t !== undefined)
    const eosId = options.eosId ?? eosCandidates.map((t) => tokenizer.token_to_id(t)).find((id) => id !== undefined)
    if (options.eosId !== undefined && !(Number.isInteger(options.eosId) && options.eosId >= 0 && options.eosId < vocabSize)) {
      return yield* new TokenizerError({ reason: `eos id ${options.eosId} is outside the vocabulary (${vocabSize})` })
    }
    if (eosId === undefined) {
      return yield* new TokenizerError({ reason: `no end-of-document token found in ${path} (tried ${eosCandidates.join(", ")}); pass one` })
    }
    const padText = tokenContent(config.pad_token)
    const padId = padText === undefined ? null : tokenizer.token_to_id(padText) ?? null

    const encode = (text: string) =>
      Effect.try({
        try: () => tokenizer.encode(text, { add_special_tokens: false }).ids,
        catch: (cause) => new TokenizerError({ reason: `tokenizing failed: ${describeCause(cause)}` }),
      }).pipe(
        Effect.flatMap((ids) => {
          const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize)
          return bad === undefined
            ? Effect.succeed(Uint32Array.from(ids))
            : Effect.fail(new TokenizerError({ reason: `tokenizer produced id ${bad} outside its vocabulary (${vocabSize})` }))
        }),
      )
    return {
      info: { kind: "huggingface", source: basename(path), sha256: createHash("sha256").update(raw).digest("hex") },
      vocabSize,
      eosId,
      padId,
      encode,
      decode: (ids) => tokenizer.decode(Array.from(ids)),
    } satisfies TextTokenizer
  })
