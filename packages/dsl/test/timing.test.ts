import { describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck } from "effect"
import { covenant72b, debug, debugSubnet, decodeRunSpec, fitToBlockTime, llama150m, timingIssues, windowDurationMs } from "../src/index.ts"
import type { RunSpec } from "../src/index.ts"

const valid = (spec: RunSpec) => {
  const decoded = Effect.runSync(Effect.either(decodeRunSpec(spec)))
  if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
  return decoded.right
}

describe("timing fitted to a chain's block time", () => {
  test("the debug preset on 3 s blocks is refused with the reason, as it would gather nothing there", () => {
    const issues = timingIssues(debug().participation, 3_000)
    expect(issues.some((i) => i.includes("assumes 800 ms blocks") && i.includes("fitToBlockTime(spec, 3000)"))).toBe(true)
    expect(issues.some((i) => i.includes("upload window (2000 ms) is shorter than 2 blocks"))).toBe(true)
    expect(timingIssues(debug().participation, 800)).toEqual([])
  })

  test("fitted to 1 s blocks, the debug run gets an upload window of seconds and the window grows to hold it", () => {
    const fitted = valid(fitToBlockTime(debug(), 1_000))
    const p = fitted.participation
    expect([p.blockTimeMs, p.uploadWindowMs, p.blocksPerWindow]).toEqual([1_000, 5_000, 9])
    expect(fitted.infrastructure.chain).toEqual({ kind: "local", path: ".covenant/debug/chain", blockTimeMs: 1_000 })
    expect(timingIssues(p, 1_000)).toEqual([])
    expect(timingIssues(p, 1_150)).toEqual([])
  })

  test("a preset fitted to its own block time is itself", () => {
    expect(fitToBlockTime(covenant72b(), 12_000)).toEqual(covenant72b())
    expect(fitToBlockTime(debug(), 800, { minUploadWindowMs: 0 })).toEqual(debug())
  })

  test("debugSubnet: 12 s blocks, 5-block windows, a 30 s upload window, weights within subtensor's 100-block rate limit", () => {
    const spec = valid(debugSubnet())
    const p = spec.participation
    expect([p.blockTimeMs, p.blocksPerWindow, p.uploadWindowMs, windowDurationMs(p)]).toEqual([12_000, 5, 30_000, 60_000])
    expect(p.setWeightsEveryWindows * p.blocksPerWindow).toBeGreaterThan(100)
    expect(spec.infrastructure.chain.kind).toBe("subtensor")
    expect(timingIssues(p, 12_000)).toEqual([])
    // A chain that drifts to 14 s blocks still runs it; one making 1 s blocks does not.
    expect(timingIssues(p, 14_000)).toEqual([])
    expect(timingIssues(p, 1_000).length).toBeGreaterThan(0)
  })

  test("property: for any block time from 50 ms to 30 s a fitted preset is valid, fits, and fitting again changes nothing", () => {
    const presets = [debug(), covenant72b(), llama150m(), debugSubnet()]
    FastCheck.assert(
      FastCheck.property(FastCheck.constantFrom(...presets), FastCheck.integer({ min: 50, max: 30_000 }), FastCheck.option(FastCheck.integer({ min: 1, max: 1000 })), (spec, blockTimeMs, rate) => {
        const options = rate === null ? {} : { weightsRateLimitBlocks: rate }
        const fitted = valid(fitToBlockTime(spec, blockTimeMs, options))
        const p = fitted.participation
        expect(timingIssues(p, blockTimeMs)).toEqual([])
        expect(p.uploadWindowMs).toBeGreaterThanOrEqual(2 * blockTimeMs)
        if (rate !== null) expect(p.setWeightsEveryWindows * p.blocksPerWindow).toBeGreaterThan(rate)
        expect(fitToBlockTime(fitted, blockTimeMs, options)).toEqual(fitted)
      }),
      { numRuns: 200 },
    )
  })
})
