/**
 * The run's objects on the transport, addressed through what the chain says: each uid's bucket
 * (its commitment) and hotkey, the leader (leader.ts: the highest-stake permit holder that
 * publishes the run), and the leader's start
 * window, peer lists, aggregation records and debug slices.
 */
import { Clock, Duration, Effect, Either, Option, Schema } from "effect"
import { Chain } from "@covenant/chain"
import type { Commitment, Identity } from "@covenant/chain"
import {
  aggregatorKey, fetchSigned, gather, parseKey, peersKey, publishSigned, publishUpdate, startWindowKey, Transport, uploadInterval,
} from "@covenant/transport"
import type { BucketLocation, GatherResult } from "@covenant/transport"
import type { RunSpec } from "@covenant/dsl"
import { RuntimeError, type RuntimeFailure, inPhase, isRuntimeFailure } from "../errors.ts"
import { leaderCandidates } from "./leader.ts"
import { describeRejections, rejectionsOf } from "./rejections.ts"
import type { Rejections } from "./rejections.ts"
import { gatherSlackMs } from "./keep-up.ts"
import { updateCap } from "./admission.ts"
import { modelManifest } from "./manifest.ts"

const capOf = (maxBytes: number | undefined) => (maxBytes === undefined ? {} : { maxBytes })

/** What a node knows of one registered uid. */
export interface Participant {
  readonly uid: number
  readonly hotkey: string
  readonly stake: number
  readonly validatorPermit: boolean
  readonly location: BucketLocation | undefined
}

export interface Directory {
  readonly participants: ReadonlyMap<number, Participant>
  readonly leader: Participant | undefined
}

/** A commitment as the transport's bucket location (a filesystem commitment names the bucket folder). */
export const locationOf = (c: Commitment): BucketLocation =>
  c._tag === "Filesystem"
    ? { bucket: c.dir }
    : { bucket: c.bucket, endpoint: c.endpoint, region: c.region, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, forcePathStyle: true }

/** The highest-stake permit holder with a committed bucket (lowest uid on ties); see leader.ts for who actually leads. */
export const leaderOf = (ps: Iterable<Participant>): Participant | undefined => leaderCandidates(ps)[0]

/**
 * The participants, and the leader: the highest-stake permit holder with a committed bucket that
 * has published a start window (leader.ts); `undefined` until one has. A bucket whose store is
 * unavailable counts as publishing, so a store hiccup does not move the lead; one that refuses us
 * or does not exist does not.
 */
export const readDirectory: Effect.Effect<Directory, RuntimeFailure, Chain | Transport> = Effect.gen(function* () {
  const chain = yield* Chain
  const graph = yield* Effect.mapError(chain.refreshMetagraph, inPhase("metagraph"))
  const commitments = yield* Effect.mapError(chain.commitments, inPhase("commitments"))
  const byHotkey = new Map<string, BucketLocation>()
  for (const c of commitments) if (Either.isRight(c.commitment)) byHotkey.set(c.hotkey, locationOf(c.commitment.right))
  const participants = new Map<number, Participant>()
  for (const n of graph.neurons) {
    participants.set(n.uid, { uid: n.uid, hotkey: n.hotkey, stake: n.stake, validatorPermit: n.validatorPermit, location: byHotkey.get(n.hotkey) })
  }
  const transport = yield* Transport
  const publishes = (p: Participant) =>
    p.location === undefined
      ? Effect.succeed(false)
      : Effect.catchAll(Effect.map(transport.list(p.location, "start_window_"), (objects) => objects.length > 0), (e) =>
          // Only a store that is down leaves it open; a bucket we may not read (or that is not there) runs no leader.
          Effect.succeed(e._tag === "Unavailable"))
  const leader = yield* Effect.findFirst(leaderCandidates(participants.values()), publishes)
  return { participants, leader: Option.getOrUndefined(leader) }
})

/** The run's identity on the store: the run id signs into every envelope, the version into every key. */
export interface RunAddress {
  readonly runId: string
  readonly version: string
}

export const runAddress = (spec: RunSpec, version = "1"): RunAddress => ({ runId: spec.name, version })

/** Registers this identity (if needed), makes its bucket and commits its location. Returns its uid. */
export const joinNetwork = (own: BucketLocation, commitment: Commitment): Effect.Effect<number, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const chain = yield* Chain
    const transport = yield* Transport
    yield* Effect.mapError(transport.ensureBucket(own), inPhase("bucket"))
    const known = yield* Effect.mapError(chain.uid, inPhase("register"))
    const uid = known ?? (yield* Effect.mapError(chain.register, inPhase("register")))
    const commitments = yield* Effect.mapError(chain.commitments, inPhase("commit"))
    const mine = commitments.find((c) => c.hotkey === chain.identity.hotkey.address)
    const same = mine !== undefined && Either.isRight(mine.commitment) && JSON.stringify(mine.commitment.right) === JSON.stringify(commitment)
    if (!same) yield* Effect.mapError(chain.commit(commitment), inPhase("commit"))
    return uid
  })

// ---------------------------------------------------------------- leader's small JSON objects

const StartWindow = Schema.parseJson(Schema.Struct({ startWindow: Schema.Int.pipe(Schema.nonNegative()) }))
const PeerList = Schema.parseJson(Schema.Struct({
  firstEffectiveWindow: Schema.Int.pipe(Schema.nonNegative()),
  peers: Schema.Array(Schema.Int.pipe(Schema.nonNegative())),
  reserve: Schema.Array(Schema.Int.pipe(Schema.nonNegative())),
}))
/**
 * A node's parameter slice for a window (round/params.ts). Its object kind and key stay the
 * reference's `debug-{window}-{uid}-v{version}` (transport keys.ts, protocol.md), the on-store format.
 */
const ParamSlice = Schema.parseJson(Schema.Struct({
  window: Schema.Int.pipe(Schema.nonNegative()),
  digest: Schema.String,
  values: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.Number) }),
}))
export type ParamSlice = typeof ParamSlice.Type

const utf8 = (value: string) => new TextEncoder().encode(value)
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

const decodeJson = <A>(schema: Schema.Schema<A, string>, bytes: Uint8Array, what: string): Either.Either<A, RuntimeFailure> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema)(text(bytes)), (e) => new RuntimeError({ phase: what, reason: e.message }))

const requireLeader = (dir: Directory): Effect.Effect<Participant & { readonly location: BucketLocation }, RuntimeFailure> => {
  const leader = dir.leader
  return leader === undefined || leader.location === undefined
    ? Effect.fail(new RuntimeError({ phase: "leader", reason: "no leader: no validator with a permit and a committed bucket has published the run's start window" }))
    : Effect.succeed({ ...leader, location: leader.location })
}

/** Reads a signed object of the leader; `undefined` when it is not there (yet). */
const fetchFromLeader = (dir: Directory, address: RunAddress, key: string, window: number, kind: string) =>
  Effect.gen(function* () {
    const leader = yield* requireLeader(dir)
    const got = yield* Effect.either(fetchSigned({ at: leader.location, key, context: { runId: address.runId, window, uid: leader.uid, kind }, hotkey: leader.hotkey }))
    if (Either.isRight(got)) return got.right.bytes
    if (got.left._tag === "NotFound") return undefined
    return yield* new RuntimeError({ phase: kind, reason: `${got.left._tag} reading ${key}` })
  })

export interface Publisher {
  readonly identity: Identity
  readonly uid: number
  readonly own: BucketLocation
}

const publishJson = (me: Publisher, address: RunAddress, key: string, window: number, kind: string, json: unknown) =>
  Effect.mapError(
    publishSigned({ at: me.own, key, context: { runId: address.runId, window, uid: me.uid, kind }, payload: utf8(JSON.stringify(json)), signer: me.identity.hotkey }),
    inPhase(kind),
  )

export const publishStartWindow = (me: Publisher, address: RunAddress, startWindow: number) =>
  publishJson(me, address, startWindowKey(address.version), 0, "start_window", { startWindow })

export const fetchStartWindow = (dir: Directory, address: RunAddress): Effect.Effect<number | undefined, RuntimeFailure, Transport> =>
  Effect.flatMap(fetchFromLeader(dir, address, startWindowKey(address.version), 0, "start_window"), (bytes) =>
    bytes === undefined ? Effect.succeed(undefined) : Effect.map(decodeJson(StartWindow, bytes, "start_window"), (s) => s.startWindow))

export const publishPeerList = (me: Publisher, address: RunAddress, firstEffectiveWindow: number, peers: readonly number[], reserve: readonly number[]) =>
  publishJson(me, address, peersKey(firstEffectiveWindow, address.version), firstEffectiveWindow, "peers", { firstEffectiveWindow, peers, reserve })

/**
 * The peer list (peers in rank order, then reserves) in force at `window`, among the lists the
 * leader stored before the window began (surely: store time plus the store's timestamp
 * resolution): a list that lands late takes effect one window later on every node alike,
 * instead of on the nodes that happened to read after it landed.
 */
export const peerListAt = (dir: Directory, address: RunAddress, window: number): Effect.Effect<{ readonly peers: ReadonlyArray<number>; readonly reserve: ReadonlyArray<number> }, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const chain = yield* Chain
    const startsAt = yield* Effect.mapError(chain.windowStartTime(window), inPhase("peers"))
    return yield* readPeerList(dir, address, window, startsAt)
  })

/** The latest list the leader published for windows <= `window`, whenever it was stored. */
export const peerListPublished = (dir: Directory, address: RunAddress, window: number) => readPeerList(dir, address, window, Number.POSITIVE_INFINITY)

const readPeerList = (dir: Directory, address: RunAddress, window: number, storedBefore: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const leader = yield* requireLeader(dir)
    const listed = yield* Effect.mapError(transport.list(leader.location, "peers_"), inPhase("peers"))
    // The first list counts whenever it was stored: the leader stores it before the start window, which every node reads first.
    const lists = listed.flatMap((o) => {
      const parsed = parseKey(o.key)
      return Either.isRight(parsed) && parsed.right.kind === "peers" && parsed.right.version === address.version ? [{ window: parsed.right.window, storeTime: o.storeTime }] : []
    })
    const first = Math.min(...lists.map((l) => l.window))
    let best = -1
    for (const l of lists) {
      if (l.window <= window && (l.window === first || l.storeTime + transport.timeResolutionMs <= storedBefore)) best = Math.max(best, l.window)
    }
    const none = { peers: [] as ReadonlyArray<number>, reserve: [] as ReadonlyArray<number> }
    if (best < 0) return none
    const bytes = yield* fetchFromLeader(dir, address, peersKey(best, address.version), best, "peers")
    if (bytes === undefined) return none
    const list = yield* decodeJson(PeerList, bytes, "peers")
    return { peers: list.peers, reserve: list.reserve }
  })

export const publishRecord = (me: Publisher, address: RunAddress, window: number, bytes: Uint8Array) =>
  Effect.mapError(
    publishSigned({ at: me.own, key: aggregatorKey(window, address.version), context: { runId: address.runId, window, uid: me.uid, kind: "aggregator" }, payload: bytes, signer: me.identity.hotkey }),
    inPhase("aggregator"),
  )

export const fetchRecord = (dir: Directory, address: RunAddress, window: number) =>
  fetchFromLeader(dir, address, aggregatorKey(window, address.version), window, "aggregator")

export const publishParamSlice = (me: Publisher, address: RunAddress, slice: ParamSlice) =>
  Effect.mapError(
    publishUpdate({ at: me.own, runId: address.runId, version: address.version, window: slice.window, uid: me.uid, kind: "debug", payload: utf8(JSON.stringify(slice)), signer: me.identity.hotkey }),
    inPhase("debug"),
  )

export const fetchLeaderSlice = (dir: Directory, address: RunAddress, window: number): Effect.Effect<ParamSlice | undefined, RuntimeFailure, Transport> =>
  Effect.gen(function* () {
    const leader = yield* requireLeader(dir)
    const bytes = yield* fetchFromLeader(dir, address, `debug-${window}-${leader.uid}-v${address.version}`, window, "debug")
    return bytes === undefined ? undefined : yield* decodeJson(ParamSlice, bytes, "debug")
  })

/** A peer's own parameter slice for `window` (published with its update), or undefined. */
export const fetchPeerSlice = (dir: Directory, address: RunAddress, window: number, uid: number): Effect.Effect<ParamSlice | undefined, RuntimeFailure, Transport> =>
  Effect.gen(function* () {
    const who = dir.participants.get(uid)
    if (who?.location === undefined) return undefined
    const got = yield* Effect.either(fetchSigned({ at: who.location, key: `debug-${window}-${uid}-v${address.version}`, context: { runId: address.runId, window, uid, kind: "debug" }, hotkey: who.hotkey }))
    if (Either.isLeft(got)) return undefined
    const slice = decodeJson(ParamSlice, got.right.bytes, "debug")
    return Either.isRight(slice) && slice.right.window === window ? slice.right : undefined
  })

export const publishGradient = (me: Publisher, address: RunAddress, window: number, payload: Uint8Array) =>
  Effect.mapError(
    publishUpdate({ at: me.own, runId: address.runId, version: address.version, window, uid: me.uid, payload, signer: me.identity.hotkey }),
    inPhase("publish"),
  )

/**
 * Gathers `uids`' updates of `window`, polling until the upload interval has closed (plus the
 * store's timestamp resolution and two polls): whatever landed inside the interval is then seen
 * by every node, so all nodes gather the same set. A download under way then has the spec's
 * per-object (and whole-gather) timeout to finish, so a large update is not cut off on one node
 * and kept on another. `refused` says which peers landed outside the interval (and by how much)
 * or could not be read or verified.
 */
export const gatherWindow = (
  dir: Directory,
  address: RunAddress,
  spec: RunSpec,
  window: number,
  uids: ReadonlyArray<number>,
): Effect.Effect<GatherResult & { readonly refused: Rejections }, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const chain = yield* Chain
    const transport = yield* Transport
    const p = spec.participation
    const start = yield* Effect.mapError(chain.windowStartTime(window + 1), inPhase("gather"))
    const interval = uploadInterval(start, p.uploadWindowMs)
    const slack = gatherSlackMs(p, transport.timeResolutionMs)
    const wait = Math.max(0, interval.end + slack - (yield* Clock.currentTimeMillis))
    const locations = new Map<number, BucketLocation>()
    const hotkeys = new Map<number, string>()
    for (const uid of uids) {
      const who = dir.participants.get(uid)
      if (who?.location !== undefined) {
        locations.set(uid, who.location)
        hotkeys.set(uid, who.hotkey)
      }
    }
    const got = yield* gather({
      runId: address.runId,
      version: address.version,
      window,
      uids,
      locations,
      hotkeys,
      interval,
      // Past the interval's close nothing new can count, but a download under way may still finish:
      // within perObjectTimeoutMs for one object, totalTimeoutMs for the whole gather.
      timeout: Duration.millis(Math.max(wait, slack) + p.gather.totalTimeoutMs),
      perPeerTimeout: Duration.millis(Math.max(wait, slack) + p.gather.perObjectTimeoutMs),
      pollInterval: Duration.millis(p.gather.pollIntervalMs),
      ...capOf(updateCap(spec, modelManifest(spec.model), address, window)),
    })
    const refused = rejectionsOf(got, interval)
    const line = describeRejections(window, refused, p.uploadWindowMs)
    if (line !== undefined) yield* Effect.logWarning(line)
    return { ...got, refused }
  }).pipe(Effect.mapError((e) => (isRuntimeFailure(e) ? e : inPhase("gather")(e))))
