/**
 * The Gauntlet's pure parts: OpenSkill Plackett-Luce against the published numbers and its
 * invariants, weights, scores and penalties as FastCheck properties over random window histories.
 */
import { describe, expect, test } from "bun:test"
import { Effect, FastCheck as fc, Schema } from "effect"
import { debug } from "@covenant/dsl"
import { defaultRating, ordinal, plackettLuce } from "../src/scoring/openskill.ts"
import type { Rating } from "../src/scoring/openskill.ts"
import { positionWeight, weightsFromScores } from "../src/scoring/weights.ts"
import {
  DATA_GATE_MIN_CHECKS, DATA_GATE_REOPEN, dataCheckHasPower, emptyGauntlet, finalScore, gauntletWeights, GauntletStateJson, indicatorOf, indicatorWarmup, isPenalised, lastUseful, missFactor, observeWindow, scoresOf, selectForEvaluation, USEFUL_SHARE,
} from "../src/scoring/gauntlet.ts"
import type { GauntletParams, GauntletState, GauntletWindow } from "../src/scoring/gauntlet.ts"

const spec = Effect.runSync(Effect.sync(debug))
const params: GauntletParams = { scoring: spec.participation.scoring, penalties: spec.participation.penalties, activeWindows: spec.participation.activeWindows }
const reference: GauntletParams = { ...params, scoring: { ...params.scoring, linearWeighted: 20, tailWeighted: 10 } }

describe("OpenSkill Plackett-Luce", () => {
  test("two new players, defaults (beta 25/6, no tau): the numbers openskill publishes", () => {
    const [w, l] = plackettLuce([defaultRating(), defaultRating()], [0, 1], { beta: 25 / 6, tau: 0 })
    expect(w!.mu).toBeCloseTo(27.63523138347365, 10)
    expect(w!.sigma).toBeCloseTo(8.065506316323548, 10)
    expect(l!.mu).toBeCloseTo(22.36476861652635, 10)
    expect(l!.sigma).toBeCloseTo(8.065506316323548, 10)
  })

  test("three players by hand: c, C_q and the Omega/Delta sums", () => {
    // mu 25, 30, 20; sigma 8, 6, 4; beta 7; ranks 1, 0, 2 (the second won).
    const rs: Rating[] = [{ mu: 25, sigma: 8 }, { mu: 30, sigma: 6 }, { mu: 20, sigma: 4 }]
    const c = Math.sqrt(64 + 36 + 16 + 3 * 49)
    const e = rs.map((r) => Math.exp(r.mu / c))
    const C0 = e[0]! + e[1]! + e[2]!, C1 = e[0]! + e[2]!, C2 = e[2]!
    // winner (rank 0): only q = itself
    const q1 = e[1]! / C0
    const out = plackettLuce(rs, [1, 0, 2], { beta: 7, tau: 0 })
    expect(out[1]!.mu).toBeCloseTo(30 + (36 / c) * (1 - q1), 12)
    expect(out[1]!.sigma).toBeCloseTo(6 * Math.sqrt(1 - (6 / c) * (36 / (c * c)) * q1 * (1 - q1)), 12)
    // middle (rank 1): q = winner (C0) and itself (C1)
    const a = e[0]! / C0, b = e[0]! / C1
    expect(out[0]!.mu).toBeCloseTo(25 + (64 / c) * (-a + (1 - b)), 12)
    expect(out[0]!.sigma).toBeCloseTo(8 * Math.sqrt(1 - (8 / c) * (64 / (c * c)) * (a * (1 - a) + b * (1 - b))), 12)
    // last: all three q; its own C2 quotient is 1
    const x = e[2]! / C0, y = e[2]! / C1
    expect(out[2]!.mu).toBeCloseTo(20 + (16 / c) * (-x - y + 0), 12)
    void C2
  })

  const ratingArb = fc.record({ mu: fc.double({ min: 0, max: 50, noNaN: true }), sigma: fc.double({ min: 0.5, max: 10, noNaN: true }) })

  test("winner's mu rises, last's falls, sigma shrinks (tau 0), equal-sigma matches are zero-sum", () => {
    fc.assert(fc.property(fc.array(ratingArb, { minLength: 2, maxLength: 8 }), (rs) => {
      const ranks = rs.map((_, i) => i)
      const out = plackettLuce(rs, ranks, { beta: 7, tau: 0 })
      expect(out[0]!.mu).toBeGreaterThan(rs[0]!.mu)
      expect(out[rs.length - 1]!.mu).toBeLessThan(rs[rs.length - 1]!.mu)
      out.forEach((r, i) => expect(r.sigma).toBeLessThanOrEqual(rs[i]!.sigma))
      const same = rs.map((r) => ({ mu: r.mu, sigma: rs[0]!.sigma }))
      const moved = plackettLuce(same, ranks, { beta: 7, tau: 0 }).reduce((s, r, i) => s + r.mu - same[i]!.mu, 0)
      expect(Math.abs(moved)).toBeLessThan(1e-9)
    }))
  })
})

describe("weights", () => {
  const scoresArb = fc.uniqueArray(fc.record({ uid: fc.integer({ min: 0, max: 255 }), score: fc.oneof(fc.double({ min: -10, max: 10, noNaN: true }), fc.constant(0), fc.constant(1)) }), { selector: (s) => s.uid, maxLength: 40 })

  test("finite, positive scores only, sum to 1, independent of input order, higher score never less weight", () => {
    fc.assert(fc.property(scoresArb, fc.integer(), (scores, seed) => {
      const w = weightsFromScores(scores, reference.scoring)
      const shuffled = [...scores].sort((a, b) => ((a.uid * 7919 + seed) % 101) - ((b.uid * 7919 + seed) % 101))
      expect(weightsFromScores(shuffled, reference.scoring)).toEqual(w)
      if (!scores.some((s) => s.score > 0)) return expect(w).toEqual([])
      expect(Math.abs(w.reduce((a, x) => a + x.weight, 0) - 1)).toBeLessThan(1e-12)
      const byUid = new Map(w.map((x) => [x.uid, x.weight]))
      for (const x of w) expect(Number.isFinite(x.weight) && x.weight > 0).toBe(true)
      for (const s of scores) if (s.score <= 0) expect(byUid.has(s.uid)).toBe(false)
      for (const a of scores) for (const b of scores) if (a.score > b.score && b.score > 0) expect(byUid.get(a.uid)! + 1e-15).toBeGreaterThanOrEqual(byUid.get(b.uid)!)
    }))
  })

  test("linear profile then a geometric tail, nothing after", () => {
    const p = { linearWeighted: 3, tailWeighted: 2 }
    expect([0, 1, 2, 3, 4, 5].map((i) => positionWeight(i, p))).toEqual([3, 2, 1, 0.5, 0.25, 0])
  })
})

// ------------------------------------------------------------------ random window histories

const UIDS = [1, 2, 3, 4, 5, 6]

const windowArb = (w: number): fc.Arbitrary<GauntletWindow> =>
  fc.record({
    delivered: fc.subarray(UIDS),
    invalidPick: fc.subarray(UIDS, { maxLength: 2 }),
    copyPick: fc.subarray(UIDS, { maxLength: 2 }),
    outlierPick: fc.subarray(UIDS, { maxLength: 1 }),
    reference: fc.option(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { nil: null }),
    ownRef: fc.array(fc.option(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { nil: null }), { minLength: UIDS.length, maxLength: UIDS.length }),
    evalPick: fc.subarray(UIDS),
    grads: fc.array(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { minLength: UIDS.length, maxLength: UIDS.length }),
    own: fc.array(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { minLength: UIDS.length, maxLength: UIDS.length }),
    sync: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: UIDS.length, maxLength: UIDS.length }),
    checkPick: fc.subarray(UIDS),
    z: fc.array(fc.double({ min: -3, max: 6, noNaN: true }), { minLength: UIDS.length, maxLength: UIDS.length }),
  }).map(({ delivered, invalidPick, copyPick, outlierPick, reference, ownRef, evalPick, grads, own, sync, checkPick, z }) => {
    const invalid = invalidPick.filter((u) => delivered.includes(u))
    const valid = delivered.filter((u) => !invalid.includes(u))
    const copies = copyPick.filter((u) => valid.includes(u))
    const outliers = outlierPick.filter((u) => valid.includes(u))
    const evaluated = evalPick.filter((u) => valid.includes(u))
    return {
      window: w,
      tracked: UIDS,
      delivered,
      invalid,
      copies,
      outliers,
      reference,
      evaluations: evaluated.map((uid) => ({ uid, gradientScore: grads[uid - 1]!, ownImprovement: own[uid - 1]!, randomImprovement: grads[uid - 1]!, ownReference: ownRef[uid - 1]! })),
      sync: valid.map((uid) => ({ uid, score: sync[uid - 1]! })),
      dataChecks: checkPick.filter((u) => valid.includes(u)).map((uid) => ({ uid, z: z[uid - 1]! })),
    }
  })

const historyArb = (n: number): fc.Arbitrary<GauntletWindow[]> => fc.tuple(...Array.from({ length: n }, (_, i) => windowArb(100 + i)))

const run = (ws: ReadonlyArray<GauntletWindow>, p = params, from: GauntletState = emptyGauntlet()): GauntletState => ws.reduce((s, o) => observeWindow(s, o, p), from)

const reversed = (o: GauntletWindow): GauntletWindow => ({
  ...o,
  tracked: [...o.tracked].reverse(),
  delivered: [...o.delivered].reverse(),
  invalid: [...o.invalid].reverse(),
  copies: [...o.copies].reverse(),
  outliers: [...o.outliers].reverse(),
  evaluations: [...o.evaluations].reverse(),
  sync: [...o.sync].reverse(),
})

const scoreOf = (s: GauntletState, uid: number, p = params) => scoresOf(s, p).find((x) => x.uid === uid)?.score ?? 0

describe("Gauntlet", () => {
  test("scores finite and >= 0, weights sum to 1, state round-trips JSON exactly", () => {
    fc.assert(fc.property(historyArb(8), (ws) => {
      const s = run(ws)
      for (const { score } of scoresOf(s, params)) expect(Number.isFinite(score) && score >= 0).toBe(true)
      const w = gauntletWeights(s, params)
      if (w.length > 0) expect(Math.abs(w.reduce((a, x) => a + x.weight, 0) - 1)).toBeLessThan(1e-12)
      const json = Schema.encodeSync(GauntletStateJson)(s)
      expect(Schema.decodeUnknownSync(GauntletStateJson)(json)).toEqual(s)
    }), { numRuns: 200 })
  })

  test("rankings and weights do not depend on the order peers are listed in", () => {
    fc.assert(fc.property(historyArb(6), (ws) => {
      expect(run(ws.map(reversed))).toEqual(run(ws))
    }), { numRuns: 200 })
  })

  test("on the same history, an update that improves the loss never ranks below one that worsens it", () => {
    fc.assert(fc.property(historyArb(5), fc.double({ min: 1e-6, max: 0.5, noNaN: true }), fc.double({ min: -0.5, max: -1e-6, noNaN: true }), (ws, good, bad) => {
      // peers 7 and 8 share a history (delivered and evaluated together, same numbers), then differ once.
      const twin = ws.map((o) => ({
        ...o,
        tracked: [...o.tracked, 7, 8],
        delivered: [...o.delivered, 7, 8],
        evaluations: [...o.evaluations, ...[7, 8].map((uid) => ({ uid, gradientScore: 0.1, ownImprovement: 0.2, randomImprovement: 0.1, ownReference: null }))],
      }))
      const last: GauntletWindow = {
        window: 200, tracked: [...UIDS, 7, 8], delivered: [7, 8], invalid: [], copies: [], outliers: [], reference: null, dataChecks: [],
        evaluations: [{ uid: 7, gradientScore: good, ownImprovement: good + 0.1, randomImprovement: good, ownReference: null }, { uid: 8, gradientScore: bad, ownImprovement: bad + 0.1, randomImprovement: bad, ownReference: null }],
        sync: [],
      }
      const s = run([...twin, last])
      expect(s.peers["7"]!.mu).toBeGreaterThan(s.peers["8"]!.mu)
      expect(scoreOf(s, 7)).toBeGreaterThanOrEqual(scoreOf(s, 8))
      expect(scoreOf(s, 8)).toBe(0)
    }), { numRuns: 200 })
  })

  test("penalties are monotone: flagging a peer (copy, norm outlier), or taking its delivery away, never raises its score", () => {
    fc.assert(fc.property(historyArb(5), windowArb(300), fc.constantFrom(...UIDS), (ws, o, uid) => {
      const s = run(ws)
      const base = scoreOf(observeWindow(s, o, params), uid)
      const copied = { ...o, copies: o.delivered.includes(uid) && !o.invalid.includes(uid) ? [...new Set([...o.copies, uid])] : o.copies }
      expect(scoreOf(observeWindow(s, copied, params), uid)).toBeLessThanOrEqual(base)
      const outlier = { ...o, outliers: o.delivered.includes(uid) && !o.invalid.includes(uid) ? [...new Set([...o.outliers, uid])] : o.outliers }
      expect(scoreOf(observeWindow(s, outlier, params), uid)).toBeLessThanOrEqual(base)
      const invalid = { ...o, invalid: o.delivered.includes(uid) ? [...new Set([...o.invalid, uid])] : o.invalid, copies: o.copies.filter((u) => u !== uid), outliers: o.outliers.filter((u) => u !== uid), evaluations: o.evaluations.filter((e) => e.uid !== uid), sync: o.sync.filter((e) => e.uid !== uid) }
      expect(scoreOf(observeWindow(s, invalid, params), uid)).toBeLessThanOrEqual(base)
      expect(missFactor(3, [0.75, 0.5, 0])).toBe(0)
    }), { numRuns: 300 })
  })

  test("a peer that misses a window never gains, and one that stops delivering decays to weight 0", () => {
    fc.assert(fc.property(historyArb(6), windowArb(400), fc.constantFrom(...UIDS), (ws, o, uid) => {
      const s = run(ws)
      const absent = { ...o, delivered: o.delivered.filter((u) => u !== uid), invalid: o.invalid.filter((u) => u !== uid), copies: o.copies.filter((u) => u !== uid), outliers: o.outliers.filter((u) => u !== uid), evaluations: o.evaluations.filter((e) => e.uid !== uid), sync: o.sync.filter((e) => e.uid !== uid) }
      let t = observeWindow(s, absent, params)
      expect(scoreOf(t, uid)).toBeLessThanOrEqual(scoreOf(s, uid))
      for (let w = 401; w < 401 + params.penalties.consecutiveMissFactors.length + params.activeWindows; w++) {
        const before = scoreOf(t, uid)
        t = observeWindow(t, { ...absent, window: w }, params)
        expect(scoreOf(t, uid)).toBeLessThanOrEqual(before)
      }
      expect(scoreOf(t, uid)).toBe(0)
      expect(gauntletWeights(t, params).some((x) => x.uid === uid)).toBe(false)
      expect(isPenalised(t, uid, t.window!, params)).toBe(true)
    }), { numRuns: 200 })
  })

  test("two negatives never make a positive: a worsening update scores 0 whatever its indicator", () => {
    const s = run(Array.from({ length: 24 }, (_, i) => 100 + i).map((w) => ({
      window: w, tracked: [1, 2], delivered: [1, 2], invalid: [], copies: [], outliers: [], reference: null, dataChecks: [],
      evaluations: [{ uid: 1, gradientScore: 0.1, ownImprovement: 0.2, randomImprovement: 0.1, ownReference: null }, { uid: 2, gradientScore: -0.3, ownImprovement: -0.5, randomImprovement: -0.3, ownReference: null }],
      sync: [],
    })))
    expect(s.peers["2"]!.indicatorEma).toBeLessThan(0)
    expect(ordinal(s.peers["2"]!)).toBeLessThan(0)
    expect(finalScore(s.peers["2"]!, 123, params, dataCheckHasPower(s, params))).toBe(0)
    expect(finalScore(s.peers["1"]!, 123, params, dataCheckHasPower(s, params))).toBeGreaterThan(0)
    // past the warm-up the -1 indicator alone keeps peer 2 off the list, and a +1 peer on it
    expect(isPenalised({ ...s, peers: { ...s.peers, "2": { ...s.peers["2"]!, lastGradientScore: 0.1 } } }, 2, 123, params)).toBe(true)
    expect(isPenalised(s, 1, 123, params)).toBe(false)
    expect(gauntletWeights(s, params)).toEqual([{ uid: 1, weight: 1 }])
  })

  test("a zero update (free rider) improves nothing: score 0 and off the list, however it ranks", () => {
    const s = run([100, 101].map((w) => ({
      window: w, tracked: [1, 2], delivered: [1, 2], invalid: [], copies: [], outliers: [], reference: null, dataChecks: [],
      evaluations: [{ uid: 1, gradientScore: 0, ownImprovement: 0.1, randomImprovement: 0, ownReference: null }, { uid: 2, gradientScore: -0.2, ownImprovement: 0, randomImprovement: -0.2, ownReference: null }],
      sync: [],
    })))
    expect(ordinal(s.peers["1"]!)).toBeGreaterThan(0)
    expect(finalScore(s.peers["1"]!, 101, params, dataCheckHasPower(s, params))).toBe(0)
    expect(isPenalised(s, 1, 101, params)).toBe(true)
  })

  test("indicator warm-up: the EMA's time constant, at least what an always-+1 EMA from 0 needs to reach the threshold", () => {
    expect(indicatorWarmup(0.05, 0.1)).toBe(20)
    expect(indicatorWarmup(0.5, 0.5)).toBe(2)
    expect(indicatorWarmup(0.5, 0.8)).toBe(3) // 1 - 0.5^2 = 0.75 < 0.8 <= 1 - 0.5^3
    expect(indicatorWarmup(0, 0.1)).toBe(Number.POSITIVE_INFINITY)
  })

  test("evaluation picks the least recently evaluated plus one random pick, the same for the same state", () => {
    fc.assert(fc.property(historyArb(4), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1000 }), (ws, count, window) => {
      const s = run(ws)
      const picked = selectForEvaluation(s, window, [...UIDS].reverse(), count)
      expect(picked).toEqual(selectForEvaluation(s, window, UIDS, count))
      expect(picked.length).toBe(Math.min(count, UIDS.length))
      const last = (u: number) => s.peers[String(u)]?.lastEvaluated ?? -Infinity
      const notPicked = UIDS.filter((u) => !picked.includes(u))
      // all but one pick are at least as stale as anyone left out
      const staleOk = picked.filter((u) => notPicked.every((v) => last(u) <= last(v)))
      if (notPicked.length > 0) expect(staleOk.length).toBeGreaterThanOrEqual(count - 1)
    }))
  })
})

describe("indicator", () => {
  const e = (own: number, random: number, ownReference: number | null) => ({ uid: 1, gradientScore: random, ownImprovement: own, randomImprovement: random, ownReference })

  test("paired: each improvement as a share of the window's step on the same samples, when that step helped both", () => {
    // Own samples were easy (the step bought 0.1 there, 0.01 on random ones): 0.02 of 0.1 is less than 0.005 of 0.01.
    expect(indicatorOf(e(0.02, 0.005, 0.1), 0.01)).toBe(-1)
    expect(indicatorOf(e(0.02, 0.005, 0.02), 0.01)).toBe(1)
  })

  test("unpaired when the step did not help one of them, or was not measured", () => {
    for (const [ownRef, ref] of [[null, 0.01], [0.1, null], [-0.1, 0.01], [0.1, 0], [0.1, -0.01]] as const) {
      expect(indicatorOf(e(0.02, 0.005, ownRef), ref)).toBe(1)
      expect(indicatorOf(e(0.005, 0.02, ownRef), ref)).toBe(-1)
    }
  })
})

describe("useful updates", () => {
  const base = { tracked: [1, 2], delivered: [1, 2], invalid: [], copies: [], outliers: [], sync: [], dataChecks: [] }
  const evaluated = (window: number, reference: number | null, noise: number): GauntletWindow => ({
    ...base, window, reference,
    evaluations: [{ uid: 1, gradientScore: 0.2 * (reference ?? 0.01), ownImprovement: 0.1, randomImprovement: 0, ownReference: null }, { uid: 2, gradientScore: noise, ownImprovement: 0.1, randomImprovement: 0, ownReference: null }],
  })

  test("an update that buys less than USEFUL_SHARE of the window's own step earns nothing and leaves the list; an honest share earns", () => {
    const s = run([evaluated(10, 0.01, 0.01 * USEFUL_SHARE * 0.5)])
    expect(scoreOf(s, 1)).toBeGreaterThan(0)
    expect(scoreOf(s, 2)).toBe(0)
    expect(isPenalised(s, 2, 10, params)).toBe(true)
    expect(isPenalised(s, 1, 10, params)).toBe(false)
    const enough = run([evaluated(10, 0.01, 0.01 * USEFUL_SHARE * 2)])
    expect(scoreOf(enough, 2)).toBeGreaterThan(0)
  })

  test("without a reference that improved (none, or a step that did not help), any improvement counts", () => {
    for (const reference of [null, 0, -0.01]) {
      const s = run([evaluated(10, reference, 1e-7)])
      expect(scoreOf(s, 2)).toBeGreaterThan(0)
      expect(lastUseful(s.peers["2"]!)).toBe(true)
    }
    expect(lastUseful(run([evaluated(10, null, 0)]).peers["2"]!)).toBe(false)
  })
})

describe("data gate", () => {
  const { threshold, memory } = params.scoring.dataCheck
  // Four honest peers (z about 2) and peer 5, whose z hovers at 0: every peer delivers a useful update.
  const checked = (window: number, z5: number, honestZ = 2): GauntletWindow => ({
    window, tracked: [1, 2, 3, 4, 5], delivered: [1, 2, 3, 4, 5], invalid: [], copies: [], outliers: [], reference: null, sync: [],
    evaluations: [1, 2, 3, 4, 5].map((uid) => ({ uid, gradientScore: 0.1, ownImprovement: 0.2, randomImprovement: 0.1, ownReference: null })),
    dataChecks: [1, 2, 3, 4, 5].map((uid) => ({ uid, z: uid === 5 ? z5 : honestZ + uid / 10 })),
  })

  test(`a peer whose mean z stays under the threshold is zeroed and kept off the list once it has ${DATA_GATE_MIN_CHECKS} checks, and earns again once its updates show its data`, () => {
    const before = run([100, 101].map((w) => checked(w, 0)).slice(0, DATA_GATE_MIN_CHECKS - 1))
    expect(scoreOf(before, 5)).toBeGreaterThan(0)
    expect(isPenalised(before, 5, 101, params)).toBe(false)
    const gated = run(Array.from({ length: DATA_GATE_MIN_CHECKS }, (_, i) => checked(100 + i, threshold - 0.01)))
    expect(dataCheckHasPower(gated, params)).toBe(true)
    expect(scoreOf(gated, 5)).toBe(0)
    expect(isPenalised(gated, 5, gated.window!, params)).toBe(true)
    for (const uid of [1, 2, 3, 4]) expect(scoreOf(gated, uid)).toBeGreaterThan(0)
    // Only the last `memory` checks count: after that many honest ones it is paid again.
    const recovered = run(Array.from({ length: memory }, (_, i) => checked(200 + i, 2)), params, gated)
    expect(recovered.peers["5"]!.dataZ).toHaveLength(memory)
    expect(scoreOf(recovered, 5)).toBeGreaterThan(0)
  })

  test(`a closed gate reopens only at ${DATA_GATE_REOPEN} x the threshold: a mean drifting just over the threshold stays unpaid`, () => {
    const gated = run(Array.from({ length: DATA_GATE_MIN_CHECKS }, (_, i) => checked(100 + i, 0)))
    expect(scoreOf(gated, 5)).toBe(0)
    const between = (threshold * (1 + DATA_GATE_REOPEN)) / 2
    const drifting = run(Array.from({ length: memory }, (_, i) => checked(200 + i, between)), params, gated)
    expect(scoreOf(drifting, 5)).toBe(0)
    // never closed, the same mean is above the threshold and is paid
    expect(scoreOf(run(Array.from({ length: memory }, (_, i) => checked(100 + i, between))), 5)).toBeGreaterThan(0)
  })

  test("where honest peers show no signal either (too few of their samples checked), nobody is gated on it", () => {
    const s = run(Array.from({ length: 5 }, (_, i) => checked(100 + i, 0, 0.1)))
    expect(dataCheckHasPower(s, params)).toBe(false)
    for (const uid of [1, 2, 3, 4, 5]) {
      expect(scoreOf(s, uid)).toBeGreaterThan(0)
      expect(isPenalised(s, uid, s.window!, params)).toBe(false)
    }
  })

  test("data checks pick the least recently checked, independently of loss evaluations; a state saved before the check decodes", () => {
    const s = run([checked(100, 0)])
    const later = { ...s, peers: { ...s.peers, "1": { ...s.peers["1"]!, lastChecked: 99 }, "2": { ...s.peers["2"]!, lastChecked: null } } }
    expect(selectForEvaluation(later, 101, [1, 2, 3, 4, 5], 3, (r) => r.lastChecked)).toContain(2)
    expect(selectForEvaluation(later, 101, [1, 2, 3, 4, 5], 3, (r) => r.lastChecked)).toContain(1)
    // by loss evaluations all five were evaluated in window 100 alike
    expect(selectForEvaluation(later, 101, [1, 2, 3, 4, 5], 3)).toEqual(selectForEvaluation(s, 101, [1, 2, 3, 4, 5], 3))
    // The first clean delivery is kept (the check reads no samples from before it).
    expect(run([checked(101, 0)], params, s).peers["1"]!.firstDelivered).toBe(100)
    const { dataZ: _z, lastChecked: _c, firstDelivered: _f, dataGated: _g, ...old } = s.peers["1"]!
    const decoded = Schema.decodeUnknownSync(GauntletStateJson)(JSON.stringify({ window: 100, peers: { "1": old } }))
    expect(decoded.peers["1"]!.dataZ).toEqual([])
    expect(decoded.peers["1"]!.lastChecked).toBeNull()
    expect(decoded.peers["1"]!.firstDelivered).toBeNull()
  })
})
