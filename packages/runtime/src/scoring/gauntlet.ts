/**
 * The Gauntlet's state and arithmetic, pure: what a validator remembers of each peer (rating,
 * indicator EMA, sync, misses, flags), how one window's observation updates it, the final score
 * of a peer, the weights, and which peers to evaluate next. Everything is a deterministic
 * function of the observed windows, so validators that saw the same windows hold the same state,
 * and the state round-trips through JSON exactly (it is saved with the node's state).
 *
 * final = max(0, ordinal + 25) x indicator gate x data gate x sync x miss factor x inactivity decay
 *         x [no invalid, copied or outsized update since its last clean one] x [its last update useful]
 *
 * Every factor lies in [0, 1] and the rating is clipped at 0 before multiplying, so a penalty
 * never raises a score and two negatives never make a positive (the reference's #45, #108).
 */
import { Schema } from "effect"
import type { ParticipationSpec } from "@covenant/dsl"
import { DEFAULT_MU, defaultRating, ordinal, plackettLuce } from "./openskill.ts"
import { weightsFromScores } from "./weights.ts"

export const PeerRecord = Schema.Struct({
  mu: Schema.Number,
  sigma: Schema.Number,
  indicatorEma: Schema.Number,
  evaluations: Schema.Int,
  lastGradientScore: Schema.NullOr(Schema.Number),
  /** The window's reference (its own outer step's score) when the peer was last evaluated. */
  lastReference: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  sync: Schema.Number,
  consecutiveMisses: Schema.Int,
  firstSeen: Schema.Int,
  lastDelivered: Schema.NullOr(Schema.Int),
  lastEvaluated: Schema.NullOr(Schema.Int),
  lastFlagged: Schema.NullOr(Schema.Int),
  /** The z of its last `dataCheck.memory` data checks, oldest first (data-check.ts). */
  dataZ: Schema.optionalWith(Schema.Array(Schema.Number), { default: () => [] }),
  lastChecked: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => null }),
  /** Its first clean delivery: the data check reads no samples from before it (a joiner's error feedback holds none). */
  firstDelivered: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => null }),
  /** Closed by the data check (dataGateAfter); it stays closed until the mean z clears a higher bar. */
  dataGated: Schema.optionalWith(Schema.Boolean, { default: () => false }),
})
export type PeerRecord = typeof PeerRecord.Type

export const GauntletState = Schema.Struct({
  /** The last window observed (null before the first). */
  window: Schema.NullOr(Schema.Int),
  /** By uid (JSON object keys), every peer ever seen. */
  peers: Schema.Record({ key: Schema.String, value: PeerRecord }),
})
export type GauntletState = typeof GauntletState.Type

export const GauntletStateJson = Schema.parseJson(GauntletState)

export const emptyGauntlet = (): GauntletState => ({ window: null, peers: {} })

/** What the spec says that the arithmetic reads. */
export type GauntletParams = Pick<ParticipationSpec, "scoring" | "penalties" | "activeWindows">

export interface Evaluation {
  readonly uid: number
  /** (before - after) / before of the loss on random data. */
  readonly gradientScore: number
  /** Relative improvements on the peer's own assigned data and on random data. */
  readonly ownImprovement: number
  readonly randomImprovement: number
  /** The window's own outer step's relative improvement on the peer's samples, at the same scale (null: not measured). */
  readonly ownReference: number | null
}

export interface GauntletWindow {
  readonly window: number
  /** Peers that could have delivered this window (eligible and admitted). */
  readonly tracked: ReadonlyArray<number>
  /** On time and decoded. */
  readonly delivered: ReadonlyArray<number>
  /** Delivered but invalid (wrong data digest, undecodable, wrong window). */
  readonly invalid: ReadonlyArray<number>
  /** Judged copies of an earlier upload. */
  readonly copies: ReadonlyArray<number>
  /** Updates whose norm is far above the window's median (norm.ts). */
  readonly outliers: ReadonlyArray<number>
  readonly evaluations: ReadonlyArray<Evaluation>
  /** The gradient score of the window's own outer step at the evaluation's scale (null: not measured). */
  readonly reference: number | null
  readonly sync: ReadonlyArray<{ readonly uid: number; readonly score: number }>
  /** Data checks of the window (data-check.ts). */
  readonly dataChecks: ReadonlyArray<{ readonly uid: number; readonly z: number }>
}

const newRecord = (window: number): PeerRecord => ({
  ...defaultRating(),
  indicatorEma: 0,
  evaluations: 0,
  lastGradientScore: null,
  lastReference: null,
  sync: 1,
  consecutiveMisses: 0,
  firstSeen: window,
  lastDelivered: null,
  lastEvaluated: null,
  lastFlagged: null,
  dataZ: [],
  lastChecked: null,
  firstDelivered: null,
  dataGated: false,
})

/**
 * Evaluations before the indicator gate applies: the EMA's time constant (1 / alpha), and at
 * least the fewest after which a peer that was always +1 has an EMA (started at 0) at or above
 * the threshold; infinite if it never can. With the reference's alpha 0.05 and threshold 0.1
 * that is 20 evaluations: one unlucky -1 among an honest peer's first few must not gate it.
 */
export const indicatorWarmup = (alpha: number, threshold: number): number => {
  if (alpha <= 0) return Number.POSITIVE_INFINITY
  if (threshold <= 0) return Math.ceil(1 / alpha - 1e-9)
  if (threshold >= 1 && alpha < 1) return Number.POSITIVE_INFINITY
  const reach = alpha >= 1 ? 1 : Math.ceil(Math.log(1 - threshold) / Math.log(1 - alpha) - 1e-9)
  return Math.max(reach, Math.ceil(1 / alpha - 1e-9))
}

/** Product of the first `misses` miss factors (the last one repeats; none: no penalty). */
export const missFactor = (misses: number, factors: ReadonlyArray<number>): number => {
  let f = 1
  for (let i = 0; i < misses && factors.length > 0; i++) f *= factors[Math.min(i, factors.length - 1)]!
  return f
}

/** 1 while a peer delivered within `activeWindows`, then halving per further window. */
export const inactivityFactor = (record: PeerRecord, window: number, activeWindows: number): number => {
  const since = window - (record.lastDelivered ?? record.firstSeen - 1)
  return since <= activeWindows ? 1 : 0.5 ** (since - activeWindows)
}

/** -0 as 0: JSON writes -0 as 0, and the state must round-trip exactly. */
const plain = (x: number): number => x + 0

/**
 * One evaluation's indicator: +1 when the update helps the peer's own samples more than random
 * ones. Each improvement is read as a share of what the window's own outer step bought on the same
 * samples, when that step helped both (paired, so how easy the samples are cancels out); else as
 * is. Measured in simulated swarms of 5 peers (debug and scaled main example, 12 and 16 windows,
 * two seeds each, every peer evaluated each window): honest peers scored +1 in 69-100 % of their
 * evaluations paired and in 56-92 % unpaired: at 56 % the indicator's EMA settles at 0.12 (sd
 * about 0.16 with alpha 0.05), so an honest peer would sit under the 0.1 gate about half the time;
 * paired, the least honest share, 69 %, settles at 0.38. Other data: 42-58 % either way.
 */
export const indicatorOf = (e: Evaluation, reference: number | null): 1 | -1 => {
  const paired = reference !== null && reference > 0 && e.ownReference !== null && e.ownReference > 0
  const own = paired ? e.ownImprovement / e.ownReference! : e.ownImprovement
  const random = paired ? e.randomImprovement / reference! : e.randomImprovement
  return own > random ? 1 : -1
}

/** Applies one window's observation; returns the new state (the input is not modified). */
export const observeWindow = (state: GauntletState, o: GauntletWindow, p: GauntletParams): GauntletState => {
  const peers: Record<string, PeerRecord> = {}
  for (const [k, r] of Object.entries(state.peers)) peers[k] = { ...r }
  const at = (uid: number): PeerRecord => (peers[String(uid)] ??= newRecord(o.window))
  const delivered = new Set(o.delivered)
  const flagged = new Set([...o.invalid, ...o.copies, ...o.outliers])
  for (const uid of [...o.tracked, ...o.delivered, ...o.invalid]) at(uid)
  for (const [k, r] of Object.entries(peers)) {
    const uid = Number(k)
    if (delivered.has(uid) && !o.invalid.includes(uid)) peers[k] = { ...r, consecutiveMisses: 0, lastDelivered: o.window, firstDelivered: r.firstDelivered ?? o.window }
    else if (!delivered.has(uid)) peers[k] = { ...r, consecutiveMisses: r.consecutiveMisses + 1 }
    if (flagged.has(uid)) peers[k] = { ...peers[k]!, lastFlagged: o.window }
  }
  // Ratings: one Plackett-Luce match of the evaluated peers, ranked by gradient score (flagged peers last).
  const match = o.evaluations
    .filter((e) => Number.isFinite(e.gradientScore))
    .map((e) => ({ ...e, key: flagged.has(e.uid) ? Number.NEGATIVE_INFINITY : e.gradientScore }))
    .sort((a, b) => b.key - a.key || a.uid - b.uid)
  if (match.length > 0) {
    const ranks: number[] = []
    match.forEach((e, i) => ranks.push(i > 0 && e.key === match[i - 1]!.key ? ranks[i - 1]! : i))
    const rated = plackettLuce(match.map((e) => at(e.uid)), ranks, { beta: p.scoring.openSkillBeta, tau: p.scoring.openSkillTau })
    match.forEach((e, i) => {
      const r = at(e.uid)
      const indicator = indicatorOf(e, o.reference)
      const alpha = p.scoring.indicatorEmaAlpha
      peers[String(e.uid)] = {
        ...r,
        mu: plain(rated[i]!.mu),
        sigma: plain(rated[i]!.sigma),
        indicatorEma: plain(alpha * indicator + (1 - alpha) * r.indicatorEma),
        evaluations: r.evaluations + 1,
        lastGradientScore: flagged.has(e.uid) ? Math.min(e.gradientScore, -1) : plain(e.gradientScore),
        lastReference: o.reference === null ? null : plain(o.reference),
        lastEvaluated: o.window,
      }
    })
  }
  // A flagged peer that was not evaluated still loses its standing until its next clean evaluation.
  for (const uid of flagged) {
    const r = at(uid)
    if (r.lastEvaluated !== o.window) peers[String(uid)] = { ...r, lastGradientScore: Math.min(r.lastGradientScore ?? -1, -1) }
  }
  for (const { uid, z } of o.dataChecks) {
    if (!Number.isFinite(z)) continue
    const r = at(uid)
    const dataZ = [...r.dataZ, plain(z)].slice(-p.scoring.dataCheck.memory)
    peers[String(uid)] = { ...r, dataZ, dataGated: dataGateAfter(r.dataGated, dataZ, p), lastChecked: o.window }
  }
  for (const { uid, score } of o.sync) {
    if (Number.isFinite(score)) peers[String(uid)] = { ...at(uid), sync: plain(Math.min(1, Math.max(0, score))) }
  }
  return { window: o.window, peers }
}

/** Not flagged since its last clean delivery (a flag stays until the peer delivers a clean update again). */
export const isClean = (r: PeerRecord): boolean => r.lastFlagged === null || (r.lastDelivered !== null && r.lastDelivered > r.lastFlagged)

/**
 * The ordinal's shift (openskill's `target`): a new peer's rating counts DEFAULT_MU, not 0. Without
 * it mu - 3 sigma is negative for whoever ranks last among honest peers (measured: -4.3 after nine
 * windows in a 4-peer swarm), and an honest peer would earn nothing for being the slowest of the
 * honest; bad updates are zeroed by the gates below, not by their rank.
 */
export const RATING_TARGET = DEFAULT_MU

/**
 * The share of the window's own outer step (at the evaluation's scale) an update must buy to count
 * as useful. Measured per evaluation, honest updates bought 0.15-0.34 of it (debug, 10 peers) and
 * 0.22-0.45 (the scaled main example); noise of the honest norm 0.000-0.007, so it was "positive"
 * (by 1e-6 to 8e-5) in half its evaluations and was paid. A zero update buys 0.
 */
export const USEFUL_SHARE = 0.05

/** Its last evaluated update improved the loss, by at least USEFUL_SHARE of the window's reference when that improved it too. */
export const lastUseful = (r: PeerRecord): boolean =>
  r.lastGradientScore !== null && r.lastGradientScore > 0 && (r.lastReference === null || r.lastReference <= 0 || r.lastGradientScore >= USEFUL_SHARE * r.lastReference)

/** Checks before the data gate reads a peer: measured, an honest peer's mean of its first two z was as low as 0.15 (debug swarm), of its first three 0.66. */
export const DATA_GATE_MIN_CHECKS = 3

/**
 * A closed data gate opens again only at this multiple of the threshold. Without it a peer whose
 * updates are independent of its samples (a mean of five z ~ N(0, 0.45)) drifted over a 0.5
 * threshold now and then and was paid then (measured: 3 of 18 windows); honest means sit near 2.
 */
export const DATA_GATE_REOPEN = 2

const meanOf = (xs: ReadonlyArray<number>): number => xs.reduce((a, b) => a + b, 0) / xs.length

/** The gate after a check: closes below the threshold, reopens at DATA_GATE_REOPEN x the threshold. */
export const dataGateAfter = (wasGated: boolean, dataZ: ReadonlyArray<number>, p: GauntletParams): boolean => {
  if (dataZ.length < DATA_GATE_MIN_CHECKS) return false
  const { threshold } = p.scoring.dataCheck
  return meanOf(dataZ) < (wasGated ? DATA_GATE_REOPEN * threshold : threshold)
}

/**
 * Whether the data check can tell, in this run: the median over peers with enough checks of
 * their mean z is at least twice the threshold. Where a peer's window holds many more samples
 * than the check reads, honest peers show no signal either, and then nobody is gated on it (an
 * honest majority is the premise of the whole Gauntlet).
 */
export const dataCheckHasPower = (state: GauntletState, p: GauntletParams): boolean => {
  const means = Object.values(state.peers).filter((r) => r.dataZ.length >= DATA_GATE_MIN_CHECKS).map((r) => meanOf(r.dataZ)).sort((a, b) => a - b)
  if (means.length === 0) return false
  const mid = means.length / 2
  const median = means.length % 2 === 1 ? means[Math.floor(mid)]! : (means[mid - 1]! + means[mid]!) / 2
  return median >= 2 * p.scoring.dataCheck.threshold
}

/** The final score of one peer after the window `state.window` (`dataPower`: dataCheckHasPower of the state). */
export const finalScore = (r: PeerRecord, window: number, p: GauntletParams, dataPower: boolean): number => {
  const s = p.scoring
  const rating = Math.max(0, ordinal(r, 3, RATING_TARGET))
  const gate = r.evaluations < indicatorWarmup(s.indicatorEmaAlpha, s.indicatorThreshold) || r.indicatorEma >= s.indicatorThreshold ? 1 : 0
  const dataGate = dataPower && r.dataGated ? 0 : 1
  const positive = lastUseful(r) ? 1 : 0
  const clean = isClean(r) ? 1 : 0
  const score = rating * gate * dataGate * positive * clean * r.sync * missFactor(r.consecutiveMisses, p.penalties.consecutiveMissFactors) * inactivityFactor(r, window, p.activeWindows)
  return Number.isFinite(score) && score >= s.minScore ? score : 0
}

export const scoresOf = (state: GauntletState, p: GauntletParams): Array<{ uid: number; score: number }> => {
  if (state.window === null) return []
  const dataPower = dataCheckHasPower(state, p)
  return Object.entries(state.peers).map(([k, r]) => ({ uid: Number(k), score: finalScore(r, state.window!, p, dataPower) })).sort((a, b) => a.uid - b.uid)
}

export const gauntletWeights = (state: GauntletState, p: GauntletParams) => weightsFromScores(scoresOf(state, p), p.scoring)

/** A small deterministic hash of a window number (mulberry32's finaliser). */
const mix = (x: number): number => {
  let t = (x + 0x6d2b79f5) | 0
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (t ^ (t >>> 14)) >>> 0
}

/**
 * Up to `count` of `candidates` to evaluate in `window`: the least recently evaluated (never
 * first, then uid), and, when some are left over, one random pick among the rest (seeded by the
 * window, so every validator picks alike), so a new or long-unseen peer always has a way in.
 * `lastOf` says which "last" counts (default: the last loss evaluation; the data check passes its own).
 */
export const selectForEvaluation = (
  state: GauntletState,
  window: number,
  candidates: ReadonlyArray<number>,
  count: number,
  lastOf: (r: PeerRecord) => number | null = (r) => r.lastEvaluated,
): number[] => {
  const unique = [...new Set(candidates)].sort((a, b) => a - b)
  if (unique.length <= count) return unique
  const last = (uid: number) => {
    const r = state.peers[String(uid)]
    return (r === undefined ? null : lastOf(r)) ?? Number.NEGATIVE_INFINITY
  }
  const ordered = [...unique].sort((a, b) => last(a) - last(b) || a - b)
  const chosen = ordered.slice(0, Math.max(0, count - 1))
  const rest = ordered.slice(chosen.length)
  chosen.push(rest[mix(window) % rest.length]!)
  return chosen.sort((a, b) => a - b)
}

/** Penalised peers are kept off the peer list: flagged lately, gated (indicator or data check), not improving the loss usefully (a zero update neither), or inactive. */
export const isPenalised = (state: GauntletState, uid: number, window: number, p: GauntletParams): boolean => {
  const r = state.peers[String(uid)]
  if (r === undefined) return false
  const s = p.scoring
  if (r.lastFlagged !== null && window - r.lastFlagged < p.activeWindows) return true
  if (r.lastGradientScore !== null && !lastUseful(r)) return true
  if (r.evaluations >= indicatorWarmup(s.indicatorEmaAlpha, s.indicatorThreshold) && r.indicatorEma < s.indicatorThreshold) return true
  if (r.dataGated && dataCheckHasPower(state, p)) return true
  return inactivityFactor(r, window, p.activeWindows) < 1 || missFactor(r.consecutiveMisses, p.penalties.consecutiveMissFactors) === 0
}
