import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { covenant72b, debug, decodeRunSpec, type RunSpecIssue } from "../src/index.ts"

const issuesOf = (input: unknown): ReadonlyArray<RunSpecIssue> => {
  const result = Effect.runSync(Effect.either(decodeRunSpec(input)))
  if (Either.isRight(result)) throw new Error("expected the spec to be rejected")
  return result.left.issues
}

const spec72 = covenant72b()
const specDebug = debug()

describe("decoding errors read `path: message`", () => {
  test("the issue's example", () => {
    const bad = { ...spec72, compression: { ...spec72.compression, topk: 65 } }
    const result = Effect.runSync(Effect.either(decodeRunSpec(bad)))
    expect(Either.isLeft(result) && result.left.message).toBe("compression.topk: expected an even integer <= 4096, got 65")
  })

  test.each([
    ["model.nHeads", { model: { ...spec72.model, nHeads: 24 } }, "expected a divisor of dim (8192), got 24"],
    ["model.nKvHeads", { model: { ...spec72.model, nKvHeads: 7 } }, "expected a divisor of nHeads (64), got 7"],
    // dim 8192 / 8192 heads = head_dim 1: RoPE needs pairs.
    ["model.nHeads", { model: { ...spec72.model, nHeads: 8192, nKvHeads: 8 } }, "expected head_dim = dim / nHeads to be even for RoPE, got 8192 / 8192 = 1"],
    ["model.dim", { model: { ...spec72.model, dim: -8 } }, "expected a positive integer, got -8"],
    ["model.dtype", { model: { ...spec72.model, dtype: "float64" } }, 'expected "float32" | "float16" | "bfloat16", got "float64"'],
    ["model.tiedEmbeddings", { model: { ...spec72.model, tiedEmbeddings: "no" } }, 'expected true or false, got "no"'],
    ["compression.topk", { compression: { ...spec72.compression, topk: 4098 } }, "expected an even integer <= 4096, got 4098"],
    ["compression.chunk", { compression: { ...spec72.compression, chunk: 128 } }, "expected an integer in 1..64 (indices are 12-bit), got 128"],
    ["compression.quantBins", { compression: { ...spec72.compression, quantBins: 8 } }, "expected an integer in 2..4 (codes travel in 2 bits), got 8"],
    ["compression.kind", { compression: { kind: "dct" } }, 'expected "sparseloco" | "none", got "dct"'],
    ["compression.efDecay", { compression: { ...spec72.compression, efDecay: 1 } }, "expected a number in [0, 1), got 1"],
    ["innerOptimizer.schedule.warmupSteps", { innerOptimizer: { ...spec72.innerOptimizer, schedule: { ...spec72.innerOptimizer.schedule, warmupSteps: 10_000_000 } } }, `expected fewer than totalSteps (${spec72.innerOptimizer.schedule.totalSteps}), got 10000000`],
    ["innerOptimizer.microBatchSize", { innerOptimizer: { ...spec72.innerOptimizer, microBatchSize: 5 } }, "expected a divisor of batchSize (192), got 5"],
    ["innerOptimizer.betas[1]", { innerOptimizer: { ...spec72.innerOptimizer, betas: [0.9] } }, "expected a value, got nothing"],
    ["participation.uploadWindowMs", { participation: { ...spec72.participation, uploadWindowMs: 1_380_000 } }, "expected less than the window duration (115 blocks x 12000 ms = 1380000 ms), got 1380000"],
    ["participation.reservePeers", { participation: { ...spec72.participation, reservePeers: -1 } }, "expected a non-negative integer, got -1"],
    ["participation.scoring.dataCheck.randomBatches", { participation: { ...spec72.participation, scoring: { ...spec72.participation.scoring, dataCheck: { ...spec72.participation.scoring.dataCheck, randomBatches: 1 } } } }, "expected 0 (off) or at least 2 (a z needs the random batches' spread), got 1"],
    ["participation.gather.perObjectTimeoutMs", { participation: { ...spec72.participation, gather: { ...spec72.participation.gather, perObjectTimeoutMs: 700_000 } } }, "expected at most totalTimeoutMs (600000), got 700000"],
    ["data.sampling.samplesPerWindow", { data: { ...spec72.data, sampling: { ...spec72.data.sampling, samplesPerWindow: 5000 } } }, "expected innerOptimizer.batchSize x innerSteps (192 x 30 = 5760), got 5000"],
    ["outerOptimizer.lr.milestones[1].fromOuterStep", { outerOptimizer: { ...spec72.outerOptimizer, lr: { kind: "piecewise", initial: 1, milestones: [{ fromOuterStep: 10, value: 0.8 }, { fromOuterStep: 10, value: 0.4 }] } } }, "expected a step after the previous milestone's (10), got 10"],
    ["outerOptimizer.nesterov", { outerOptimizer: { ...spec72.outerOptimizer, nesterov: true } }, "expected false when momentum is 0, got true"],
    ["infrastructure.chain.endpoint", { infrastructure: { ...spec72.infrastructure, chain: { kind: "subtensor", endpoint: "http://x", netuid: 3 } } }, 'expected a ws:// or wss:// URL, got "http://x"'],
    ["infrastructure.transport.credentials.accessKeyIdEnv", { infrastructure: { ...spec72.infrastructure, transport: { ...spec72.infrastructure.transport, credentials: { accessKeyIdEnv: "my key", secretAccessKeyEnv: "S" } } } }, 'expected an environment variable name ([A-Z_][A-Z0-9_]*), got "my key"'],
    ["checkpointing", { checkpointing: 5 }, "expected CheckpointingSpec, got 5"],
  ])("%s", (path, patch, message) => {
    expect(issuesOf({ ...spec72, ...patch })).toEqual([{ path, message }])
  })

  test("debug: local chain block time must agree with participation's", () => {
    const bad = { ...specDebug, infrastructure: { ...specDebug.infrastructure, chain: { kind: "local", path: "x", blockTimeMs: 1000 } } }
    expect(issuesOf(bad)).toEqual([{ path: "infrastructure.chain.blockTimeMs", message: "expected participation.blockTimeMs (800), got 1000" }])
  })

  test("debug: the byte-level tokenizer needs 258 ids, and EOS must be one of them", () => {
    expect(issuesOf({ ...specDebug, model: { ...specDebug.model, vocabSize: 256 } })).toEqual([
      { path: "model.vocabSize", message: "expected at least 258 for the byte-level tokenizer (256 bytes, end of document, padding), got 256" },
      // debug's EOS (256) is then outside the vocabulary too.
      { path: "data.eosTokenId", message: "expected less than model.vocabSize (256), got 256" },
    ])
    expect(issuesOf({ ...specDebug, data: { ...specDebug.data, eosTokenId: 258 } })).toEqual([
      { path: "data.eosTokenId", message: "expected less than model.vocabSize (258), got 258" },
    ])
  })

  test("a missing section", () => {
    const { checkpointing: _missing, ...rest } = spec72
    expect(issuesOf(rest)).toEqual([{ path: "checkpointing", message: "expected a value, got nothing" }])
  })

  test("a misspelt field is reported, not dropped", () => {
    expect(issuesOf({ ...spec72, modle: {} }).map((i) => i.path)).toEqual(["modle"])
  })

  test("every broken field is listed, not only the first", () => {
    const bad = { ...spec72, seed: -1, model: { ...spec72.model, dim: 0, vocabSize: "big" } }
    expect(issuesOf(bad).map((i) => i.path).sort()).toEqual(["model.dim", "model.vocabSize", "seed"])
  })

  test("non-objects are rejected with a typed error, not a crash", () => {
    for (const input of [null, 42, "spec", [], undefined]) expect(issuesOf(input).length).toBeGreaterThan(0)
  })
})
