/**
 * Scores to weights: the top `linearWeighted` positive scores share weight on a linear profile
 * (L, L-1, ..., 1), the next `tailWeighted` on a geometric tail below it (1/2, 1/4, ...), and the
 * result is normalised to sum to 1. Weights depend on the ranking only; peers with equal scores
 * share the mean of their positions' weights, so neither input order nor uid decides anything.
 */

export interface ScoredPeer {
  readonly uid: number
  readonly score: number
}

export interface WeightProfile {
  readonly linearWeighted: number
  readonly tailWeighted: number
}

/** The raw (unnormalised) weight of rank position `i` (0 = best). */
export const positionWeight = (i: number, p: WeightProfile): number =>
  i < p.linearWeighted ? p.linearWeighted - i : i < p.linearWeighted + p.tailWeighted ? 0.5 ** (i - p.linearWeighted + 1) : 0

/** Normalised weights of the positively scored peers (sorted by uid); empty when none scores above 0. */
export const weightsFromScores = (scores: ReadonlyArray<ScoredPeer>, p: WeightProfile): Array<{ uid: number; weight: number }> => {
  const positive = scores.filter((s) => Number.isFinite(s.score) && s.score > 0).sort((a, b) => b.score - a.score)
  const raw = new Map<number, number>()
  for (let i = 0; i < positive.length; ) {
    let j = i
    while (j < positive.length && positive[j]!.score === positive[i]!.score) j++
    let sum = 0
    for (let k = i; k < j; k++) sum += positionWeight(k, p)
    for (let k = i; k < j; k++) raw.set(positive[k]!.uid, sum / (j - i))
    i = j
  }
  const total = [...raw.values()].reduce((a, b) => a + b, 0)
  if (total <= 0) return []
  return [...raw].filter(([, w]) => w > 0).map(([uid, w]) => ({ uid, weight: w / total })).sort((a, b) => a.uid - b.uid)
}
