/** Shared setup of the swarm integration tests: the debug preset at a pace this 2-core machine keeps. */
import { Effect } from "effect"
import { debug, derive } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { describeRejection } from "@covenant/runtime"
import type { NodeEvent } from "@covenant/runtime"

/**
 * The debug model and data, with 2 x 3 inner steps per window (instead of 4 x 5) and 4 s windows
 * (8 blocks of 500 ms): every node of a swarm shares one JS thread here, and each window must hold
 * every peer's training and the validator's judging (its Gauntlet evaluations) plus the 1 s upload
 * interval and the gather after it, on a 2-core machine whose cores may both be busy.
 */
export const swarmTestSpec = (): Promise<RunSpec> =>
  Effect.runPromise(derive(debug(), {
    innerOptimizer: { batchSize: 2, innerSteps: 3, microBatchSize: 2 },
    data: { sampling: { samplesPerWindow: 6 } },
    // Every peer of these swarms is listed (the debug preset gathers 2 + 1 reserve of its 2 peers).
    participation: { blocksPerWindow: 8, blockTimeMs: 500, uploadWindowMs: 1_000, peersGathered: 8, reservePeers: 2 },
    infrastructure: { chain: { kind: "local", path: ".covenant/test/chain", blockTimeMs: 500 } },
  }))

/** The swarm spec with the validator judging every peer each window, setting weights and refreshing the list every window. */
export const gauntletSpec = async (): Promise<RunSpec> =>
  Effect.runPromise(derive(await swarmTestSpec(), {
    participation: {
      evaluationsPerWindow: 6,
      setWeightsEveryWindows: 1,
      peerListRefreshWindows: 1,
      scoring: { linearWeighted: 6, tailWeighted: 2 },
    },
  }))

export type RoundEvent = Extract<NodeEvent, { _tag: "Round" }>

export const roundsOf = (events: ReadonlyArray<NodeEvent>): RoundEvent[] => events.filter((e): e is RoundEvent => e._tag === "Round")

/** The validator's round of each window, by window. */
export const validatorRounds = (events: ReadonlyArray<NodeEvent>): Map<number, RoundEvent> =>
  new Map(roundsOf(events).filter((e) => e.role === "validator").map((e) => [e.window, e]))

export const logEvent = (t0: number) => (e: NodeEvent): void => {
  if (process.env["SWARM_LOG"] === undefined || e._tag === "Phase") return
  const t = ((Date.now() - t0) / 1000).toFixed(1)
  if (e._tag === "Round") console.log(t, e.name, "w", e.window, "loss", e.loss?.toFixed(4), "gathered", e.gathered.join(","), "rejected", e.rejected.map((r) => `${r.uid}:${describeRejection(r.reason)}`).join(","), e.digest.slice(0, 12))
  else console.log(t, JSON.stringify(e))
}
