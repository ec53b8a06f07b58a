import { describe, expect, test } from "bun:test"
import { Either, FastCheck } from "effect"
import { checkStoreTime } from "../src/index.ts"

// A store stamps an object at most one resolution behind the true time it landed (S3 truncates to
// the second, a file's mtime comes from the kernel's coarse clock). An object that truly landed
// inside the interval must never be judged too early for it, and one stamped a whole resolution or
// more before the start always is.
describe("store times against the upload interval", () => {
  const resolutions = FastCheck.constantFrom(1, 4, 10, 1000)
  test("an on-time upload is never too early, whatever its stamp's lag; a stamp a resolution before the start is", () =>
    FastCheck.assert(
      FastCheck.property(resolutions, FastCheck.integer({ min: 1_000_000, max: 2_000_000_000 }), FastCheck.integer({ min: 0, max: 60_000 }), FastCheck.integer({ min: 0, max: 999 }), (res, start, after, anyLag) => {
        const interval = { start, end: start + 70_000 }
        const landed = start + after
        // Stamps are whole milliseconds trailing the true time by less than one resolution; integer
        // arithmetic, since a fractional lag rounded in floating point can reach a whole resolution.
        const stamp = landed - (anyLag % res)
        expect(Either.isRight(checkStoreTime("k", stamp, interval, res))).toBe(true)
        expect(Either.isLeft(checkStoreTime("k", start - res, interval, res))).toBe(true)
        expect(Either.isLeft(checkStoreTime("k", start - res - after, interval, res))).toBe(true)
      }),
    ))

  test("S3's whole-second stamps: an upload in the interval's first second is on time, one a second before it is early", () => {
    const interval = { start: 1_800_000_000_400, end: 1_800_000_070_400 }
    // Landed at start + 100 ms, stamped at the whole second before the start.
    expect(checkStoreTime("k", 1_800_000_000_000, interval, 1000)).toEqual(Either.right(1_800_000_000_000))
    expect(Either.isLeft(checkStoreTime("k", 1_799_999_999_000, interval, 1000))).toBe(true)
    expect(Either.isLeft(checkStoreTime("k", interval.end + 1, interval, 1000))).toBe(true)
  })

  test("the filesystem's coarse mtime (measured 1 ms behind the block's Date.now()) is on time", () => {
    const interval = { start: 1_800_000_000_000, end: 1_800_000_000_500 }
    expect(Either.isRight(checkStoreTime("k", interval.start - 1, interval, 10))).toBe(true)
    expect(Either.isLeft(checkStoreTime("k", interval.start - 10, interval, 10))).toBe(true)
  })
})
