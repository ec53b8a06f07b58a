import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { debug } from "@covenant/dsl"
import {
  keepUpStart, lastWindow, missingPeers, describeMissing, nothingToTrain, observeLanding, reportedEach, stepFits, StopRule, trainingBudgetMs,
} from "../src/index.ts"
import type { KeepUp, Notice, WindowTiming } from "../src/index.ts"

// The numbers: the old debug window (5 blocks x 200 ms, 500 ms upload) and ~1.4 s of compute.
const oldDebug = { ...debug().participation, blocksPerWindow: 5, blockTimeMs: 200, uploadWindowMs: 500 }

const timing = (window: number, byMs: number, computeMs = 1_450): WindowTiming => ({
  window, windowMs: 1_000, computeMs, codecMs: 20, uploadMs: 5, landedAt: 10_000 + byMs, intervalEnd: 10_000,
})

const run = (bys: ReadonlyArray<number>) => {
  let state: KeepUp = keepUpStart
  const notices: Array<Notice | undefined> = []
  bys.forEach((by, i) => {
    const r = observeLanding(state, timing(9 + i, by))
    state = r.state
    notices.push(r.notice)
  })
  return notices
}

describe("a peer that cannot keep up says so, with numbers", () => {
  test("a late window names how late, the compute and the window, and what to change", () => {
    const [n] = run([420])
    expect(n?._tag).toBe("Late")
    expect(n?.message).toBe("window 9: your update landed 420 ms after the upload interval closed (compute 1.45 s for a 1.00 s window): lower innerSteps/batch or use a longer window")
  })

  test(`after ${reportedEach} late windows one summary line, then silence while it stays late`, () => {
    const notices = run([420, 380, 510, 450, 470, 400])
    expect(notices.map((n) => n?._tag)).toEqual(["Late", "Late", "Late", "LateSummary", undefined, undefined])
    expect(notices[3]?.message).toContain("windows 9..12: all 4 updates this peer made landed after the upload interval closed (by 380..510 ms")
    expect(notices[3]?.message).toContain("cannot keep up")
  })

  test("on time says nothing, unless it was late before; a new streak is reported again", () => {
    const notices = run([-300, 420, -50, -40, 200])
    expect(notices.map((n) => n?._tag)).toEqual([undefined, "Late", "OnTimeAgain", undefined, "Late"])
    expect(notices[2]?.message).toContain("window 11: on time again after 1 late window (landed 50 ms before")
  })
})

describe("the warm-up step against the window", () => {
  test("the old debug window cannot hold 5 steps of 290 ms; the reason says so and names the flag", () => {
    const fit = stepFits(oldDebug, 5, 290, 1)
    expect(Either.isLeft(fit)).toBe(true)
    const reason = Either.isLeft(fit) ? fit.left : ""
    expect(reason).toContain("one inner step took 290 ms here, so 5 inner steps take 1.45 s")
    expect(reason).toContain(`leaves ${(trainingBudgetMs(oldDebug, 1) / 1000).toFixed(2)} s to train and upload`)
    expect(reason).toContain("--accept-slow")
  })

  test("the debug preset's window holds them; a slower machine's step does not", () => {
    const p = debug().participation
    expect(Either.isRight(stepFits(p, 5, 290, 1))).toBe(true)
    expect(Either.isLeft(stepFits(p, 5, 1_000, 1))).toBe(true)
  })
})

describe("which expected peers are missing, and why", () => {
  test("late, early, invalid, unreadable and absent peers are each named", () => {
    const refused = {
      late: [{ uid: 1, byMs: 420 }], early: [{ uid: 2, byMs: 30 }], invalid: [], unavailable: [{ uid: 5, reason: "Unavailable" }], missing: [6],
    }
    const missing = missingPeers([1, 2, 3, 4, 5, 6, 7], [7], refused, [{ uid: 3, reason: "WrongSamples(20 samples abcd…)" }, { uid: 4, reason: "TooLarge(9 > 8)" }])
    expect(describeMissing(missing)).toBe("1 late +420 ms; 2 early -30 ms; 3 invalid WrongSamples(20 samples abcd…); 4 invalid TooLarge(9 > 8); 5 unreadable Unavailable; 6 absent")
    expect(missingPeers([1, 2], [1, 2], refused, [])).toEqual([])
  })
})

describe("when a node stops", () => {
  test("--until-window N finishes window N; --windows N runs N from the live window; the swarm's count is from the start", () => {
    expect(lastWindow(StopRule.UntilWindow({ window: 8 }), 1, 12)).toBe(8)
    expect(lastWindow(StopRule.FromNow({ windows: 8 }), 1, 12)).toBe(19)
    expect(lastWindow(StopRule.FromNow({ windows: 3 }), 5, 4)).toBe(7)
    expect(lastWindow(StopRule.FromStart({ windows: 8 }), 1, 12)).toBe(8)
  })

  test("a resumed peer told to stop before the live window says it will train nothing", () => {
    const rule = StopRule.UntilWindow({ window: 8 })
    expect(nothingToTrain(rule, 8, 12)).toContain("stops after window 8 (--until-window 8) but the first window it could train is 12")
    expect(nothingToTrain(rule, 8, 8)).toBeUndefined()
  })
})
