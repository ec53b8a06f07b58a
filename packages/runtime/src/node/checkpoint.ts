/**
 * Checkpoints on the transport: the leader writes `checkpoints/{version}/{window}/model.safetensors`
 * (HF names) and then `checkpoints/{version}/_LATEST.json`; joiners start from the latest one.
 */
import { Effect, Either, Schema } from "effect"
import { decodeCheckpoint, encodeCheckpoint } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import { checkpointKey, checkpointPrefix, latestKey, parseKey, Transport } from "@covenant/transport"
import type { BucketLocation } from "@covenant/transport"
import { RuntimeError, inPhase } from "../errors.ts"
import type { Params } from "../round/params.ts"
import type { RunAddress } from "./network.ts"

const LatestPointer = Schema.parseJson(Schema.Struct({ window: Schema.Int.pipe(Schema.nonNegative()), key: Schema.String }))

/** Publishes a checkpoint, points `_LATEST.json` at it, and deletes all but the `keep` newest. */
export const publishCheckpoint = (at: BucketLocation, address: RunAddress, spec: LlamaSpec, window: number, params: ReadonlyMap<string, Float32Array>, keep: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const bytes = yield* Either.mapLeft(encodeCheckpoint(spec, params, { window: String(window) }), (e) => new RuntimeError({ phase: "checkpoint", reason: e.reason }))
    const key = checkpointKey(address.version, window, "model.safetensors")
    yield* Effect.mapError(transport.put(at, key, bytes), inPhase("checkpoint"))
    yield* Effect.mapError(transport.put(at, latestKey(address.version), new TextEncoder().encode(JSON.stringify({ window, key }))), inPhase("checkpoint"))
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

/** The latest checkpoint in `at`, or undefined when none was published. */
export const loadLatestCheckpoint = (at: BucketLocation, address: RunAddress, spec: LlamaSpec): Effect.Effect<{ window: number; params: Params } | undefined, RuntimeError, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const pointer = yield* Effect.either(transport.get(at, latestKey(address.version)))
    if (Either.isLeft(pointer)) {
      if (pointer.left._tag === "NotFound") return undefined
      return yield* inPhase("checkpoint")(pointer.left)
    }
    const latest = yield* Either.mapLeft(Schema.decodeUnknownEither(LatestPointer)(new TextDecoder().decode(pointer.right)), (e) => new RuntimeError({ phase: "checkpoint", reason: e.message }))
    const bytes = yield* Effect.mapError(transport.get(at, latest.key), inPhase("checkpoint"))
    const ckpt = yield* Either.mapLeft(decodeCheckpoint(bytes, spec), (e) => new RuntimeError({ phase: "checkpoint", reason: e.reason }))
    return { window: latest.window, params: ckpt.parameters }
  })
