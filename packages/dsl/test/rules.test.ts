import { describe, expect, test } from "bun:test"
import { covenant72b, debug, innerLrAt, outerLrAt } from "../src/index.ts"

describe("learning-rate schedules", () => {
  test("inner: linear warm-up to lr, cosine down to minLrFraction x lr", () => {
    const o = covenant72b().innerOptimizer
    const { warmupSteps, totalSteps, minLrFraction } = o.schedule
    expect(innerLrAt(o, 0)).toBeCloseTo(o.lr / warmupSteps, 15)
    expect(innerLrAt(o, warmupSteps - 1)).toBeCloseTo(o.lr, 15)
    expect(innerLrAt(o, warmupSteps)).toBeCloseTo(o.lr, 15)
    expect(innerLrAt(o, (warmupSteps + totalSteps) / 2)).toBeCloseTo(o.lr * (minLrFraction + (1 - minLrFraction) / 2), 12)
    expect(innerLrAt(o, totalSteps)).toBeCloseTo(o.lr * minLrFraction, 15)
    expect(innerLrAt(o, 10 * totalSteps)).toBeCloseTo(o.lr * minLrFraction, 15)
  })

  test("outer: piecewise values from each milestone on", () => {
    const lr = covenant72b().outerOptimizer.lr
    expect(outerLrAt(lr, 0)).toBe(1.0)
    if (lr.kind !== "piecewise") throw new Error("expected a piecewise schedule")
    const [first, , last] = lr.milestones
    expect(outerLrAt(lr, first!.fromOuterStep - 1)).toBe(1.0)
    expect(outerLrAt(lr, first!.fromOuterStep)).toBe(first!.value)
    expect(outerLrAt(lr, last!.fromOuterStep + 1_000_000)).toBe(0.4)
    expect(outerLrAt(debug().outerOptimizer.lr, 12345)).toBe(1.0)
  })
})
