/**
 * The seam where the Gauntlet will go: given what a validator saw in a window, the weights it
 * sets on chain. The layer here weights every on-time, valid peer of the window equally.
 */
import { Context, Effect, Layer } from "effect"
import type { WeightInput } from "@covenant/chain"

export interface WindowObservation {
  readonly window: number
  /** The peer list in force. */
  readonly expected: ReadonlyArray<number>
  /** Peers whose update arrived on time, verified and decoded. */
  readonly delivered: ReadonlyArray<number>
}

export interface ScoringShape {
  /** Records one window's observation. */
  readonly observe: (o: WindowObservation) => Effect.Effect<void>
  /** The weights to set now, from everything observed so far. */
  readonly weights: Effect.Effect<ReadonlyArray<WeightInput>>
}

export class Scoring extends Context.Tag("@covenant/runtime/Scoring")<Scoring, ScoringShape>() {}

/** Equal weight for every peer that delivered in the windows since the last `weights`. */
export const makeEqualScoring = (): ScoringShape => {
  const seen = new Set<number>()
  return {
    observe: (o) => Effect.sync(() => o.delivered.forEach((uid) => seen.add(uid))),
    weights: Effect.sync(() => {
      const out = [...seen].sort((a, b) => a - b).map((uid) => ({ uid, weight: 1 }))
      seen.clear()
      return out
    }),
  }
}

export const ScoringEqual: Layer.Layer<Scoring> = Layer.sync(Scoring, makeEqualScoring)
