/**
 * The run's objects on the transport, addressed through what the chain says: each uid's bucket
 * and declared role (its commitment) and hotkey, the leader (leader.ts: the highest-stake declared
 * validator with a permit that publishes the run), and the leader's start
 * window, peer lists, aggregation records and debug slices.
 */
import { Clock, Duration, Effect, Either, Schema } from "effect"
import { Chain } from "@covenant/chain"
import type { Commitment, CommitmentLocation, Identity, Role } from "@covenant/chain"
import {
  aggregatorKey, fetchSigned, gather, parseKey, peersKey, publishSigned, publishUpdate, startWindowKey, Transport, uploadInterval,
} from "@covenant/transport"
import type { BucketLocation, GatherResult } from "@covenant/transport"
import type { RunSpec } from "@covenant/dsl"
import { RuntimeError, type RuntimeFailure, inPhase, isRuntimeFailure } from "../errors.ts"
import { chooseFreshLeader, isFresh, leaderCandidates, readSources } from "./leader.ts"
import type { Publishing } from "./leader.ts"
import { currentWindow } from "./clock.ts"
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
  /** What its commitment declares it runs; a uid that committed nothing (readable) counts as a peer, as an old commitment does. */
  readonly role: Role
}

export interface Directory {
  readonly participants: ReadonlyMap<number, Participant>
  /** The highest-ranked fresh publisher (leader.ts); `undefined` while none is. */
  readonly leader: Participant | undefined
  /** The candidates that published the run's start window, ranked, down to the leader (stale ones above it); absent = none. */
  readonly publishers?: ReadonlyArray<Publishing>
}

/** A commitment as the transport's bucket location (a filesystem commitment names the bucket folder). */
export const locationOf = (c: CommitmentLocation): BucketLocation =>
  c._tag === "Filesystem"
    ? { bucket: c.dir }
    : { bucket: c.bucket, endpoint: c.endpoint, region: c.region, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, forcePathStyle: true }

/** The highest-stake declared validator with a permit and a committed bucket (lowest uid on ties); see leader.ts for who actually leads. */
export const leaderOf = (ps: Iterable<Participant>): Participant | undefined => leaderCandidates(ps)[0]

/**
 * The participants, and the leader of `window` (default: the live one): the highest-ranked
 * candidate (declared validator + permit + committed bucket) whose start window is stored in its bucket and was last
 * stored (its heartbeat, leader.ts) no more than LEADER_STALE_WINDOWS windows before; `undefined`
 * while none is. A bucket whose store is unavailable counts as fresh, so a store hiccup does not
 * move the lead; one that refuses us or does not exist does not publish.
 */
export const readDirectoryAt = (window: number): Effect.Effect<Directory, RuntimeFailure, Chain | Transport> => Effect.gen(function* () {
  const chain = yield* Chain
  const graph = yield* Effect.mapError(chain.refreshMetagraph, inPhase("metagraph"))
  const commitments = yield* Effect.mapError(chain.commitments, inPhase("commitments"))
  const byHotkey = new Map<string, Commitment>()
  for (const c of commitments) if (Either.isRight(c.commitment)) byHotkey.set(c.hotkey, c.commitment.right)
  const participants = new Map<number, Participant>()
  for (const n of graph.neurons) {
    const committed = byHotkey.get(n.hotkey)
    participants.set(n.uid, {
      uid: n.uid, hotkey: n.hotkey, stake: n.stake, validatorPermit: n.validatorPermit,
      location: committed === undefined ? undefined : locationOf(committed), role: committed?.role ?? "peer",
    })
  }
  const transport = yield* Transport
  // The window a store time falls in, on the chain's window clock: from the start of `window` and
  // the length of the one before (both already produced; a later window's start is not known yet).
  // Exact at the staleness threshold K windows back up to the block times' jitter, and the same on
  // every node judging `window` (chain facts and store stamps).
  const startsAt = yield* Effect.mapError(chain.windowStartTime(window), inPhase("leader"))
  const windowMs = window < 1 ? undefined : startsAt - (yield* Effect.mapError(chain.windowStartTime(window - 1), inPhase("leader")))
  const windowAt = (ms: number) => (windowMs === undefined || windowMs <= 0 ? window : window + Math.floor((ms - startsAt) / windowMs))
  const heartbeats = new Map<number, number | undefined>()
  for (const p of leaderCandidates(participants.values())) {
    if (p.location === undefined) continue
    const listed = yield* Effect.either(transport.list(p.location, "start_window_"))
    // Only a store that is down leaves it open (fresh); a bucket we may not read (or that is not there) runs no leader.
    const heartbeat = Either.isLeft(listed)
      ? (listed.left._tag === "Unavailable" ? window : undefined)
      : listed.right.length === 0 ? undefined : windowAt(Math.max(...listed.right.map((o) => o.storeTime)))
    heartbeats.set(p.uid, heartbeat)
    // Candidates below a fresh one are not needed: stop listing there.
    if (heartbeat !== undefined && isFresh(heartbeat, window)) break
  }
  const { leader, publishers } = chooseFreshLeader(leaderCandidates(participants.values()), (p) => heartbeats.get(p.uid), window)
  return { participants, leader, publishers }
})

/** The directory as of the live window. */
export const readDirectory: Effect.Effect<Directory, RuntimeFailure, Chain | Transport> = Effect.flatMap(currentWindow, readDirectoryAt)

/** The run's identity on the store: the run id signs into every envelope, the version into every key. */
export interface RunAddress {
  readonly runId: string
  readonly version: string
}

export const runAddress = (spec: RunSpec, version = "1"): RunAddress => ({ runId: spec.name, version })

/** Registers this identity (if needed), makes its bucket and commits its location with the role it runs. Returns its uid. */
export const joinNetwork = (own: BucketLocation, location: CommitmentLocation, role: Role): Effect.Effect<number, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const commitment: Commitment = { ...location, role }
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

const noLeader = () => new RuntimeError({ phase: "leader", reason: "no leader: no declared validator with a permit has published the run's start window" })

/** The leader and the stale publishers it replaced, each with its bucket (leader.ts readSources). */
const sourcesOf = (dir: Directory) => readSources(dir).flatMap((p) => (p.location === undefined ? [] : [{ ...p, location: p.location }]))

/** Reads a signed object of the leader, else of the publisher before it that has it (records of windows before a takeover); `undefined` when none has it (yet). */
const fetchFromLeader = (dir: Directory, address: RunAddress, key: string | ((uid: number) => string), window: number, kind: string) =>
  Effect.gen(function* () {
    const sources = sourcesOf(dir)
    if (sources.length === 0) return yield* noLeader()
    for (const source of sources) {
      const at = typeof key === "string" ? key : key(source.uid)
      const got = yield* Effect.either(fetchSigned({ at: source.location, key: at, context: { runId: address.runId, window, uid: source.uid, kind }, hotkey: source.hotkey }))
      if (Either.isRight(got)) return got.right.bytes
      if (got.left._tag !== "NotFound") return yield* new RuntimeError({ phase: kind, reason: `${got.left._tag} reading ${at}` })
    }
    return undefined
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

/**
 * The lists of every source (the leader and the stale publishers it replaced), by window: a list
 * a new leader republished on takeover counts from where it was first stored, so a window reads
 * the same list whichever leader a node saw.
 */
const listedPeerLists = (dir: Directory, address: RunAddress) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const sources = sourcesOf(dir)
    if (sources.length === 0) return yield* noLeader()
    const byWindow = new Map<number, { storeTime: number; source: (typeof sources)[number] }>()
    for (const source of sources) {
      const listing = Effect.mapError(transport.list(source.location, "peers_"), inPhase("peers"))
      // A stale leader's bucket that cannot be listed any more is skipped: the new leader republished its lists.
      const listed = yield* (source.uid === dir.leader?.uid ? listing : Effect.orElseSucceed(listing, () => []))
      for (const o of listed) {
        const parsed = parseKey(o.key)
        if (!Either.isRight(parsed) || parsed.right.kind !== "peers" || parsed.right.version !== address.version) continue
        const known = byWindow.get(parsed.right.window)
        if (known === undefined || o.storeTime < known.storeTime) byWindow.set(parsed.right.window, { storeTime: o.storeTime, source })
      }
    }
    return byWindow
  })

const fetchPeerList = (source: Participant & { readonly location: BucketLocation }, address: RunAddress, window: number) =>
  Effect.gen(function* () {
    const got = yield* Effect.either(fetchSigned({ at: source.location, key: peersKey(window, address.version), context: { runId: address.runId, window, uid: source.uid, kind: "peers" }, hotkey: source.hotkey }))
    if (Either.isLeft(got)) return got.left._tag === "NotFound" ? undefined : yield* new RuntimeError({ phase: "peers", reason: `${got.left._tag} reading ${peersKey(window, address.version)}` })
    return yield* decodeJson(PeerList, got.right.bytes, "peers")
  })

const readPeerList = (dir: Directory, address: RunAddress, window: number, storedBefore: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const lists = yield* listedPeerLists(dir, address)
    // The first list counts whenever it was stored: the leader stores it before the start window, which every node reads first.
    const first = Math.min(...lists.keys())
    let best = -1
    for (const [w, l] of lists) {
      if (w <= window && (w === first || l.storeTime + transport.timeResolutionMs <= storedBefore)) best = Math.max(best, w)
    }
    const none = { peers: [] as ReadonlyArray<number>, reserve: [] as ReadonlyArray<number> }
    if (best < 0) return none
    const list = yield* fetchPeerList(lists.get(best)!.source, address, best)
    return list === undefined ? none : { peers: list.peers, reserve: list.reserve }
  })

/**
 * On takeover: stores, in `me`'s bucket, the peer lists of the publishers it replaces that it
 * lacks (same windows and content), so the list in force stays readable from the new leader even
 * once the old one's bucket is gone. Returns the windows copied.
 */
export const republishPeerLists = (me: Publisher, dir: Directory, address: RunAddress): Effect.Effect<ReadonlyArray<number>, RuntimeFailure, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const lists = yield* listedPeerLists(dir, address)
    const mine = yield* Effect.mapError(transport.list(me.own, "peers_"), inPhase("peers"))
    const have = new Set(mine.map((o) => o.key))
    const copied: number[] = []
    for (const [w, l] of [...lists].sort((a, b) => a[0] - b[0])) {
      if (l.source.uid === me.uid || have.has(peersKey(w, address.version))) continue
      const list = yield* fetchPeerList(l.source, address, w)
      if (list === undefined) continue
      yield* publishPeerList(me, address, w, list.peers, list.reserve)
      copied.push(w)
    }
    return copied
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
    const bytes = yield* fetchFromLeader(dir, address, (uid) => `debug-${window}-${uid}-v${address.version}`, window, "debug")
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
