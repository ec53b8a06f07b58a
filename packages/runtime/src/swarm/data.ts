/**
 * Turns a run's data section into an open `ShardSet`: `s3://bucket/prefix` shards are read from
 * object storage (ranged reads, on-disk cache under `outDir/cache`); a folder of shards is used as
 * it is; text is tokenized (byte tokenizer or tokenizer.json) into `outDir` once; synthetic tokens
 * are generated. Relative paths are resolved against the repository root, as the presets write them.
 */
import { existsSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Either, Schema } from "effect"
import type { Scope } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { makeS3Transport } from "@covenant/transport"
import type { S3TransportConfig } from "@covenant/transport"
import { MANIFEST_FILE } from "../data/manifest.ts"
import { openObjectShardSet } from "../data/object-shards.ts"
import { isObjectStoreUri, parseShardUri, transportObjects } from "../data/objects.ts"
import { prepareShards, prepareSyntheticShards } from "../data/prepare.ts"
import { openShardSet } from "../data/shards.ts"
import type { ShardSet } from "../data/shards.ts"
import { byteTokenizer, loadHfTokenizer } from "../data/tokenizer.ts"
import { RuntimeError, type RuntimeFailure, inPhase, isRuntimeFailure } from "../errors.ts"

/** The repository root (this file is packages/runtime/src/swarm/data.ts). */
export const repositoryRoot = resolve(fileURLToPath(new URL("../../../../", import.meta.url)))

const fromRoot = (p: string) => (isAbsolute(p) ? p : join(repositoryRoot, p))

const dataError = inPhase("data")

/** Default bound of the on-disk sample cache of an object-store corpus (`data.source.cacheBytes`). */
export const DEFAULT_DATA_CACHE_BYTES = 1024 * 1024 * 1024

/** The folder of shards for `spec`, preparing them in `outDir` when the spec names text or synthetic data. */
export const prepareRunData = (spec: RunSpec, outDir: string): Effect.Effect<string, RuntimeFailure> =>
  Effect.gen(function* () {
    const source = spec.data.source
    if (source.kind === "shards") {
      if (isObjectStoreUri(source.uri)) return yield* new RuntimeError({ phase: "data", reason: `${source.uri} is in object storage: open it with openRunData` })
      return fromRoot(source.uri)
    }
    if (existsSync(join(outDir, MANIFEST_FILE))) return outDir
    const seqLen = spec.model.seqLen
    if (source.kind === "synthetic") {
      const samples = Math.max(spec.data.sampling.poolSize, spec.data.sampling.samplesPerWindow) * 2
      yield* prepareSyntheticShards({ outDir, vocabSize: spec.model.vocabSize, ...(spec.data.eosTokenId === undefined ? {} : { eosId: spec.data.eosTokenId }), seqLen, samples, seed: spec.seed })
      return outDir
    }
    const tokenizer = spec.data.tokenizer.kind === "bytes" ? byteTokenizer : yield* loadHfTokenizer(fromRoot(spec.data.tokenizer.name), spec.data.eosTokenId === undefined ? {} : { eosId: spec.data.eosTokenId })
    yield* prepareShards({ inputs: [fromRoot(source.path)], outDir, tokenizer, seqLen })
    return outDir
  }).pipe(Effect.mapError((e) => (isRuntimeFailure(e) ? e : dataError(e))))

/**
 * The run's data, open for the life of the scope: from object storage when `data.source.uri` is
 * `s3://bucket/prefix` (read through `s3`, the store's endpoint and read credentials), else from
 * local files. `outDir` holds prepared shards or the sample cache.
 */
export const openRunData = (spec: RunSpec, outDir: string, s3?: S3TransportConfig): Effect.Effect<ShardSet, RuntimeFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const source = spec.data.source
    if (source.kind === "shards" && isObjectStoreUri(source.uri)) {
      const { bucket, prefix } = yield* Either.mapLeft(parseShardUri(source.uri), dataError)
      if (s3 === undefined) {
        return yield* new RuntimeError({ phase: "data", reason: `${source.uri} needs an S3 endpoint and read credentials (DATA_S3_* or S3_* in the environment)` })
      }
      const transport = yield* makeS3Transport(s3)
      const cacheBytes = source.cacheBytes ?? DEFAULT_DATA_CACHE_BYTES
      return yield* Effect.mapError(
        openObjectShardSet(transportObjects(transport, { bucket }, prefix), cacheBytes === 0 ? {} : { cache: { dir: join(outDir, "cache"), maxBytes: cacheBytes } }),
        dataError,
      )
    }
    const dir = yield* prepareRunData(spec, outDir)
    return yield* Effect.mapError(openShardSet(dir), dataError)
  })

const DataEnv = Schema.Struct({
  endpoint: Schema.NonEmptyString,
  region: Schema.String,
  accessKeyId: Schema.NonEmptyString,
  secretAccessKey: Schema.NonEmptyString,
  forcePathStyle: Schema.Boolean,
})

/**
 * Where an `s3://` corpus is read from, from the environment: `DATA_S3_ENDPOINT`,
 * `DATA_S3_REGION`, `DATA_S3_ACCESS_KEY_ID`, `DATA_S3_SECRET_ACCESS_KEY` (the corpus' read keys),
 * each falling back to the node's own `S3_*`. Undefined when no endpoint or keys are set.
 */
export const dataS3ConfigFromEnv = (env: Record<string, string | undefined>): S3TransportConfig | undefined => {
  const pick = (name: string) => env[`DATA_S3_${name}`] ?? env[`S3_${name}`]
  const decoded = Schema.decodeUnknownEither(DataEnv)({
    endpoint: pick("ENDPOINT"),
    region: pick("REGION") ?? "auto",
    accessKeyId: pick("ACCESS_KEY_ID"),
    secretAccessKey: pick("SECRET_ACCESS_KEY"),
    forcePathStyle: (pick("FORCE_PATH_STYLE") ?? "true") !== "false",
  })
  return Either.isRight(decoded) ? decoded.right : undefined
}
