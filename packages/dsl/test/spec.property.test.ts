import { describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck as fc } from "effect"
import { decodeRunSpec, encodeRunSpec, type RunSpec, type RunSpecError } from "../src/index.ts"
import { validRunSpec } from "./arbitraries.ts"

const decode = (u: unknown): Either.Either<RunSpec, RunSpecError> => Effect.runSync(Effect.either(decodeRunSpec(u)))

/** A deep copy of `value` with the field at `path` replaced. */
const setPath = (value: unknown, path: ReadonlyArray<string>, replacement: unknown): unknown => {
  if (path.length === 0) return replacement
  const [head, ...rest] = path as [string, ...Array<string>]
  const record = value as Record<string, unknown>
  return { ...record, [head]: setPath(record[head], rest, replacement) }
}

const getPath = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((v, key) => (v as Record<string, unknown>)[key], value)

/** Values no positive-integer field accepts. */
const notPositiveInt = fc.oneof(
  fc.integer({ min: -1000, max: 0 }),
  fc.double({ min: 0.01, max: 1000, noNaN: true }).filter((n) => !Number.isInteger(n)),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, "8", null, true, [] as Array<number>),
)

interface Mutation {
  readonly path: ReadonlyArray<string>
  /** An invalid value for this field, given the rest of the (valid) spec. */
  readonly invalid: (spec: RunSpec) => fc.Arbitrary<unknown>
  readonly applies?: (spec: RunSpec) => boolean
}

const positiveIntFields: ReadonlyArray<ReadonlyArray<string>> = [
  ["model", "dim"],
  ["model", "nLayers"],
  ["model", "nHeads"],
  ["model", "ffnDim"],
  ["model", "vocabSize"],
  ["model", "seqLen"],
  ["innerOptimizer", "innerSteps"],
  ["innerOptimizer", "batchSize"],
  ["participation", "blocksPerWindow"],
  ["participation", "peersGathered"],
  ["participation", "evaluationsPerWindow"],
  ["checkpointing", "everyOuterSteps"],
  ["checkpointing", "keep"],
]

const sparse = (s: RunSpec) => s.compression.kind === "sparseloco"
const chunkOf = (s: RunSpec) => (s.compression.kind === "sparseloco" ? s.compression.chunk : 1)

const mutations: ReadonlyArray<Mutation> = [
  ...positiveIntFields.map((path): Mutation => ({ path, invalid: () => notPositiveInt })),
  { path: ["model", "nHeads"], invalid: (s) => fc.integer({ min: 1, max: 2 * s.model.dim }).filter((n) => s.model.dim % n !== 0) },
  {
    path: ["model", "nKvHeads"],
    invalid: (s) => fc.integer({ min: 1, max: 2 * s.model.nHeads + 1 }).filter((n) => s.model.nHeads % n !== 0),
    applies: (s) => s.model.nHeads > 1,
  },
  { path: ["model", "dtype"], invalid: () => fc.constantFrom("float64", "int8", "", 16) },
  { path: ["model", "family"], invalid: () => fc.constantFrom("gpt2", "LLAMA") },
  { path: ["model", "ropeTheta"], invalid: () => fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY) },
  {
    path: ["compression", "topk"],
    invalid: (s) =>
      fc.oneof(
        fc.integer({ min: 0, max: chunkOf(s) * chunkOf(s) }).map((n) => 2 * Math.floor(n / 2) + 1),
        fc.integer({ min: chunkOf(s) * chunkOf(s) + 1, max: 4 * chunkOf(s) * chunkOf(s) }),
      ),
    applies: sparse,
  },
  { path: ["compression", "efDecay"], invalid: () => fc.constantFrom(1, 1.5, -0.1), applies: sparse },
  { path: ["compression", "indexCoding"], invalid: () => fc.constantFrom("huffman", "packed16"), applies: sparse },
  { path: ["compression", "chunk"], invalid: () => fc.oneof(fc.integer({ min: 65, max: 512 }), fc.integer({ min: -5, max: 0 })), applies: sparse },
  { path: ["compression", "quantBins"], invalid: () => fc.constantFrom(0, 1, 5, 16, 2.5), applies: sparse },
  {
    path: ["innerOptimizer", "schedule", "warmupSteps"],
    invalid: (s) => fc.integer({ min: s.innerOptimizer.schedule.totalSteps, max: 2 * s.innerOptimizer.schedule.totalSteps }),
  },
  {
    path: ["innerOptimizer", "microBatchSize"],
    invalid: (s) => fc.integer({ min: 1, max: 2 * s.innerOptimizer.batchSize + 1 }).filter((n) => s.innerOptimizer.batchSize % n !== 0),
  },
  { path: ["innerOptimizer", "betas"], invalid: () => fc.constantFrom([0.9], [0.9, 1], [0.9, 0.95, 0.99], "0.9,0.95") },
  {
    path: ["data", "sampling", "samplesPerWindow"],
    invalid: (s) => fc.integer({ min: 1, max: s.data.sampling.poolSize + 10 }).filter((n) => n !== s.data.sampling.samplesPerWindow),
  },
  {
    path: ["data", "schedule"],
    invalid: () =>
      fc.constantFrom(
        { kind: "rotate", liveShards: 0, everyOuterSteps: 1 },
        { kind: "rotate", liveShards: 2, everyOuterSteps: 1.5 },
        { kind: "stages", stages: [] },
        { kind: "stages", stages: [{ fromOuterStep: 4, shards: [0] }] },
        { kind: "stages", stages: [{ fromOuterStep: 0, shards: [0] }, { fromOuterStep: 0, shards: [1] }] },
        { kind: "stages", stages: [{ fromOuterStep: 0, shards: [3, 3] }] },
        { kind: "sometimes" },
      ),
    applies: (s) => s.data.schedule !== undefined,
  },
  {
    path: ["data", "source", "cacheBytes"],
    invalid: () => fc.constantFrom(-1, 1.5, "1GB"),
    applies: (s) => s.data.source.kind === "shards" && s.data.source.cacheBytes !== undefined,
  },
  {
    path: ["participation", "uploadWindowMs"],
    invalid: (s) => {
      const windowMs = s.participation.blocksPerWindow * s.participation.blockTimeMs
      return fc.integer({ min: windowMs, max: 2 * windowMs })
    },
  },
  { path: ["participation", "reservePeers"], invalid: () => fc.integer({ min: -100, max: -1 }) },
  {
    path: ["infrastructure", "chain", "blockTimeMs"],
    invalid: (s) => fc.integer({ min: 1, max: 100_000 }).filter((n) => n !== s.participation.blockTimeMs),
    applies: (s) => s.infrastructure.chain.kind === "local",
  },
  { path: ["infrastructure", "transport", "kind"], invalid: () => fc.constantFrom("ftp", "") },
  { path: ["name"], invalid: () => fc.constantFrom("", "Has Spaces", "-leading-dash", "x".repeat(65)) },
  { path: ["seed"], invalid: () => fc.constantFrom(-1, 2 ** 32, 0.5) },
  // A misspelt field is an error at its own path, not silently dropped.
  { path: ["model", "nHead"], invalid: () => fc.integer({ min: 1, max: 64 }) },
]

describe("run spec (property)", () => {
  test("every generated valid spec decodes, and encodes and decodes to itself", () => {
    fc.assert(
      fc.property(validRunSpec, (spec) => {
        const decoded = decode(spec)
        if (Either.isLeft(decoded)) throw new Error(`valid spec rejected:\n${decoded.left.message}`)
        expect(decoded.right).toEqual(spec)
        const encoded = Effect.runSync(encodeRunSpec(decoded.right))
        expect(decode(encoded)).toEqual(Either.right(spec))
      }),
      { numRuns: 300 },
    )
  }, 60_000)

  test("a spec with one field made invalid is rejected with an issue at that field's path", () => {
    const mutated = validRunSpec.chain((spec) =>
      fc
        .constantFrom(...mutations.filter((m) => m.applies?.(spec) ?? true))
        .chain((m) => m.invalid(spec).map((value) => ({ spec, path: m.path, value }))),
    )
    fc.assert(
      fc.property(mutated, ({ spec, path, value }) => {
        const result = decode(setPath(spec, path, value))
        if (Either.isRight(result)) throw new Error(`accepted ${path.join(".")} = ${JSON.stringify(value)}`)
        // The issue is at the field, or inside it for a tuple/array value (`betas[1]`).
        const field = path.join(".")
        const named = result.left.issues.filter((i) => i.path === field || i.path.startsWith(`${field}[`) || i.path.startsWith(`${field}.`))
        expect(named.map((i) => i.path)).not.toEqual([])
      }),
      { numRuns: 500 },
    )
  }, 60_000)

  test("the generators really produce each mutation's field (sanity of the invalid-spec test)", () => {
    const spec = fc.sample(validRunSpec, { numRuns: 1, seed: 7 })[0]!
    for (const m of mutations) {
      if (!(m.applies?.(spec) ?? true) || m.path.at(-1) === "nHead") continue
      expect(getPath(spec, m.path)).toBeDefined()
    }
  })
})
