/**
 * Tokenizes text into a folder of shards: `train_{i:06d}.npy` (flat `<u4` tokens, each document
 * closed by EOS), `train_{i:06d}.samples.npy` and `manifest.json`.
 *
 * Sample layout: a shard of T tokens holds floor((T - 1) / seqLen) samples; sample j covers tokens
 * [j * seqLen, j * seqLen + seqLen + 1) of its shard, i.e. consecutive samples share one token (the
 * last label of one is the first input of the next). Concatenating the shards reproduces the token
 * stream exactly; the tail of a shard too short for a sample is kept but not sampled.
 *
 * Inputs: a `.jsonl` file holds one document per line (`{"text": "..."}`, the usual dataset dump);
 * any other file is one document. Folders are walked recursively for `.txt` and `.jsonl`
 * files, in sorted path order, so the output is deterministic.
 */
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises"
import { extname, join } from "node:path"
import { createInterface } from "node:readline"
import { encodeNpy } from "@covenant/gpu-webgpu"
import type { NpyEncodeError } from "@covenant/gpu-webgpu"
import { Effect, Schema, Stream } from "effect"
import { DataIoError, TokenizerError, describeCause } from "./errors.ts"
import { MANIFEST_FILE, MANIFEST_FORMAT, Manifest, samplesFileName, shardFileName } from "./manifest.ts"
import type { ShardEntry, TokenizerInfo } from "./manifest.ts"
import { Xoshiro128 } from "./sampler.ts"
import type { TextTokenizer } from "./tokenizer.ts"
import type { ShardSink } from "./objects.ts"

export interface PrepareOptions {
  /** Files and/or folders of text. */
  readonly inputs: readonly string[]
  readonly outDir: string
  readonly tokenizer: TextTokenizer
  /** Tokens per training sample (the model's context); 2048 in the reference. */
  readonly seqLen: number
  /** Tokens per shard file; defaults to 16384 samples' worth (`16384 * seqLen + 1`). */
  readonly shardTokens?: number
  /** Where the shards go instead of `outDir` (see `ShardWriterOptions.sink`). */
  readonly sink?: ShardSink
}

const TEXT_EXTENSIONS = new Set([".txt", ".jsonl"])
const JsonlDocument = Schema.parseJson(Schema.Struct({ text: Schema.String }))

const io = <A>(path: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new DataIoError({ path, reason: describeCause(cause) }) })

/** Expands folders into their text files (recursively, sorted); files are kept as given. */
export const collectInputFiles = (inputs: readonly string[]): Effect.Effect<string[], DataIoError> =>
  Effect.gen(function* () {
    const out: string[] = []
    const walk = (dir: string): Effect.Effect<void, DataIoError> =>
      Effect.gen(function* () {
        const entries = yield* io(dir, () => readdir(dir, { withFileTypes: true }))
        for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
          const path = join(dir, entry.name)
          if (entry.isDirectory()) yield* walk(path)
          else if (entry.isFile() && TEXT_EXTENSIONS.has(extname(entry.name))) out.push(path)
        }
      })
    for (const input of inputs) {
      const info = yield* io(input, () => stat(input))
      if (info.isDirectory()) yield* walk(input)
      else out.push(input)
    }
    if (out.length === 0) return yield* new DataIoError({ path: inputs.join(", "), reason: "no text files found" })
    return out
  })

/**
 * The documents of one input file, as a stream (JSONL is read line by line). Suspended so the file
 * is opened only when the stream runs: readline emits lines as soon as it is created, and lines
 * emitted before iteration starts would be lost.
 */
const documentsOf = (path: string): Stream.Stream<string, DataIoError> =>
  Stream.suspend(() => {
    if (extname(path) !== ".jsonl") {
      return Stream.fromEffect(io(path, () => readFile(path, "utf-8")))
    }
    return Stream.fromAsyncIterable(
      createInterface({ input: createReadStream(path, { encoding: "utf-8" }), crlfDelay: Infinity }),
      (cause) => new DataIoError({ path, reason: describeCause(cause) }),
    ).pipe(
      Stream.zipWithIndex,
      Stream.filter(([line]) => line.trim().length > 0),
      Stream.mapEffect(([line, index]) =>
        Schema.decodeUnknown(JsonlDocument)(line).pipe(
          Effect.mapError((e) => new DataIoError({ path, reason: `line ${index + 1} is not {"text": string}: ${e.message}` })),
          Effect.map((doc) => doc.text),
        ),
      ),
    )
  })

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

export interface ShardWriterOptions {
  readonly outDir: string
  readonly tokenizer: TokenizerInfo
  readonly vocabSize: number
  readonly eosId: number
  readonly padId: number | null
  readonly seqLen: number
  readonly shardTokens?: number
  /** Stop consuming documents once this many complete samples are written or buffered. */
  readonly stopAfterSamples?: number
  /** Where the files go (e.g. `transportSink`: straight to S3/R2); default: files in `outDir`. The manifest is written last. */
  readonly sink?: ShardSink
}

/** Files in a local folder (made if missing). */
export const folderSink = (dir: string): ShardSink => ({
  uri: dir,
  write: (name, bytes) => io(join(dir, name), () => mkdir(dir, { recursive: true }).then(() => writeFile(join(dir, name), bytes))),
})

/**
 * Writes a stream of documents (token ids, EOS appended here) as shards + sample index +
 * manifest; the common back end of `prepareShards` and `prepareSyntheticShards`.
 */
export const writeShards = <E>(
  documentStream: Stream.Stream<Uint32Array, E>,
  options: ShardWriterOptions,
): Effect.Effect<Manifest, E | DataIoError | NpyEncodeError> =>
  Effect.gen(function* () {
    const { seqLen, outDir } = options
    if (!Number.isSafeInteger(seqLen) || seqLen < 1) {
      return yield* new DataIoError({ path: outDir, reason: `seqLen must be a positive integer, got ${seqLen}` })
    }
    const shardTokens = options.shardTokens ?? 16384 * seqLen + 1
    if (!Number.isSafeInteger(shardTokens) || shardTokens < seqLen + 1 || shardTokens > 0xffffffff) {
      return yield* new DataIoError({ path: outDir, reason: `shardTokens must be an integer in [seqLen + 1, 2^32), got ${shardTokens}` })
    }
    const sink = options.sink ?? folderSink(outDir)

    const buffer = new Uint32Array(shardTokens)
    let filled = 0
    const shards: ShardEntry[] = []
    let nextSample = 0
    let documents = 0
    const samplesIn = (tokens: number) => (tokens > seqLen ? Math.floor((tokens - 1) / seqLen) : 0)

    const flush = Effect.gen(function* () {
      if (filled === 0) return
      const index = shards.length
      const tokens = buffer.subarray(0, filled)
      const samples = samplesIn(filled)
      const sampleIndex = new Uint32Array(samples * 2)
      for (let j = 0; j < samples; j++) {
        sampleIndex[2 * j] = nextSample + j
        sampleIndex[2 * j + 1] = j * seqLen
      }
      const shardBytes = yield* encodeNpy(tokens)
      const samplesBytes = yield* encodeNpy(sampleIndex, [samples, 2])
      const file = shardFileName(index)
      const samplesFile = samplesFileName(index)
      yield* sink.write(file, shardBytes)
      yield* sink.write(samplesFile, samplesBytes)
      shards.push({
        file,
        samplesFile,
        tokens: filled,
        samples,
        firstSample: nextSample,
        sha256: sha256(shardBytes),
        samplesSha256: sha256(samplesBytes),
      })
      nextSample += samples
      filled = 0
    })

    const append = (ids: Uint32Array) =>
      Effect.gen(function* () {
        let from = 0
        while (from < ids.length) {
          const take = Math.min(ids.length - from, shardTokens - filled)
          buffer.set(ids.subarray(from, from + take), filled)
          filled += take
          from += take
          if (filled === shardTokens) yield* flush
        }
      })

    const eos = Uint32Array.of(options.eosId)
    const stopAt = options.stopAfterSamples ?? Number.POSITIVE_INFINITY
    yield* Stream.runForEachWhile(documentStream, (ids) =>
      Effect.gen(function* () {
        yield* append(ids)
        yield* append(eos)
        documents++
        return nextSample + samplesIn(filled) < stopAt
      }),
    )
    yield* flush

    const manifest = yield* Schema.decodeUnknown(Manifest)({
      format: MANIFEST_FORMAT,
      tokenizer: options.tokenizer,
      vocabSize: options.vocabSize,
      eosId: options.eosId,
      padId: options.padId,
      seqLen,
      documents,
      totalTokens: shards.reduce((n, s) => n + s.tokens, 0),
      totalSamples: nextSample,
      shards,
    }).pipe(Effect.mapError((e) => new DataIoError({ path: outDir, reason: `manifest does not validate: ${e.message}` })))
    const encoded = Schema.encodeSync(Manifest)(manifest)
    yield* sink.write(MANIFEST_FILE, new TextEncoder().encode(JSON.stringify(encoded, null, 2) + "\n"))
    return manifest
  })

/** Tokenizes `inputs` into `outDir` and returns the manifest it wrote. */
export const prepareShards = (
  options: PrepareOptions,
): Effect.Effect<Manifest, DataIoError | TokenizerError | NpyEncodeError> =>
  Effect.gen(function* () {
    const { tokenizer } = options
    const files = yield* collectInputFiles(options.inputs)
    const documentStream = Stream.fromIterable(files).pipe(
      Stream.flatMap(documentsOf),
      Stream.mapEffect(tokenizer.encode),
    )
    return yield* writeShards(documentStream, {
      outDir: options.outDir,
      tokenizer: tokenizer.info,
      vocabSize: tokenizer.vocabSize,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
      seqLen: options.seqLen,
      ...(options.shardTokens === undefined ? {} : { shardTokens: options.shardTokens }),
      ...(options.sink === undefined ? {} : { sink: options.sink }),
    })
  })

export interface SyntheticShardOptions {
  readonly outDir: string
  readonly vocabSize: number
  /** End-of-document id; defaults to `vocabSize - 1`. Other ids are uniform over the rest. */
  readonly eosId?: number
  readonly seqLen: number
  /** Documents are generated until at least this many samples exist. */
  readonly samples: number
  readonly seed: number
  readonly shardTokens?: number
}

/**
 * Pseudo-random documents (lengths 1..2*seqLen, ids uniform except EOS) for smoke runs that need
 * no text; deterministic in `seed`.
 */
export const prepareSyntheticShards = (
  options: SyntheticShardOptions,
): Effect.Effect<Manifest, DataIoError | NpyEncodeError> =>
  Effect.gen(function* () {
    const { vocabSize, seqLen, samples, seed, outDir } = options
    const eosId = options.eosId ?? vocabSize - 1
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 2 || vocabSize > 0xffffffff) {
      return yield* new DataIoError({ path: outDir, reason: `vocabSize must be an integer in [2, 2^32), got ${vocabSize}` })
    }
    if (!Number.isInteger(eosId) || eosId < 0 || eosId >= vocabSize) {
      return yield* new DataIoError({ path: outDir, reason: `eosId must be in [0, vocabSize), got ${eosId}` })
    }
    if (!Number.isSafeInteger(samples) || samples < 1 || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      return yield* new DataIoError({ path: outDir, reason: `samples must be a positive integer and seed an integer in [0, 2^32)` })
    }
    const rng = new Xoshiro128(seed)
    const maxLength = 2 * Math.max(1, seqLen)
    const documentStream = Stream.repeatEffect(
      Effect.sync(() => {
        const doc = new Uint32Array(1 + rng.below(maxLength))
        for (let i = 0; i < doc.length; i++) {
          const id = rng.below(vocabSize - 1)
          doc[i] = id >= eosId ? id + 1 : id
        }
        return doc
      }),
    )
    return yield* writeShards(documentStream, {
      outDir,
      tokenizer: { kind: "synthetic", seed },
      vocabSize,
      eosId,
      padId: null,
      seqLen,
      stopAfterSamples: samples,
      ...(options.shardTokens === undefined ? {} : { shardTokens: options.shardTokens }),
    })
  })
