/**
 * The adversary catalogue: hostile (and one merely slow) peers, each a PeerBehaviour written
 * with the public interface, so a researcher's own behaviour file looks the same.
 */
import { Duration, Effect, Either } from "effect"
import type { UpdateMessage } from "@covenant/sparseloco"
import type { RuntimeFailure } from "../errors.ts"
import { encodeUpdate } from "../round/codec.ts"
import type { BehaviourLoadError, PeerBehaviour, PublishContext } from "./behaviour.ts"
import { defineBehaviour, loadBehaviour, msUntil, Outgoing, TrainingPlan } from "./behaviour.ts"
import { forgeHeader, noiseOfSameNorm, relabelled, scaled, signFlipped, withChunk, withShiftText, wrongShape, zeroed } from "./transforms.ts"

const orFail = <A>(e: Either.Either<A, RuntimeFailure>): Effect.Effect<A, RuntimeFailure> => e

/** The seed of a behaviour's randomness in a window: the run's seed, the uid and the window. */
const seedOf = (ctx: PublishContext): number => (ctx.spec.seed * 1_000_003 + ctx.uid * 65_537 + ctx.window) >>> 0

export const signFlip: PeerBehaviour = defineBehaviour({
  name: "sign-flip",
  description: "uploads the negated honest update",
  publish: (_ctx, honest) => Effect.succeed(Outgoing.publish(signFlipped(honest))),
})

export const scaledBy = (factor: number): PeerBehaviour =>
  defineBehaviour({
    name: factor === 1000 ? "scaled" : `scaled-x${factor}`,
    description: `uploads the honest update times ${factor}`,
    publish: (_ctx, honest) => Effect.succeed(Outgoing.publish(scaled(honest, factor))),
  })

export const noise: PeerBehaviour = defineBehaviour({
  name: "noise",
  description: "uploads random indices with the honest values shuffled: noise of exactly the honest norm",
  publish: (ctx, honest) => Effect.succeed(Outgoing.publish(noiseOfSameNorm(honest, seedOf(ctx)))),
})

/** Non-finite statistics: the encoder refuses them, so the bytes are forged (header rewritten, checksum fixed). */
const nonFinite = (name: string, text: string, value: number): PeerBehaviour =>
  defineBehaviour({
    name,
    description: `uploads the honest update with ${text} statistics (or values, for a dense run)`,
    publish: (_ctx, honest) =>
      Effect.gen(function* () {
        if (honest.tensors.every((t) => t.coding === "f32")) {
          const poisoned: UpdateMessage = { meta: honest.meta, tensors: honest.tensors.map((t) => (t.coding === "f32" ? { coding: "f32", dense: { ...t.dense, values: t.dense.values.map((x, i) => (i % 7 === 0 ? value : x)) } } : t)) }
          return Outgoing.bytes(yield* orFail(encodeUpdate(poisoned.meta, poisoned.tensors)))
        }
        const bytes = yield* orFail(encodeUpdate(honest.meta, honest.tensors))
        return Outgoing.bytes(forgeHeader(bytes, withShiftText(text)))
      }),
  })

export const nan: PeerBehaviour = nonFinite("nan", "NaN", Number.NaN)
export const inf: PeerBehaviour = nonFinite("inf", "1e999", Number.POSITIVE_INFINITY)

export const wrongShapes: PeerBehaviour = defineBehaviour({
  name: "wrong-shape",
  description: "uploads a well-formed update whose first tensor has twice the rows",
  publish: (ctx, honest) => Effect.map(orFail(wrongShape(honest, ctx.spec.compression)), Outgoing.publish),
})

export const wrongCodec: PeerBehaviour = defineBehaviour({
  name: "wrong-codec",
  description: "uploads its update compressed with chunk 32 instead of the spec's chunk (16 if the spec's is 32)",
  publish: (ctx, honest) => Effect.map(orFail(withChunk(honest, ctx.spec.compression)), Outgoing.publish),
})

/** Polls `ctx.readUpdate` for the first uid (in order) whose update of `window` is there, until `until` (store time). */
export const firstAvailable = (ctx: PublishContext, uids: ReadonlyArray<number>, window: number, until: number): Effect.Effect<{ uid: number; update: UpdateMessage } | undefined, RuntimeFailure> =>
  Effect.gen(function* () {
    const poll = ctx.spec.participation.gather.pollIntervalMs
    for (;;) {
      for (const uid of uids) {
        const update = yield* ctx.readUpdate(uid, window)
        if (update !== undefined) return { uid, update }
      }
      if ((yield* msUntil(ctx, until)) <= 0) return undefined
      yield* Effect.sleep(Duration.millis(Math.min(poll, yield* msUntil(ctx, until))))
    }
  })

/**
 * Waits for another listed peer's update of this window to appear in the store, then uploads it
 * re-signed as its own (meta relabelled to its uid and hotkey). Gives up (uploads nothing) when
 * none appears in the first half of the upload interval.
 */
export const copycat: PeerBehaviour = defineBehaviour({
  name: "copycat",
  description: "re-signs another peer's update of the same window as its own (claiming its own samples)",
  // It claims its own sample digest too, so the update passes admission and only copy detection can catch it.
  publish: (ctx, honest) =>
    Effect.gen(function* () {
      const others = ctx.peers.filter((u) => u !== ctx.uid)
      const until = ctx.upload.start + Math.floor((ctx.upload.end - ctx.upload.start) / 2)
      const found = yield* firstAvailable(ctx, others, ctx.window, until)
      if (found === undefined) return Outgoing.withhold
      return Outgoing.publish(relabelled(found.update, { uid: ctx.uid, hotkey: ctx.hotkey, sampleDigest: honest.meta.sampleDigest, sampleCount: honest.meta.sampleCount }))
    }),
})

/**
 * Uploads its own update of `lag` windows ago, relabelled to this window (read back from its
 * bucket); the honest one while it has none that old.
 */
export const staleBy = (lag: number): PeerBehaviour =>
  defineBehaviour({
    name: lag === 2 ? "stale" : `stale-${lag}`,
    description: `re-uploads its own update of ${lag} windows ago as this window's`,
    publish: (ctx, honest) =>
      Effect.map(ctx.readUpdate(ctx.uid, ctx.window - lag), (old) => Outgoing.publish(old === undefined ? honest : relabelled(old, { window: ctx.window }))),
  })

/** Uploads its honest update after the upload interval has closed. */
export const late: PeerBehaviour = defineBehaviour({
  name: "late",
  description: "uploads its honest update just after the upload interval closes",
  publish: (ctx, honest) =>
    Effect.gen(function* () {
      yield* Effect.sleep(Duration.millis((yield* msUntil(ctx, ctx.upload.end)) + 100))
      return Outgoing.publish(honest)
    }),
})

/** Trains on another uid's assignment (uid + 1000) while claiming its own. */
export const otherData: PeerBehaviour = defineBehaviour({
  name: "other-data",
  description: "trains on the data assigned to uid + 1000 instead of its own",
  train: (ctx) => Effect.succeed(TrainingPlan.assignment((ctx.uid + 1000) % 65535, ctx.window)),
})

/** Skips training and uploads an all-zero update. */
export const freeRider: PeerBehaviour = defineBehaviour({
  name: "free-rider",
  description: "skips training and uploads an all-zero update",
  train: () => Effect.succeed(TrainingPlan.skip),
  publish: (_ctx, honest) => Effect.succeed(Outgoing.publish(zeroed(honest))),
})

/**
 * Honest but slow (not an adversary): on every `every`-th window its work overruns the window, so
 * its update lands one window length after the upload interval closed and it catches up after.
 * Timed from the upload interval (store time), not from a nominal window length: on a loaded
 * machine the chain's blocks stretch and a fixed delay could still land in time.
 */
export const slowEvery = (every: number): PeerBehaviour =>
  defineBehaviour({
    name: every === 3 ? "slow" : `slow-${every}`,
    description: `honest, but every ${every}th window its work overruns the window and its update lands late`,
    publish: (ctx, honest) =>
      Effect.gen(function* () {
        if (ctx.window % every === 0) {
          const p = ctx.spec.participation
          yield* Effect.sleep(Duration.millis((yield* msUntil(ctx, ctx.upload.end)) + p.blocksPerWindow * p.blockTimeMs))
        }
        return Outgoing.publish(honest)
      }),
  })

export const scaledX1000: PeerBehaviour = scaledBy(1000)
export const stale: PeerBehaviour = staleBy(2)
export const slow: PeerBehaviour = slowEvery(3)

/** The catalogue by name. */
export const catalogue: Readonly<Record<string, PeerBehaviour>> = Object.fromEntries(
  [signFlip, scaledX1000, noise, nan, inf, wrongShapes, wrongCodec, copycat, stale, late, otherData, freeRider, slow].map((b) => [b.name, b]),
)

/** `name` from the catalogue, or else a behaviour module at that path. */
export const resolveBehaviour = (nameOrPath: string): Effect.Effect<PeerBehaviour, BehaviourLoadError> => {
  const known = catalogue[nameOrPath]
  return known !== undefined ? Effect.succeed(known) : loadBehaviour(nameOrPath)
}
