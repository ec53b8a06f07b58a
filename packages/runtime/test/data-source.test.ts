/**
 * One conformance suite for every way of reading a shard folder (local files through file
 * handles, `openObjectShardSet` over a folder, and over a real S3 server on loopback), then what
 * only the object-store reader has: coalesced ranged reads of exactly the tokens needed, the
 * bounded disk cache, prefetch, retries and deadlines, typed errors naming shard and offset.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Context, Effect, Either, Exit, Layer, Option, Scope } from "effect"
import { decodeNpy, parseNpyHeader } from "@covenant/gpu-webgpu"
import { Unavailable, layerFileSystem, makeFileSystemTransport, makeS3Transport } from "@covenant/transport"
import type { TransportService } from "@covenant/transport"
import { debug } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { trainingBatches } from "../src/node/node.ts"
import { dataS3ConfigFromEnv } from "../src/swarm/data.ts"
import { LocalS3 } from "@covenant/transport/testing"
import {
  byteTokenizer,
  fileObjects,
  openObjectShardSet,
  openShardSet,
  prepareShards,
  Shards,
  readManifest,
  shardsFromTransport,
  transportObjects,
  transportSink,
  uploadShardFolder,
  windowSamples,
} from "../src/data/index.ts"
import type { Manifest, ObjectShardSetOptions, ShardObjects, ShardSet } from "../src/data/index.ts"

const CORPUS = join(import.meta.dir, "..", "corpus")
const SEQ = 64
const SHARD_TOKENS = 20_000
const SAMPLE_BYTES = (SEQ + 1) * 4
const work = mkdtempSync(join(tmpdir(), "covenant-data-source-"))
const dir = join(work, "shards")
const s3 = new LocalS3()
const BUCKET = "covenant-corpus"
let transport: TransportService
let scope: Scope.CloseableScope
/** Where the tokens start in every shard file (the .npy header length). */
let dataOffset = 0
/** Every token of every shard, decoded from the .npy files independently of both readers. */
let shardData: Uint32Array[] = []
let manifest: Manifest

beforeAll(async () => {
  await Effect.runPromise(prepareShards({ inputs: [CORPUS], outDir: dir, tokenizer: byteTokenizer, seqLen: SEQ, shardTokens: SHARD_TOKENS }))
  manifest = await Effect.runPromise(readManifest(dir))
  shardData = manifest.shards.map((s) => {
    const npy = Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(join(dir, s.file)))))
    return npy.data as Uint32Array
  })
  await s3.start()
  scope = await Effect.runPromise(Scope.make())
  transport = await Effect.runPromise(Scope.extend(makeS3Transport(s3.config()), scope))
  dataOffset = Either.getOrThrow(parseNpyHeader(new Uint8Array(readFileSync(join(dir, manifest.shards[0]!.file))))).dataOffset
  await Effect.runPromise(transport.ensureBucket({ bucket: BUCKET }))
  await Effect.runPromise(uploadShardFolder(dir, transportSink(transport, { bucket: BUCKET }, "corpus/")))
}, 120_000)

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await s3.dispose()
  rmSync(work, { recursive: true, force: true })
})

const expectedSample = (id: number): number[] => {
  const shard = manifest.shards.findIndex((s) => id >= s.firstSample && id < s.firstSample + s.samples)
  const local = id - manifest.shards[shard]!.firstSample
  return Array.from(shardData[shard]!.subarray(local * SEQ, local * SEQ + SEQ + 1))
}

const failureOf = (exit: Exit.Exit<unknown, unknown>): { _tag: string; [k: string]: unknown } | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const f = Cause.failureOption(exit.cause)
  return Option.isSome(f) ? (f.value as { _tag: string }) : { _tag: "defect", cause: Cause.pretty(exit.cause) }
}

interface Reader {
  readonly name: string
  /** Opens the set of the folder `d` (for S3: the same files uploaded under a prefix). */
  readonly open: (d: string) => Effect.Effect<ShardSet, unknown, Scope.Scope>
}

let uploads = 0
const s3Copy = (d: string) =>
  Effect.gen(function* () {
    const prefix = `copy${uploads++}/`
    // A folder without a manifest is uploaded file by file, so "manifest missing" can be tested too.
    const names = readdirSync(d)
    const sink = transportSink(transport, { bucket: BUCKET }, prefix)
    for (const name of names) yield* sink.write(name, new Uint8Array(readFileSync(join(d, name))))
    return prefix
  })

const readers: Reader[] = [
  { name: "local files (openShardSet)", open: (d) => openShardSet(d) },
  { name: "objects in a folder", open: (d) => openObjectShardSet(fileObjects(d)) },
  {
    name: "the Shards layer over the Transport's filesystem layer",
    open: (d) =>
      Effect.gen(function* () {
        const root = join(work, "fs-store")
        const prefix = `copy${uploads++}/`
        const fsTransport = makeFileSystemTransport(root)
        yield* fsTransport.ensureBucket({ bucket: "corpus-fs" })
        const sink = transportSink(fsTransport, { bucket: "corpus-fs" }, prefix)
        for (const name of readdirSync(d)) yield* sink.write(name, new Uint8Array(readFileSync(join(d, name))))
        const context = yield* Layer.build(shardsFromTransport({ bucket: "corpus-fs", prefix }).pipe(Layer.provide(layerFileSystem(root))))
        return Context.get(context, Shards)
      }),
  },
  {
    name: "objects in S3 (s3rver)",
    open: (d) => Effect.flatMap(s3Copy(d), (prefix) => openObjectShardSet(transportObjects(transport, { bucket: BUCKET }, prefix))),
  },
]

/** A sample read from the truncated shard, whichever way the reader notices it (at open or at read). */
const readAll = (set: ShardSet) => Effect.forEach(set.manifest.shards, (s) => set.sample(s.firstSample), { discard: true })

for (const reader of readers) {
  describe(`ShardSet conformance: ${reader.name}`, () => {
    const withSet = <A, E>(use: (set: ShardSet) => Effect.Effect<A, E>, d = dir) =>
      Effect.runPromise(Effect.scoped(Effect.flatMap(reader.open(d), use)) as Effect.Effect<A, never>)

    test("manifest, seqLen and totalSamples are the folder's", async () => {
      await withSet((set) =>
        Effect.sync(() => {
          expect(set.manifest).toEqual(manifest)
          expect(set.seqLen).toBe(SEQ)
          expect(set.totalSamples).toBe(manifest.totalSamples)
          expect(manifest.shards.length).toBeGreaterThan(3)
        }))
    })

    test("samples(ids) are the tokens at the documented offsets, in order, duplicates and shard edges included", async () => {
      await withSet((set) =>
        Effect.gen(function* () {
          const drawn = Either.getOrThrow(windowSamples(5, 17, { totalSamples: set.totalSamples, poolSize: 512, samplesPerWindow: 96 }))
          const edges = manifest.shards.slice(1).flatMap((s) => [s.firstSample - 1, s.firstSample])
          const ids = [...drawn, ...edges, drawn[0]!, 0, set.totalSamples - 1]
          const batch = yield* set.samples(ids)
          expect(batch.length).toBe(ids.length * (SEQ + 1))
          ids.forEach((id, i) => expect(Array.from(batch.subarray(i * (SEQ + 1), (i + 1) * (SEQ + 1)))).toEqual(expectedSample(id)))
          expect(Array.from(yield* set.sample(edges[0]!))).toEqual(expectedSample(edges[0]!))
        }))
    })

    test("prefetched samples read back the same", async () => {
      await withSet((set) =>
        Effect.gen(function* () {
          const ids = Either.getOrThrow(windowSamples(9, 3, { totalSamples: set.totalSamples, poolSize: 256, samplesPerWindow: 40 }))
          yield* set.prefetch(ids)
          const batch = yield* set.samples(ids)
          ids.forEach((id, i) => expect(Array.from(batch.subarray(i * (SEQ + 1), (i + 1) * (SEQ + 1)))).toEqual(expectedSample(id)))
          expect(set.stats().bytesRead).toBeGreaterThanOrEqual(ids.length * SAMPLE_BYTES - (ids.length - 1) * 4)
        }))
    })

    test("shardTokens(i) is the whole shard", async () => {
      await withSet((set) =>
        Effect.gen(function* () {
          for (const i of [0, manifest.shards.length - 1]) expect(Array.from(yield* set.shardTokens(i))).toEqual(Array.from(shardData[i]!))
        }))
    })

    test("ids outside [0, totalSamples) fail with SampleOutOfRangeError", async () => {
      for (const id of [-1, 1.5, manifest.totalSamples]) {
        const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(reader.open(dir), (set) => set.samples([0, id]))))
        expect(failureOf(exit)?._tag).toBe("SampleOutOfRangeError")
      }
    })

    test("a truncated shard is a ShardCorruptError naming it", async () => {
      const bad = join(work, `truncated-${readers.indexOf(reader)}`)
      cpSync(dir, bad, { recursive: true })
      const victim = manifest.shards[2]!.file
      truncateSync(join(bad, victim), 1000)
      const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(reader.open(bad), readAll)))
      const e = failureOf(exit)
      expect(e?._tag).toBe("ShardCorruptError")
      expect(String(e?.["file"])).toContain(victim)
      expect(String(e?.["reason"])).toContain("truncated")
    })

    test("a folder without a manifest is a ManifestError", async () => {
      const bad = join(work, `nomanifest-${readers.indexOf(reader)}`)
      cpSync(dir, bad, { recursive: true })
      unlinkSync(join(bad, "manifest.json"))
      const exit = await Effect.runPromiseExit(Effect.scoped(reader.open(bad)))
      expect(failureOf(exit)?._tag).toBe("ManifestError")
    })
  })
}

describe("object-store reads", () => {
  const s3Objects = () => transportObjects(transport, { bucket: BUCKET }, "corpus/")
  const openS3 = (options: ObjectShardSetOptions = {}, objects: ShardObjects = s3Objects()) => openObjectShardSet(objects, options)

  test("neighbouring samples are one ranged GET of exactly their tokens; far ones are separate GETs", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openS3()
      const first = manifest.shards[1]!.firstSample
      yield* set.sample(first) // loads shard 1's header and index
      const before = set.stats()
      const run = Array.from({ length: 10 }, (_, i) => first + 20 + i)
      const got = yield* set.samples([...run].reverse())
      const after = set.stats()
      expect(after.requests - before.requests).toBe(1)
      // Consecutive samples share one token: 10 samples of 65 tokens span 10 * 64 + 1 tokens.
      expect(after.bytesRead - before.bytesRead).toBe((10 * SEQ + 1) * 4)
      expect(Array.from(got.subarray(0, SEQ + 1))).toEqual(expectedSample(run[9]!))
      const apart = [first + 100, first + 150]
      yield* set.samples(apart)
      const last = set.stats()
      expect(last.requests - after.requests).toBe(2)
      expect(last.bytesRead - after.bytesRead).toBe(2 * SAMPLE_BYTES)
    })))
  })

  test("the disk cache serves a restarted reader without store reads and stays within its bound", async () => {
    const cacheDir = join(work, "cache")
    const ids = Array.from({ length: 30 }, (_, i) => i * 7)
    const bound = 12 * SAMPLE_BYTES
    const first = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openS3({ cache: { dir: cacheDir, maxBytes: bound } })
      yield* set.samples(ids)
      return set.stats()
    })))
    expect(first.cacheBytes).toBeLessThanOrEqual(bound)
    expect(first.cacheBytes).toBe(12 * SAMPLE_BYTES)
    const kept = ids.slice(-12)
    const second = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openS3({ cache: { dir: cacheDir, maxBytes: bound }, memoryBytes: 0 })
      const got = yield* set.samples(kept)
      kept.forEach((id, i) => expect(Array.from(got.subarray(i * (SEQ + 1), (i + 1) * (SEQ + 1)))).toEqual(expectedSample(id)))
      return set.stats()
    })))
    expect(second.diskHits).toBe(12)
    expect(second.samplesFetched).toBe(0)
    // Only the manifest was read from the store.
    expect(second.requests).toBe(1)
  })

  test("prefetch fetches in the background; the later read makes no request", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openS3()
      const ids = Either.getOrThrow(windowSamples(3, 44, { totalSamples: set.totalSamples, poolSize: 300, samplesPerWindow: 50 }))
      yield* set.prefetch(ids)
      for (let i = 0; i < 500 && set.stats().samplesFetched < ids.length; i++) yield* Effect.sleep("10 millis")
      expect(set.stats().samplesFetched).toBe(ids.length)
      const before = set.stats().requests
      const got = yield* set.samples(ids)
      expect(set.stats().requests).toBe(before)
      expect(Array.from(got.subarray(0, SEQ + 1))).toEqual(expectedSample(ids[0]!))
    })))
  })

  test("back-to-back reads of overlapping windows, nothing kept in memory, all succeed", async () => {
    // Regression: a finished read's clean-up once failed the next read's request for a shared id.
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openObjectShardSet(fileObjects(dir), { memoryBytes: 0 })
      for (let w = 0; w < 12; w++) {
        const ids = Either.getOrThrow(windowSamples(1, w, { totalSamples: set.totalSamples, poolSize: 80, samplesPerWindow: 60 }))
        const got = yield* set.samples(ids)
        expect(Array.from(got.subarray(0, SEQ + 1))).toEqual(expectedSample(ids[0]!))
      }
    })))
  })

  test("a read with one bad id fails typed and leaves the good ids readable", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openObjectShardSet(fileObjects(dir))
      const bad = yield* Effect.either(set.samples([11, 12, -3]))
      expect(Either.isLeft(bad) && bad.left._tag).toBe("SampleOutOfRangeError")
      const good = yield* set.samples([11, 12]).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "stranded" as const }))
      expect(Array.from(good.subarray(0, SEQ + 1))).toEqual(expectedSample(11))
    })))
  })

  /** The S3 objects, with the first `failures` ranged reads of token files failing as `how`. */
  const flaky = (failures: number, how: "transient" | "permanent" | "hang"): ShardObjects => {
    const inner = s3Objects()
    let left = failures
    return {
      ...inner,
      readRange: (name, offset, length) =>
        Effect.suspend(() => {
          if (offset === 0 || left <= 0) return inner.readRange(name, offset, length)
          left--
          if (how === "hang") return Effect.never
          return Effect.fail(new Unavailable({ bucket: BUCKET, key: name, transient: how === "transient", reason: "injected" }))
        }),
    }
  }

  test("transient failures are retried", async () => {
    const stats = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const set = yield* openS3({ retries: 4 }, flaky(3, "transient"))
      const got = yield* set.sample(500)
      expect(Array.from(got)).toEqual(expectedSample(500))
      return set.stats()
    })))
    expect(stats.retries).toBe(3)
  })

  test("a permanent failure is a DataIoError naming the shard and byte offset", async () => {
    const id = manifest.shards[3]!.firstSample + 5
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(openS3({}, flaky(1, "permanent")), (set) => set.sample(id))))
    const e = failureOf(exit)
    expect(e?._tag).toBe("DataIoError")
    expect(String(e?.["path"])).toContain(manifest.shards[3]!.file)
    expect(String(e?.["reason"])).toContain(`at byte ${dataOffset + 5 * SEQ * 4}`)
  })

  test("a GET that never answers times out, is retried, and the read fails by its deadline", async () => {
    const t0 = performance.now()
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(
      openS3({ requestTimeoutMs: 50, retries: 100, deadlineMs: 600 }, flaky(1_000, "hang")),
      (set) => set.sample(10),
    )))
    const elapsed = performance.now() - t0
    expect(failureOf(exit)?._tag).toBe("DataIoError")
    expect(String(failureOf(exit)?.["reason"])).toContain("deadline")
    expect(elapsed).toBeLessThan(5_000)
  })

  test("a shard shorter than its reads is a ShardCorruptError with the offset", async () => {
    // The object is swapped for a shorter one after the reader checked its size.
    const inner = s3Objects()
    const cut = (name: string, offset: number, length: number) => Effect.map(inner.readRange(name, offset, length), (b) => (offset === 0 ? b : b.subarray(0, 10)))
    const id = manifest.shards[0]!.firstSample + 3
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(openS3({}, { ...inner, readRange: cut }), (set) => set.sample(id))))
    const e = failureOf(exit)
    expect(e?._tag).toBe("ShardCorruptError")
    expect(String(e?.["file"])).toContain(manifest.shards[0]!.file)
    expect(e?.["offset"]).toBe(dataOffset + 3 * SEQ * 4 + 10)
  })
})

describe("a window's data through either source", () => {
  test("peers and validators get the same scheduled batches and digests from S3 as from local files", async () => {
    const base = debug()
    expect(base.model.seqLen).toBe(SEQ)
    const spec: RunSpec = { ...base, data: { ...base.data, schedule: { kind: "rotate", liveShards: 2, everyOuterSteps: 3 } } }
    const start = 40
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const local = yield* openShardSet(dir)
      const remote = yield* openObjectShardSet(transportObjects(transport, { bucket: BUCKET }, "corpus/"))
      const { batchSize, innerSteps } = spec.innerOptimizer
      for (const uid of [0, 1, 7]) {
        for (const window of [start, start + 1, start + 3, start + 7]) {
          const a = yield* trainingBatches(local, spec, uid, window, start)
          const b = yield* trainingBatches(remote, spec, uid, window, start)
          expect(b.digest).toBe(a.digest)
          expect(b.batches.map((x) => Array.from(x))).toEqual(a.batches.map((x) => Array.from(x)))
          expect(a.batches.length).toBe(innerSteps)
          expect(a.batches[0]!.length).toBe(batchSize * (SEQ + 1))
          // Every sample comes from one of the two shards live in this window's period of 3 outer steps.
          const period = Math.floor((window - start) / 3)
          const live = [(2 * period) % manifest.shards.length, (2 * period + 1) % manifest.shards.length]
          for (const batch of a.batches) {
            for (let r = 0; r < batchSize; r++) {
              const sample = batch.subarray(r * (SEQ + 1), (r + 1) * (SEQ + 1))
              const inLive = live.some((i) => {
                const t = shardData[i]!
                for (let j = 0; j < manifest.shards[i]!.samples; j++) {
                  if (t[j * SEQ] === sample[0] && t[j * SEQ + 1] === sample[1] && t[j * SEQ + SEQ] === sample[SEQ]) return true
                }
                return false
              })
              expect(inLive).toBe(true)
            }
          }
        }
      }
    })))
  }, 60_000)
})

describe("dataS3ConfigFromEnv", () => {
  test("DATA_S3_* (the corpus' keys) win over the node's S3_*; without an endpoint and keys there is none", () => {
    const node = { S3_ENDPOINT: "https://node.example", S3_ACCESS_KEY_ID: "nk", S3_SECRET_ACCESS_KEY: "ns" }
    expect(dataS3ConfigFromEnv(node)).toEqual({ endpoint: "https://node.example", region: "auto", accessKeyId: "nk", secretAccessKey: "ns", forcePathStyle: true })
    expect(dataS3ConfigFromEnv({ ...node, DATA_S3_ENDPOINT: "https://corpus.example", DATA_S3_ACCESS_KEY_ID: "ck", DATA_S3_REGION: "eu", DATA_S3_FORCE_PATH_STYLE: "false" }))
      .toEqual({ endpoint: "https://corpus.example", region: "eu", accessKeyId: "ck", secretAccessKey: "ns", forcePathStyle: false })
    expect(dataS3ConfigFromEnv({})).toBeUndefined()
    expect(dataS3ConfigFromEnv({ DATA_S3_ENDPOINT: "https://corpus.example" })).toBeUndefined()
  })
})
