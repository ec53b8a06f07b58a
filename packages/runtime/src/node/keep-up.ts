/**
 * Whether a peer keeps up with the run's clock, in numbers. A window leaves a peer from the end of
 * the previous window's gather (the previous upload interval's close plus the gather's slack) to
 * the close of this window's upload interval: one window length less the slack. Its inner steps,
 * codec and upload must fit in that; an update that lands after the interval closed is refused by
 * every node as late, so the peer trained for nothing. This module judges that, pure:
 * - at start, from one measured inner step (`stepFits`), so a run that cannot fit is refused;
 * - per window, from where the update landed (`observeLanding`), saying so with the numbers for a
 *   few windows and then once in a summary line, not every window.
 */
import { Data, Either } from "effect"
import type { ParticipationSpec } from "@covenant/dsl"

/** What a gather waits past the upload interval's close (the store's timestamp resolution, two polls, 100 ms). */
export const gatherSlackMs = (p: Pick<ParticipationSpec, "gather">, timeResolutionMs: number): number =>
  timeResolutionMs + 2 * p.gather.pollIntervalMs + 100

export const windowMsOf = (p: Pick<ParticipationSpec, "blocksPerWindow" | "blockTimeMs">): number => p.blocksPerWindow * p.blockTimeMs

/** The time a window leaves a peer to train, encode and upload: a window less the previous gather's slack. */
export const trainingBudgetMs = (p: Pick<ParticipationSpec, "blocksPerWindow" | "blockTimeMs" | "gather">, timeResolutionMs: number): number =>
  windowMsOf(p) - gatherSlackMs(p, timeResolutionMs)

/** Room kept for the codec, the upload and a busy machine on top of the inner steps at start. */
export const startHeadroom = 1.25

const s = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`

export interface StepFit {
  readonly stepMs: number
  readonly innerSteps: number
  /** innerSteps x stepMs x startHeadroom. */
  readonly needMs: number
  readonly budgetMs: number
}

/**
 * Whether `innerSteps` steps of `stepMs` (one measured warm-up step) fit the window; the fit, or the
 * reason they do not, in words an operator can act on.
 */
export const stepFits = (
  p: Pick<ParticipationSpec, "blocksPerWindow" | "blockTimeMs" | "gather">,
  innerSteps: number,
  stepMs: number,
  timeResolutionMs: number,
): Either.Either<StepFit, string> => {
  const budgetMs = trainingBudgetMs(p, timeResolutionMs)
  const needMs = innerSteps * stepMs * startHeadroom
  const fit = { stepMs, innerSteps, needMs, budgetMs }
  if (needMs <= budgetMs) return Either.right(fit)
  return Either.left(
    `one inner step took ${Math.round(stepMs)} ms here, so ${innerSteps} inner steps take ${s(innerSteps * stepMs)} ` +
      `(${s(needMs)} with room for the codec and upload), but a window of ${p.blocksPerWindow} blocks x ${p.blockTimeMs} ms = ${s(windowMsOf(p))} ` +
      `leaves ${s(budgetMs)} to train and upload (the rest is spent gathering the previous window): every update would land after its upload interval closed. ` +
      `Lower innerSteps/batch or use a longer window (more blocks or slower blocks), or pass --accept-slow to run anyway`,
  )
}

/** Where one window's update landed against its upload interval, and what it cost. */
export interface WindowTiming {
  readonly window: number
  readonly windowMs: number
  readonly computeMs: number
  readonly codecMs: number
  /** The upload itself (after waiting for the interval to open). */
  readonly uploadMs: number
  /** When the upload finished and when the interval closed (the same clock, ms). */
  readonly landedAt: number
  readonly intervalEnd: number
}

export type Notice = Data.TaggedEnum<{
  /** This window's update landed `byMs` after the interval closed. */
  Late: { readonly window: number; readonly byMs: number; readonly message: string }
  /** Several windows in a row landed late: said once, instead of every window. */
  LateSummary: { readonly from: number; readonly to: number; readonly count: number; readonly message: string }
  /** On time again after late windows. */
  OnTimeAgain: { readonly window: number; readonly marginMs: number; readonly message: string }
}>
export const Notice = Data.taggedEnum<Notice>()

export interface KeepUp {
  /** Late windows in a row so far, with how late and the compute they took. */
  readonly streak: ReadonlyArray<{ readonly window: number; readonly byMs: number; readonly computeMs: number }>
  /** Whether this streak has been summarized (then its further windows are not reported each). */
  readonly summarized: boolean
}

export const keepUpStart: KeepUp = { streak: [], summarized: false }

/** Late windows reported one by one before the summary line. */
export const reportedEach = 3

const advice = "lower innerSteps/batch or use a longer window"

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

/**
 * Folds one window's timing into the tracker: the next state, and what to tell the operator
 * (nothing when on time as before, or while a summarized streak goes on).
 */
export const observeLanding = (state: KeepUp, t: WindowTiming): { readonly state: KeepUp; readonly notice: Notice | undefined } => {
  const byMs = Math.round(t.landedAt - t.intervalEnd)
  if (byMs <= 0) {
    if (state.streak.length === 0) return { state, notice: undefined }
    const message = `window ${t.window}: on time again after ${state.streak.length} late window${state.streak.length === 1 ? "" : "s"} (landed ${-byMs} ms before the upload interval closed, compute ${s(t.computeMs)})`
    return { state: keepUpStart, notice: Notice.OnTimeAgain({ window: t.window, marginMs: -byMs, message }) }
  }
  const streak = [...state.streak, { window: t.window, byMs, computeMs: t.computeMs }]
  if (streak.length <= reportedEach) {
    const extra = t.codecMs + t.uploadMs >= 100 ? ` + codec ${s(t.codecMs)} + upload ${s(t.uploadMs)}` : ""
    const message = `window ${t.window}: your update landed ${byMs} ms after the upload interval closed (compute ${s(t.computeMs)}${extra} for a ${s(t.windowMs)} window): ${advice}`
    return { state: { streak, summarized: false }, notice: Notice.Late({ window: t.window, byMs, message }) }
  }
  if (state.summarized) return { state: { streak, summarized: true }, notice: undefined }
  const from = streak[0]!.window
  const late = streak.map((x) => x.byMs)
  const message =
    `windows ${from}..${t.window}: all ${streak.length} updates this peer made landed after the upload interval closed ` +
    `(by ${Math.min(...late)}..${Math.max(...late)} ms; compute ${s(median(streak.map((x) => x.computeMs)))} a window for a ${s(t.windowMs)} window): ` +
    `this peer cannot keep up and no node aggregates its updates; ${advice} (late windows are no longer reported one by one)`
  return { state: { streak, summarized: true }, notice: Notice.LateSummary({ from, to: t.window, count: streak.length, message }) }
}
