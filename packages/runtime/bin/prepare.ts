#!/usr/bin/env bun
/**
 * Tokenizes text files into token shards for training.
 *
 *   bun packages/runtime/bin/prepare.ts --input <dir|file> [--input ...] --out <dir>
 *     [--tokenizer tokenizer.json] [--eos-token "</s>" | --eos-id N] [--seq-len 2048] [--shard-tokens N] [--part-mib 16]
 *
 * Without --tokenizer the byte-level tokenizer is used (ids 0..255 bytes, 256 EOS, 257 PAD).
 *
 * `--out s3://bucket/prefix` writes the shards straight to S3 or R2 (each shard multipart, the
 * manifest last), so a run author prepares a corpus once and every node reads it from there. The
 * store and its write keys come from the environment: DATA_S3_ENDPOINT, DATA_S3_REGION (default
 * "auto"), DATA_S3_ACCESS_KEY_ID, DATA_S3_SECRET_ACCESS_KEY, each falling back to S3_*; for R2 the
 * endpoint is https://<account>.r2.cloudflarestorage.com.
 */
import { parseArgs } from "node:util"
import { Cause, Effect, Option } from "effect"
import { makeS3Transport } from "@covenant/transport"
import { DataIoError } from "../src/data/errors.ts"
import { isObjectStoreUri, parseShardUri, transportSink } from "../src/data/objects.ts"
import type { ShardSink } from "../src/data/objects.ts"
import { byteTokenizer, loadHfTokenizer } from "../src/data/tokenizer.ts"
import { prepareShards } from "../src/data/prepare.ts"
import { dataS3ConfigFromEnv } from "../src/swarm/data.ts"

const usage = "usage: prepare.ts --input <dir|file>... --out <dir|s3://bucket/prefix> [--tokenizer tokenizer.json] [--eos-token T | --eos-id N] [--seq-len 2048] [--shard-tokens N] [--part-mib 16]"

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
        "part-mib": { type: "string" },
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
// Multipart part size for s3:// output (S3 needs >= 5 MiB); a shard larger than one part goes multipart.
const partMiB = Math.max(5, positiveInt("part-mib", values["part-mib"], 16) ?? 16)
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
  let sink: ShardSink | undefined
  if (isObjectStoreUri(outDir)) {
    const { bucket, prefix } = yield* parseShardUri(outDir)
    const config = dataS3ConfigFromEnv(process.env)
    if (config === undefined) return yield* new DataIoError({ path: outDir, reason: "set DATA_S3_ENDPOINT, DATA_S3_ACCESS_KEY_ID and DATA_S3_SECRET_ACCESS_KEY (or S3_*) to write to object storage" })
    const transport = yield* makeS3Transport({ ...config, multipartThreshold: partMiB * 1024 * 1024, partSize: partMiB * 1024 * 1024 })
    yield* Effect.mapError(transport.ensureBucket({ bucket }), (e) => new DataIoError({ path: outDir, reason: `bucket: ${e._tag}` }))
    sink = transportSink(transport, { bucket }, prefix)
  }
  const started = performance.now()
  const manifest = yield* prepareShards({
    inputs,
    outDir,
    tokenizer,
    seqLen,
    ...(shardTokens === undefined ? {} : { shardTokens }),
    ...(sink === undefined ? {} : { sink }),
  })
  const seconds = (performance.now() - started) / 1000
  console.log(
    `wrote ${manifest.shards.length} shard(s) to ${outDir}: ${manifest.documents} documents, ` +
      `${manifest.totalTokens} tokens, ${manifest.totalSamples} samples of ${seqLen} ` +
      `(vocab ${manifest.vocabSize}, eos ${manifest.eosId}) in ${seconds.toFixed(2)} s`,
  )
})

const exit = await Effect.runPromiseExit(Effect.scoped(program))
if (exit._tag === "Failure") {
  const error = Cause.failureOption(exit.cause)
  console.error(
    Option.isSome(error) ? `prepare failed: ${error.value._tag}: ${JSON.stringify(error.value)}` : Cause.pretty(exit.cause),
  )
  process.exit(1)
}
