/**
 * The seam where validators judge: what a validator saw in a window goes in; the weights it sets
 * on chain, the peers it evaluates next and (for the leader) the next peer list come out, and
 * its memory is saved with the node's state. Two layers: `ScoringEqual` (every on-time, valid
 * peer of the window weighs the same; every eligible peer listed) and `layerGauntlet` (the run
 * spec's Gauntlet, packages/runtime/src/scoring/).
 */
import { Context, Effect, Either, Layer, Schema } from "effect"
import type { WeightInput } from "@covenant/chain"
import type { ParticipationSpec } from "@covenant/dsl"
import { RuntimeError, type RuntimeFailure } from "../errors.ts"
import type { GauntletParams, GauntletState, GauntletWindow } from "../scoring/gauntlet.ts"
import { emptyGauntlet, GauntletStateJson, gauntletWeights, isPenalised, observeWindow, scoresOf, selectForEvaluation } from "../scoring/gauntlet.ts"
import { dataCheckOn } from "../scoring/data-check.ts"
import type { DataCheckTarget } from "../scoring/data-check.ts"
import type { Candidate, PeerList } from "../scoring/peer-list.ts"
import { admits, choosePeerList } from "../scoring/peer-list.ts"

export interface WindowObservation {
  readonly window: number
  /** The peer list in force. */
  readonly expected: ReadonlyArray<number>
  /** Peers whose update was aggregated (arrived on time, verified and decoded). */
  readonly delivered: ReadonlyArray<number>
  /** The Gauntlet's measurements of the window (absent: nothing judged). */
  readonly judged?: GauntletWindow
}

export interface ScoringShape {
  /** Whether it reads the Gauntlet's measurements (false: the validator skips judging). */
  readonly judges: boolean
  /** Records one window's observation. */
  readonly observe: (o: WindowObservation) => Effect.Effect<void>
  /** The weights to set now, from everything observed so far. */
  readonly weights: Effect.Effect<ReadonlyArray<WeightInput>>
  /** Every known peer's current score. */
  readonly scores: Effect.Effect<ReadonlyArray<{ readonly uid: number; readonly score: number }>>
  /** Which of the window's clean uploads to evaluate. */
  readonly chooseEvaluations: (window: number, candidates: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<number>>
  /** Which of them to check for their own data (none where the spec turns the check off), each with the first window it delivered in. */
  readonly chooseDataChecks: (window: number, candidates: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<DataCheckTarget>>
  /** The peer list to publish after `window` from the eligible candidates. */
  readonly peerList: (window: number, candidates: ReadonlyArray<Candidate>) => Effect.Effect<PeerList>
  /** The memory to save with the node's state (null: nothing to save), and its restore. */
  readonly snapshot: Effect.Effect<string | null>
  readonly restore: (saved: string) => Effect.Effect<void, RuntimeFailure>
}

export class Scoring extends Context.Tag("@covenant/runtime/Scoring")<Scoring, ScoringShape>() {}

/** Equal weight for every peer that delivered in the windows since the last `weights`. */
export const makeEqualScoring = (): ScoringShape => {
  const seen = new Set<number>()
  return {
    judges: false,
    observe: (o) => Effect.sync(() => o.delivered.forEach((uid) => seen.add(uid))),
    weights: Effect.sync(() => {
      const out = [...seen].sort((a, b) => a - b).map((uid) => ({ uid, weight: 1 }))
      seen.clear()
      return out
    }),
    scores: Effect.sync(() => [...seen].sort((a, b) => a - b).map((uid) => ({ uid, score: 1 }))),
    chooseEvaluations: () => Effect.succeed([]),
    chooseDataChecks: () => Effect.succeed([]),
    peerList: (_window, candidates) => Effect.succeed({ peers: [...new Set(candidates.map((c) => c.uid))].sort((a, b) => a - b), reserve: [] }),
    snapshot: Effect.succeed(null),
    restore: () => Effect.void,
  }
}

export const ScoringEqual: Layer.Layer<Scoring> = Layer.sync(Scoring, makeEqualScoring)

/** The Gauntlet over the run's participation spec; its state is a pure value replaced window by window. */
export const makeGauntletScoring = (p: ParticipationSpec): ScoringShape => {
  const params: GauntletParams = p
  let state: GauntletState = emptyGauntlet()
  const scoreMap = () => new Map(scoresOf(state, params).map((s) => [s.uid, s.score]))
  return {
    judges: true,
    observe: (o) => Effect.sync(() => {
      if (o.judged !== undefined) state = observeWindow(state, o.judged, params)
    }),
    weights: Effect.sync(() => gauntletWeights(state, params)),
    scores: Effect.sync(() => scoresOf(state, params)),
    chooseEvaluations: (window, candidates) => Effect.sync(() => selectForEvaluation(state, window, candidates, p.evaluationsPerWindow)),
    chooseDataChecks: (window, candidates) => Effect.sync(() =>
      !dataCheckOn(p.scoring.dataCheck)
        ? []
        : selectForEvaluation(state, window, candidates, p.scoring.dataCheck.peersPerWindow, (r) => r.lastChecked)
          .map((uid) => ({ uid, since: state.peers[String(uid)]?.firstDelivered ?? window }))),
    peerList: (window, candidates) => Effect.sync(() => {
      const scores = scoreMap()
      return choosePeerList(candidates, (uid) => scores.get(uid) ?? 0, (uid) => isPenalised(state, uid, window, params), p.admission, p)
    }),
    snapshot: Effect.sync(() => Schema.encodeSync(GauntletStateJson)(state)),
    restore: (saved) => Either.match(Schema.decodeUnknownEither(GauntletStateJson)(saved), {
      onLeft: (e) => Effect.fail(new RuntimeError({ phase: "scoring", reason: `saved Gauntlet state: ${e.message}` })),
      onRight: (s) => Effect.sync(() => { state = s }),
    }),
  }
}

export const layerGauntlet = (p: ParticipationSpec): Layer.Layer<Scoring> => Layer.sync(Scoring, () => makeGauntletScoring(p))

/** Admission as the leader applies it to candidates (exported for nodes that filter by hotkey). */
export const admitted = (p: ParticipationSpec, hotkey: string): boolean => admits(p.admission, hotkey)
