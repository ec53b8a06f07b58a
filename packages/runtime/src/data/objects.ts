/**
 * Where a shard folder's files live, as far as a reader is concerned: whole reads, ranged reads
 * and sizes of named objects. Two implementations: a local folder, and a bucket prefix through the
 * `Transport` service (its S3/R2 layer, or its filesystem layer). `openObjectShardSet` reads
 * samples through either; `objectSink` is the matching writer for `writeShards`.
 */
import { open, readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Either } from "effect"
import * as External from "../sim/external.ts"
import { InvalidRange, NotFound, Unauthorized, Unavailable } from "@covenant/transport"
import type { BucketLocation, StoreError, TransportService } from "@covenant/transport"
import { DataIoError, describeCause } from "./errors.ts"
import type { ManifestError } from "./errors.ts"
import { MANIFEST_FILE } from "./manifest.ts"
import { readManifest } from "./shards.ts"

export interface ShardObjects {
  /** The folder or `s3://bucket/prefix`, for messages. */
  readonly uri: string
  /** Every byte of an object. */
  readonly read: (name: string) => Effect.Effect<Uint8Array, StoreError>
  /** Bytes [offset, offset + length), fewer when the object ends sooner; an offset past the end fails with InvalidRange. */
  readonly readRange: (name: string, offset: number, length: number) => Effect.Effect<Uint8Array, StoreError>
  readonly size: (name: string) => Effect.Effect<number, StoreError>
}

/** Writes the files of a shard folder (`writeShards`' output), wherever they go. */
export interface ShardSink {
  readonly uri: string
  readonly write: (name: string, bytes: Uint8Array) => Effect.Effect<void, DataIoError>
}

const fsError = (file: string) => (cause: unknown): StoreError => {
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : ""
  const reason = describeCause(cause)
  if (code === "ENOENT" || code === "ENOTDIR") return new NotFound({ bucket: "", key: file })
  if (code === "EACCES" || code === "EPERM") return new Unauthorized({ bucket: "", key: file, reason })
  return new Unavailable({ bucket: "", key: file, transient: ["EMFILE", "ENFILE", "EAGAIN", "EBUSY", "EIO"].includes(code), reason })
}

/** The files of a local folder. */
export const fileObjects = (dir: string): ShardObjects => ({
  uri: dir,
  read: (name) => External.tryPromise({ try: () => readFile(join(dir, name)), catch: fsError(join(dir, name)) }).pipe(Effect.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength))),
  readRange: (name, offset, length) =>
    External.tryPromise({
      try: async () => {
        const handle = await open(join(dir, name), "r")
        try {
          const size = (await handle.stat()).size
          if (offset > size) return { size, bytes: undefined }
          const buffer = new Uint8Array(Math.min(length, size - offset))
          let at = 0
          while (at < buffer.length) {
            const { bytesRead } = await handle.read(buffer, at, buffer.length - at, offset + at)
            if (bytesRead === 0) break
            at += bytesRead
          }
          return { size, bytes: buffer.subarray(0, at) }
        } finally {
          await handle.close()
        }
      },
      catch: fsError(join(dir, name)),
    }).pipe(
      Effect.flatMap(({ size, bytes }) =>
        bytes === undefined ? Effect.fail(new InvalidRange({ bucket: "", key: join(dir, name), offset, length, size })) : Effect.succeed(bytes)),
    ),
  size: (name) => External.tryPromise({ try: async () => (await stat(join(dir, name))).size, catch: fsError(join(dir, name)) }),
})

/** `s3://bucket/prefix` as a bucket and a key prefix ("" or ending in "/"). */
export interface ShardLocation {
  readonly bucket: string
  readonly prefix: string
}

export const isObjectStoreUri = (uri: string): boolean => uri.startsWith("s3://")

export const parseShardUri = (uri: string): Either.Either<ShardLocation, DataIoError> => {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri)
  if (m === null) return Either.left(new DataIoError({ path: uri, reason: "expected s3://bucket/prefix" }))
  const rest = (m[2] ?? "").replace(/\/+$/, "")
  return Either.right({ bucket: m[1]!, prefix: rest === "" ? "" : `${rest}/` })
}

/** The objects under `prefix` of a bucket, through the Transport (S3/R2 or its filesystem layer). */
export const transportObjects = (transport: TransportService, at: BucketLocation, prefix: string): ShardObjects => ({
  uri: `s3://${at.bucket}/${prefix}`,
  read: (name) => transport.get(at, prefix + name),
  readRange: (name, offset, length) => transport.getRange(at, prefix + name, { offset, length }),
  size: (name) => Effect.map(transport.head(at, prefix + name), (info) => info.size),
})

/** Writes shard files as objects under `prefix` (large ones multipart, as the Transport's put does). */
export const transportSink = (transport: TransportService, at: BucketLocation, prefix: string): ShardSink => ({
  uri: `s3://${at.bucket}/${prefix}`,
  write: (name, bytes) =>
    transport.put(at, prefix + name, bytes).pipe(
      Effect.asVoid,
      Effect.mapError((e) => new DataIoError({ path: `s3://${at.bucket}/${prefix}${name}`, reason: `${e._tag}: ${"reason" in e ? e.reason : JSON.stringify(e)}` })),
    ),
})

/** Copies a prepared shard folder to `sink` (e.g. a bucket), shards first and the manifest last, so readers never see a partial corpus. */
export const uploadShardFolder = (dir: string, sink: ShardSink): Effect.Effect<void, DataIoError | ManifestError> =>
  Effect.gen(function* () {
    const manifest = yield* readManifest(dir)
    const local = fileObjects(dir)
    const copy = (name: string) =>
      Effect.flatMap(
        Effect.mapError(local.read(name), (e) => new DataIoError({ path: join(dir, name), reason: e._tag })),
        (bytes) => sink.write(name, bytes),
      )
    yield* Effect.forEach(manifest.shards.flatMap((s) => [s.file, s.samplesFile]), copy, { concurrency: 4, discard: true })
    yield* copy(MANIFEST_FILE)
  })
