#!/usr/bin/env bun
/**
 * Tokenizes text files into token shards for training.
 *
 *   bun packages/runtime/bin/prepare.ts --input <dir|file> [--input ...] --out <dir>
 *     [--tokenizer tokenizer.json] [--eos-token "</s>" | --eos-id N] [--seq-len 2048] [--shard-tokens N]
 *
 * Without --tokenizer the byte-level tokenizer is used (ids 0..255 bytes, 256 EOS, 257 PAD).
 */
import { parseArgs } from "node:util"
import { Cause, Effect, Option } from "effect"
import { byteTokenizer, loadHfTokenizer } from "../src/data/tokenizer.ts"
import { prepareShards } from "../src/data/prepare.ts"

const usage = "usage: prepare.ts --input <dir|file>... --out <dir> [--tokenizer tokenizer.json] [--eos-token T | --eos-id N] [--seq-len 2048] [--shard-tokens N]"

const positiveInt = (name: string, text: string | undefined, fallback?: number): number | undefined => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${text}\n${usage}`)
    process.exit(2)
  }
  return n
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        input: { type: "string", multiple: true },
        out: { type: "string" },
        tokenizer: { type: "string" },
        "eos-token": { type: "string" },
        "eos-id": { type: "string" },
        "seq-len": { type: "string" },
        "shard-tokens": { type: "string" },
        help: { type: "boolean" },
      },
      allowPositionals: true,
    })
  } catch (cause) {
    console.error(`${cause instanceof Error ? cause.message : String(cause)}\n${usage}`)
    process.exit(2)
  }
})()
const { values, positionals } = parsed
if (values.help === true) {
  console.log(usage)
  process.exit(0)
}
// Extra positionals are more inputs, so shell globs after --input work.
const inputs = [...(values.input ?? []), ...positionals]
if (inputs.length === 0 || values.out === undefined) {
  console.error(usage)
  process.exit(2)
}
const seqLen = positiveInt("seq-len", values["seq-len"], 2048) ?? 2048
const shardTokens = positiveInt("shard-tokens", values["shard-tokens"])
const eosToken = values["eos-token"]
const eosIdText = values["eos-id"]
const eosId = eosIdText === undefined ? undefined : /^[0-9]+$/.test(eosIdText) ? Number(eosIdText) : Number.NaN
if (eosId !== undefined && !(Number.isSafeInteger(eosId) && eosId >= 0)) {
  console.error(`--eos-id must be a non-negative integer, got ${eosIdText}\n${usage}`)
  process.exit(2)
}
const tokenizerPath = values.tokenizer
const outDir = values.out

const program = Effect.gen(function* () {
  const tokenizer = tokenizerPath === undefined
    ? byteTokenizer
    : yield* loadHfTokenizer(tokenizerPath, {
      ...(eosToken === undefined ? {} : { eosToken }),
      ...(eosId === undefined ? {} : { eosId }),
    })
  const started = performance.now()
  const manifest = yield* prepareShards({
    inputs,
    outDir,
    tokenizer,
    seqLen,
    ...(shardTokens === undefined ? {} : { shardTokens }),
  })
  const seconds = (performance.now() - started) / 1000
  console.log(
    `wrote ${manifest.shards.length} shard(s) to ${outDir}: ${manifest.documents} documents, ` +
      `${manifest.totalTokens} tokens, ${manifest.totalSamples} samples of ${seqLen} ` +
      `(vocab ${manifest.vocabSize}, eos ${manifest.eosId}) in ${seconds.toFixed(2)} s`,
  )
})

const exit = await Effect.runPromiseExit(program)
if (exit._tag === "Failure") {
  const error = Cause.failureOption(exit.cause)
  console.error(
    Option.isSome(error) ? `prepare failed: ${error.value._tag}: ${JSON.stringify(error.value)}` : Cause.pretty(exit.cause),
  )
  process.exit(1)
}
