/**
 * The protocol on top of the Transport service: publish a signed object under the layout's key,
 * gather the peers' updates of a window within its upload interval and a deadline, prune old
 * updates. Chain facts (block times, hotkeys, bucket locations) come in as data.
 */
import { Clock, Duration, Effect, Either, Schedule } from "effect"
import type { BadSignature, InvalidKey, StoreError } from "./errors.ts"
import { InvalidContext, isTransient, TooEarly, TooLate } from "./errors.ts"
import { openEnvelope, sealEnvelope } from "./envelope.ts"
import type { EnvelopeContext, Signer } from "./envelope.ts"
import { debugKey, gradientKey, kindPrefix, parseKey, tryKey } from "./keys.ts"
import { Transport } from "./Transport.ts"
import type { BucketLocation, ObjectInfo } from "./Transport.ts"

/** Where a window's uploads must land, in store time (ms since epoch): [start, end]. */
export interface UploadInterval {
  readonly start: number
  readonly end: number
}

/** The reference's rule: from the time of the window's first block to `uploadWindowMs` (70 s) later. */
export const uploadInterval = (windowStartMs: number, uploadWindowMs: number): UploadInterval => ({
  start: windowStartMs,
  end: windowStartMs + uploadWindowMs,
})

/**
 * A store's timestamp may trail the true time by up to its resolution (S3 truncates to the second; a
 * file's mtime comes from the kernel's coarse clock, one tick behind at most): an object stamped
 * less than one resolution before the start may have landed on time, so only a stamp a whole
 * resolution or more before it is too early.
 */
export const checkStoreTime = (key: string, storeTime: number, interval: UploadInterval, resolutionMs: number): Either.Either<number, TooEarly | TooLate> => {
  if (storeTime <= interval.start - resolutionMs) return Either.left(new TooEarly({ key, storeTime, start: interval.start }))
  if (storeTime > interval.end) return Either.left(new TooLate({ key, storeTime, end: interval.end }))
  return Either.right(storeTime)
}

export type UpdateKind = "gradient" | "debug"

const updateKey = (kind: UpdateKind, window: number, uid: number, version: string) =>
  kind === "gradient" ? gradientKey(window, uid, version) : debugKey(window, uid, version)

/** Retries of transient store failures while publishing (the upload must land inside its window). */
export interface PublishRetry {
  /** First delay; each retry doubles it (default 200 ms). */
  readonly base?: Duration.DurationInput
  /** Retries after the first attempt (default 4). */
  readonly times?: number
}

export interface PublishSignedOptions {
  readonly at: BucketLocation
  readonly key: string
  readonly context: EnvelopeContext
  readonly payload: Uint8Array
  readonly signer: Signer
  readonly retry?: PublishRetry
}

const retryTransient = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E, Transport>, retry: PublishRetry | undefined) =>
  Effect.retry(effect, {
    schedule: Schedule.exponential(retry?.base ?? Duration.millis(200)).pipe(Schedule.intersect(Schedule.recurs(retry?.times ?? 4))),
    while: (error) => error._tag === "Unavailable" && "transient" in error && error.transient === true,
  })

/** Signs any payload for its context and stores it under key (peer lists, aggregation records, ...). */
export const publishSigned = (options: PublishSignedOptions): Effect.Effect<ObjectInfo, StoreError | InvalidContext, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const sealed = yield* Effect.try({
      try: () => sealEnvelope(options.context, options.payload, options.signer),
      catch: (error) => new InvalidContext({ reason: error instanceof Error ? error.message : String(error) }),
    })
    return yield* retryTransient(transport.put(options.at, options.key, sealed), options.retry)
  })

export interface FetchSignedOptions {
  readonly at: BucketLocation
  readonly key: string
  readonly context: EnvelopeContext
  /** The ss58 address the chain lists for the publisher. */
  readonly hotkey: string
  /** Largest sealed object read (TooLarge past it; the read is cut off there). */
  readonly maxBytes?: number
}

export interface Delivered {
  readonly bytes: Uint8Array
  readonly storeTime: number
}

/** Reads a signed object and returns its payload only if it verifies for the expected context and hotkey. */
export const fetchSigned = (options: FetchSignedOptions): Effect.Effect<Delivered, StoreError | BadSignature, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const { bytes: sealed, info } = yield* transport.getWithInfo(options.at, options.key, options.maxBytes === undefined ? undefined : { maxBytes: options.maxBytes })
    const bytes = yield* openEnvelope(sealed, options.context, options.hotkey)
    return { bytes, storeTime: info.storeTime }
  })

export interface PublishUpdateOptions {
  readonly at: BucketLocation
  readonly runId: string
  readonly version: string
  readonly window: number
  readonly uid: number
  readonly kind?: UpdateKind
  readonly payload: Uint8Array
  readonly signer: Signer
  readonly retry?: PublishRetry
}

/** Publishes a peer's update (or debug slice) for (window, uid) in its own bucket. */
export const publishUpdate = (options: PublishUpdateOptions): Effect.Effect<ObjectInfo, StoreError | InvalidContext, Transport> => {
  const kind = options.kind ?? "gradient"
  return Effect.flatMap(tryKey(() => updateKey(kind, options.window, options.uid, options.version)), (key) =>
    publishSigned({
      at: options.at,
      key,
      context: { runId: options.runId, window: options.window, uid: options.uid, kind },
      payload: options.payload,
      signer: options.signer,
      ...(options.retry === undefined ? {} : { retry: options.retry }),
    }))
}

export interface GatherOptions {
  readonly runId: string
  readonly version: string
  readonly window: number
  readonly kind?: UpdateKind
  /** The uids to gather. */
  readonly uids: ReadonlyArray<number>
  /** Each uid's bucket and read credentials, as published on chain. */
  readonly locations: ReadonlyMap<number, BucketLocation>
  /** Each uid's hotkey (ss58), as the chain lists it. */
  readonly hotkeys: ReadonlyMap<number, string>
  readonly interval: UploadInterval
  /** The whole gather returns within this (reference: 600 s). */
  readonly timeout: Duration.DurationInput
  /** How long one peer is polled (reference: 90 s). */
  readonly perPeerTimeout?: Duration.DurationInput
  /** Poll period for an object that is not there yet (reference: 0.5 s). */
  readonly pollInterval?: Duration.DurationInput
  /** Store requests in flight at once, over all peers. */
  readonly concurrency?: number
  /** First and largest delay between retries of transient errors (exponential in between). */
  readonly retryBase?: Duration.DurationInput
  readonly retryMax?: Duration.DurationInput
  /**
   * Largest sealed object accepted per peer (the legal wire size of an update plus its envelope):
   * a larger one is reported in `tooLarge` and never read past the cap.
   */
  readonly maxBytes?: number
  /** Called as soon as a peer's outcome is known, before the gather returns (live progress). */
  readonly onOutcome?: (uid: number, outcome: GatherOutcome) => void
}

/** What became of one peer's object: the field of `GatherResult` it is reported in. */
export type GatherOutcome = "delivered" | "missing" | "tooEarly" | "tooLate" | "unavailable" | "badSignature" | "tooLarge" | "unknownPeer"

/** Every requested uid ends in exactly one of these. */
export interface GatherResult {
  readonly delivered: ReadonlyMap<number, Delivered>
  /** Not there when the peer's polling ended. */
  readonly missing: ReadonlyArray<number>
  /** Stored before / after the upload interval (value: the store time). */
  readonly tooEarly: ReadonlyMap<number, number>
  readonly tooLate: ReadonlyMap<number, number>
  /** The store failed or refused (value: the reason of the last failure). */
  readonly unavailable: ReadonlyMap<number, string>
  /** Malformed, tampered, replayed or signed by another key (value: why). */
  readonly badSignature: ReadonlyMap<number, string>
  /** Larger than `maxBytes` (value: the size announced, or read when cut off). */
  readonly tooLarge: ReadonlyMap<number, number>
  /** No bucket location or no hotkey known for the uid. */
  readonly unknownPeer: ReadonlyArray<number>
  readonly elapsedMs: number
}

type Outcome =
  | { readonly _tag: "Delivered"; readonly value: Delivered }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "TooEarly" | "TooLate"; readonly storeTime: number }
  | { readonly _tag: "Unavailable" | "BadSignature"; readonly reason: string }
  | { readonly _tag: "UnknownPeer" }
  | { readonly _tag: "TooLarge"; readonly size: number }

const describe = (error: StoreError): string => {
  switch (error._tag) {
    case "Unavailable":
    case "Unauthorized":
      return `${error._tag}: ${error.reason}`
    case "InvalidKey":
      return `InvalidKey: ${error.reason}`
    case "NotFound":
      return "NotFound"
    case "InvalidRange":
      return "InvalidRange"
    case "TooLarge":
      return `TooLarge: ${error.size} > ${error.maxBytes} bytes`
  }
}

/**
 * Gathers the peers' updates of a window: polls each object until it appears, its peer's time
 * is up, or the gather's deadline; accepts it only if its store time lies in the upload
 * interval and its envelope verifies against the uid's hotkey. A store that is down makes the
 * gather return what arrived, reporting the rest, by its deadline.
 */
export const gather = (options: GatherOptions): Effect.Effect<GatherResult, InvalidKey, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const kind = options.kind ?? "gradient"
    // A window or version that cannot name an object fails the gather; a bad uid is an unknown peer.
    yield* tryKey(() => updateKey(kind, options.window, 0, options.version))
    const begin = yield* Clock.currentTimeMillis
    const timeoutMs = Duration.toMillis(options.timeout)
    const deadline = begin + timeoutMs
    const perPeerMs = Duration.toMillis(options.perPeerTimeout ?? Duration.seconds(90))
    const pollMs = Duration.toMillis(options.pollInterval ?? Duration.millis(500))
    const retryBaseMs = Duration.toMillis(options.retryBase ?? Duration.millis(100))
    const retryMaxMs = Duration.toMillis(options.retryMax ?? Duration.seconds(2))
    const requests = yield* Effect.makeSemaphore(Math.max(1, options.concurrency ?? 16))
    const limited = <A, E>(effect: Effect.Effect<A, E>) => requests.withPermits(1)(effect)

    const gatherOne = (uid: number): Effect.Effect<Outcome> => {
      const at = options.locations.get(uid)
      const hotkey = options.hotkeys.get(uid)
      const validKey = tryKey(() => updateKey(kind, options.window, uid, options.version))
      if (at === undefined || hotkey === undefined || Either.isLeft(validKey)) return Effect.succeed({ _tag: "UnknownPeer" })
      const key = validKey.right
      const context: EnvelopeContext = { runId: options.runId, window: options.window, uid, kind }
      // What the gather reports for this peer if its time runs out now.
      let last: Outcome = { _tag: "Missing" }
      let failures = 0
      const backoff = () => Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(failures - 1, 30))

      /** Runs a store request; transient failures are retried with exponential backoff (until the peer's time is up). */
      const withRetry = <A>(request: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
        Effect.catchAll(limited(request), (error) => {
          if (!isTransient(error)) return Effect.fail(error)
          failures += 1
          last = { _tag: "Unavailable", reason: describe(error) }
          return Effect.zipRight(Effect.sleep(Duration.millis(backoff())), Effect.suspend(() => withRetry(request)))
        })

      /** Polls until the object is there, then judges it; runs until it has an outcome or is timed out. */
      const poll: Effect.Effect<Outcome> = Effect.gen(function* () {
        let found = yield* Effect.either(withRetry(transport.head(at, key)))
        while (Either.isLeft(found) && found.left._tag === "NotFound") {
          failures = 0
          last = { _tag: "Missing" }
          yield* Effect.sleep(Duration.millis(pollMs))
          found = yield* Effect.either(withRetry(transport.head(at, key)))
        }
        if (Either.isLeft(found)) return { _tag: "Unavailable", reason: describe(found.left) } satisfies Outcome
        // The cheap head answers too early / too late without downloading.
        const headInInterval = checkStoreTime(key, found.right.storeTime, options.interval, transport.timeResolutionMs)
        if (Either.isLeft(headInInterval)) return { _tag: headInInterval.left._tag, storeTime: headInInterval.left.storeTime } satisfies Outcome
        const cap = options.maxBytes
        if (cap !== undefined && found.right.size > cap) return { _tag: "TooLarge", size: found.right.size } satisfies Outcome
        last = { _tag: "Unavailable", reason: "deadline reached while downloading" }
        const sealed = yield* Effect.either(withRetry(transport.getWithInfo(at, key, cap === undefined ? undefined : { maxBytes: cap })))
        if (Either.isLeft(sealed)) {
          if (sealed.left._tag === "TooLarge") return { _tag: "TooLarge", size: sealed.left.size } satisfies Outcome
          // Deleted between head and get: it is no longer there.
          return sealed.left._tag === "NotFound" ? { _tag: "Missing" } satisfies Outcome : { _tag: "Unavailable", reason: describe(sealed.left) } satisfies Outcome
        }
        // Checked again on the downloaded version: an on-time placeholder replaced later by
        // another object must not lend that object its timestamp.
        const { bytes, info } = sealed.right
        const inInterval = checkStoreTime(key, info.storeTime, options.interval, transport.timeResolutionMs)
        if (Either.isLeft(inInterval)) return { _tag: inInterval.left._tag, storeTime: inInterval.left.storeTime } satisfies Outcome
        const payload = openEnvelope(bytes, context, hotkey)
        return Either.isLeft(payload)
          ? { _tag: "BadSignature", reason: payload.left.reason } satisfies Outcome
          : { _tag: "Delivered", value: { bytes: payload.right, storeTime: info.storeTime } } satisfies Outcome
      })

      return Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const budget = Math.max(0, Math.min(perPeerMs, deadline - now))
        const outcome = yield* Effect.timeoutOption(poll, Duration.millis(budget))
        return outcome._tag === "Some" ? outcome.value : last
      })
    }

    const reported: Record<Outcome["_tag"], GatherOutcome> = {
      Delivered: "delivered", Missing: "missing", TooEarly: "tooEarly", TooLate: "tooLate",
      Unavailable: "unavailable", BadSignature: "badSignature", TooLarge: "tooLarge", UnknownPeer: "unknownPeer",
    }
    const report = (uid: number, outcome: Outcome) => Effect.sync(() => options.onOutcome?.(uid, reported[outcome._tag]))
    const uids = [...new Set(options.uids)]
    const outcomes = yield* Effect.forEach(uids, (uid) => gatherOne(uid).pipe(Effect.tap((o) => report(uid, o)), Effect.map((o) => [uid, o] as const)), { concurrency: "unbounded" })

    const delivered = new Map<number, Delivered>()
    const missing: Array<number> = []
    const tooEarly = new Map<number, number>()
    const tooLate = new Map<number, number>()
    const unavailable = new Map<number, string>()
    const badSignature = new Map<number, string>()
    const tooLarge = new Map<number, number>()
    const unknownPeer: Array<number> = []
    for (const [uid, outcome] of outcomes) {
      switch (outcome._tag) {
        case "Delivered": delivered.set(uid, outcome.value); break
        case "Missing": missing.push(uid); break
        case "TooEarly": tooEarly.set(uid, outcome.storeTime); break
        case "TooLate": tooLate.set(uid, outcome.storeTime); break
        case "Unavailable": unavailable.set(uid, outcome.reason); break
        case "BadSignature": badSignature.set(uid, outcome.reason); break
        case "UnknownPeer": unknownPeer.push(uid); break
        case "TooLarge": tooLarge.set(uid, outcome.size); break
      }
    }
    const end = yield* Clock.currentTimeMillis
    return { delivered, missing, tooEarly, tooLate, unavailable, badSignature, tooLarge, unknownPeer, elapsedMs: end - begin }
  })

export interface PruneOptions {
  readonly at: BucketLocation
  readonly uid: number
  readonly currentWindow: number
  /** Keep this many most recent windows (reference: 100). */
  readonly keepWindows?: number
}

/** Deletes this uid's own updates and debug slices older than `keepWindows` windows; returns the deleted keys. */
export const prune = (options: PruneOptions): Effect.Effect<ReadonlyArray<string>, StoreError, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const oldestKept = options.currentWindow - (options.keepWindows ?? 100)
    const listed = [
      ...(yield* transport.list(options.at, kindPrefix("gradient"))),
      ...(yield* transport.list(options.at, kindPrefix("debug"))),
    ]
    const stale = listed.map((o) => o.key).filter((key) => {
      const parsed = parseKey(key)
      return Either.isRight(parsed) && (parsed.right.kind === "gradient" || parsed.right.kind === "debug") &&
        parsed.right.uid === options.uid && parsed.right.window < oldestKept
    })
    yield* Effect.forEach(stale, (key) => transport.delete(options.at, key), { concurrency: 8, discard: true })
    return stale
  })

export interface ActivePeersOptions {
  readonly uids: ReadonlyArray<number>
  readonly locations: ReadonlyMap<number, BucketLocation>
  readonly version: string
  readonly currentWindow: number
  /** A peer is active if it uploaded in this many most recent windows, the current one included (reference: 2). */
  readonly windows?: number
  readonly concurrency?: number
}

/** The uids with a gradient in one of the last `windows` windows; unreachable stores count as inactive. */
export const activePeers = (options: ActivePeersOptions): Effect.Effect<ReadonlySet<number>, never, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const windows = Array.from({ length: options.windows ?? 2 }, (_, i) => options.currentWindow - i).filter((w) => w >= 0)
    const active = yield* Effect.forEach(options.uids, (uid) => {
      const at = options.locations.get(uid)
      if (at === undefined) return Effect.succeed(false)
      return Effect.exists(windows, (window) =>
        Either.match(tryKey(() => gradientKey(window, uid, options.version)), {
          onLeft: () => Effect.succeed(false),
          onRight: (key) => transport.head(at, key).pipe(Effect.as(true), Effect.orElseSucceed(() => false)),
        }))
    }, { concurrency: options.concurrency ?? 16 })
    return new Set(options.uids.filter((_, i) => active[i]))
  })
