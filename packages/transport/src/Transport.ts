/**
 * The Transport service: byte storage addressed by (bucket location, key). One participant
 * writes its own bucket and reads the other peers' buckets with the read credentials they
 * published; the layers (filesystem, S3-compatible) live beside this tag.
 */
import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"
import type { StoreError } from "./errors.ts"

/**
 * Where a peer's bucket lives and how to read it, as published on chain. Decode untrusted
 * input with `Schema.decodeUnknown(PeerLocation)`.
 */
export const PeerLocation = Schema.Struct({
  endpoint: Schema.String,
  region: Schema.String,
  bucket: Schema.String,
  accessKeyId: Schema.String,
  secretAccessKey: Schema.String,
  forcePathStyle: Schema.Boolean,
})
export type PeerLocation = typeof PeerLocation.Type

/**
 * A bucket to operate on. Only the name is required: missing endpoint / region / credentials
 * fall back to the layer's own configuration (the filesystem layer uses only the name).
 */
export interface BucketLocation {
  readonly bucket: string
  readonly endpoint?: string
  readonly region?: string
  readonly accessKeyId?: string
  readonly secretAccessKey?: string
  readonly forcePathStyle?: boolean
}

export interface ObjectInfo {
  readonly key: string
  readonly size: number
  /** The store's timestamp of the object (ms since epoch), at the store's resolution. */
  readonly storeTime: number
}

export interface StoredObject {
  readonly bytes: Uint8Array
  readonly info: ObjectInfo
}

/** A byte range [offset, offset + length) of an object. */
export interface ByteRange {
  readonly offset: number
  readonly length: number
}

/** Options of a whole-object read. */
export interface ReadOptions {
  /**
   * Largest object accepted, in bytes: a larger one fails with TooLarge, checked on the size the
   * store announces and again while reading (the read is aborted once past the cap), so an
   * object from an untrusted bucket can never make the reader hold more than this.
   */
  readonly maxBytes?: number
}

export interface TransportService {
  /** Resolution of the store's timestamps in ms (S3's Last-Modified has 1 s; a filesystem ~1 ms). */
  readonly timeResolutionMs: number
  /** Creates the bucket if it does not exist (idempotent). */
  readonly ensureBucket: (at: BucketLocation) => Effect.Effect<void, StoreError>
  /** Stores bytes under key, replacing any previous object atomically; large objects go multipart. */
  readonly put: (at: BucketLocation, key: string, bytes: Uint8Array) => Effect.Effect<ObjectInfo, StoreError>
  /** Stores a stream of bytes without holding it all in memory (multipart on S3). */
  readonly putStream: <E>(at: BucketLocation, key: string, body: Stream.Stream<Uint8Array, E>) => Effect.Effect<ObjectInfo, StoreError | E>
  readonly get: (at: BucketLocation, key: string, options?: ReadOptions) => Effect.Effect<Uint8Array, StoreError>
  /**
   * The bytes together with the size and store time of that same version of the object, so a
   * store time checked against a window cannot belong to an object replaced in between.
   */
  readonly getWithInfo: (at: BucketLocation, key: string, options?: ReadOptions) => Effect.Effect<StoredObject, StoreError>
  /** Bytes [offset, offset + length), clipped at the end of the object; an offset past the end fails with InvalidRange. */
  readonly getRange: (at: BucketLocation, key: string, range: ByteRange) => Effect.Effect<Uint8Array, StoreError>
  readonly getStream: (at: BucketLocation, key: string) => Stream.Stream<Uint8Array, StoreError>
  readonly head: (at: BucketLocation, key: string) => Effect.Effect<ObjectInfo, StoreError>
  /** Objects whose key starts with prefix, sorted by key. */
  readonly list: (at: BucketLocation, prefix: string) => Effect.Effect<ReadonlyArray<ObjectInfo>, StoreError>
  /** Removes the object; removing a missing object succeeds (as on S3). */
  readonly delete: (at: BucketLocation, key: string) => Effect.Effect<void, StoreError>
}

export class Transport extends Context.Tag("@covenant/transport/Transport")<Transport, TransportService>() {}
