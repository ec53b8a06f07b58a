/**
 * Peer behaviours: a plug-in that changes what one peer does in a window, for attacking the
 * protocol in one process. Honest = no behaviour. A behaviour has two optional hooks:
 *
 *   train(ctx)            -> which data the peer trains on this window: its own assignment (the
 *                            default), another (uid, window) assignment, or none at all. The
 *                            update still claims the peer's own assignment's sample digest.
 *   publish(ctx, update)  -> what the peer uploads instead of its honest update (decoded: meta +
 *                            WireTensor[]): another update (encoded and signed as this peer),
 *                            raw bytes (possibly malformed), or nothing. It runs once the upload
 *                            interval has opened, so it may read other peers' updates of the same
 *                            window from the store, and it may delay the upload (sleep).
 *
 * Everything else stays honest: the peer still gathers and takes the same outer step as every
 * node (so it keeps the canonical model to attack from), and its error feedback follows its
 * honest update. Behaviours are shared by every peer that runs them: keep them stateless, or key
 * any state by `ctx.uid`.
 *
 * A behaviour lives in a module whose default export is a `PeerBehaviour`; `loadBehaviour(path)`
 * imports one and checks its shape (see examples/behaviours/sign-flip.ts).
 */
import { Clock, Data, Effect, Either, ParseResult, Schema } from "effect"
import type { RunSpec } from "@covenant/dsl"
import type { Manifest, UpdateMessage } from "@covenant/sparseloco"
import type { UploadInterval } from "@covenant/transport"
import type { RunAddress } from "../node/network.ts"
import type { RuntimeFailure } from "../errors.ts"

/** What a behaviour knows when the peer is about to train window `window`. */
export interface TrainContext {
  /** The node's display name (peer-3). */
  readonly name: string
  readonly uid: number
  readonly hotkey: string
  readonly window: number
  readonly spec: RunSpec
  readonly address: RunAddress
  readonly manifest: Manifest
  /** The peer list in force this window (uids, ascending; may include this peer). */
  readonly peers: ReadonlyArray<number>
  /** The current time in ms since the epoch, from Effect's Clock (the store's time base). */
  readonly now: Effect.Effect<number>
}

/** What a behaviour knows when the peer uploads window `window`'s update. */
export interface PublishContext extends TrainContext {
  /** The store-time interval in which an upload of this window counts (later: too late). */
  readonly upload: UploadInterval
  /**
   * Another peer's (or this peer's own) update of a window, read from its bucket and verified
   * against its hotkey (not against the upload interval); undefined when it is not there (yet)
   * or does not verify or decode.
   */
  readonly readUpdate: (uid: number, window: number) => Effect.Effect<UpdateMessage | undefined, RuntimeFailure>
}

/** Which data the peer trains on this window. */
export type TrainingPlan =
  | { readonly _tag: "Own" }
  | { readonly _tag: "Assignment"; readonly uid: number; readonly window: number }
  | { readonly _tag: "Skip" }

/** What the peer uploads this window. */
export type Outgoing =
  /** This update, encoded and signed by this peer (its meta is sent as given). */
  | { readonly _tag: "Publish"; readonly update: UpdateMessage }
  /** These bytes, signed by this peer, as they are (they need not decode). */
  | { readonly _tag: "PublishBytes"; readonly bytes: Uint8Array }
  /** Nothing. */
  | { readonly _tag: "Withhold" }

export const TrainingPlan = {
  own: { _tag: "Own" } as TrainingPlan,
  skip: { _tag: "Skip" } as TrainingPlan,
  assignment: (uid: number, window: number): TrainingPlan => ({ _tag: "Assignment", uid, window }),
} as const

export const Outgoing = {
  publish: (update: UpdateMessage): Outgoing => ({ _tag: "Publish", update }),
  bytes: (bytes: Uint8Array): Outgoing => ({ _tag: "PublishBytes", bytes }),
  withhold: { _tag: "Withhold" } as Outgoing,
} as const

export interface PeerBehaviour {
  /** Short name, shown in summaries and reports (sign-flip, copycat, ...). */
  readonly name: string
  /** One line: what it does. */
  readonly description?: string
  /** Which data to train on (default: the peer's own assignment). */
  readonly train?: (ctx: TrainContext) => Effect.Effect<TrainingPlan, RuntimeFailure>
  /** What to upload instead of the honest update (default: the honest update). */
  readonly publish?: (ctx: PublishContext, honest: UpdateMessage) => Effect.Effect<Outgoing, RuntimeFailure>
}

/** The identity for type inference in behaviour files: `export default defineBehaviour({ ... })`. */
export const defineBehaviour = (behaviour: PeerBehaviour): PeerBehaviour => behaviour

/** A module that could not be loaded as a behaviour (not found, throws on import, wrong shape). */
export class BehaviourLoadError extends Data.TaggedError("BehaviourLoadError")<{
  readonly path: string
  readonly reason: string
}> {}

const Fn = Schema.declare((u: unknown): u is (...args: ReadonlyArray<unknown>) => unknown => typeof u === "function", {
  description: "a function",
})

/** The shape a behaviour module's default export must have (functions are checked to be functions). */
export const PeerBehaviourShape = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  description: Schema.optional(Schema.String),
  train: Schema.optional(Fn),
  publish: Schema.optional(Fn),
}).pipe(Schema.filter((b) => b.train !== undefined || b.publish !== undefined || "a behaviour has a train or a publish hook (or both)"))

/** Checks that `value` is a behaviour; the error says what is wrong. */
export const asBehaviour = (value: unknown, path = "<value>"): Either.Either<PeerBehaviour, BehaviourLoadError> =>
  Either.mapBoth(Schema.decodeUnknownEither(PeerBehaviourShape)(value), {
    onLeft: (e) => new BehaviourLoadError({ path, reason: ParseResult.TreeFormatter.formatErrorSync(e) }),
    // The schema checked the fields; the hooks' signatures are the module author's promise.
    onRight: () => value as PeerBehaviour,
  })

/** Imports a behaviour module (a .ts or .js path, absolute or relative to the working directory). */
export const loadBehaviour = (path: string): Effect.Effect<PeerBehaviour, BehaviourLoadError> =>
  Effect.gen(function* () {
    const { resolve } = yield* Effect.promise(() => import("node:path"))
    const { pathToFileURL } = yield* Effect.promise(() => import("node:url"))
    const url = pathToFileURL(resolve(path)).href
    const mod = yield* Effect.tryPromise({
      try: () => import(url) as Promise<Record<string, unknown>>,
      catch: (e) => new BehaviourLoadError({ path, reason: `cannot import: ${e instanceof Error ? e.message : String(e)}` }),
    })
    if (!("default" in mod) || mod["default"] === undefined) return yield* new BehaviourLoadError({ path, reason: "the module has no default export" })
    return yield* asBehaviour(mod["default"], path)
  })

/** Milliseconds from the context's clock until store time `at` (0 if past). */
export const msUntil = (ctx: Pick<TrainContext, "now">, at: number): Effect.Effect<number> => Effect.map(ctx.now, (now) => Math.max(0, at - now))

/** The store's time base, as behaviours see it. */
export const clockNow: Effect.Effect<number> = Clock.currentTimeMillis
