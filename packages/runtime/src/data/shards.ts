/**
 * Random access to the samples of a prepared shard folder. Files are opened once per scope and
 * read at offsets, so fetching a few samples never loads a whole shard.
 */
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { open, readFile } from "node:fs/promises"
import type { FileHandle } from "node:fs/promises"
import { join } from "node:path"
import { NPY_PREFIX_BYTES, npyHeaderLength, parseNpyHeader } from "@covenant/gpu-webgpu"
import { Context, Effect, Either, Layer, Schema } from "effect"
import * as External from "../sim/external.ts"
import type { Scope } from "effect"
import { DataIoError, ManifestError, SampleOutOfRangeError, ShardCorruptError, describeCause } from "./errors.ts"
import { MANIFEST_FILE, Manifest } from "./manifest.ts"
import type { ShardEntry } from "./manifest.ts"

export type ShardReadError = SampleOutOfRangeError | ShardCorruptError | DataIoError

export interface ShardSet {
  readonly dir: string
  readonly manifest: Manifest
  readonly seqLen: number
  readonly totalSamples: number
  /** seqLen + 1 tokens: inputs are [0, seqLen), labels are [1, seqLen + 1). */
  readonly sample: (id: number) => Effect.Effect<Uint32Array, ShardReadError>
  /** Several samples back to back, `ids.length * (seqLen + 1)` tokens. */
  readonly samples: (ids: ArrayLike<number>) => Effect.Effect<Uint32Array, ShardReadError>
  /**
   * Starts reading these samples in the background (a peer asks for window w + 1 while it trains
   * w), so a later `samples` of them finds them ready; failures surface on that later read.
   */
  readonly prefetch: (ids: ArrayLike<number>) => Effect.Effect<void>
  /** What reading has cost so far. */
  readonly stats: () => ShardSetStats
  /** Every token of one shard (for checks and tools; training reads samples). */
  readonly shardTokens: (shardIndex: number) => Effect.Effect<Uint32Array, ShardCorruptError | DataIoError>
}

export interface ShardSetStats {
  /** Reads issued to the files or the store (ranged GETs, HEADs, whole reads). */
  readonly requests: number
  /** Bytes those reads returned. */
  readonly bytesRead: number
  /** Samples read from the files or the store (not from a cache). */
  readonly samplesFetched: number
  readonly diskHits: number
  readonly memoryHits: number
  /** Transient failures met (each retried while the retries and the deadline last). */
  readonly retries: number
  /** Bytes in the on-disk sample cache. */
  readonly cacheBytes: number
}

export interface OpenShardSetOptions {
  /** "size" (default) checks headers and file sizes; "sha256" also hashes every file. */
  readonly verify?: "size" | "sha256"
}

interface OpenShard {
  readonly entry: ShardEntry
  readonly tokens: FileHandle
  readonly tokensOffset: number
  readonly index: FileHandle
  readonly indexOffset: number
}

const corrupt = (file: string, reason: string) => new ShardCorruptError({ file, reason })

const readAt = (handle: FileHandle, file: string, position: number, length: number) =>
  External.tryPromise({
    try: async () => {
      const buffer = new Uint8Array(length)
      const { bytesRead } = await handle.read(buffer, 0, length, position)
      return { buffer, bytesRead }
    },
    catch: (cause) => new DataIoError({ path: file, reason: describeCause(cause) }),
  }).pipe(
    Effect.filterOrFail(
      ({ bytesRead }) => bytesRead === length,
      ({ bytesRead }) => corrupt(file, `short read: ${bytesRead} of ${length} bytes at offset ${position}`),
    ),
    Effect.map(({ buffer }) => buffer),
  )

const hashFile = (path: string) =>
  Effect.async<string, DataIoError>((resume) => {
    const hash = createHash("sha256")
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", (cause) => resume(Effect.fail(new DataIoError({ path, reason: describeCause(cause) }))))
      .on("end", () => resume(Effect.succeed(hash.digest("hex"))))
  })

/** Opens a file, checks its `.npy` header against the expected dtype/shape and its size; returns the data offset. */
const openChecked = (dir: string, name: string, shape: readonly number[], sha256: string, verify: "size" | "sha256") =>
  Effect.gen(function* () {
    const path = join(dir, name)
    const handle = yield* Effect.acquireRelease(
      External.tryPromise({
        try: () => open(path, "r"),
        catch: (cause) => corrupt(name, `cannot open: ${describeCause(cause)}`),
      }),
      (h) => External.promise(() => h.close()),
    )
    const size = yield* External.tryPromise({
      try: async () => (await handle.stat()).size,
      catch: (cause) => new DataIoError({ path, reason: describeCause(cause) }),
    })
    const prefix = yield* readAt(handle, name, 0, Math.min(NPY_PREFIX_BYTES, size))
    const headerLength = yield* Either.mapLeft(npyHeaderLength(prefix, name), (e) => corrupt(name, e.reason))
    const headerBytes = yield* readAt(handle, name, 0, Math.min(headerLength, size))
    const header = yield* Either.mapLeft(parseNpyHeader(headerBytes, name), (e) => corrupt(name, e.reason))
    if (header.dtype !== "<u4") return yield* corrupt(name, `dtype ${header.dtype}, expected <u4`)
    if (header.shape.join(",") !== shape.join(",")) {
      return yield* corrupt(name, `shape [${header.shape.join(", ")}], manifest says [${shape.join(", ")}]`)
    }
    const expectedSize = header.dataOffset + header.size * 4
    if (size !== expectedSize) return yield* corrupt(name, `file is ${size} bytes, header and manifest need ${expectedSize} (truncated or padded)`)
    if (verify === "sha256") {
      const digest = yield* hashFile(path)
      if (digest !== sha256) return yield* corrupt(name, `sha256 ${digest} does not match the manifest's ${sha256}`)
    }
    return { handle, dataOffset: header.dataOffset }
  })

/** Reads and decodes `manifest.json` of a shard folder. */
export const readManifest = (dir: string): Effect.Effect<Manifest, ManifestError> => {
  const file = join(dir, MANIFEST_FILE)
  return External.tryPromise({
    try: () => readFile(file, "utf-8"),
    catch: (cause) => new ManifestError({ file, reason: describeCause(cause) }),
  }).pipe(
    Effect.flatMap((text) => Schema.decodeUnknown(Schema.parseJson(Manifest))(text)),
    Effect.mapError((e) => (e._tag === "ManifestError" ? e : new ManifestError({ file, reason: e.message }))),
  )
}

/** Opens a shard folder for the life of the enclosing scope, checking every file against the manifest. */
export const openShardSet = (
  dir: string,
  options: OpenShardSetOptions = {},
): Effect.Effect<ShardSet, ManifestError | ShardCorruptError | DataIoError, Scope.Scope> =>
  Effect.gen(function* () {
    const manifest = yield* readManifest(dir)
    const verify = options.verify ?? "size"
    const { seqLen, totalSamples } = manifest
    const shards: OpenShard[] = []
    for (const entry of manifest.shards) {
      const tokens = yield* openChecked(dir, entry.file, [entry.tokens], entry.sha256, verify)
      const index = yield* openChecked(dir, entry.samplesFile, [entry.samples, 2], entry.samplesSha256, verify)
      shards.push({ entry, tokens: tokens.handle, tokensOffset: tokens.dataOffset, index: index.handle, indexOffset: index.dataOffset })
    }
    const firstSamples = shards.map((s) => s.entry.firstSample)

    /** The shard holding `id`: last shard whose firstSample <= id (and that has samples). */
    const shardOf = (id: number): OpenShard => {
      let lo = 0
      let hi = shards.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (firstSamples[mid] <= id) lo = mid
        else hi = mid - 1
      }
      // Shards with zero samples share their firstSample with the next one; step past them.
      while (shards[lo].entry.samples === 0 || id >= shards[lo].entry.firstSample + shards[lo].entry.samples) lo++
      return shards[lo]
    }

    const counters = { requests: 0, bytesRead: 0, samplesFetched: 0 }
    const sampleInto = (id: number, out: Uint32Array, at: number): Effect.Effect<void, ShardReadError> =>
      Effect.gen(function* () {
        counters.requests += 2
        counters.bytesRead += 8 + (seqLen + 1) * 4
        counters.samplesFetched++
        if (!Number.isInteger(id) || id < 0 || id >= totalSamples) return yield* new SampleOutOfRangeError({ id, totalSamples })
        const shard = shardOf(id)
        const { entry } = shard
        const local = id - entry.firstSample
        const row = new DataView((yield* readAt(shard.index, entry.samplesFile, shard.indexOffset + local * 8, 8)).buffer)
        const storedId = row.getUint32(0, true)
        const offset = row.getUint32(4, true)
        if (storedId !== id) return yield* corrupt(entry.samplesFile, `row ${local} holds sample id ${storedId}, expected ${id}`)
        if (offset + seqLen + 1 > entry.tokens) {
          return yield* corrupt(entry.samplesFile, `sample ${id} at token ${offset} runs past the shard's ${entry.tokens} tokens`)
        }
        const bytes = yield* readAt(shard.tokens, entry.file, shard.tokensOffset + offset * 4, (seqLen + 1) * 4)
        out.set(new Uint32Array(bytes.buffer), at)
      })

    const shardTokens = (shardIndex: number) =>
      Effect.gen(function* () {
        const shard = shards[shardIndex]
        if (shard === undefined) return yield* new DataIoError({ path: dir, reason: `no shard ${shardIndex}` })
        const bytes = yield* readAt(shard.tokens, shard.entry.file, shard.tokensOffset, shard.entry.tokens * 4)
        return new Uint32Array(bytes.buffer)
      })

    return {
      dir,
      manifest,
      seqLen,
      totalSamples,
      sample: (id) => {
        const out = new Uint32Array(seqLen + 1)
        return Effect.as(sampleInto(id, out, 0), out)
      },
      samples: (ids) => {
        const out = new Uint32Array(ids.length * (seqLen + 1))
        return Effect.as(
          Effect.forEach(Array.from({ length: ids.length }, (_, i) => i), (i) => sampleInto(ids[i], out, i * (seqLen + 1)), { discard: true, concurrency: 16 }),
          out,
        )
      },
      // Local files are read where they lie, at the page cache's speed: nothing to fetch ahead.
      prefetch: () => Effect.void,
      stats: () => ({ ...counters, diskHits: 0, memoryHits: 0, retries: 0, cacheBytes: 0 }),
      shardTokens,
    } satisfies ShardSet
  })

/** The run's dataset as a service, so loops ask for samples without knowing where they live. */
export class Shards extends Context.Tag("@covenant/runtime/Shards")<Shards, ShardSet>() {
  static readonly layer = (dir: string, options: OpenShardSetOptions = {}) => Layer.scoped(Shards, openShardSet(dir, options))
}

/** Label id the loss ignores (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100

export interface TrainingPair {
  readonly inputs: Int32Array
  /** inputs shifted by one; masked positions hold `IGNORE_INDEX`. */
  readonly labels: Int32Array
}

export interface LabelMaskOptions {
  readonly eosId: number
  readonly padId: number | null
  /**
   * Mask EOS labels too. The reference masks them (its pad token is its EOS token); keep them to
   * let a model learn where documents end.
   */
  readonly maskEos?: boolean
}

/** Splits a stored sample (seqLen + 1 tokens) into model inputs and masked next-token labels. */
export const trainingPair = (sample: Uint32Array, options: LabelMaskOptions): TrainingPair => {
  const seqLen = sample.length - 1
  const maskEos = options.maskEos ?? true
  const inputs = new Int32Array(seqLen)
  const labels = new Int32Array(seqLen)
  for (let i = 0; i < seqLen; i++) {
    inputs[i] = sample[i]
    const next = sample[i + 1]
    labels[i] = next === options.padId || (maskEos && next === options.eosId) ? IGNORE_INDEX : next
  }
  return { inputs, labels }
}
