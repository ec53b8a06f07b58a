/**
 * Any S3-compatible store (AWS S3, Cloudflare R2, s3rver) through the AWS SDK v3. One client is
 * kept per distinct location (endpoint, region, addressing style, credentials): a participant
 * writes its own bucket and reads each peer's bucket with the read keys that peer published.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3"
import type { CompletedPart, ListObjectsV2CommandOutput } from "@aws-sdk/client-s3"
import { Chunk, Effect, Layer, Schedule, Sink, Stream } from "effect"
import { InvalidRange, NotFound, TooLarge, Unauthorized, Unavailable } from "./errors.ts"
import type { StoreError } from "./errors.ts"
import { validateBucket, validateKey, validatePrefix } from "./keys.ts"
import { Transport } from "./Transport.ts"
import type { BucketLocation, ObjectInfo, ReadOptions, StoredObject, TransportService } from "./Transport.ts"

export type ChecksumMode = "WHEN_SUPPORTED" | "WHEN_REQUIRED"

export interface S3TransportConfig {
  /** Defaults for any BucketLocation that leaves them out (normally: your own bucket's write access). */
  readonly endpoint: string
  readonly region: string
  readonly forcePathStyle: boolean
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /**
   * SDK checksums, default "WHEN_REQUIRED" for both: s3rver stores streamed bodies with their
   * aws-chunked framing otherwise, and R2 has refused the SDK's default CRC32 headers (and ranged
   * reads with them). Every object we publish is signed over its full bytes anyway.
   */
  readonly requestChecksumCalculation?: ChecksumMode
  readonly responseChecksumValidation?: ChecksumMode
  /** Objects larger than this go multipart (default 64 MiB). */
  readonly multipartThreshold?: number
  /** Multipart part size (default 16 MiB; S3 requires >= 5 MiB for all parts but the last). */
  readonly partSize?: number
  /** Parts uploaded at once (default 4). */
  readonly partConcurrency?: number
  /** Abandon a request after this long (default 60 s) or a connection attempt after this long (default 5 s). */
  readonly requestTimeoutMs?: number
  readonly connectionTimeoutMs?: number
  /**
   * The CORS rule `ensureBucket` gives the bucket, so a browser page can talk to the store
   * directly (default: none, the bucket's CORS is left alone). CORS grants no access: every
   * request is still signed with a key the store checks; it only lets a page of another origin
   * send it and read the answer.
   */
  readonly bucketCors?: BucketCors
}

/**
 * A bucket's CORS rule: which page origins may read (GET, HEAD) or also write (PUT, POST, DELETE),
 * with the response headers the SDK reads exposed (ETag, Content-Range, ...). `ifAbsent` (a
 * node's own bucket) sets it only when the bucket has no CORS configuration, so an operator's
 * own rules are never overwritten; `replace` (a bucket made for one page, see the page server)
 * makes it the bucket's only rule.
 */
export interface BucketCors {
  readonly origins: ReadonlyArray<string>
  readonly write: boolean
  readonly mode: "ifAbsent" | "replace"
}

/** The headers a page's SDK must be able to read from the store's answers. */
export const CORS_EXPOSED_HEADERS = ["ETag", "Content-Length", "Content-Range", "Content-Type", "Last-Modified", "x-amz-request-id", "x-amz-version-id"] as const

const MiB = 1024 * 1024

interface SdkErrorShape {
  readonly name?: unknown
  readonly code?: unknown
  readonly message?: unknown
  readonly $metadata?: { readonly httpStatusCode?: unknown }
}

const TRANSIENT_NAMES = new Set([
  "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeoutException", "TimeoutError",
  "ThrottlingException", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ConnectionRefused",
])
const UNAUTHORIZED_NAMES = new Set(["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "ExpiredToken"])

/** Maps an SDK / network error onto the store's typed errors. */
export const classifyS3Error = (bucket: string, key: string) => (error: unknown): StoreError => {
  const shape: SdkErrorShape = typeof error === "object" && error !== null ? error : {}
  const name = typeof shape.name === "string" ? shape.name : ""
  const code = typeof shape.code === "string" ? shape.code : ""
  const status = typeof shape.$metadata?.httpStatusCode === "number" ? shape.$metadata.httpStatusCode : undefined
  const reason = `${name}${code !== "" && code !== name ? ` ${code}` : ""}: ${typeof shape.message === "string" ? shape.message : String(error)}`
  if (name === "NoSuchKey" || name === "NoSuchBucket" || name === "NotFound" || status === 404) return new NotFound({ bucket, key })
  if (UNAUTHORIZED_NAMES.has(name) || status === 401 || status === 403) return new Unauthorized({ bucket, key, reason })
  if (name === "InvalidRange" || status === 416) return new InvalidRange({ bucket, key, offset: -1, length: -1, size: -1 })
  const transient = TRANSIENT_NAMES.has(name) || TRANSIENT_NAMES.has(code) || status === 429 || (status !== undefined && status >= 500) || status === undefined
  return new Unavailable({ bucket, key, transient, reason })
}

/** Re-chunks a byte stream into pieces of exactly `size` bytes (the last may be shorter). */
export const rechunkBytes = <E>(body: Stream.Stream<Uint8Array, E>, size: number): Stream.Stream<Uint8Array, E> =>
  Stream.suspend(() => {
    let pending = new Uint8Array(size)
    let filled = 0
    const full = body.pipe(
      Stream.mapConcat((chunk) => {
        const out: Array<Uint8Array> = []
        let at = 0
        while (at < chunk.length) {
          const take = Math.min(size - filled, chunk.length - at)
          pending.set(chunk.subarray(at, at + take), filled)
          filled += take
          at += take
          if (filled === size) {
            out.push(pending)
            pending = new Uint8Array(size)
            filled = 0
          }
        }
        return out
      }),
    )
    return Stream.concat(full, Stream.suspend(() => (filled > 0 ? Stream.make(pending.subarray(0, filled)) : Stream.empty)))
  })

export const makeS3Transport = (config: S3TransportConfig) =>
  Effect.gen(function* () {
    const clients = new Map<string, S3Client>()
    yield* Effect.addFinalizer(() => Effect.sync(() => {
      for (const client of clients.values()) client.destroy()
      clients.clear()
    }))

    const multipartThreshold = config.multipartThreshold ?? 64 * MiB
    const partSize = Math.max(5 * MiB, config.partSize ?? 16 * MiB)
    const partConcurrency = Math.max(1, config.partConcurrency ?? 4)

    const clientFor = (at: BucketLocation): S3Client => {
      const endpoint = at.endpoint ?? config.endpoint
      const region = at.region ?? config.region
      const forcePathStyle = at.forcePathStyle ?? config.forcePathStyle
      const accessKeyId = at.accessKeyId ?? config.accessKeyId
      const secretAccessKey = at.secretAccessKey ?? config.secretAccessKey
      const id = JSON.stringify([endpoint, region, forcePathStyle, accessKeyId, secretAccessKey])
      const cached = clients.get(id)
      if (cached !== undefined) return cached
      const client = new S3Client({
        endpoint,
        region,
        forcePathStyle,
        credentials: { accessKeyId, secretAccessKey },
        requestChecksumCalculation: config.requestChecksumCalculation ?? "WHEN_REQUIRED",
        responseChecksumValidation: config.responseChecksumValidation ?? "WHEN_REQUIRED",
        // Retries are ours (bounded by the caller's deadlines), not the SDK's.
        maxAttempts: 1,
        requestHandler: {
          requestTimeout: config.requestTimeoutMs ?? 60_000,
          connectionTimeout: config.connectionTimeoutMs ?? 5_000,
          throwOnRequestTimeout: true,
        },
      })
      clients.set(id, client)
      return client
    }

    /** Runs one SDK call on a bucket; interrupting the effect aborts the HTTP request. */
    const callBucket = <A>(at: BucketLocation, key: string, run: (client: S3Client, signal: AbortSignal) => Promise<A>) =>
      Effect.flatMap(validateBucket(at.bucket), () =>
        Effect.tryPromise({ try: (signal) => run(clientFor(at), signal), catch: classifyS3Error(at.bucket, key) }))

    /** Runs one SDK call on an object, after checking its key. */
    const call = <A>(at: BucketLocation, key: string, run: (client: S3Client, signal: AbortSignal) => Promise<A>) =>
      Effect.flatMap(validateKey(key), () => callBucket(at, key, run))

    const headRaw = (at: BucketLocation, key: string) =>
      call(at, key, (c, abortSignal) => c.send(new HeadObjectCommand({ Bucket: at.bucket, Key: key }), { abortSignal }))
    const infoOf = (key: string) => (r: { ContentLength?: number | undefined; LastModified?: Date | undefined }): ObjectInfo =>
      ({ key, size: r.ContentLength ?? 0, storeTime: r.LastModified?.getTime() ?? 0 })

    const head = (at: BucketLocation, key: string) => Effect.map(headRaw(at, key), infoOf(key))

    /**
     * The info of the version just written: HEAD until the store shows its ETag (and size, when
     * known). s3rver answers a PUT before its file is complete, so a HEAD right after it can see a
     * partial object (seen: size 0 for 4 written bytes, under load); S3 and R2 are read-after-write
     * consistent and match at once.
     */
    const headWritten = (at: BucketLocation, key: string, written: { readonly etag: string | undefined; readonly size?: number }) =>
      headRaw(at, key).pipe(
        Effect.filterOrFail(
          (r) => (written.etag === undefined || r.ETag === written.etag) && (written.size === undefined || r.ContentLength === written.size),
          () => new Unavailable({ bucket: at.bucket, key, transient: true, reason: "the store does not show the version just written yet" }),
        ),
        Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 50, while: (e) => e._tag === "Unavailable" && e.transient }),
        Effect.map(infoOf(key)),
      )

    /** One GET: the Last-Modified header belongs to the very bytes in the body. */
    const getWithInfo = (at: BucketLocation, key: string, options?: ReadOptions) =>
      call(at, key, async (c, abortSignal): Promise<StoredObject | TooLarge> => {
        const max = options?.maxBytes
        // Our own controller as well: past the cap we abort the HTTP request, not just stop reading.
        const controller = new AbortController()
        const onAbort = () => controller.abort()
        abortSignal.addEventListener("abort", onAbort)
        try {
          const r = await c.send(new GetObjectCommand({ Bucket: at.bucket, Key: key }), { abortSignal: controller.signal })
          const info = (bytes: Uint8Array): StoredObject => ({ bytes, info: { key, size: bytes.byteLength, storeTime: r.LastModified?.getTime() ?? 0 } })
          if (max === undefined) return info(r.Body === undefined ? new Uint8Array(0) : await r.Body.transformToByteArray())
          if (r.ContentLength !== undefined && r.ContentLength > max) {
            controller.abort()
            return new TooLarge({ bucket: at.bucket, key, size: r.ContentLength, maxBytes: max })
          }
          if (r.Body === undefined) return info(new Uint8Array(0))
          // The announced length may lie (or be absent): count what actually arrives.
          const reader = r.Body.transformToWebStream().getReader()
          const parts: Uint8Array[] = []
          let total = 0
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            total += value.byteLength
            if (total > max) {
              controller.abort()
              await reader.cancel().catch(() => undefined)
              return new TooLarge({ bucket: at.bucket, key, size: total, maxBytes: max })
            }
            parts.push(value)
          }
          const bytes = new Uint8Array(total)
          let o = 0
          for (const p of parts) {
            bytes.set(p, o)
            o += p.byteLength
          }
          return info(bytes)
        } finally {
          abortSignal.removeEventListener("abort", onAbort)
        }
      }).pipe(Effect.flatMap((r) => (r instanceof TooLarge ? Effect.fail(r) : Effect.succeed(r))))

    const putSingle = (at: BucketLocation, key: string, bytes: Uint8Array) =>
      call(at, key, (c, abortSignal) =>
        c.send(new PutObjectCommand({ Bucket: at.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }), { abortSignal }))

    /** Uploads parts of exactly partSize (the last may be shorter) as one multipart object. */
    const putMultipart = <E>(at: BucketLocation, key: string, parts: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function* () {
        const created = yield* call(at, key, (c, abortSignal) =>
          c.send(new CreateMultipartUploadCommand({ Bucket: at.bucket, Key: key }), { abortSignal }))
        const uploadId = created.UploadId
        if (uploadId === undefined) {
          return yield* new Unavailable({ bucket: at.bucket, key, transient: false, reason: "no UploadId in CreateMultipartUpload reply" })
        }
        const upload = Effect.gen(function* () {
          const completed = yield* parts.pipe(
            Stream.zipWithIndex,
            Stream.mapEffect(([part, index]) =>
              call(at, key, (c, abortSignal) =>
                c.send(new UploadPartCommand({ Bucket: at.bucket, Key: key, UploadId: uploadId, PartNumber: index + 1, Body: part, ContentLength: part.byteLength }), { abortSignal }),
              ).pipe(Effect.map((r): CompletedPart => ({ PartNumber: index + 1, ETag: r.ETag }))), { concurrency: partConcurrency }),
            Stream.runCollect,
          )
          return yield* call(at, key, (c, abortSignal) =>
            c.send(new CompleteMultipartUploadCommand({ Bucket: at.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: Chunk.toArray(completed) } }), { abortSignal }))
        })
        return yield* Effect.onError(upload, () =>
          call(at, key, (c) => c.send(new AbortMultipartUploadCommand({ Bucket: at.bucket, Key: key, UploadId: uploadId }))).pipe(Effect.ignore))
      })

    /** A body of at most one part is a single PUT (S3 refuses multipart uploads with no parts); anything longer goes multipart. */
    const putBody = <E>(at: BucketLocation, key: string, body: Stream.Stream<Uint8Array, E>) =>
      Effect.scoped(
        Effect.flatMap(Stream.peel(rechunkBytes(body, partSize), Sink.take<Uint8Array>(2)), ([first, rest]) =>
          Chunk.size(first) < 2
            ? putSingle(at, key, Chunk.isEmpty(first) ? new Uint8Array(0) : Chunk.unsafeGet(first, 0))
            : putMultipart(at, key, Stream.concat(Stream.fromChunk(first), rest))),
      )

    /** Gives the bucket `cors` (see BucketCors), unless `ifAbsent` and it has a CORS configuration already. */
    const ensureCors = (at: BucketLocation, cors: BucketCors): Effect.Effect<void, StoreError> => {
      const put = callBucket(at, "", (c, abortSignal) =>
        c.send(
          new PutBucketCorsCommand({
            Bucket: at.bucket,
            CORSConfiguration: {
              CORSRules: [{
                AllowedOrigins: [...cors.origins],
                AllowedMethods: cors.write ? ["GET", "HEAD", "PUT", "POST", "DELETE"] : ["GET", "HEAD"],
                // The SDK signs its own headers (authorization, x-amz-*, amz-sdk-*, range, content-type).
                AllowedHeaders: ["*"],
                ExposeHeaders: [...CORS_EXPOSED_HEADERS],
                MaxAgeSeconds: 3600,
              }],
            },
          }),
          { abortSignal },
        ))
      if (cors.mode === "replace") return Effect.asVoid(put)
      return callBucket(at, "", (c, abortSignal) => c.send(new GetBucketCorsCommand({ Bucket: at.bucket }), { abortSignal })).pipe(
        // NoSuchCORSConfiguration is a 404: the bucket has none yet.
        Effect.asVoid,
        Effect.catchTag("NotFound", () => Effect.asVoid(put)),
        // A key that may write objects but not bucket settings (an R2 "Object Read & Write" token),
        // or a store without the CORS API (MinIO answers 501): the node still works, only browser
        // tabs cannot read this bucket; say so and go on.
        Effect.catchAll((e) =>
          Effect.logWarning(`bucket ${at.bucket}: the store did not read or set its CORS rule (${e._tag}${"reason" in e ? `: ${e.reason}` : ""}); browser tabs cannot read this bucket until it has one (README: the peer page)`)),
      )
    }

    const invalidRange = (at: BucketLocation, key: string, offset: number, length: number, size: number) =>
      new InvalidRange({ bucket: at.bucket, key, offset, length, size })

    const service: TransportService = {
      timeResolutionMs: 1000,

      ensureBucket: (at) =>
        callBucket(at, "", (c, abortSignal) => c.send(new HeadBucketCommand({ Bucket: at.bucket }), { abortSignal })).pipe(
          Effect.catchTag("NotFound", () =>
            callBucket(at, "", (c, abortSignal) => c.send(new CreateBucketCommand({ Bucket: at.bucket }), { abortSignal }))),
          Effect.zipRight(config.bucketCors === undefined ? Effect.void : ensureCors(at, config.bucketCors)),
          Effect.asVoid,
        ),

      put: (at, key, bytes) =>
        (bytes.byteLength > multipartThreshold ? putBody(at, key, Stream.succeed(bytes)) : putSingle(at, key, bytes)).pipe(
          Effect.flatMap((r) => headWritten(at, key, { etag: r.ETag, size: bytes.byteLength }))),

      putStream: (at, key, body) => Effect.flatMap(putBody(at, key, body), (r) => headWritten(at, key, { etag: r.ETag })),

      get: (at, key, options) => Effect.map(getWithInfo(at, key, options), (o) => o.bytes),

      getWithInfo,

      getRange: (at, key, { offset, length }) =>
        Effect.gen(function* () {
          if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
            return yield* invalidRange(at, key, offset, length, -1)
          }
          // A zero-length range cannot be expressed as an HTTP Range; answer it from the size.
          if (length === 0) {
            const { size } = yield* head(at, key)
            return offset <= size ? new Uint8Array(0) : yield* invalidRange(at, key, offset, length, size)
          }
          return yield* call(at, key, async (c, abortSignal) => {
            const r = await c.send(new GetObjectCommand({ Bucket: at.bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }), { abortSignal })
            const body = r.Body === undefined ? new Uint8Array(0) : await r.Body.transformToByteArray()
            // A server may answer more than was asked: 200 with the whole object, or (s3rver, for
            // "bytes=0-0") a wider range than requested. Cut the requested bytes out of what came.
            const served = /^bytes (\d+)-\d+\/\d+$/.exec(r.ContentRange ?? "")
            const servedStart = served === null ? 0 : Number(served[1])
            return body.subarray(offset - servedStart, offset - servedStart + length)
          }).pipe(
            Effect.catchTag("InvalidRange", () =>
              Effect.flatMap(head(at, key), ({ size }) => Effect.fail(invalidRange(at, key, offset, length, size)))),
          )
        }),

      getStream: (at, key) =>
        Stream.unwrap(
          call(at, key, (c, abortSignal) => c.send(new GetObjectCommand({ Bucket: at.bucket, Key: key }), { abortSignal })).pipe(
            Effect.map((r) => {
              const body = r.Body
              return body === undefined
                ? Stream.empty
                : Stream.fromReadableStream<Uint8Array, StoreError>({
                  evaluate: () => body.transformToWebStream(),
                  onError: classifyS3Error(at.bucket, key),
                })
            }),
          ),
        ),

      head,

      list: (at, prefix) =>
        Effect.gen(function* () {
          yield* validatePrefix(prefix)
          const out: Array<ObjectInfo> = []
          let token: string | undefined = undefined
          do {
            const continuation: string | undefined = token
            const page: ListObjectsV2CommandOutput = yield* callBucket(at, prefix, (c, abortSignal) =>
              c.send(new ListObjectsV2Command({ Bucket: at.bucket, Prefix: prefix, ...(continuation === undefined ? {} : { ContinuationToken: continuation }) }), { abortSignal }))
            for (const o of page.Contents ?? []) {
              if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0, storeTime: o.LastModified?.getTime() ?? 0 })
            }
            token = page.IsTruncated === true ? page.NextContinuationToken : undefined
          } while (token !== undefined)
          return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        }),

      delete: (at, key) =>
        call(at, key, (c, abortSignal) => c.send(new DeleteObjectCommand({ Bucket: at.bucket, Key: key }), { abortSignal })).pipe(Effect.asVoid),
    }
    return service
  })

/** The S3-compatible store (R2: endpoint `https://<account>.r2.cloudflarestorage.com`, region "auto"). */
export const layerS3 = (config: S3TransportConfig): Layer.Layer<Transport> => Layer.scoped(Transport, makeS3Transport(config))
