/** Generators of valid run specs (presets with consistent random variations) for the property tests. */
import { FastCheck as fc } from "effect"
import { covenant72b, debug, llama150m, llama1b, type RunSpec } from "../src/index.ts"

const double = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true })
/** (0, max]: Schema's Positive rejects 0. */
const positive = (max: number) => double(Number.MIN_VALUE, max)

const model = fc
  .record({
    halfHeadDim: fc.integer({ min: 1, max: 64 }),
    nKvHeads: fc.integer({ min: 1, max: 8 }),
    group: fc.integer({ min: 1, max: 8 }),
    nLayers: fc.integer({ min: 1, max: 96 }),
    ffnDim: fc.integer({ min: 1, max: 65536 }),
    vocabSize: fc.integer({ min: 258, max: 300_000 }),
    seqLen: fc.integer({ min: 1, max: 8192 }),
    ropeTheta: positive(1e7),
    normEps: positive(1e-2),
    tiedEmbeddings: fc.boolean(),
    dtype: fc.constantFrom("float32" as const, "float16" as const, "bfloat16" as const),
  })
  .map(({ halfHeadDim, group, ...m }): RunSpec["model"] => ({
    family: "llama",
    ...m,
    nHeads: m.nKvHeads * group,
    dim: 2 * halfHeadDim * m.nKvHeads * group,
  }))

const compression: fc.Arbitrary<RunSpec["compression"]> = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc
    .record({
      indexCoding: fc.constantFrom("packed12" as const, "rice" as const),
      chunk: fc.integer({ min: 2, max: 64 }),
      kSeed: fc.double({ min: 0, max: 1, noNaN: true }),
      efDecay: fc.double({ min: 0, max: 0.999, noNaN: true }),
      quantBins: fc.integer({ min: 2, max: 4 }),
      quantRange: positive(16),
    })
    .map(({ chunk, kSeed, ...rest }) => {
      const maxPairs = Math.floor((chunk * chunk) / 2)
      const topk = 2 * Math.max(1, Math.ceil(kSeed * maxPairs))
      return { kind: "sparseloco" as const, chunk, topk, ...rest }
    }),
)

const training = fc.record({
  innerSteps: fc.integer({ min: 1, max: 100 }),
  microBatchSize: fc.integer({ min: 1, max: 16 }),
  accumulation: fc.integer({ min: 1, max: 32 }),
  warmupSteps: fc.integer({ min: 0, max: 5000 }),
  extraSteps: fc.integer({ min: 1, max: 1_000_000 }),
  extraPool: fc.integer({ min: 0, max: 10_000 }),
  lr: positive(1),
  minLrFraction: fc.double({ min: 0, max: 1, noNaN: true }),
})

const timing = fc.record({
  blocksPerWindow: fc.integer({ min: 1, max: 1000 }),
  blockTimeMs: fc.integer({ min: 2, max: 60_000 }),
  uploadFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  peersGathered: fc.integer({ min: 1, max: 256 }),
  reservePeers: fc.integer({ min: 0, max: 64 }),
  poll: fc.integer({ min: 1, max: 1000 }),
  perObjectExtra: fc.integer({ min: 0, max: 100_000 }),
  totalExtra: fc.integer({ min: 0, max: 1_000_000 }),
})

const infrastructure = (blockTimeMs: number): fc.Arbitrary<RunSpec["infrastructure"]> =>
  fc.record({
    chain: fc.oneof(
      fc.record({ kind: fc.constant("local" as const), path: fc.string({ minLength: 1 }), blockTimeMs: fc.constant(blockTimeMs) }),
      fc.record({
        kind: fc.constant("subtensor" as const),
        endpoint: fc.constantFrom("ws://127.0.0.1:9944", "wss://entrypoint-finney.opentensor.ai:443"),
        netuid: fc.integer({ min: 0, max: 65535 }),
      }),
    ),
    transport: fc.oneof(
      fc.record({ kind: fc.constant("filesystem" as const), dir: fc.string({ minLength: 1 }) }),
      fc.record({
        kind: fc.constant("s3" as const),
        endpoint: fc.constantFrom("http://127.0.0.1:4568", "https://example.r2.cloudflarestorage.com"),
        region: fc.constantFrom("auto", "us-east-1"),
        bucket: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]$/),
        forcePathStyle: fc.boolean(),
        credentials: fc.constant({ accessKeyIdEnv: "S3_KEY_ID", secretAccessKeyEnv: "S3_SECRET" }),
      }),
    ),
  })

/** Where the data lives and which shards are live when: the preset's, or shards in S3 with a schedule. */
const dataVariant = fc.record({
  s3: fc.boolean(),
  cacheBytes: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: undefined }),
  schedule: fc.option(
    fc.oneof(
      fc.constant({ kind: "all" as const }),
      fc.record({ kind: fc.constant("rotate" as const), liveShards: fc.integer({ min: 1, max: 64 }), everyOuterSteps: fc.integer({ min: 1, max: 1000 }) }),
      fc.array(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.uniqueArray(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 8 })), { minLength: 1, maxLength: 5 }).map((list) => {
        let from = 0
        const stages = list.map(([gap, shards], i) => ({ fromOuterStep: i === 0 ? 0 : (from += gap), shards: shards as [number, ...number[]] }))
        return { kind: "stages" as const, stages: stages as [typeof stages[number], ...typeof stages] }
      }),
    ),
    { nil: undefined },
  ),
})

/** A valid spec: a preset with every section varied consistently. */
export const validRunSpec: fc.Arbitrary<RunSpec> = fc
  .tuple(
    fc.constantFrom(covenant72b(), llama1b(), llama150m(), debug()),
    model,
    compression,
    training,
    timing,
    fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    fc.option(positive(1e13), { nil: undefined }),
    dataVariant,
  )
  .chain(([base, model, compression, t, time, seed, tokenBudget, dv]) =>
    infrastructure(time.blockTimeMs).map((infrastructure): RunSpec => {
      const batchSize = t.microBatchSize * t.accumulation
      const samplesPerWindow = batchSize * t.innerSteps
      const windowMs = time.blocksPerWindow * time.blockTimeMs
      const perObjectTimeoutMs = time.poll + time.perObjectExtra
      const spec: RunSpec = {
        ...base,
        seed,
        model,
        data: {
          ...base.data,
          ...(dv.s3 ? { source: { kind: "shards" as const, uri: "s3://corpus/v1", ...(dv.cacheBytes === undefined ? {} : { cacheBytes: dv.cacheBytes }) } } : {}),
          ...(dv.schedule === undefined ? {} : { schedule: dv.schedule }),
          sampling: { kind: "uidWindowSeed", poolSize: samplesPerWindow + t.extraPool, samplesPerWindow },
        },
        innerOptimizer: {
          ...base.innerOptimizer,
          lr: t.lr,
          schedule: {
            kind: "warmupCosine",
            warmupSteps: t.warmupSteps,
            totalSteps: Math.max(t.warmupSteps, t.innerSteps) + t.extraSteps,
            minLrFraction: t.minLrFraction,
          },
          innerSteps: t.innerSteps,
          batchSize,
          microBatchSize: t.microBatchSize,
        },
        compression,
        participation: {
          ...base.participation,
          blocksPerWindow: time.blocksPerWindow,
          blockTimeMs: time.blockTimeMs,
          uploadWindowMs: Math.max(1, Math.min(windowMs - 1, Math.floor(time.uploadFraction * windowMs))),
          peersGathered: time.peersGathered,
          reservePeers: time.reservePeers,
          gather: { pollIntervalMs: time.poll, perObjectTimeoutMs, totalTimeoutMs: perObjectTimeoutMs + time.totalExtra },
        },
        infrastructure,
        checkpointing: base.checkpointing,
      }
      const { tokenBudget: _dropped, ...withoutBudget } = spec
      return tokenBudget === undefined ? withoutBudget : { ...withoutBudget, tokenBudget }
    }),
  )
