/**
 * How runPeer applies a behaviour: the batches it trains on, and the bytes it uploads. Honest
 * peers (no behaviour) never reach this module.
 */
import { Effect, Either } from "effect"
import { Chain } from "@covenant/chain"
import { fetchSigned, gradientKey, Transport, uploadInterval } from "@covenant/transport"
import type { UpdateMessage } from "@covenant/sparseloco"
import { RuntimeError, type RuntimeFailure, inPhase } from "../errors.ts"
import { decodeUpdate, encodeUpdate } from "../round/codec.ts"
import type { NodeConfig } from "../node/node.ts"
import { modelManifest, trainingBatches } from "../node/node.ts"
import { readDirectory } from "../node/network.ts"
import type { PeerBehaviour, PublishContext, TrainContext } from "./behaviour.ts"
import { clockNow } from "./behaviour.ts"

export interface PeerWindow {
  readonly uid: number
  readonly window: number
  /** The run's start window (the data schedule counts outer steps from it). */
  readonly start: number
  /** The peer list in force. */
  readonly peers: ReadonlyArray<number>
}

const trainContext = (cfg: NodeConfig, at: PeerWindow): TrainContext => ({
  name: cfg.name,
  uid: at.uid,
  hotkey: cfg.identity.hotkey.address,
  window: at.window,
  spec: cfg.spec,
  address: cfg.address,
  manifest: modelManifest(cfg.spec.model),
  peers: at.peers,
  now: clockNow,
})

/** The H batches the peer trains on: its own (`own`), another assignment's, or none. */
export const behaviourBatches = (
  behaviour: PeerBehaviour,
  cfg: NodeConfig,
  at: PeerWindow,
  own: ReadonlyArray<Int32Array>,
): Effect.Effect<ReadonlyArray<Int32Array>, RuntimeFailure> =>
  Effect.gen(function* () {
    if (behaviour.train === undefined) return own
    const plan = yield* behaviour.train(trainContext(cfg, at))
    switch (plan._tag) {
      case "Own":
        return own
      case "Skip":
        return []
      case "Assignment":
        return (yield* trainingBatches(cfg.shards, cfg.spec, plan.uid, plan.window, at.start)).batches
    }
  }).pipe(Effect.withSpan("behaviour.train", { attributes: { behaviour: behaviour.name } }))

/** Reads a uid's update of a window from its bucket (verified against its hotkey); undefined if absent or invalid. */
export const readPeerUpdate = (cfg: NodeConfig, uid: number, window: number): Effect.Effect<UpdateMessage | undefined, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    // A window before the first (a stale peer early in the run) or a bad uid names no object.
    const key = Either.try(() => gradientKey(window, uid, cfg.address.version))
    if (Either.isLeft(key)) return undefined
    const dir = yield* readDirectory
    const who = dir.participants.get(uid)
    if (who?.location === undefined) return undefined
    const got = yield* Effect.either(fetchSigned({
      at: who.location,
      key: key.right,
      context: { runId: cfg.address.runId, window, uid, kind: "gradient" },
      hotkey: who.hotkey,
    }))
    if (Either.isLeft(got)) {
      if (got.left._tag === "NotFound" || got.left._tag === "BadSignature") return undefined
      return yield* inPhase("behaviour")(got.left)
    }
    return Either.getOrUndefined(decodeUpdate(got.right.bytes, modelManifest(cfg.spec.model)))
  })

/**
 * The bytes the peer uploads instead of `payload` (its honest encoded update), or undefined to
 * upload nothing. Runs once the upload interval of the window has opened.
 */
export const behaviourPayload = (
  behaviour: PeerBehaviour,
  cfg: NodeConfig,
  at: PeerWindow,
  payload: Uint8Array,
): Effect.Effect<Uint8Array | undefined, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    if (behaviour.publish === undefined) return payload
    const chain = yield* Chain
    const services = yield* Effect.context<Chain | Transport>()
    const start = yield* Effect.mapError(chain.windowStartTime(at.window + 1), inPhase("behaviour"))
    const ctx: PublishContext = {
      ...trainContext(cfg, at),
      upload: uploadInterval(start, cfg.spec.participation.uploadWindowMs),
      readUpdate: (uid, window) => Effect.provide(readPeerUpdate(cfg, uid, window), services),
    }
    const honest = decodeUpdate(payload, ctx.manifest)
    if (Either.isLeft(honest)) return yield* new RuntimeError({ phase: "behaviour", reason: `own update does not decode: ${honest.left.reason}` })
    const out = yield* behaviour.publish(ctx, honest.right)
    switch (out._tag) {
      case "Withhold":
        return undefined
      case "PublishBytes":
        return out.bytes
      case "Publish": {
        const bytes = encodeUpdate(out.update.meta, out.update.tensors)
        if (Either.isLeft(bytes)) return yield* new RuntimeError({ phase: "behaviour", reason: `${behaviour.name}: its update does not encode: ${bytes.left.reason}` })
        return bytes.right
      }
    }
  }).pipe(Effect.withSpan("behaviour.publish", { attributes: { behaviour: behaviour.name } }))
