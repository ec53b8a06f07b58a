import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { debug, debugSubnet } from "@covenant/dsl"
import { pollMs, runTimingFor } from "../src/index.ts"

describe("a run's timing against the chain's measured block time", () => {
  test("the debug run on a chain of 3 s blocks is refused with the reasons (it would gather nothing there, silently)", () => {
    const refused = runTimingFor(debug(), 3_000, false)
    expect(Either.isLeft(refused)).toBe(true)
    const reason = Either.isLeft(refused) ? refused.left.reason : ""
    expect(reason).toContain("assumes 800 ms blocks but the chain makes one every 3000 ms")
    expect(reason).toContain("upload window (2000 ms)")
  })

  test("with --fit-to-chain it is refitted to the measured block time and runs", () => {
    const fitted = runTimingFor(debug(), 1_013, true)
    expect(Either.isRight(fitted) && [fitted.right.participation.blockTimeMs, fitted.right.participation.uploadWindowMs]).toEqual([1_013, 5_000])
  })

  test("debug-subnet runs as is on 12 s blocks (with jitter); its node polls the clock every 3 s", () => {
    const spec = debugSubnet()
    expect(runTimingFor(spec, 12_150, false)).toEqual(Either.right(spec))
    expect(pollMs(spec)).toBe(3_000)
    // A chain too young to measure: taken as is.
    expect(runTimingFor(debug(), undefined, false)).toEqual(Either.right(debug()))
  })
})
