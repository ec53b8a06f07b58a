import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { covenant72b, debug, decodeRunSpec, dilocoBaseline, llama150m, llama1b, plan, type RunSpec } from "../src/index.ts"

const decodes = (spec: RunSpec) => Effect.runSync(Effect.either(decodeRunSpec(spec)))

describe("presets", () => {
  test.each([
    ["covenant72b", covenant72b()],
    ["llama1b", llama1b()],
    ["llama150m", llama150m()],
    ["debug", debug()],
    ["dilocoBaseline(covenant72b)", dilocoBaseline(covenant72b())],
    ["dilocoBaseline(debug)", dilocoBaseline(debug())],
  ])("%s is a valid spec", (_, spec) => {
    const result = decodes(spec)
    if (Either.isLeft(result)) throw new Error(result.left.message)
    expect(result.right).toEqual(spec)
  })

  // protocol.md, "Model" table: dim, layers, heads, kv heads, ffn, vocab, seq.
  test.each([
    ["Covenant-72B", covenant72b(), [8192, 80, 64, 8, 28672, 262144, 2048]],
    ["1B", llama1b(), [2048, 16, 8, 8, 8192, 32000, 2048]],
    ["150M", llama150m(), [1024, 12, 16, 16, 2688, 32000, 2048]],
  ] as const)("%s model matches protocol.md's table", (_, spec, row) => {
    const m = spec.model
    expect([m.dim, m.nLayers, m.nHeads, m.nKvHeads, m.ffnDim, m.vocabSize, m.seqLen]).toEqual([...row])
    expect(m.ropeTheta).toBe(5e5)
  })

  test("covenant72b carries the 72B run's hyperparameters (sparseloco.md, protocol.md)", () => {
    const s = covenant72b()
    expect(s.model.tiedEmbeddings).toBe(false)
    const o = s.innerOptimizer
    expect([o.lr, o.betas[0], o.betas[1], o.eps, o.weightDecay, o.gradClip]).toEqual([1.3e-4, 0.9, 0.95, 1e-8, 0.1, 1.0])
    expect([o.schedule.warmupSteps, o.schedule.minLrFraction, o.innerSteps, o.batchSize]).toEqual([1500, 0.1, 30, 192])
    expect(s.compression).toEqual({ kind: "sparseloco", chunk: 64, topk: 64, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding: "packed12" })
    const lr = s.outerOptimizer.lr
    expect(lr.kind).toBe("piecewise")
    if (lr.kind === "piecewise") {
      expect(lr.initial).toBe(1.0)
      expect(lr.milestones.at(-1)?.value).toBe(0.4)
    }
    expect(s.outerOptimizer.momentum).toBe(0)
    expect(s.data.sampling).toEqual({ kind: "uidWindowSeed", poolSize: 30 * 1024, samplesPerWindow: 192 * 30 })
    const p = s.participation
    expect([p.blocksPerWindow, p.blockTimeMs, p.uploadWindowMs, p.peersGathered, p.reservePeers, p.evaluationsPerWindow]).toEqual([
      115, 12_000, 70_000, 20, 10, 20,
    ])
    expect([p.setWeightsEveryWindows, p.peerListRefreshWindows, p.activeWindows, p.retentionWindows]).toEqual([3, 2, 2, 100])
    expect(p.gather).toEqual({ pollIntervalMs: 500, perObjectTimeoutMs: 90_000, totalTimeoutMs: 600_000 })
    // The data check is ours (the reference has none); the rest of the Gauntlet is the reference's.
    const { dataCheck, ...gauntlet } = p.scoring
    expect(dataCheck.randomBatches).toBe(0) // off where a window's samples are far more than it reads
    expect(gauntlet).toEqual({
      evalSequences: 8,
      evalLrFactor: 0.2,
      indicatorEmaAlpha: 0.05,
      indicatorThreshold: 0.1,
      syncMaxStepsBehind: 3,
      syncExponent: 2.5,
      openSkillBeta: 7,
      openSkillTau: 0.1,
      minScore: 1e-4,
      linearWeighted: 20,
      tailWeighted: 10,
    })
    expect(p.penalties).toEqual({ consecutiveMissFactors: [0.75, 0.5, 0], copyOverlapThreshold: 0.4 })
    expect(s.checkpointing.everyOuterSteps).toBe(10)
    expect(s.tokenBudget).toBe(1.1e12)
  })

  test("a preset's inner schedule ends where its token budget does", () => {
    for (const spec of [covenant72b(), llama1b(), llama150m(), debug()]) {
      const p = plan(spec)
      expect(spec.innerOptimizer.schedule.totalSteps).toBe(p.budget?.innerStepsPerPeer ?? Number.NaN)
    }
  })

  test("debug is tiny, byte-level, local and fast", () => {
    const s = debug()
    expect(s.model).toMatchObject({ dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 258, seqLen: 64, dtype: "float32" })
    expect(s.data.tokenizer.kind).toBe("bytes")
    expect(s.infrastructure.chain.kind).toBe("local")
    expect(s.infrastructure.transport.kind).toBe("filesystem")
    // Windows short enough for a test, long enough for 3 processes on 2 cores (see debug()).
    expect(s.participation.blocksPerWindow * s.participation.blockTimeMs).toBeLessThanOrEqual(4_000)
    expect(plan(s).parameters).toBeLessThan(200_000)
  })

  test("dilocoBaseline sends full precision with outer Nesterov momentum", () => {
    const s = dilocoBaseline(covenant72b())
    expect(s.compression).toEqual({ kind: "none" })
    expect(s.outerOptimizer).toEqual({ kind: "sgd", lr: { kind: "constant", value: 0.6 }, momentum: 0.9, nesterov: true })
    expect(s.model).toEqual(covenant72b().model)
  })
})
