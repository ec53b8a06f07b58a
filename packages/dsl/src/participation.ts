/** Who takes part and how windows, uploads, gathering and scoring are timed and weighed. */
import { Schema } from "effect"
import { NonEmptyString, NonNegativeInt, Positive, PositiveInt, UnitInterval } from "./fields.ts"

type Issue = { path: ReadonlyArray<string | number>; message: string }

export const GatherSpec = Schema.Struct({
  pollIntervalMs: PositiveInt,
  perObjectTimeoutMs: PositiveInt,
  totalTimeoutMs: PositiveInt,
}).pipe(
  Schema.filter((g) => {
    const issues: Array<Issue> = []
    if (g.pollIntervalMs > g.perObjectTimeoutMs) {
      issues.push({ path: ["pollIntervalMs"], message: `expected at most perObjectTimeoutMs (${g.perObjectTimeoutMs}), got ${g.pollIntervalMs}` })
    }
    if (g.perObjectTimeoutMs > g.totalTimeoutMs) {
      issues.push({ path: ["perObjectTimeoutMs"], message: `expected at most totalTimeoutMs (${g.totalTimeoutMs}), got ${g.perObjectTimeoutMs}` })
    }
    return issues
  }),
)

/**
 * The data check (the runtime's scoring/data-check.ts): the signs of a peer's update against the
 * gradient on its own recent samples and on random ones, as a z-score per check.
 */
export const DataCheckSpec = Schema.Struct({
  /** Random batches whose agreement is the null (shared by the window's checks); 0 turns the check off. */
  randomBatches: NonNegativeInt,
  /** The own samples come from this many of the peer's latest windows (error feedback carries earlier ones). */
  windows: PositiveInt,
  /** Peers checked per window, least recently checked first. */
  peersPerWindow: PositiveInt,
  /** The gate reads the mean z of a peer's last `memory` checks. */
  memory: PositiveInt,
  /** A mean z below this (from a peer's third check on) zeroes its score and keeps it off the peer list. */
  threshold: Schema.Number.pipe(Schema.finite()),
}).pipe(
  // One random batch has no spread to calibrate against: refused rather than silently off.
  Schema.filter((d) =>
    d.randomBatches === 1 ? { path: ["randomBatches"], message: "expected 0 (off) or at least 2 (a z needs the random batches' spread), got 1" } : undefined,
  ),
)
export type DataCheckSpec = typeof DataCheckSpec.Type

/** The Gauntlet: how a validator turns one evaluation into a miner's score. */
export const ScoringSpec = Schema.Struct({
  /** Sequences of own and of random data the loss is measured on, before and after the update. */
  evalSequences: PositiveInt,
  /** The evaluation applies the update with `outer lr x evalLrFactor`. */
  evalLrFactor: Positive,
  /** EMA weight of the +1/-1 "own data beats random data" indicator. */
  indicatorEmaAlpha: UnitInterval,
  /** Below this EMA (after warm-up) the miner's score is zeroed. */
  indicatorThreshold: UnitInterval,
  /** sync = (1 - min(stepsBehind, syncMaxStepsBehind) / syncMaxStepsBehind) ^ syncExponent. */
  syncMaxStepsBehind: Positive,
  syncExponent: Positive,
  /** OpenSkill Plackett-Luce rating parameters. */
  openSkillBeta: Positive,
  openSkillTau: Positive,
  /** Scores below this are set to 0. */
  minScore: Positive,
  /** The top scores share weight on a linear profile, the next ones on a geometric tail. */
  linearWeighted: PositiveInt,
  tailWeighted: NonNegativeInt,
  dataCheck: DataCheckSpec,
})
export type ScoringSpec = typeof ScoringSpec.Type

export const PenaltySpec = Schema.Struct({
  /** Score multipliers for the 1st, 2nd, ... consecutive missed upload. */
  consecutiveMissFactors: Schema.Array(UnitInterval),
  /** Pairwise top-k index overlap at or above which the later uploader is treated as a copy. */
  copyOverlapThreshold: UnitInterval,
})
export type PenaltySpec = typeof PenaltySpec.Type

export const Admission = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("permissionless") }),
  /** Only these hotkeys (ss58 addresses) may be gathered or scored. */
  Schema.Struct({ kind: Schema.Literal("allowList"), hotkeys: Schema.NonEmptyArray(NonEmptyString) }),
)
export type Admission = typeof Admission.Type

export const ParticipationSpec = Schema.Struct({
  blocksPerWindow: PositiveInt,
  blockTimeMs: PositiveInt,
  /** An upload counts only if stored within this long after the next window's first block. */
  uploadWindowMs: PositiveInt,
  /** Peers whose updates are aggregated each round. */
  peersGathered: PositiveInt,
  /** Standby peers that fill the slots of gathered peers that did not deliver. */
  reservePeers: NonNegativeInt,
  peerListRefreshWindows: PositiveInt,
  evaluationsPerWindow: PositiveInt,
  setWeightsEveryWindows: PositiveInt,
  /** A peer counts as active if it uploaded within this many windows. */
  activeWindows: PositiveInt,
  /** Peers delete their own updates older than this many windows. */
  retentionWindows: PositiveInt,
  gather: GatherSpec,
  scoring: ScoringSpec,
  penalties: PenaltySpec,
  admission: Admission,
}).pipe(
  Schema.filter((p) => {
    const windowMs = p.blocksPerWindow * p.blockTimeMs
    return p.uploadWindowMs < windowMs
      ? undefined
      : {
          path: ["uploadWindowMs"],
          message: `expected less than the window duration (${p.blocksPerWindow} blocks x ${p.blockTimeMs} ms = ${windowMs} ms), got ${p.uploadWindowMs}`,
        }
  }),
).annotations({ identifier: "ParticipationSpec" })
export type ParticipationSpec = typeof ParticipationSpec.Type

export const windowDurationMs = (p: ParticipationSpec): number => p.blocksPerWindow * p.blockTimeMs
