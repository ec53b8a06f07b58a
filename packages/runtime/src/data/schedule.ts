/**
 * The shard schedule: which shards the per-(uid, window) pool is drawn from at an outer step. A
 * pure function of (spec schedule, outer step, manifest), so every peer and validator agree on it
 * without talking. The live shards' samples are numbered in schedule order, and the sampler's pool
 * indices `[0, live.totalSamples)` map onto global sample ids through `globalId`.
 */
import { Either } from "effect"
import type { ShardSchedule } from "@covenant/dsl"
import { ShardScheduleError } from "./errors.ts"
import type { Manifest } from "./manifest.ts"

export interface LiveShards {
  readonly outerStep: number
  /** Indices into `manifest.shards`, in the order their samples are numbered. */
  readonly shards: ReadonlyArray<number>
  /** Samples in the live shards. */
  readonly totalSamples: number
  /** Global sample id of the live sample `i` in `[0, totalSamples)`. */
  readonly globalId: (i: number) => number
}

const isStep = (n: number) => Number.isSafeInteger(n) && n >= 0

/** The indices of the shards live at `outerStep` (of `shardCount`), in numbering order. */
export const liveShardIndices = (
  schedule: ShardSchedule | undefined,
  outerStep: number,
  shardCount: number,
): Either.Either<ReadonlyArray<number>, ShardScheduleError> => {
  const fail = (reason: string) => Either.left(new ShardScheduleError({ outerStep, reason }))
  if (!isStep(outerStep)) return fail(`outer step must be a non-negative integer, got ${outerStep}`)
  if (shardCount === 0) return fail("the manifest lists no shards")
  if (schedule === undefined || schedule.kind === "all") return Either.right(Array.from({ length: shardCount }, (_, i) => i))
  if (schedule.kind === "rotate") {
    const live = Math.min(schedule.liveShards, shardCount)
    const period = Math.floor(outerStep / schedule.everyOuterSteps)
    // (period * liveShards) mod shardCount without overflowing for huge outer steps.
    const first = Number((BigInt(period) * BigInt(schedule.liveShards)) % BigInt(shardCount))
    return Either.right(Array.from({ length: live }, (_, j) => (first + j) % shardCount))
  }
  let stage = schedule.stages[0]
  for (const s of schedule.stages) if (s.fromOuterStep <= outerStep) stage = s
  const outside = stage.shards.find((i) => i >= shardCount)
  if (outside !== undefined) return fail(`the stage from outer step ${stage.fromOuterStep} names shard ${outside}, but the manifest has ${shardCount}`)
  return Either.right(stage.shards)
}

/** The live shards at `outerStep` with the map from pool index to global sample id. */
export const liveShards = (
  manifest: Pick<Manifest, "shards">,
  schedule: ShardSchedule | undefined,
  outerStep: number,
): Either.Either<LiveShards, ShardScheduleError> =>
  Either.flatMap(liveShardIndices(schedule, outerStep, manifest.shards.length), (shards) => {
    // starts[k]: live index of the first sample of the k-th live shard.
    const starts: number[] = []
    let total = 0
    for (const i of shards) {
      starts.push(total)
      total += manifest.shards[i]!.samples
    }
    if (total === 0) return Either.left(new ShardScheduleError({ outerStep, reason: `the live shards [${shards.join(", ")}] hold no samples` }))
    const globalId = (i: number): number => {
      let lo = 0
      let hi = starts.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (starts[mid]! <= i) lo = mid
        else hi = mid - 1
      }
      // The last shard starting at or before i holds it (empty shards share a start with the next).
      while (i - starts[lo]! >= manifest.shards[shards[lo]!]!.samples) lo++
      return manifest.shards[shards[lo]!]!.firstSample + (i - starts[lo]!)
    }
    return Either.right({ outerStep, shards, totalSamples: total, globalId })
  })
