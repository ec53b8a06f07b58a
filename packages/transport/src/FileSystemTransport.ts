/**
 * The embedded default store: one directory per bucket under a root directory. Writes go to a
 * temp file and are renamed into place, so readers never see half an object; the file's mtime
 * is the store timestamp.
 */
import { randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import type { Stats } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Either, Layer, Stream } from "effect"
import { InvalidKey, InvalidRange, NotFound, TooLarge, Unauthorized, Unavailable } from "./errors.ts"
import type { StoreError } from "./errors.ts"
import { validateBucket, validateKey, validatePrefix } from "./keys.ts"
import { Transport } from "./Transport.ts"
import type { BucketLocation, ObjectInfo, ReadOptions, StoredObject, TransportService } from "./Transport.ts"

const TEMP_DIR = ".tmp"

const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined

const toStoreError = (bucket: string, key: string) => (error: unknown): StoreError => {
  const code = errorCode(error)
  const reason = error instanceof Error ? error.message : String(error)
  switch (code) {
    case "ENOENT":
      return new NotFound({ bucket, key })
    case "EACCES":
    case "EPERM":
      return new Unauthorized({ bucket, key, reason })
    // The filesystem cannot hold both "a" and "a/b"; S3 can. Report the clash as a bad key.
    case "ENOTDIR":
    case "EISDIR":
    case "EEXIST":
      return new InvalidKey({ key, reason: `clashes with an existing object or directory: ${reason}` })
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
    case "EBUSY":
      return new Unavailable({ bucket, key, transient: true, reason })
    default:
      return new Unavailable({ bucket, key, transient: false, reason })
  }
}

export const makeFileSystemTransport = (root: string): TransportService => {
  const rootDir = path.resolve(root)
  const tempDir = path.join(rootDir, TEMP_DIR)

  const bucketDir = (at: BucketLocation) =>
    Effect.map(Either.match(validateBucket(at.bucket), { onLeft: Effect.fail, onRight: Effect.succeed }), (b) => path.join(rootDir, b))

  const objectPath = (at: BucketLocation, key: string) =>
    Effect.gen(function* () {
      const dir = yield* bucketDir(at)
      yield* validateKey(key)
      const full = path.join(dir, ...key.split("/"))
      // validateKey already forbids "..": this is a second line of defence against escaping.
      if (!full.startsWith(dir + path.sep)) return yield* new InvalidKey({ key, reason: "escapes its bucket" })
      return { dir, full }
    })

  const attempt = <A>(bucket: string, key: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: toStoreError(bucket, key) })

  const requireBucket = (at: BucketLocation, dir: string) =>
    attempt(at.bucket, "", () => fs.stat(dir)).pipe(Effect.asVoid)

  /** A directory (left by a key "a/b") is no object named "a", as on S3. */
  const fileStat = (at: BucketLocation, key: string, stat: () => Promise<Stats>) =>
    Effect.filterOrFail(attempt(at.bucket, key, stat), (s) => s.isFile(), () => new NotFound({ bucket: at.bucket, key }))

  const info = (at: BucketLocation, key: string, full: string) =>
    Effect.map(fileStat(at, key, () => fs.stat(full)), (s): ObjectInfo => ({ key, size: s.size, storeTime: Math.floor(s.mtimeMs) }))

  /** Writes through a temp file, then renames it into place (atomic on one filesystem). */
  const writeAtomically = <E>(at: BucketLocation, key: string, write: (handle: fs.FileHandle) => Effect.Effect<void, StoreError | E>) =>
    Effect.gen(function* () {
      const { dir, full } = yield* objectPath(at, key)
      yield* requireBucket(at, dir)
      yield* attempt(at.bucket, key, () => fs.mkdir(tempDir, { recursive: true }))
      const temp = path.join(tempDir, `${randomBytes(12).toString("hex")}.part`)
      const written = Effect.acquireUseRelease(
        attempt(at.bucket, key, () => fs.open(temp, "wx")),
        write,
        (handle) => Effect.promise(() => handle.close()),
      ).pipe(
        // A delete may remove the (empty) parent between mkdir and rename: then do both again.
        Effect.zipRight(attempt(at.bucket, key, async () => {
          for (let tries = 0; ; tries++) {
            await fs.mkdir(path.dirname(full), { recursive: true })
            try {
              return await fs.rename(temp, full)
            } catch (error) {
              if (errorCode(error) !== "ENOENT" || tries >= 3) throw error
            }
          }
        })),
      )
      yield* Effect.onExit(written, (exit) =>
        exit._tag === "Success" ? Effect.void : Effect.promise(() => fs.rm(temp, { force: true })))
      return yield* info(at, key, full)
    })

  /** Reads through one open descriptor: a rename that replaces the file cannot split stat from bytes. */
  const getWithInfo = (at: BucketLocation, key: string, options?: ReadOptions) =>
    Effect.flatMap(objectPath(at, key), ({ full }) =>
      Effect.acquireUseRelease(
        attempt(at.bucket, key, () => fs.open(full, "r")),
        (handle) =>
          Effect.gen(function* () {
            const stat = yield* fileStat(at, key, () => handle.stat())
            const max = options?.maxBytes
            if (max !== undefined && stat.size > max) return yield* new TooLarge({ bucket: at.bucket, key, size: stat.size, maxBytes: max })
            const bytes = max === undefined
              ? yield* Effect.map(attempt(at.bucket, key, () => handle.readFile()), (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
              : yield* readCapped(at, key, handle, max)
            return { bytes, info: { key, size: bytes.byteLength, storeTime: Math.floor(stat.mtimeMs) } } satisfies StoredObject
          }),
        (handle) => Effect.promise(() => handle.close()),
      ))

  /** Reads at most `max` bytes; one byte more (a file that grew after its stat) is TooLarge. */
  const readCapped = (at: BucketLocation, key: string, handle: fs.FileHandle, max: number) =>
    Effect.gen(function* () {
      const out = new Uint8Array(max + 1)
      let done = 0
      while (done <= max) {
        const { bytesRead } = yield* attempt(at.bucket, key, () => handle.read(out, done, max + 1 - done, done))
        if (bytesRead === 0) break
        done += bytesRead
      }
      if (done > max) return yield* new TooLarge({ bucket: at.bucket, key, size: done, maxBytes: max })
      return out.subarray(0, done)
    })

  const walk = (dir: string, relative: string): Promise<Array<string>> =>
    fs.readdir(dir, { withFileTypes: true }).then(async (entries) => {
      const keys: Array<string> = []
      for (const entry of entries) {
        const rel = relative === "" ? entry.name : `${relative}/${entry.name}`
        if (entry.isDirectory()) keys.push(...(await walk(path.join(dir, entry.name), rel)))
        else if (entry.isFile()) keys.push(rel)
      }
      return keys
    }, (error: unknown) => (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR" ? [] : Promise.reject(error)))

  const service: TransportService = {
    // mtime is stamped from the kernel's coarse clock (one tick: 1-10 ms by CONFIG_HZ), which trails
    // Date.now(): measured, a file written just after a block stamped by Date.now() read 1 ms before it.
    timeResolutionMs: 10,

    ensureBucket: (at) =>
      Effect.flatMap(bucketDir(at), (dir) => attempt(at.bucket, "", () => fs.mkdir(dir, { recursive: true }))).pipe(Effect.asVoid),

    put: (at, key, bytes) =>
      writeAtomically(at, key, (handle) => attempt(at.bucket, key, () => handle.writeFile(bytes))),

    putStream: (at, key, body) =>
      writeAtomically(at, key, (handle) =>
        Stream.runForEach(body, (chunk) => attempt(at.bucket, key, () => handle.write(chunk).then(() => undefined)))),

    get: (at, key, options) => Effect.map(getWithInfo(at, key, options), (o) => o.bytes),

    getWithInfo,

    getRange: (at, key, range) =>
      Effect.flatMap(objectPath(at, key), ({ full }) =>
        Effect.acquireUseRelease(
          attempt(at.bucket, key, () => fs.open(full, "r")),
          (handle) =>
            Effect.gen(function* () {
              const { size } = yield* fileStat(at, key, () => handle.stat())
              if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0 || (range.offset >= size && range.length > 0) || range.offset > size) {
                return yield* new InvalidRange({ bucket: at.bucket, key, offset: range.offset, length: range.length, size })
              }
              const length = Math.min(range.length, size - range.offset)
              const out = new Uint8Array(length)
              let done = 0
              while (done < length) {
                const { bytesRead } = yield* attempt(at.bucket, key, () => handle.read(out, done, length - done, range.offset + done))
                if (bytesRead === 0) break
                done += bytesRead
              }
              return done === length ? out : out.subarray(0, done)
            }),
          (handle) => Effect.promise(() => handle.close()),
        )),

    getStream: (at, key) =>
      Stream.unwrap(
        Effect.flatMap(objectPath(at, key), ({ full }) =>
          // The read stream is opened only when the stream runs (an unopened one cannot emit an unhandled error).
          Effect.as(info(at, key, full), Stream.suspend(() =>
            Stream.fromAsyncIterable<Uint8Array, StoreError>(createReadStream(full), toStoreError(at.bucket, key))))),
      ),

    head: (at, key) => Effect.flatMap(objectPath(at, key), ({ full }) => info(at, key, full)),

    list: (at, prefix) =>
      Effect.gen(function* () {
        const dir = yield* bucketDir(at)
        yield* validatePrefix(prefix)
        yield* requireBucket(at, dir)
        // Walk only the deepest directory the prefix names.
        const slash = prefix.lastIndexOf("/")
        const base = slash < 0 ? "" : prefix.slice(0, slash)
        const start = base === "" ? dir : path.join(dir, ...base.split("/"))
        const keys = yield* attempt(at.bucket, prefix, () => walk(start, base))
        const matching = keys.filter((k) => k.startsWith(prefix)).sort()
        // An object deleted between the walk and its stat is simply no longer listed.
        const infos = yield* Effect.forEach(matching, (k) =>
          info(at, k, path.join(dir, ...k.split("/"))).pipe(Effect.asSome, Effect.catchTag("NotFound", () => Effect.succeedNone)), { concurrency: 8 })
        return infos.flatMap((o) => (o._tag === "Some" ? [o.value] : []))
      }),

    delete: (at, key) =>
      Effect.flatMap(objectPath(at, key), ({ dir, full }) =>
        attempt(at.bucket, key, async () => {
          const stat = await fs.lstat(full).catch((error: unknown) => (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR" ? undefined : Promise.reject(error)))
          if (stat === undefined || !stat.isFile()) return // no object by that name
          await fs.rm(full, { force: true })
          // S3 has no directories: drop the ones this delete left empty, so "a" can be written after "a/b" is gone.
          for (let parent = path.dirname(full); parent !== dir && parent.startsWith(dir + path.sep); parent = path.dirname(parent)) {
            try {
              await fs.rmdir(parent)
            } catch {
              break // not empty (or already gone): nothing above it is empty either
            }
          }
        })),
  }
  return service
}

/** The filesystem store rooted at `dir` (created if missing). */
export const layerFileSystem = (dir: string): Layer.Layer<Transport> =>
  Layer.effect(
    Transport,
    Effect.promise(() => fs.mkdir(dir, { recursive: true })).pipe(Effect.as(makeFileSystemTransport(dir))),
  )
