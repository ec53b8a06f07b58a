/**
 * One window of judging, as the validator runs it after gathering: which uploads are invalid
 * (refused at the trust boundary, admission.ts: undecodable, not compressed as the run says, or
 * not trained on the peer's assignment), which are copies, which are scaled far beyond the others (norm.ts), which peers to evaluate and what the
 * evaluation measured, whose updates show their own samples (data-check.ts), and each peer's sync. The result is the `GauntletWindow` the Scoring
 * service folds into its state.
 */
import { Effect } from "effect"
import type { RunSpec } from "@covenant/dsl"
import type { Engine } from "@covenant/gpu-webgpu"
import type { UpdateMessage } from "@covenant/sparseloco"
import type { ShardSet } from "../data/shards.ts"
import type { RuntimeFailure } from "../errors.ts"
import { paramSlice } from "../round/params.ts"
import { detectCopies } from "./copy.ts"
import { NORM_OUTLIER_FACTOR, normOutliers } from "./norm.ts"
import { checkData } from "./data-check.ts"
import type { DataCheckTarget } from "./data-check.ts"
import { evaluateUpdates, syncOf } from "./evaluate.ts"
import type { GauntletWindow } from "./gauntlet.ts"
import { meanAbsDiff } from "./sync.ts"

/**
 * Windows at the start of a run in which overlap is not held against anyone: every peer starts
 * from the same model with empty error feedback, so their first top-k selections agree more.
 */
export const COPY_GRACE_WINDOWS = 1

type Slice = Readonly<Record<string, ReadonlyArray<number>>>

export interface JudgeInput {
  readonly spec: RunSpec
  readonly shards: ShardSet
  /** No engine: no loss evaluations (the validator runs without one when told not to evaluate). */
  readonly engine: Engine | undefined
  readonly window: number
  readonly start: number
  /** Peers that could have delivered (eligible and admitted). */
  readonly tracked: ReadonlyArray<number>
  /** Every on-time upload with its store time. */
  readonly delivered: ReadonlyArray<{ readonly uid: number; readonly storeTime: number }>
  /** Those of them admitted at the trust boundary (admission.ts); the rest are invalid. */
  readonly decoded: ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>
  /** The model before the window's outer step, and after it. */
  readonly before: ReadonlyMap<string, Float32Array>
  readonly after: ReadonlyMap<string, Float32Array>
  readonly outerLr: number
  /** Each peer's published parameter slice for the window (taken before its outer step). */
  readonly slices: ReadonlyMap<number, Slice>
  /** Which of the candidates to evaluate (the Scoring service's choice). */
  readonly choose: (candidates: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<number>>
  /** Which of the candidates to check for their own data (data-check.ts; the Scoring service's choice). */
  readonly chooseDataChecks: (candidates: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<DataCheckTarget>>
}

export const judgeWindow = (input: JudgeInput): Effect.Effect<GauntletWindow, RuntimeFailure> =>
  Effect.gen(function* () {
    const { spec, window } = input
    const decoded = new Map(input.decoded.map((d) => [d.uid, d.message]))
    const invalid: number[] = []
    const valid: Array<{ uid: number; storeTime: number; message: UpdateMessage }> = []
    for (const { uid, storeTime } of [...input.delivered].sort((a, b) => a.uid - b.uid)) {
      const message = decoded.get(uid)
      if (message === undefined) invalid.push(uid)
      else valid.push({ uid, storeTime, message })
    }
    const copies = window - input.start >= COPY_GRACE_WINDOWS ? detectCopies(valid, spec.participation.penalties.copyOverlapThreshold).copies : []
    const outliers = normOutliers(valid, NORM_OUTLIER_FACTOR)
    const clean = valid.filter((v) => !copies.includes(v.uid) && !outliers.includes(v.uid))
    const chosen = input.engine === undefined ? [] : yield* input.choose(clean.map((v) => v.uid))
    const { evaluations, reference } = input.engine === undefined
      ? { evaluations: [], reference: null }
      : yield* evaluateUpdates({ engine: input.engine, spec, shards: input.shards, window, start: input.start, params: input.before, stepped: input.after, outerLr: input.outerLr, uploads: valid, evaluate: [...chosen] })
    const dataChecks = input.engine === undefined
      ? []
      : yield* checkData({ engine: input.engine, spec, shards: input.shards, window, start: input.start, params: input.before, uploads: valid, check: yield* input.chooseDataChecks(clean.map((v) => v.uid)) })
    const mine = paramSlice(input.before)
    const change = meanAbsDiff(paramSlice(input.after), mine)
    const sync = valid.map(({ uid }) => ({ uid, score: syncOf(input.slices.get(uid), mine, change, spec) }))
    return {
      window,
      tracked: [...input.tracked],
      delivered: input.delivered.map((d) => d.uid).sort((a, b) => a - b),
      invalid,
      copies,
      outliers,
      evaluations,
      reference,
      sync,
      dataChecks,
    }
  })
