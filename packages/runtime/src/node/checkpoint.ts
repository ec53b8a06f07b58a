/**
 * Checkpoints on the transport: the leader writes `checkpoints/{version}/{window}/model.safetensors`
 * (HF names), for the DiLoCo baseline `outer_momentum.safetensors` (the outer Nesterov buffer, so a
 * joiner takes the same next step as everyone else), and then `checkpoints/{version}/_LATEST.json`.
 * Every one of them is a signed envelope of the leader's hotkey, bound to its window and kind; a
 * joiner verifies each against the hotkey the chain lists for the leader before loading anything.
 *
 * What is not in a checkpoint: AdamW moments and SparseLoCo error feedback are each peer's own
 * (every peer's differ; the leader, a validator, has neither), so they stay in the peer's state
 * folder (state.ts) and a joiner starts them empty, as the reference does.
 */
import { Data, Effect, Either, Schema } from "effect"
import { decodeCheckpoint, decodeSafetensors, encodeCheckpoint, encodeSafetensors } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import { checkpointKey, checkpointPrefix, fetchSigned, latestKey, parseKey, publishSigned, Transport } from "@covenant/transport"
import type { BucketLocation, Delivered, NotFound } from "@covenant/transport"
import { CodecFailure, RuntimeError, type RuntimeFailure, inPhase } from "../errors.ts"
import type { Params } from "../round/params.ts"
import type { RunAddress } from "./network.ts"

const LatestPointer = Schema.parseJson(Schema.Struct({
  window: Schema.Int.pipe(Schema.nonNegative()),
  key: Schema.String,
  momentumKey: Schema.optional(Schema.String),
}))

/** A checkpoint object that does not verify against the leader's hotkey (forged, tampered, replayed) or does not parse. */
export class UntrustedCheckpoint extends Data.TaggedError("UntrustedCheckpoint")<{
  readonly key: string
  readonly reason: string
}> {}

/** Envelope kinds: each object is signed for what it is, so one cannot stand in for another. */
const MODEL = "checkpoint"
const MOMENTUM = "checkpoint-momentum"
const LATEST = "checkpoint-latest"

/** Who publishes (the leader): its identity signs every object. */
export interface CheckpointPublisher {
  readonly own: BucketLocation
  readonly uid: number
  readonly identity: { readonly hotkey: Parameters<typeof publishSigned>[0]["signer"] }
}

/** Whose checkpoints to load: the leader as the chain lists it. */
export interface CheckpointSource {
  readonly location: BucketLocation
  readonly uid: number
  readonly hotkey: string
}

export interface CheckpointContent {
  readonly params: ReadonlyMap<string, Float32Array>
  /** The outer Nesterov momentum (DiLoCo); null when the run keeps none. */
  readonly momentum: ReadonlyMap<string, Float32Array> | null
}

const encodeMomentum = (momentum: ReadonlyMap<string, Float32Array>) =>
  Either.mapLeft(encodeSafetensors([...momentum].map(([name, data]) => [name, { shape: [data.length], data }] as const), {}), (e) => new RuntimeError({ phase: "checkpoint", reason: e.reason }))

/** Publishes a checkpoint, points `_LATEST.json` at it, and deletes all but the `keep` newest. */
export const publishCheckpoint = (me: CheckpointPublisher, address: RunAddress, spec: LlamaSpec, window: number, content: CheckpointContent, keep: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const at = me.own
    const sign = (key: string, kind: string, payload: Uint8Array, w: number) =>
      Effect.mapError(publishSigned({ at, key, context: { runId: address.runId, window: w, uid: me.uid, kind }, payload, signer: me.identity.hotkey }), inPhase("checkpoint"))
    const bytes = yield* Either.mapLeft(encodeCheckpoint(spec, content.params, { window: String(window) }), (e) => new RuntimeError({ phase: "checkpoint", reason: e.reason }))
    const key = checkpointKey(address.version, window, "model.safetensors")
    yield* sign(key, MODEL, bytes, window)
    let momentumKey: string | undefined
    if (content.momentum !== null) {
      momentumKey = checkpointKey(address.version, window, "outer_momentum.safetensors")
      yield* sign(momentumKey, MOMENTUM, yield* encodeMomentum(content.momentum), window)
    }
    const pointer = { window, key, ...(momentumKey === undefined ? {} : { momentumKey }) }
    yield* sign(latestKey(address.version), LATEST, new TextEncoder().encode(JSON.stringify(pointer)), 0)
    const listed = yield* Effect.mapError(transport.list(at, `checkpoints/${address.version}/`), inPhase("checkpoint"))
    const windows = [...new Set(listed.flatMap((o) => {
      const k = parseKey(o.key)
      return Either.isRight(k) && k.right.kind === "checkpoint" ? [k.right.window] : []
    }))].sort((a, b) => b - a)
    const stale = new Set(windows.slice(Math.max(1, keep)))
    const doomed = listed.filter((o) => {
      const k = parseKey(o.key)
      return Either.isRight(k) && k.right.kind === "checkpoint" && stale.has(k.right.window) && o.key.startsWith(checkpointPrefix(address.version, k.right.window))
    })
    yield* Effect.forEach(doomed, (o) => Effect.ignore(transport.delete(at, o.key)), { discard: true })
  })

/**
 * The latest checkpoint of `from` (the leader), verified against its hotkey; undefined when none
 * was published. A forged or tampered pointer, model or momentum is an UntrustedCheckpoint and
 * nothing of it is returned.
 */
export const loadLatestCheckpoint = (
  from: CheckpointSource,
  address: RunAddress,
  spec: LlamaSpec,
): Effect.Effect<{ window: number; params: Params; momentum: Params | null } | undefined, RuntimeFailure | UntrustedCheckpoint, Transport> =>
  Effect.gen(function* () {
    const read = (key: string, kind: string, window: number): Effect.Effect<Delivered, NotFound | UntrustedCheckpoint | RuntimeFailure, Transport> =>
      Effect.mapError(fetchSigned({ at: from.location, key, context: { runId: address.runId, window, uid: from.uid, kind }, hotkey: from.hotkey }), (e) =>
        e._tag === "BadSignature" ? new UntrustedCheckpoint({ key, reason: e.reason }) : e._tag === "NotFound" ? e : inPhase("checkpoint")(e))
    const pointer = yield* Effect.either(read(latestKey(address.version), LATEST, 0))
    if (Either.isLeft(pointer)) {
      if (pointer.left._tag === "NotFound") return undefined
      return yield* Effect.fail(pointer.left)
    }
    const untrusted = (key: string) => (reason: string) => new UntrustedCheckpoint({ key, reason })
    const latest = yield* Either.mapLeft(Schema.decodeUnknownEither(LatestPointer)(new TextDecoder().decode(pointer.right.bytes)), (e) => untrusted(latestKey(address.version))(e.message))
    const notFoundIsFatal = <A, R>(effect: Effect.Effect<A, NotFound | UntrustedCheckpoint | RuntimeFailure, R>) =>
      Effect.mapError(effect, (e) => (e._tag === "NotFound" ? new RuntimeError({ phase: "checkpoint", reason: "_LATEST.json points to a missing object" }) : e))
    const model = yield* notFoundIsFatal(read(latest.key, MODEL, latest.window))
    const ckpt = yield* Either.mapLeft(decodeCheckpoint(model.bytes, spec), (e) => untrusted(latest.key)(e.reason))
    let momentum: Params | null = null
    if (latest.momentumKey !== undefined) {
      const key = latest.momentumKey
      const m = yield* notFoundIsFatal(read(key, MOMENTUM, latest.window))
      const file = yield* Either.mapLeft(decodeSafetensors(m.bytes), (e) => untrusted(key)(e.reason))
      momentum = new Map()
      for (const [name, values] of ckpt.parameters) {
        const t = file.tensors.get(name)
        if (t === undefined || !(t.data instanceof Float32Array) || t.data.length !== values.length) return yield* new UntrustedCheckpoint({ key, reason: `momentum of ${name} missing or of the wrong size` })
        momentum.set(name, t.data)
      }
    }
    return { window: latest.window, params: ckpt.parameters, momentum }
  })
