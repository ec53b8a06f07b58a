/** A run's timing checked against the chain it joins (dsl/timing.ts), before a node starts. */
import { Either } from "effect"
import { fitToBlockTime, timingIssues } from "@covenant/dsl"
import type { FitOptions, RunSpec } from "@covenant/dsl"
import { RuntimeError, type RuntimeFailure } from "./errors.ts"

/**
 * The spec to run on a chain whose blocks were measured at `measuredMs`: as is when its timing
 * fits, refitted when `fit` is asked for, else refused with every reason. With no measurement
 * (a chain younger than two blocks) the spec is taken as is.
 */
export const runTimingFor = (spec: RunSpec, measuredMs: number | undefined, fit: boolean, options: FitOptions = {}): Either.Either<RunSpec, RuntimeFailure> => {
  if (measuredMs === undefined) return Either.right(spec)
  const run = fit ? fitToBlockTime(spec, Math.round(measuredMs), options) : spec
  const issues = timingIssues(run.participation, measuredMs)
  return issues.length === 0
    ? Either.right(run)
    : Either.left(new RuntimeError({ phase: "timing", reason: `run ${spec.name} cannot run on this chain: ${issues.join("; ")}` }))
}
