/**
 * OpenSkill's Plackett-Luce rating update (Weng & Lin 2011, Algorithm 4; the formulas of the
 * `openskill` package's `plackettLuce` model with one player per team):
 *
 *   c        = sqrt(sum_i (sigma_i^2 + beta^2))
 *   C_q      = sum_{s : rank_s >= rank_q} exp(mu_s / c)          (those not ahead of q)
 *   A_q      = |{s : rank_s = rank_q}|
 *   Omega_i  = sigma_i^2 / c   * sum_{q : rank_q <= rank_i} ([i = q] - exp(mu_i/c) / C_q) / A_q
 *   Delta_i  = gamma_i sigma_i^2 / c^2 * sum_{q : rank_q <= rank_i} (exp(mu_i/c)/C_q)(1 - exp(mu_i/c)/C_q) / A_q
 *   gamma_i  = sigma_i / c
 *   mu_i'    = mu_i + Omega_i ;  sigma_i' = sigma_i sqrt(max(1 - Delta_i, kappa))
 *
 * with tau added to every sigma before the match (sigma^2 + tau^2) and the ordinal mu - 3 sigma.
 * Written here rather than depending on the `openskill` package (5 transitive packages for these
 * few lines, and the lockfile is shared by every branch); hand cases in the tests pin the numbers.
 */

export interface Rating {
  readonly mu: number
  readonly sigma: number
}

export interface OpenSkillOptions {
  readonly beta: number
  readonly tau: number
  /** Lower bound of the sigma shrink factor (openskill's kappa). */
  readonly kappa?: number
}

export const DEFAULT_MU = 25
export const DEFAULT_SIGMA = 25 / 3

export const defaultRating = (): Rating => ({ mu: DEFAULT_MU, sigma: DEFAULT_SIGMA })

/**
 * (mu - z sigma) + target: a conservative skill estimate, shifted by `target` as openskill's
 * `ordinal` option does (0 for a new player with the defaults and no target).
 */
export const ordinal = (r: Rating, z = 3, target = 0): number => r.mu - z * r.sigma + target

/**
 * One match: `ratings[i]` finished with `ranks[i]` (lower is better; equal ranks are ties).
 * Returns the new ratings in the same order. Input order does not matter beyond pairing.
 */
export const plackettLuce = (ratings: ReadonlyArray<Rating>, ranks: ReadonlyArray<number>, options: OpenSkillOptions): Rating[] => {
  const n = ratings.length
  if (n < 2) return ratings.map((r) => ({ mu: r.mu, sigma: Math.sqrt(r.sigma * r.sigma + options.tau * options.tau) }))
  const kappa = options.kappa ?? 1e-4
  const betaSq = options.beta * options.beta
  const sigmaSq = ratings.map((r) => r.sigma * r.sigma + options.tau * options.tau)
  const c = Math.sqrt(sigmaSq.reduce((a, s) => a + s + betaSq, 0))
  const e = ratings.map((r) => Math.exp(r.mu / c))
  const sumQ = ranks.map((rq) => ranks.reduce((acc, rs, s) => (rs >= rq ? acc + e[s]! : acc), 0))
  const A = ranks.map((rq) => ranks.filter((rs) => rs === rq).length)
  return ratings.map((r, i) => {
    let omega = 0
    let delta = 0
    for (let q = 0; q < n; q++) {
      if (ranks[q]! > ranks[i]!) continue
      const quotient = e[i]! / sumQ[q]!
      omega += (i === q ? 1 - quotient : -quotient) / A[q]!
      delta += (quotient * (1 - quotient)) / A[q]!
    }
    const s2 = sigmaSq[i]!
    const gamma = Math.sqrt(s2) / c
    omega *= s2 / c
    delta *= (gamma * s2) / (c * c)
    return { mu: r.mu + omega, sigma: Math.sqrt(s2) * Math.sqrt(Math.max(1 - delta, kappa)) }
  })
}
