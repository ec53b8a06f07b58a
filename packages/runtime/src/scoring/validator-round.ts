/**
 * The validator's judging after each outer step, out of the validator loop: read each peer's
 * published slice, judge the window (judge.ts), fold it into the Scoring service, let the leader
 * publish the next peer list on refresh windows, report the judgement, and on weight windows
 * set the weights on chain and read back the row the chain stores.
 */
import { Effect } from "effect"
import { Chain } from "@covenant/chain"
import type { Transport } from "@covenant/transport"
import { inPhase } from "../errors.ts"
import type { RuntimeFailure } from "../errors.ts"
import type { NodeConfig } from "../node/node.ts"
import { fetchPeerSlice, peerListPublished, publishPeerList } from "../node/network.ts"
import type { Directory, Publisher } from "../node/network.ts"
import { Scoring } from "../node/scoring.ts"
import { eligibleCandidates } from "./eligibility.ts"
import { judgeWindow } from "./judge.ts"
import type { JudgeInput } from "./judge.ts"

/** What the window's judging needs (documented on JudgeInput), and what the validator adds around it. */
export interface ScoreWindowInput
  extends Pick<JudgeInput, "engine" | "start" | "window" | "tracked" | "delivered" | "decoded" | "before" | "after" | "outerLr"> {
  readonly cfg: NodeConfig
  readonly me: Publisher
  readonly dir: Directory
  readonly leader: boolean
  /** How many windows after publication a new peer list takes effect. */
  readonly listLead: number
  /** The peer list in force (sorted) and the uids aggregated this window. */
  readonly expected: ReadonlyArray<number>
  readonly aggregated: ReadonlyArray<number>
}

/** Judges the window and folds it into Scoring; the leader publishes the next list on refresh windows. */
export const scoreWindow = (input: ScoreWindowInput): Effect.Effect<void, RuntimeFailure, Scoring | Transport> =>
  Effect.gen(function* () {
    const { cfg, dir, window } = input
    const spec = cfg.spec
    const scoring = yield* Scoring
    if (!scoring.judges) {
      yield* scoring.observe({ window, expected: input.expected, delivered: input.aggregated })
      if (input.leader && (window - input.start) % spec.participation.peerListRefreshWindows === 0) yield* publishListIfChanged(input)
      return
    }
    const slices = new Map<number, Record<string, ReadonlyArray<number>>>()
    for (const { uid } of input.delivered) {
      const slice = yield* fetchPeerSlice(dir, cfg.address, window, uid)
      if (slice !== undefined) slices.set(uid, slice.values)
    }
    const judged = yield* judgeWindow({
      spec, shards: cfg.shards, engine: input.engine, window, start: input.start, tracked: input.tracked,
      delivered: input.delivered, decoded: input.decoded, before: input.before, after: input.after, outerLr: input.outerLr, slices,
      choose: (candidates) => scoring.chooseEvaluations(window, candidates),
      chooseDataChecks: (candidates) => scoring.chooseDataChecks(window, candidates),
    })
    yield* scoring.observe({ window, expected: input.expected, delivered: input.aggregated, judged })
    if (input.leader && (window - input.start) % spec.participation.peerListRefreshWindows === 0) yield* publishListIfChanged(input)
    cfg.events({
      _tag: "Judged",
      name: cfg.name,
      window,
      scores: yield* scoring.scores,
      evaluated: judged.evaluations.map((e) => e.uid),
      gradientScores: judged.evaluations.map((e) => ({ uid: e.uid, score: e.gradientScore })),
      copies: judged.copies,
      outliers: judged.outliers,
      invalid: judged.invalid,
      dataChecks: judged.dataChecks,
    })
  })

/** The leader publishes the Scoring service's next peer list, effective `listLead` windows on, unless it is the one in force then. */
const publishListIfChanged = (input: ScoreWindowInput): Effect.Effect<void, RuntimeFailure, Scoring | Transport> =>
  Effect.gen(function* () {
    const { cfg, dir, window } = input
    const next = yield* (yield* Scoring).peerList(window, eligibleCandidates(dir, cfg.spec.participation.admission))
    const inForce = yield* peerListPublished(dir, cfg.address, window + input.listLead)
    if (next.peers.join(",") !== inForce.peers.join(",") || next.reserve.join(",") !== inForce.reserve.join(",")) {
      yield* publishPeerList(input.me, cfg.address, window + input.listLead, next.peers, next.reserve)
    }
  })

/** Sets the Scoring service's weights on chain (if any) and reports them with the row the chain then stores. */
export const setWeights = (cfg: NodeConfig, uid: number, window: number): Effect.Effect<void, never, Scoring | Chain> =>
  Effect.gen(function* () {
    const chain = yield* Chain
    const weights = yield* (yield* Scoring).weights
    let onChain: ReadonlyArray<readonly [number, number]> = []
    if (weights.length > 0) {
      const set = yield* Effect.either(Effect.mapError(chain.setWeights(weights), inPhase("weights")))
      if (set._tag === "Left") yield* Effect.logWarning(`set weights: ${set.left.reason}`)
      else {
        const rows = yield* Effect.either(chain.weights)
        onChain = (rows._tag === "Right" ? rows.right.find((r) => r.uid === uid)?.weights : undefined) ?? []
      }
    }
    cfg.events({ _tag: "Weights", name: cfg.name, uid, window, weights, onChain })
  })
