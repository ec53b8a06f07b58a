/** Property tests of the shard schedule: which shards are live at an outer step, and how pool indices map onto them. */
import { describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck as fc, Schema } from "effect"
import { ShardSchedule } from "@covenant/dsl"
import { liveShardIndices, liveShards, scheduledSampleIds } from "../src/data/index.ts"
import type { Manifest } from "../src/data/index.ts"

/** A manifest's shard table: consecutive sample ids, some shards possibly empty. */
const shardTable = fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }).map((counts) => {
  let first = 0
  return counts.map((samples) => {
    const s = { samples, firstSample: first }
    first += samples
    return s
  })
})
const asManifest = (shards: ReadonlyArray<{ samples: number; firstSample: number }>) =>
  ({ shards: shards.map((s, i) => ({ ...s, file: `train_${i}.npy`, samplesFile: `train_${i}.samples.npy`, tokens: 0, sha256: "", samplesSha256: "" })) }) as unknown as Pick<Manifest, "shards">

const rotate = fc.record({ kind: fc.constant("rotate" as const), liveShards: fc.integer({ min: 1, max: 15 }), everyOuterSteps: fc.integer({ min: 1, max: 50 }) })
const stages = (shardCount: number) =>
  fc.array(fc.record({ gap: fc.integer({ min: 1, max: 100 }), shards: fc.uniqueArray(fc.integer({ min: 0, max: shardCount - 1 }), { minLength: 1, maxLength: shardCount }) }), { minLength: 1, maxLength: 6 })
    .map((list) => {
      let from = 0
      return { kind: "stages" as const, stages: list.map((s, i) => ({ fromOuterStep: i === 0 ? 0 : (from += s.gap), shards: s.shards })) as [{ fromOuterStep: number; shards: [number, ...number[]] }, ...Array<{ fromOuterStep: number; shards: [number, ...number[]] }>] }
    })
const step = fc.integer({ min: 0, max: 100_000 })
const anySchedule = (shardCount: number): fc.Arbitrary<ShardSchedule> => fc.oneof(fc.constant({ kind: "all" as const }), rotate, stages(shardCount))

describe("shard schedule", () => {
  test("every generated schedule decodes with the DSL's Schema, and bad stage lists do not", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }).chain(anySchedule), (s) => Either.isRight(Schema.decodeUnknownEither(ShardSchedule)(s))))
    for (const bad of [
      { kind: "stages", stages: [{ fromOuterStep: 3, shards: [0] }] },
      { kind: "stages", stages: [{ fromOuterStep: 0, shards: [0] }, { fromOuterStep: 0, shards: [1] }] },
      { kind: "stages", stages: [{ fromOuterStep: 0, shards: [1, 1] }] },
      { kind: "rotate", liveShards: 0, everyOuterSteps: 1 },
    ]) expect(Either.isLeft(Schema.decodeUnknownEither(ShardSchedule)(bad))).toBe(true)
  })

  test("live shards are distinct, in range, non-empty, and a function of (schedule, outer step, shard count) only", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }).chain((n) => fc.tuple(fc.constant(n), anySchedule(n), step)), ([n, schedule, s]) => {
      const live = Either.getOrThrow(liveShardIndices(schedule, s, n))
      expect(live.length).toBeGreaterThan(0)
      expect(new Set(live).size).toBe(live.length)
      for (const i of live) expect(i >= 0 && i < n).toBe(true)
      // A second node computing it from a copy of the spec agrees.
      expect(Either.getOrThrow(liveShardIndices(structuredClone(schedule), s, n))).toEqual(live)
    }))
  })

  test("rotate: constant within a period, moves on by liveShards each period, covers every shard within ceil(n / liveShards) periods", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), rotate, fc.integer({ min: 0, max: 1000 }), (n, schedule, period) => {
      const at = (s: number) => Either.getOrThrow(liveShardIndices(schedule, s, n))
      const begin = period * schedule.everyOuterSteps
      const live = at(begin)
      expect(at(begin + schedule.everyOuterSteps - 1)).toEqual(live)
      expect(live.length).toBe(Math.min(schedule.liveShards, n))
      const next = at(begin + schedule.everyOuterSteps)
      expect(next[0]).toBe((live[0]! + schedule.liveShards) % n)
      const seen = new Set<number>()
      for (let p = 0; p < Math.ceil(n / schedule.liveShards); p++) for (const i of at(p * schedule.everyOuterSteps)) seen.add(i)
      expect(seen.size).toBe(n)
    }))
  })

  test("stages: the live list is the last stage starting at or before the outer step", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }).chain((n) => fc.tuple(fc.constant(n), stages(n), step)), ([n, schedule, s]) => {
      const expected = schedule.stages.filter((st) => st.fromOuterStep <= s).at(-1)!.shards
      expect(Either.getOrThrow(liveShardIndices(schedule, s, n))).toEqual(expected)
    }))
  })

  test("a stage naming a shard the manifest lacks is a typed error", () => {
    const e = liveShardIndices({ kind: "stages", stages: [{ fromOuterStep: 0, shards: [0] }, { fromOuterStep: 5, shards: [7] }] }, 6, 3)
    expect(Either.isLeft(e) && e.left._tag === "ShardScheduleError" && e.left.reason.includes("shard 7")).toBe(true)
    expect(Either.isRight(liveShardIndices({ kind: "stages", stages: [{ fromOuterStep: 0, shards: [0] }, { fromOuterStep: 5, shards: [7] }] }, 4, 3))).toBe(true)
  })

  test("globalId is a bijection from [0, live samples) onto the live shards' sample ids", () => {
    fc.assert(fc.property(shardTable.chain((t) => fc.tuple(fc.constant(t), anySchedule(t.length), step)), ([table, schedule, s]) => {
      const live = liveShards(asManifest(table), schedule, s)
      const indices = Either.getOrThrow(liveShardIndices(schedule, s, table.length))
      const expected = indices.flatMap((i) => Array.from({ length: table[i]!.samples }, (_, j) => table[i]!.firstSample + j))
      if (expected.length === 0) {
        expect(Either.isLeft(live)).toBe(true)
        return
      }
      const l = Either.getOrThrow(live)
      expect(l.totalSamples).toBe(expected.length)
      expect(Array.from({ length: l.totalSamples }, (_, i) => l.globalId(i))).toEqual(expected)
    }))
  })

  test("with no schedule, or `all`, scheduled ids are the unscheduled sampler's; with one, every id lies in a live shard", async () => {
    const table = [{ samples: 50, firstSample: 0 }, { samples: 0, firstSample: 50 }, { samples: 70, firstSample: 50 }, { samples: 30, firstSample: 120 }]
    const set = { manifest: asManifest(table) as Manifest }
    const sampling = { poolSize: 40, samplesPerWindow: 12 }
    const { windowSamples } = await import("../src/data/index.ts")
    for (const schedule of [undefined, { kind: "all" as const }]) {
      const got = await Effect.runPromise(scheduledSampleIds(set, schedule, 3, 7, 99, sampling))
      expect(Array.from(got.ids)).toEqual(Array.from(Either.getOrThrow(windowSamples(7, 99, { totalSamples: 150, ...sampling }))))
    }
    // Fewer live samples than a window trains on is a typed error, not a short batch.
    const tooFew = await Effect.runPromise(Effect.either(scheduledSampleIds(set, { kind: "stages", stages: [{ fromOuterStep: 0, shards: [3] }] }, 0, 1, 1, { poolSize: 40, samplesPerWindow: 31 })))
    expect(Either.isLeft(tooFew) && tooFew.left._tag).toBe("SamplerError")
    await fc.assert(fc.asyncProperty(rotate, step, fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 100_000 }), async (schedule, s, uid, window) => {
      const live = Either.getOrThrow(liveShardIndices(schedule, s, table.length)).filter((i) => table[i]!.samples > 0)
      const got = await Effect.runPromise(Effect.either(scheduledSampleIds(set, schedule, s, uid, window, sampling)))
      if (live.length === 0) return expect(Either.isLeft(got)).toBe(true)
      const ids = Either.getOrThrow(got).ids
      expect(new Set(ids).size).toBe(ids.length)
      for (const id of ids) expect(live.some((i) => id >= table[i]!.firstSample && id < table[i]!.firstSample + table[i]!.samples)).toBe(true)
    }), { numRuns: 60 })
  })
})
