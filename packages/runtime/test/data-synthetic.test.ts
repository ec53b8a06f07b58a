import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { Shards, assignedSampleIds, openShardSet, prepareSyntheticShards, sampleDigest, windowBatch, windowSamples } from "../src/data/index.ts"

const work = mkdtempSync(join(tmpdir(), "covenant-synth-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const options = (name: string, seed: number) => ({ outDir: join(work, name), vocabSize: 300, seqLen: 32, samples: 500, seed, shardTokens: 4001 })

describe("synthetic shards", () => {
  test("deterministic in the seed, at least the requested samples, ids inside the vocabulary", async () => {
    const a = await Effect.runPromise(prepareSyntheticShards(options("a", 7)))
    const b = await Effect.runPromise(prepareSyntheticShards(options("b", 7)))
    const c = await Effect.runPromise(prepareSyntheticShards(options("c", 8)))
    expect(a.shards.map((s) => s.sha256)).toEqual(b.shards.map((s) => s.sha256))
    expect(a.shards[0].sha256).not.toBe(c.shards[0].sha256)
    expect(a.totalSamples).toBeGreaterThanOrEqual(500)
    expect(a.eosId).toBe(299)
    expect(a.tokenizer).toEqual({ kind: "synthetic", seed: 7 })
    const tokens = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(openShardSet(join(work, "a"), { verify: "sha256" }), (set) => Effect.forEach(set.manifest.shards, (_, i) => set.shardTokens(i)))),
    )
    const all = tokens.flatMap((t) => Array.from(t))
    expect(all.length).toBe(a.totalTokens)
    expect(Math.max(...all)).toBeLessThan(300)
    const eos = all.filter((t) => t === 299).length
    expect(eos).toBe(a.documents) // EOS appears only where a document ends
  })

  test("bad parameters -> DataIoError", async () => {
    for (const bad of [{ vocabSize: 1 }, { eosId: 300 }, { samples: 0 }, { seed: -1 }]) {
      const exit = await Effect.runPromiseExit(prepareSyntheticShards({ ...options("bad", 1), ...bad }))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "ok").toBe("DataIoError")
    }
  })
})

describe("window batch", () => {
  test("a peer's batch is its assigned samples, and the digest a validator recomputes matches", async () => {
    await Effect.runPromise(prepareSyntheticShards(options("w", 3)))
    const sampling = { poolSize: 256, samplesPerWindow: 24 }
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const set = yield* openShardSet(join(work, "w"))
          const batch = yield* windowBatch(set, 12, 900, sampling)
          expect(batch.tokens.length).toBe(24 * 33)
          const ids = yield* windowSamples(12, 900, { totalSamples: set.totalSamples, ...sampling })
          expect(batch.ids).toEqual(ids)
          expect(batch.digest).toBe(sampleDigest(ids))
          expect((yield* assignedSampleIds(set, 12, 900, sampling)).digest).toBe(batch.digest)
          expect((yield* assignedSampleIds(set, 12, 901, sampling)).digest).not.toBe(batch.digest)
          const third = yield* set.sample(ids[2])
          expect(batch.tokens.subarray(2 * 33, 3 * 33)).toEqual(third)
        }),
      ),
    )
  })
})

describe("Shards service", () => {
  test("the layer opens the folder for the program and fails typed on a missing one", async () => {
    await Effect.runPromise(prepareSyntheticShards(options("svc", 4)))
    const count = await Effect.runPromise(
      Effect.map(Shards, (set) => set.totalSamples).pipe(Effect.provide(Shards.layer(join(work, "svc")))),
    )
    expect(count).toBeGreaterThanOrEqual(500)
    const missing = await Effect.runPromiseExit(Effect.map(Shards, (set) => set.totalSamples).pipe(Effect.provide(Shards.layer(join(work, "none")))))
    expect(Exit.isFailure(missing) && missing.cause._tag === "Fail" ? missing.cause.error._tag : "no").toBe("ManifestError")
  })
})
