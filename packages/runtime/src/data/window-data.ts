/**
 * What a peer trains on in a window, and what it reports about it: the assigned sample ids (from
 * the deterministic sampler), their tokens, and the digest a validator recomputes.
 */
import { Effect } from "effect"
import type { ShardSchedule } from "@covenant/dsl"
import type { SamplerError, ShardScheduleError } from "./errors.ts"
import { sampleDigest, windowSamples } from "./sampler.ts"
import { liveShards } from "./schedule.ts"
import type { ShardReadError, ShardSet } from "./shards.ts"

export interface WindowSampling {
  readonly poolSize: number
  readonly samplesPerWindow: number
}

export interface WindowBatch {
  readonly ids: Uint32Array
  /** `ids.length * (seqLen + 1)` tokens, sample after sample. */
  readonly tokens: Uint32Array
  /** sha256 hex of the ids as little-endian u32s. */
  readonly digest: string
}

/** The ids a (uid, window) peer must train on, with their digest; no token reads (validators use this). */
export const assignedSampleIds = (
  set: Pick<ShardSet, "totalSamples">,
  uid: number,
  window: number,
  sampling: WindowSampling,
): Effect.Effect<{ readonly ids: Uint32Array; readonly digest: string }, SamplerError> =>
  Effect.map(windowSamples(uid, window, { totalSamples: set.totalSamples, ...sampling }), (ids) => ({ ids, digest: sampleDigest(ids) }))

/** The assigned ids, their tokens and digest, for a peer's window of training. */
export const windowBatch = (
  set: ShardSet,
  uid: number,
  window: number,
  sampling: WindowSampling,
): Effect.Effect<WindowBatch, SamplerError | ShardReadError> =>
  Effect.gen(function* () {
    const { ids, digest } = yield* assignedSampleIds(set, uid, window, sampling)
    const tokens = yield* set.samples(ids)
    return { ids, tokens, digest }
  })

/**
 * The ids a (uid, window) peer trains on at `outerStep` under the shard schedule: the seed rule
 * draws pool indices over the live shards' samples, mapped to global sample ids. With no schedule
 * (or `all`) this is `assignedSampleIds`. The pool is capped at the live sample count (as
 * `trainingBatches` always capped it at the dataset's); a window larger than that fails typed.
 */
export const scheduledSampleIds = (
  set: Pick<ShardSet, "manifest">,
  schedule: ShardSchedule | undefined,
  outerStep: number,
  uid: number,
  window: number,
  sampling: WindowSampling,
): Effect.Effect<{ readonly ids: Uint32Array; readonly digest: string }, SamplerError | ShardScheduleError> =>
  Effect.gen(function* () {
    const live = yield* liveShards(set.manifest, schedule, outerStep)
    const poolSize = Math.min(sampling.poolSize, live.totalSamples)
    // samplesPerWindow is not capped: fewer live samples than a window trains on is an error, not short batches.
    const local = yield* windowSamples(uid, window, { totalSamples: live.totalSamples, poolSize, samplesPerWindow: sampling.samplesPerWindow })
    const ids = local.map((i) => live.globalId(i))
    return { ids, digest: sampleDigest(ids) }
  })

/** `windowBatch` under the shard schedule. */
export const scheduledWindowBatch = (
  set: ShardSet,
  schedule: ShardSchedule | undefined,
  outerStep: number,
  uid: number,
  window: number,
  sampling: WindowSampling,
): Effect.Effect<WindowBatch, SamplerError | ShardScheduleError | ShardReadError> =>
  Effect.gen(function* () {
    const { ids, digest } = yield* scheduledSampleIds(set, schedule, outerStep, uid, window, sampling)
    const tokens = yield* set.samples(ids)
    return { ids, tokens, digest }
  })
