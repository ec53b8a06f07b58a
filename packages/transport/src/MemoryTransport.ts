/**
 * An in-memory store for simulations: buckets are maps in this process, and an object's store
 * time is Effect's Clock at the moment it was put, so under a simulated clock (TestClock or the
 * runtime's simulator) uploads are stamped in simulated time and a run is reproducible.
 * Observably the same store as the filesystem and S3 layers (keys, listings, error tags), like S3
 * in that "a" and "a/b" can both exist.
 */
import { Chunk, Clock, Effect, Either, Layer, Stream } from "effect"
import { InvalidRange, NotFound, TooLarge } from "./errors.ts"
import { validateBucket, validateKey, validatePrefix } from "./keys.ts"
import { Transport } from "./Transport.ts"
import type { BucketLocation, ObjectInfo, ReadOptions, StoredObject, TransportService } from "./Transport.ts"

interface Entry {
  readonly bytes: Uint8Array
  readonly storeTime: number
}

const fromEither = <A, E>(e: Either.Either<A, E>): Effect.Effect<A, E> => (Either.isRight(e) ? Effect.succeed(e.right) : Effect.fail(e.left))

/** A fresh, empty in-memory store (each call its own). */
export const makeMemoryTransport = (): TransportService => {
  const buckets = new Map<string, Map<string, Entry>>()

  const bucketOf = (at: BucketLocation, key: string) =>
    Effect.flatMap(fromEither(validateBucket(at.bucket)), (name) => {
      const b = buckets.get(name)
      return b === undefined ? Effect.fail(new NotFound({ bucket: at.bucket, key })) : Effect.succeed(b)
    })

  const entryOf = (at: BucketLocation, key: string) =>
    Effect.gen(function* () {
      yield* fromEither(validateBucket(at.bucket))
      yield* fromEither(validateKey(key))
      const e = buckets.get(at.bucket)?.get(key)
      return e === undefined ? yield* new NotFound({ bucket: at.bucket, key }) : e
    })

  const infoOf = (key: string, e: Entry): ObjectInfo => ({ key, size: e.bytes.length, storeTime: e.storeTime })

  const put = (at: BucketLocation, key: string, bytes: Uint8Array) =>
    Effect.gen(function* () {
      yield* fromEither(validateKey(key))
      const b = yield* bucketOf(at, key)
      const entry = { bytes: bytes.slice(), storeTime: yield* Clock.currentTimeMillis }
      b.set(key, entry)
      return infoOf(key, entry)
    })

  const getWithInfo = (at: BucketLocation, key: string, options?: ReadOptions) =>
    Effect.flatMap(entryOf(at, key), (e): Effect.Effect<StoredObject, TooLarge> => {
      const max = options?.maxBytes
      if (max !== undefined && e.bytes.length > max) return Effect.fail(new TooLarge({ bucket: at.bucket, key, size: e.bytes.length, maxBytes: max }))
      return Effect.succeed({ bytes: e.bytes.slice(), info: infoOf(key, e) })
    })

  return {
    timeResolutionMs: 1,
    ensureBucket: (at) =>
      Effect.map(fromEither(validateBucket(at.bucket)), (name) => {
        if (!buckets.has(name)) buckets.set(name, new Map())
      }),
    put,
    putStream: (at, key, body) =>
      Effect.flatMap(Stream.runCollect(body), (chunks) => {
        const parts = Chunk.toReadonlyArray(chunks)
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
        let o = 0
        for (const p of parts) {
          out.set(p, o)
          o += p.length
        }
        return put(at, key, out)
      }),
    get: (at, key, options) => Effect.map(getWithInfo(at, key, options), (o) => o.bytes),
    getWithInfo,
    getRange: (at, key, range) =>
      Effect.flatMap(entryOf(at, key), (e) => {
        const size = e.bytes.length
        if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0 || (range.offset >= size && range.length > 0) || range.offset > size) {
          return Effect.fail(new InvalidRange({ bucket: at.bucket, key, offset: range.offset, length: range.length, size }))
        }
        return Effect.succeed(e.bytes.slice(range.offset, range.offset + Math.min(range.length, size - range.offset)))
      }),
    getStream: (at, key) => Stream.unwrap(Effect.map(entryOf(at, key), (e) => Stream.make(e.bytes.slice()))),
    head: (at, key) => Effect.map(entryOf(at, key), (e) => infoOf(key, e)),
    list: (at, prefix) =>
      Effect.gen(function* () {
        yield* fromEither(validatePrefix(prefix))
        const b = yield* bucketOf(at, "")
        return [...b].filter(([k]) => k.startsWith(prefix)).sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0)).map(([k, e]) => infoOf(k, e))
      }),
    delete: (at, key) =>
      Effect.gen(function* () {
        yield* fromEither(validateBucket(at.bucket))
        yield* fromEither(validateKey(key))
        buckets.get(at.bucket)?.delete(key)
      }),
  }
}

/** A fresh in-memory store as a layer (one store per build of the layer). */
export const layerMemory = (): Layer.Layer<Transport> => Layer.sync(Transport, makeMemoryTransport)
