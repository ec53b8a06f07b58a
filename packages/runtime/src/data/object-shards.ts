/**
 * A `ShardSet` over `ShardObjects` (object storage or a folder), for corpora too large to copy to
 * every node. The manifest is read and decoded at open; a shard is touched only when one of its
 * samples is asked for (HEAD for its size, one ranged GET for its `.npy` header, its sample index
 * whole). Samples are read with ranged GETs of exactly their tokens, neighbours in one shard merged
 * into one GET; each GET has a timeout, transient failures are retried with backoff, and the whole
 * read has a deadline. Samples land in a small memory LRU and a bounded on-disk LRU cache, and
 * `prefetch` fetches a window's samples in the background so `samples` finds them there.
 */
import { createHash } from "node:crypto"
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { NPY_PREFIX_BYTES, npyHeaderLength, parseNpyHeader } from "@covenant/gpu-webgpu"
import type { NpyHeader } from "@covenant/gpu-webgpu"
import { Deferred, Duration, Effect, Either, Exit, FiberId, Layer, Schedule, Schema } from "effect"
import * as External from "../sim/external.ts"
import type { Scope } from "effect"
import { Transport, Unavailable, isTransient } from "@covenant/transport"
import type { StoreError } from "@covenant/transport"
import { DataIoError, ManifestError, SampleOutOfRangeError, ShardCorruptError, describeCause } from "./errors.ts"
import { MANIFEST_FILE, Manifest } from "./manifest.ts"
import { transportObjects } from "./objects.ts"
import type { ShardLocation, ShardObjects } from "./objects.ts"
import { Shards } from "./shards.ts"
import type { ShardReadError, ShardSet } from "./shards.ts"

export interface ObjectShardSetOptions {
  /** "size" (default) checks each shard's header and size when first touched and hashes its sample index; "sha256" also hashes every token file (reading it whole). */
  readonly verify?: "size" | "sha256"
  /** Bounded on-disk cache of samples read; absent or maxBytes 0: none. */
  readonly cache?: { readonly dir: string; readonly maxBytes: number }
  /** Memory LRU of samples (prefetched samples wait here; default 256 MiB). */
  readonly memoryBytes?: number
  /** One GET is abandoned after this long (default 30 s) and retried when retries are left. */
  readonly requestTimeoutMs?: number
  /** Retries of a GET that failed transiently or timed out (default 4, jittered exponential backoff from 50 ms). */
  readonly retries?: number
  /** A whole read, retries included, fails after this long (default 120 s). */
  readonly deadlineMs?: number
  /** Ranged GETs in flight at once (default 16). */
  readonly concurrency?: number
  /** Neighbouring samples are merged into GETs of at most this many bytes (default 8 MiB). */
  readonly maxRangeBytes?: number
}

interface ShardMeta {
  readonly dataOffset: number
  /** Where the sample index's rows start in its file. */
  readonly indexOffset: number
  /** [samples, 2] rows of (global id, token offset). */
  readonly rows: Uint32Array
}

type LoadError = ShardCorruptError | DataIoError

/** A memo of effects by key: concurrent callers share one run; a failure is forgotten so a later call retries. */
const memo = <K, A, E>() => {
  const running = new Map<K, Deferred.Deferred<A, E>>()
  return (key: K, run: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const existing = running.get(key)
      if (existing !== undefined) return Deferred.await(existing)
      const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
      running.set(key, deferred)
      return Effect.flatMap(Effect.exit(run), (exit) => {
        if (Exit.isFailure(exit)) running.delete(key)
        return Effect.zipRight(Deferred.done(deferred, exit), exit)
      })
    })
}

/** Least-recently-used map with a byte budget. */
class Lru<V extends { readonly byteLength: number }> {
  private readonly entries = new Map<number, V>()
  private bytes = 0
  constructor(private readonly maxBytes: number) {}
  get(key: number): V | undefined {
    const v = this.entries.get(key)
    if (v !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, v)
    }
    return v
  }
  set(key: number, value: V): void {
    if (value.byteLength > this.maxBytes) return
    const old = this.entries.get(key)
    if (old !== undefined) this.bytes -= old.byteLength
    this.entries.delete(key)
    this.entries.set(key, value)
    this.bytes += value.byteLength
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break
      this.entries.delete(k)
      this.bytes -= v.byteLength
    }
  }
}

/**
 * Samples on disk, one file per sample (`<id>.u32`), least recently used evicted past `maxBytes`.
 * Entries already in the folder (a restarted node) are adopted in modification-time order.
 */
const openDiskCache = (dir: string, maxBytes: number, sampleBytes: number) =>
  Effect.gen(function* () {
    const io = <A>(run: () => Promise<A>) => External.tryPromise({ try: run, catch: (cause) => new DataIoError({ path: dir, reason: describeCause(cause) }) })
    yield* io(() => mkdir(dir, { recursive: true }))
    const entries = new Map<number, number>() // id -> bytes, in LRU order
    let total = 0
    const found = yield* io(async () => {
      const names = (await readdir(dir)).filter((n) => /^[0-9]+\.u32$/.test(n))
      const infos = await Promise.all(names.map(async (n) => ({ id: Number(n.slice(0, -4)), s: await stat(join(dir, n)) })))
      return infos.sort((a, b) => a.s.mtimeMs - b.s.mtimeMs).map(({ id, s }) => ({ id, size: s.size }))
    })
    const fileOf = (id: number) => join(dir, `${id}.u32`)
    const evict = External.promise(async () => {
      for (const [id, size] of entries) {
        if (total <= maxBytes) break
        entries.delete(id)
        total -= size
        await unlink(fileOf(id)).catch(() => undefined)
      }
    })
    for (const { id, size } of found) {
      entries.set(id, size)
      total += size
    }
    yield* evict
    return {
      bytes: () => total,
      get: (id: number): Effect.Effect<Uint32Array | undefined> =>
        Effect.suspend(() => {
          if (!entries.has(id)) return Effect.succeed(undefined)
          return External.promise(async () => {
            const size = entries.get(id)!
            entries.delete(id)
            try {
              const b = await readFile(fileOf(id))
              if (b.byteLength !== sampleBytes) throw new Error("wrong size")
              entries.set(id, size)
              return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
            } catch {
              total -= size
              await unlink(fileOf(id)).catch(() => undefined)
              return undefined
            }
          })
        }),
      put: (id: number, sample: Uint32Array): Effect.Effect<void> =>
        Effect.suspend(() => {
          if (sample.byteLength > maxBytes || entries.has(id)) return Effect.void
          return External.promise(async () => {
            const tmp = `${fileOf(id)}.${process.pid}.tmp`
            try {
              await writeFile(tmp, new Uint8Array(sample.buffer, sample.byteOffset, sample.byteLength))
              await rename(tmp, fileOf(id))
              entries.set(id, sample.byteLength)
              total += sample.byteLength
            } catch {
              await unlink(tmp).catch(() => undefined)
            }
          }).pipe(Effect.zipRight(evict))
        }),
    }
  })

/** Opens the shard set under `objects` for the life of the enclosing scope (background prefetches end with it). */
export const openObjectShardSet = (
  objects: ShardObjects,
  options: ObjectShardSetOptions = {},
): Effect.Effect<ShardSet, ManifestError | DataIoError, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const requestTimeout = Duration.millis(options.requestTimeoutMs ?? 30_000)
    const deadline = Duration.millis(options.deadlineMs ?? 120_000)
    const retries = options.retries ?? 4
    const concurrency = options.concurrency ?? 16
    const maxRangeBytes = options.maxRangeBytes ?? 8 * 1024 * 1024
    const verify = options.verify ?? "size"
    const counters = { requests: 0, bytesRead: 0, samplesFetched: 0, diskHits: 0, memoryHits: 0, retries: 0 }
    const where = (name: string) => `${objects.uri.replace(/\/$/, "")}/${name}`

    /** One store call with a per-attempt timeout, retries of transient failures, and an overall deadline. */
    const robust = <A>(name: string, offset: number, call: Effect.Effect<A, StoreError>, bytesOf: (a: A) => number): Effect.Effect<A, LoadError> =>
      Effect.suspend(() => {
        counters.requests++
        return call
      }).pipe(
        Effect.timeoutFail({ duration: requestTimeout, onTimeout: () => new Unavailable({ bucket: "", key: name, transient: true, reason: `no answer within ${Duration.toMillis(requestTimeout)} ms` }) }),
        Effect.tapError((e) => Effect.sync(() => { if (isTransient(e)) counters.retries++ })),
        // Jittered, so the nodes of a run that all met the same hiccup do not retry in lockstep.
        Effect.retry({ schedule: Schedule.jittered(Schedule.exponential(Duration.millis(50))), times: retries, while: isTransient }),
        Effect.timeoutFail({ duration: deadline, onTimeout: () => new Unavailable({ bucket: "", key: name, transient: true, reason: `gave up after the ${Duration.toMillis(deadline)} ms deadline` }) }),
        Effect.tap((a) => Effect.sync(() => { counters.bytesRead += bytesOf(a) })),
        Effect.mapError((e): LoadError => {
          switch (e._tag) {
            case "NotFound":
              return new ShardCorruptError({ file: where(name), reason: "missing from the store", offset })
            case "InvalidRange":
              return new ShardCorruptError({ file: where(name), reason: `short shard: it ends at byte ${e.size}, before offset ${offset}`, offset })
            default:
              return new DataIoError({ path: where(name), reason: `${e._tag} at byte ${offset}: ${"reason" in e ? e.reason : ""}` })
          }
        }),
      )

    const manifestText = yield* robust(MANIFEST_FILE, 0, objects.read(MANIFEST_FILE), (b) => b.byteLength).pipe(
      Effect.mapError((e) => new ManifestError({ file: where(MANIFEST_FILE), reason: e.reason })),
      Effect.map((b) => new TextDecoder().decode(b)),
    )
    const manifest = yield* Schema.decodeUnknown(Schema.parseJson(Manifest))(manifestText).pipe(
      Effect.mapError((e) => new ManifestError({ file: where(MANIFEST_FILE), reason: e.message })),
    )
    const { seqLen, totalSamples } = manifest
    const row = seqLen + 1
    const sampleBytes = row * 4
    const memory = new Lru<Uint32Array>(options.memoryBytes ?? 256 * 1024 * 1024)
    const corpusId = createHash("sha256").update(manifestText).digest("hex").slice(0, 16)
    const disk = options.cache === undefined || options.cache.maxBytes < sampleBytes
      ? undefined
      : yield* openDiskCache(join(options.cache.dir, corpusId), options.cache.maxBytes, sampleBytes)

    const corrupt = (file: string, reason: string, offset?: number) =>
      new ShardCorruptError({ file: where(file), reason, ...(offset === undefined ? {} : { offset }) })

    const checkedHeader = (name: string, bytes: Uint8Array, shape: readonly number[]): Either.Either<NpyHeader, ShardCorruptError> =>
      Either.flatMap(
        Either.mapLeft(parseNpyHeader(bytes, name), (e) => corrupt(name, e.reason, 0)),
        (header): Either.Either<NpyHeader, ShardCorruptError> => {
          if (header.dtype !== "<u4") return Either.left(corrupt(name, `dtype ${header.dtype}, expected <u4`, 0))
          if (header.shape.join(",") !== shape.join(",")) return Either.left(corrupt(name, `shape [${header.shape.join(", ")}], manifest says [${shape.join(", ")}]`, 0))
          return Either.right(header)
        },
      )

    const loadShard = (index: number): Effect.Effect<ShardMeta, LoadError> =>
      Effect.gen(function* () {
        const entry = manifest.shards[index]!
        const size = yield* robust(entry.file, 0, objects.size(entry.file), () => 0)
        let head = yield* robust(entry.file, 0, objects.readRange(entry.file, 0, 256), (b) => b.byteLength)
        const headerLength = yield* Either.mapLeft(npyHeaderLength(head.subarray(0, NPY_PREFIX_BYTES), entry.file), (e) => corrupt(entry.file, e.reason, 0))
        if (headerLength > head.byteLength && headerLength <= size) {
          head = yield* robust(entry.file, 0, objects.readRange(entry.file, 0, headerLength), (b) => b.byteLength)
        }
        const header = yield* checkedHeader(entry.file, head, [entry.tokens])
        const expected = header.dataOffset + entry.tokens * 4
        if (size !== expected) return yield* corrupt(entry.file, `object is ${size} bytes, header and manifest need ${expected} (truncated or padded)`, Math.min(size, expected))
        if (verify === "sha256") {
          const all = yield* robust(entry.file, 0, objects.read(entry.file), (b) => b.byteLength)
          const digest = createHash("sha256").update(all).digest("hex")
          if (digest !== entry.sha256) return yield* corrupt(entry.file, `sha256 ${digest} does not match the manifest's ${entry.sha256}`)
        }
        // The sample index is small (8 bytes a sample): read it whole and check its hash.
        const indexBytes = yield* robust(entry.samplesFile, 0, objects.read(entry.samplesFile), (b) => b.byteLength)
        const indexDigest = createHash("sha256").update(indexBytes).digest("hex")
        if (indexDigest !== entry.samplesSha256) return yield* corrupt(entry.samplesFile, `sha256 ${indexDigest} does not match the manifest's ${entry.samplesSha256}`)
        const indexHeader = yield* checkedHeader(entry.samplesFile, indexBytes, [entry.samples, 2])
        if (indexBytes.byteLength !== indexHeader.dataOffset + entry.samples * 8) {
          return yield* corrupt(entry.samplesFile, `object is ${indexBytes.byteLength} bytes, header and manifest need ${indexHeader.dataOffset + entry.samples * 8}`, indexBytes.byteLength)
        }
        const rows = new Uint32Array(indexBytes.slice(indexHeader.dataOffset).buffer)
        return { dataOffset: header.dataOffset, indexOffset: indexHeader.dataOffset, rows }
      })
    const shardMeta = memo<number, ShardMeta, LoadError>()
    const metaOf = (index: number) => shardMeta(index, loadShard(index))

    const firstSamples = manifest.shards.map((s) => s.firstSample)
    const shardOf = (id: number): number => {
      let lo = 0
      let hi = firstSamples.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (firstSamples[mid]! <= id) lo = mid
        else hi = mid - 1
      }
      while (manifest.shards[lo]!.samples === 0 || id >= manifest.shards[lo]!.firstSample + manifest.shards[lo]!.samples) lo++
      return lo
    }

    /** Reads the given (not cached) samples of one shard: neighbours merged into single ranged GETs. */
    const fetchShard = (index: number, ids: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<readonly [number, Uint32Array]>, LoadError> =>
      Effect.gen(function* () {
        const entry = manifest.shards[index]!
        const meta = yield* metaOf(index)
        const wanted = ids.map((id) => {
          const local = id - entry.firstSample
          return { id, local, storedId: meta.rows[2 * local]!, offset: meta.rows[2 * local + 1]! }
        })
        for (const w of wanted) {
          if (w.storedId !== w.id) return yield* corrupt(entry.samplesFile, `row ${w.local} holds sample id ${w.storedId}, expected ${w.id}`, meta.indexOffset + 8 * w.local)
          if (w.offset + row > entry.tokens) return yield* corrupt(entry.samplesFile, `sample ${w.id} at token ${w.offset} runs past the shard's ${entry.tokens} tokens`)
        }
        wanted.sort((a, b) => a.offset - b.offset)
        const ranges: Array<{ start: number; end: number; members: typeof wanted }> = []
        for (const w of wanted) {
          const start = meta.dataOffset + w.offset * 4
          const end = start + sampleBytes
          const last = ranges[ranges.length - 1]
          if (last !== undefined && start <= last.end && Math.max(end, last.end) - last.start <= maxRangeBytes) {
            last.end = Math.max(last.end, end)
            last.members.push(w)
          } else ranges.push({ start, end, members: [w] })
        }
        const parts = yield* Effect.forEach(ranges, (r) =>
          Effect.gen(function* () {
            const bytes = yield* robust(entry.file, r.start, objects.readRange(entry.file, r.start, r.end - r.start), (b) => b.byteLength)
            if (bytes.byteLength < r.end - r.start) {
              return yield* corrupt(entry.file, `short read: ${bytes.byteLength} of ${r.end - r.start} bytes at offset ${r.start}`, r.start + bytes.byteLength)
            }
            return r.members.map((w) => {
              const at = meta.dataOffset + w.offset * 4 - r.start
              return [w.id, new Uint32Array(bytes.slice(at, at + sampleBytes).buffer)] as const
            })
          }), { concurrency })
        return parts.flat()
      })

    const inflight = new Map<number, Deferred.Deferred<Uint32Array, ShardReadError>>()

    /** Makes every id available (memory, disk or store), sharing reads already in flight; returns them by id. */
    const gather = (ids: ArrayLike<number>): Effect.Effect<Map<number, Uint32Array>, ShardReadError> =>
      Effect.gen(function* () {
        const out = new Map<number, Uint32Array>()
        const waiting: Array<readonly [number, Deferred.Deferred<Uint32Array, ShardReadError>]> = []
        const mine = new Map<number, Deferred.Deferred<Uint32Array, ShardReadError>>()
        // Every id is checked before any is registered as in flight: a bad id must not strand good ones.
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!
          if (!Number.isInteger(id) || id < 0 || id >= totalSamples) return yield* new SampleOutOfRangeError({ id, totalSamples })
        }
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!
          if (out.has(id)) continue
          const hit = memory.get(id)
          if (hit !== undefined) {
            counters.memoryHits++
            out.set(id, hit)
            continue
          }
          const pending = inflight.get(id)
          if (pending !== undefined) {
            waiting.push([id, pending])
            continue
          }
          const deferred = Deferred.unsafeMake<Uint32Array, ShardReadError>(FiberId.none)
          inflight.set(id, deferred)
          waiting.push([id, deferred])
          mine.set(id, deferred)
        }
        /** Settles one of this read's own samples (a later read may have registered the same id anew). */
        const settle = (id: number, exit: Exit.Exit<Uint32Array, ShardReadError>) =>
          Effect.suspend(() => {
            const d = mine.get(id)!
            if (inflight.get(id) === d) inflight.delete(id)
            return Deferred.done(d, exit)
          })
        if (mine.size > 0) {
          const work = Effect.gen(function* () {
            const missing: number[] = []
            yield* Effect.forEach(mine.keys(), (id) =>
              Effect.flatMap(disk === undefined ? Effect.succeed(undefined) : disk.get(id), (cached): Effect.Effect<void> => {
                if (cached === undefined) return Effect.sync(() => void missing.push(id))
                counters.diskHits++
                memory.set(id, cached)
                return Effect.asVoid(settle(id, Exit.succeed(cached)))
              }), { concurrency: disk === undefined ? 1 : 16, discard: true })
            // Reads in a stable order whatever order the cache answered in.
            missing.sort((a, b) => a - b)
            const byShard = new Map<number, number[]>()
            for (const id of missing) {
              const s = shardOf(id)
              byShard.set(s, [...(byShard.get(s) ?? []), id])
            }
            yield* Effect.forEach(byShard, ([shard, shardIds]) =>
              Effect.flatMap(Effect.either(fetchShard(shard, shardIds)), (got) =>
                Effect.gen(function* () {
                  if (Either.isLeft(got)) {
                    for (const id of shardIds) yield* settle(id, Exit.fail(got.left))
                    return
                  }
                  for (const [id, sample] of got.right) {
                    counters.samplesFetched++
                    memory.set(id, sample)
                    if (disk !== undefined) yield* disk.put(id, sample)
                    yield* settle(id, Exit.succeed(sample))
                  }
                })), { concurrency: 4, discard: true })
          })
          // Run detached in the set's scope, so a reader that is interrupted does not strand others waiting on the same samples.
          // Anything left unsettled (interrupted with the scope) fails rather than leaving readers waiting.
          const abandoned = Effect.forEach(mine.keys(), (id) =>
            settle(id, Exit.fail(new DataIoError({ path: objects.uri, reason: `the read of sample ${id} was abandoned` }))), { discard: true })
          yield* Effect.forkIn(Effect.ensuring(work, abandoned), scope)
        }
        for (const [id, deferred] of waiting) out.set(id, yield* Deferred.await(deferred))
        return out
      })

    const samples = (ids: ArrayLike<number>) =>
      Effect.map(gather(ids), (byId) => {
        const out = new Uint32Array(ids.length * row)
        for (let i = 0; i < ids.length; i++) out.set(byId.get(ids[i]!)!, i * row)
        return out
      })

    return {
      dir: objects.uri,
      manifest,
      seqLen,
      totalSamples,
      sample: (id) => samples([id]),
      samples,
      prefetch: (ids) => Effect.asVoid(Effect.forkIn(Effect.ignore(gather(ids)), scope)),
      stats: () => ({ ...counters, cacheBytes: disk?.bytes() ?? 0 }),
      shardTokens: (shardIndex) =>
        Effect.gen(function* () {
          const entry = manifest.shards[shardIndex]
          if (entry === undefined) return yield* new DataIoError({ path: objects.uri, reason: `no shard ${shardIndex}` })
          const meta = yield* metaOf(shardIndex)
          const bytes = yield* robust(entry.file, meta.dataOffset, objects.readRange(entry.file, meta.dataOffset, entry.tokens * 4), (b) => b.byteLength)
          if (bytes.byteLength !== entry.tokens * 4) return yield* corrupt(entry.file, `short read: ${bytes.byteLength} of ${entry.tokens * 4} bytes at offset ${meta.dataOffset}`, meta.dataOffset + bytes.byteLength)
          return new Uint32Array(bytes.slice().buffer)
        }),
    } satisfies ShardSet
  })

/**
 * The `Shards` service over whatever `Transport` layer is provided: its S3/R2 layer for a corpus in
 * a bucket (`parseShardUri("s3://bucket/prefix")`), or its filesystem layer for the same layout
 * on disk.
 */
export const shardsFromTransport = (
  location: ShardLocation,
  options: ObjectShardSetOptions = {},
): Layer.Layer<Shards, ManifestError | DataIoError, Transport> =>
  Layer.scoped(Shards, Effect.flatMap(Transport, (transport) => openObjectShardSet(transportObjects(transport, { bucket: location.bucket }, location.prefix), options)))
