import { describe, expect, test } from "bun:test"
import { meanDense, nesterovStep, outerStep } from "../src/index.ts"
import { randn } from "./reference.ts"

describe("outer optimizer steps", () => {
  test("outerStep is params - lr * g in float32", () => {
    const p = randn(100, 1)
    const g = randn(100, 2)
    const q = p.slice()
    outerStep(q, g, 0.7)
    for (let i = 0; i < 100; i++) expect(q[i]).toBe(Math.fround(p[i]! - Math.fround(Math.fround(0.7) * g[i]!)))
  })

  test("nesterovStep follows torch SGD(nesterov) over several steps (float64 recurrence, 1e-5 relative)", () => {
    const p = randn(50, 3)
    const p64 = Float64Array.from(p)
    const buf = new Float32Array(50)
    const buf64 = new Float64Array(50)
    for (let step = 0; step < 5; step++) {
      const g = randn(50, 10 + step)
      nesterovStep(p, g, buf, 0.6, 0.9)
      for (let i = 0; i < 50; i++) {
        buf64[i] = 0.9 * buf64[i]! + g[i]!
        p64[i] = p64[i]! - 0.6 * (g[i]! + 0.9 * buf64[i]!)
      }
    }
    for (let i = 0; i < 50; i++) expect(Math.abs(p[i]! - p64[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(p64[i]!)))
  })

  test("meanDense averages full-precision pseudo-gradients", () => {
    const a = Float32Array.from([1, 2, 3])
    const b = Float32Array.from([3, 4, 6])
    const out = new Float32Array(3)
    meanDense([a, b], out)
    expect(Array.from(out)).toEqual([2, 3, 4.5])
  })
})
