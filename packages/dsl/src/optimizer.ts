/** The inner optimizer (AdamW, every peer, H steps per window) and the outer one (SGD on pseudo-gradients). */
import { Schema } from "effect"
import { Bool, Decay, NonNegative, NonNegativeInt, Positive, PositiveInt, UnitInterval } from "./fields.ts"

export const WarmupCosine = Schema.Struct({
  kind: Schema.Literal("warmupCosine"),
  /** Linear warm-up from 0 to `lr` over these inner steps. */
  warmupSteps: NonNegativeInt,
  /** Inner steps of the whole run; the cosine reaches `minLrFraction * lr` there. */
  totalSteps: PositiveInt,
  minLrFraction: UnitInterval,
}).pipe(
  Schema.filter((s) =>
    s.warmupSteps < s.totalSteps
      ? undefined
      : { path: ["warmupSteps"], message: `expected fewer than totalSteps (${s.totalSteps}), got ${s.warmupSteps}` },
  ),
)
export type WarmupCosine = typeof WarmupCosine.Type

export const InnerOptimizerSpec = Schema.Struct({
  kind: Schema.Literal("adamw"),
  lr: Positive,
  schedule: WarmupCosine,
  betas: Schema.Tuple(Decay, Decay),
  eps: Positive,
  weightDecay: NonNegative,
  /** Global L2 norm the inner gradients are clipped to. */
  gradClip: Positive,
  /** H: inner steps per window. */
  innerSteps: PositiveInt,
  /** Samples per inner step. */
  batchSize: PositiveInt,
  /** Samples per forward/backward pass; gradients accumulate to `batchSize`. */
  microBatchSize: PositiveInt,
}).pipe(
  Schema.filter((o) => {
    const issues: Array<{ path: ReadonlyArray<string>; message: string }> = []
    if (o.batchSize % o.microBatchSize !== 0) {
      issues.push({ path: ["microBatchSize"], message: `expected a divisor of batchSize (${o.batchSize}), got ${o.microBatchSize}` })
    }
    if (o.innerSteps > o.schedule.totalSteps) {
      issues.push({ path: ["innerSteps"], message: `expected at most schedule.totalSteps (${o.schedule.totalSteps}), got ${o.innerSteps}` })
    }
    return issues
  }),
).annotations({ identifier: "InnerOptimizerSpec" })
export type InnerOptimizerSpec = typeof InnerOptimizerSpec.Type

const Milestone = Schema.Struct({ fromOuterStep: PositiveInt, value: Positive })

export const OuterLrSchedule = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("constant"), value: Positive }),
  /** `initial` until the first milestone, then each milestone's value from its outer step on. */
  Schema.Struct({ kind: Schema.Literal("piecewise"), initial: Positive, milestones: Schema.Array(Milestone) }).pipe(
    Schema.filter((s) => {
      const i = s.milestones.findIndex((m, j) => j > 0 && m.fromOuterStep <= s.milestones[j - 1]!.fromOuterStep)
      return i < 0
        ? undefined
        : {
            path: ["milestones", i, "fromOuterStep"],
            message: `expected a step after the previous milestone's (${s.milestones[i - 1]!.fromOuterStep}), got ${s.milestones[i]!.fromOuterStep}`,
          }
    }),
  ),
)
export type OuterLrSchedule = typeof OuterLrSchedule.Type

export const OuterOptimizerSpec = Schema.Struct({
  kind: Schema.Literal("sgd"),
  lr: OuterLrSchedule,
  /** 0 for SparseLoCo (its error feedback already acts as momentum); DiLoCo uses Nesterov 0.9. */
  momentum: Decay,
  nesterov: Bool,
}).pipe(
  Schema.filter((o) =>
    o.nesterov && o.momentum === 0
      ? { path: ["nesterov"], message: "expected false when momentum is 0, got true" }
      : undefined,
  ),
).annotations({ identifier: "OuterOptimizerSpec" })
export type OuterOptimizerSpec = typeof OuterOptimizerSpec.Type

/** The outer learning rate in effect at outer step `step` (0-based). */
export const outerLrAt = (schedule: OuterLrSchedule, step: number): number => {
  if (schedule.kind === "constant") return schedule.value
  let lr = schedule.initial
  for (const m of schedule.milestones) if (step >= m.fromOuterStep) lr = m.value
  return lr
}

/** The inner learning rate at inner step `step` (0-based): linear warm-up, then cosine to the floor. */
export const innerLrAt = (o: InnerOptimizerSpec, step: number): number => {
  const { warmupSteps, totalSteps, minLrFraction } = o.schedule
  if (step < warmupSteps) return (o.lr * (step + 1)) / warmupSteps
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps))
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress))
  return o.lr * (minLrFraction + (1 - minLrFraction) * cosine)
}
