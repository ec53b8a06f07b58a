import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { join } from "node:path"
import { debug, defineRun, derive, loadRun, RunArgsTag, type RunSpec } from "../src/index.ts"

const fixture = (name: string) => join(import.meta.dir, "fixtures", name)
const either = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(effect))

describe("defineRun", () => {
  test("decodes what the build returns, with the arguments provided", async () => {
    const run = defineRun((args) => Effect.succeed({ ...debug(), seed: Number(args.env["SEED"]) }))
    const spec = await Effect.runPromise(Effect.provideService(run, RunArgsTag, { argv: [], env: { SEED: "42" } }))
    expect(spec.seed).toBe(42)
  })

  test("a spec that breaks a rule fails with RunSpecError naming the field", async () => {
    const run = defineRun((args) => Effect.succeed({ ...debug(), seed: Number(args.env["SEED"]) }))
    const result = await either(Effect.provideService(run, RunArgsTag, { argv: [], env: {} }))
    expect(Either.isLeft(result) && result.left._tag === "RunSpecError" && result.left.message).toBe(
      "seed: expected an integer in [0, 2^32), got NaN",
    )
  })
})

describe("loadRun", () => {
  test("imports a run.ts and runs its default export with the given args", async () => {
    const spec = await Effect.runPromise(loadRun(fixture("envRun.ts"), { argv: ["--tiny"], env: { RUN_SEED: "9" } }))
    expect(spec).toEqual({ ...debug(), seed: 9, name: "tiny" })
  })

  test("a run.ts with an invalid spec gives its RunSpecError", async () => {
    const result = await either(loadRun(fixture("invalidRun.ts"), { argv: [], env: {} }))
    if (Either.isRight(result) || result.left._tag !== "RunSpecError") throw new Error("expected RunSpecError")
    expect(result.left.issues).toEqual([{ path: "compression.topk", message: "expected an even integer <= 4096, got 65" }])
  })

  test.each([
    ["notAnEffect.ts", "the default export is not an Effect"],
    ["failingRun.ts", "config file not found"],
    ["doesNotExist.ts", "cannot import"],
  ])("%s fails with RunLoadError (%s)", async (name, reason) => {
    const result = await either(loadRun(fixture(name), { argv: [], env: {} }))
    if (Either.isRight(result) || result.left._tag !== "RunLoadError") throw new Error("expected RunLoadError")
    expect(result.left.message).toContain(reason)
    expect(result.left.path).toBe(fixture(name))
  })
})

describe("derive", () => {
  const base = debug()
  const get = async (effect: Effect.Effect<RunSpec, unknown>) => Effect.runPromise(effect)

  test("patches nested fields and keeps the rest", async () => {
    const spec = await get(derive(base, { compression: { topk: 32 }, participation: { gather: { pollIntervalMs: 10 } } }))
    expect(spec.compression).toMatchObject({ kind: "sparseloco", topk: 32, chunk: 64, efDecay: 0.95 })
    expect(spec.participation.gather).toEqual({ ...base.participation.gather, pollIntervalMs: 10 })
    expect(spec.model).toEqual(base.model)
  })

  test("switching a union member replaces it whole", async () => {
    const spec = await get(derive(base, { compression: { kind: "none" } }))
    expect(spec.compression).toEqual({ kind: "none" })
  })

  test("arrays are replaced, not merged", async () => {
    const spec = await get(derive(base, { participation: { penalties: { consecutiveMissFactors: [0.5] } } }))
    expect(spec.participation.penalties.consecutiveMissFactors).toEqual([0.5])
  })

  test("the variant is validated again", async () => {
    const result = await either(derive(base, { model: { nHeads: 6 } }))
    expect(Either.isLeft(result) && result.left.issues).toEqual([{ path: "model.nHeads", message: "expected a divisor of dim (64), got 6" }])
  })
})
