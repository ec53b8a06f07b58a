/**
 * The validator: gathers the same updates as the peers and applies the same outer step, so it
 * holds the canonical model. The leader (the highest-stake fresh publisher, leader.ts) also
 * re-stores the start window each window (its heartbeat) and publishes the peer lists, each
 * window's aggregation record and debug slice, and checkpoints. A validator that is not the leader
 * takes over when every publisher has gone stale (its node died): it stores the same start window
 * and the peer lists in force, and leads from that window on.
 * Weights come from the Scoring service and are set on chain every few windows.
 */
import { Effect, Option } from "effect"
import { Chain, LocalChain, NoValidatorPermit } from "@covenant/chain"
import { Engine } from "@covenant/gpu-webgpu"
import { Transport } from "@covenant/transport"
import { assignedSampleIds } from "../data/window-data.ts"
import { RuntimeError, type RuntimeFailure, inPhase } from "../errors.ts"
import { encodeRecord } from "../round/codec.ts"
import { evalLoss } from "../round/eval.ts"
import { aggregateUpdates, applyOuterStep, steppedAll, warnDropped } from "../round/outer-round.ts"
import type { RoundState } from "../round/outer-round.ts"
import { cloneParams, paramSlice, paramsDigest } from "../round/params.ts"
import { publishCheckpoint } from "./checkpoint.ts"
import { currentWindow, waitForWindow } from "./clock.ts"
import { recordRound } from "./metrics.ts"
import type { NodeConfig, NodeEvent } from "./node.ts"
import { admitGathered, describeRejection, sampleRule } from "./admission.ts"
import { missingPeers } from "./rejections.ts"
import { lastWindow } from "./stop.ts"
import { guardDivergence } from "./divergence.ts"
import { awaitStart, initialModel, modelManifest, outerLrFor, pollMs } from "./node.ts"
import {
  gatherWindow, joinNetwork, peerListAt, publishParamSlice, publishPeerList, publishRecord, publishStartWindow, readDirectory, readDirectoryAt, republishPeerLists,
} from "./network.ts"
import type { Directory } from "./network.ts"
import { describeLeadership, leadershipNotice, leadsVacantRun, takesOverRun } from "./leader.ts"
import { Scoring } from "./scoring.ts"
import { loadNodeState, saveNodeState } from "./state.ts"
import { aggregatedPeers, gatheredUids } from "../scoring/peer-list.ts"
import { scoreWindow, setWeights } from "../scoring/validator-round.ts"
import { eligibleCandidates } from "../scoring/eligibility.ts"

/**
 * The peers the leader may list: every registered uid whose commitment declares the peer role and
 * a bucket (scoring/eligibility.ts). A validator permit is no role: on subtensor miners with stake
 * hold permits too; who trains is seen from who publishes updates (the Gauntlet drops the rest).
 */
export const eligiblePeers = (dir: Directory): number[] => eligibleCandidates(dir, undefined).map((c) => c.uid)

/** How many windows after publication a new peer list takes effect (time for every node to see it). */
export const PEER_LIST_LEAD = 2

/** On the local chain a validator stakes itself to a validator permit (`stake`, default 1000; subtensor stake is btcli's business). */
export const ensureValidatorPermit = (cfg: Pick<NodeConfig, "own" | "commitment" | "identity">, stake = 1000): Effect.Effect<void, RuntimeFailure, Chain | LocalChain | Transport> =>
  Effect.gen(function* () {
    yield* joinNetwork(cfg.own, cfg.commitment, "validator")
    const local = yield* LocalChain
    const graph = yield* Effect.mapError(local.refreshMetagraph, inPhase("metagraph"))
    if (!graph.neurons.some((n) => n.hotkey === cfg.identity.hotkey.address && n.validatorPermit)) {
      yield* Effect.mapError(local.addStake(stake), inPhase("stake"))
    }
  })

/**
 * A declared validator without a validator permit could never lead nor set weights: it stops at
 * start rather than run unseen (on the local chain ensureValidatorPermit stakes it first).
 */
const requirePermit = (uid: number, hotkey: string): Effect.Effect<void, RuntimeFailure, Chain> =>
  Effect.gen(function* () {
    const chain = yield* Chain
    const graph = yield* Effect.mapError(chain.refreshMetagraph, inPhase("metagraph"))
    if (graph.neurons.some((n) => n.uid === uid && n.hotkey === hotkey && n.validatorPermit)) return
    return yield* Effect.fail(inPhase("permit")(new NoValidatorPermit({
      hotkey,
      reason: `uid ${uid} runs the validator but the chain shows no validator permit for its hotkey: stake it to a permit (btcli stake add) before it starts`,
    })))
  })

export const runValidator = (cfg: NodeConfig): Effect.Effect<void, RuntimeFailure, Chain | Transport | Scoring> =>
  Effect.gen(function* () {
    const { spec, address } = cfg
    const scoring = yield* Scoring
    const engine = Option.getOrUndefined(yield* Effect.serviceOption(Engine))
    const uid = yield* joinNetwork(cfg.own, cfg.commitment, "validator")
    yield* requirePermit(uid, cfg.identity.hotkey.address)
    const me = { identity: cfg.identity, uid, own: cfg.own }
    const isLeader = (dir: Directory) => dir.leader?.uid === uid
    const poll = pollMs(spec)

    // While no validator leads, a candidate (declared validator + permit + bucket) fixes the start
    // window (the next one) and the first peer list, and so becomes the leader (leader.ts).
    let dir = yield* readDirectory
    if (leadsVacantRun(dir, uid)) {
      const next = (yield* currentWindow) + 1
      const first = yield* scoring.peerList(next, eligibleCandidates(dir, spec.participation.admission))
      yield* publishPeerList(me, address, next, first.peers, first.reserve)
      yield* publishStartWindow(me, address, next)
    }
    const start = yield* awaitStart(address, spec)
    const saved = yield* loadNodeState(cfg.stateDir, spec.model)
    if (saved?.scoring != null) yield* scoring.restore(saved.scoring)
    const initial = yield* initialModel(spec, address, saved, start)
    cfg.events({ _tag: "Joined", name: cfg.name, role: "validator", uid, resumedAt: saved?.window ?? null })
    const state: RoundState = { params: initial.params, ef: null, momentum: initial.momentum }
    const manifest = modelManifest(spec.model)
    const emit = (e: Extract<NodeEvent, { _tag: "Round" }>) => Effect.zipRight(Effect.sync(() => cfg.events(e)), recordRound(e))

    // A fixed held-out batch for the model's loss: samples no peer is assigned in the run's first windows.
    const evalSet = yield* evalBatches(cfg)

    let window = initial.window + 1
    const last = cfg.stop === undefined ? undefined : lastWindow(cfg.stop, start, yield* currentWindow)
    const digests = new Map<number, string>()
    // The leader followed last window (leader.ts leadershipNotice): a change of leader is said once, a wait every window.
    let followed: number | undefined = -1
    for (;;) {
      if (last !== undefined && window > last) return
      // A validator that is not the leader checks its model against the leader's too.
      window = (yield* guardDivergence({ cfg, uid, state, start, digests }, window - 1)) + 1
      yield* waitForWindow(window + 1, poll)
      const roundStart = performance.now()
      cfg.events({ _tag: "Phase", name: cfg.name, window, phase: "gather" })
      dir = yield* readDirectoryAt(window)
      if (takesOverRun(dir, uid)) {
        // Every publisher is stale: claim the lead with the run's start window (the same value)
        // and the lists in force, so peerListAt reads the same from this bucket.
        const copied = yield* republishPeerLists(me, dir, address)
        yield* publishStartWindow(me, address, start)
        const message = `${cfg.name} (uid ${uid}) takes over the lead at window ${window}: ${describeLeadership(dir, window) ?? "no fresh leader"}; republished peer lists ${copied.join(", ") || "(none)"}`
        yield* Effect.logWarning(message)
        cfg.events({ _tag: "Notice", name: cfg.name, kind: "took-lead", window, message })
        dir = yield* readDirectoryAt(window)
      } else if (isLeader(dir)) {
        // The heartbeat: re-store the start window (same value) while leading (leader.ts).
        yield* publishStartWindow(me, address, start)
      }
      const leadership = leadershipNotice(dir, window, followed)
      followed = dir.leader?.uid
      if (leadership !== undefined) yield* Effect.logWarning(`${cfg.name}: ${leadership}`)
      const list = yield* peerListAt(dir, address, window)
      const expected = [...list.peers].sort((a, b) => a - b)
      // Every eligible peer is gathered (to judge it); the listed ones, with reserves for the missing, are aggregated.
      const tracked = eligibleCandidates(dir, spec.participation.admission).map((c) => c.uid)
      const got = yield* gatherWindow(dir, address, spec, window, [...new Set([...gatheredUids(list), ...tracked])].sort((a, b) => a - b))
      const gatherMs = performance.now() - roundStart
      // Admission first (typed rejections); of the admitted, the listed peers are aggregated, reserves filling in.
      const admission = yield* admitGathered(got, { spec, manifest, address, window, dir, samples: sampleRule(cfg.shards, spec, start) })
      const { accepted: decodedAll, rejected } = admission
      const chosen = new Set(aggregatedPeers(list, decodedAll.map((d) => d.uid)))
      const decoded = decodedAll.filter((d) => chosen.has(d.uid))
      const delivered = admission.delivered.filter((d) => chosen.has(d.uid))
      let t = performance.now()
      const before = scoring.judges ? cloneParams(state.params) : state.params
      const outerLr = outerLrFor(spec, start, window)
      const G = aggregateUpdates(decoded, manifest, spec.compression)
      yield* warnDropped(G, manifest)
      applyOuterStep(state, G, spec.outerOptimizer, outerLr)
      const outerMs = performance.now() - t
      t = performance.now()
      const digest = paramsDigest(state.params)
      digests.set(window, digest)
      if (isLeader(dir)) {
        yield* publishRecord(me, address, window, encodeRecord({ window, updates: delivered }))
        yield* publishParamSlice(me, address, { window, digest, values: paramSlice(state.params) })
        if ((window - start + 1) % spec.checkpointing.everyOuterSteps === 0) {
          yield* publishCheckpoint(me, address, spec.model, window, { params: state.params, momentum: state.momentum }, spec.checkpointing.keep)
        }
      }
      // Judge the window (data check, copies, loss evaluations on the model before the step, sync); the leader lists peers.
      yield* scoreWindow({
        cfg, me, dir, leader: isLeader(dir), engine, start, window, listLead: PEER_LIST_LEAD, expected, aggregated: decoded.map((d) => d.uid), tracked,
        delivered: [...got.delivered].map(([u, d]) => ({ uid: u, storeTime: d.storeTime })), decoded: decodedAll, before, after: state.params, outerLr,
      })
      yield* saveNodeState(cfg.stateDir, spec.model, { window, params: state.params, ef: null, momentum: state.momentum, optimizer: null, scoring: yield* scoring.snapshot })
      if ((window - start + 1) % spec.participation.setWeightsEveryWindows === 0) yield* setWeights(cfg, uid, window)
      const publishMs = performance.now() - t
      const loss = engine === undefined || evalSet === undefined ? null : yield* evalLoss(engine, spec.model, state.params, evalSet.batches, evalSet.shape)
      yield* emit({
        _tag: "Round",
        name: cfg.name,
        role: "validator",
        uid,
        window,
        loss,
        bytesUp: 0,
        bytesDown: admission.delivered.reduce((n, d) => n + d.payload.length, 0),
        expected,
        gathered: decoded.map((d) => d.uid),
        stepped: steppedAll(G, manifest),
        rejected,
        missing: missingPeers(expected, decoded.map((d) => d.uid), got.refused, rejected.map((r) => ({ uid: r.uid, reason: describeRejection(r.reason) }))),
        digest,
        roundMs: performance.now() - roundStart,
        phaseMs: { compute: 0, gather: gatherMs, outerStep: outerMs, publish: publishMs },
      })
      window++
    }
  })

/** Two batches of held-out samples (those of a uid no participant has) for the validator's model loss. */
const evalBatches = (cfg: NodeConfig) =>
  Effect.gen(function* () {
    const { spec, shards } = cfg
    const sampling = { poolSize: Math.min(spec.data.sampling.poolSize, shards.totalSamples), samplesPerWindow: Math.min(spec.innerOptimizer.batchSize * 2, shards.totalSamples) }
    const ids = yield* Effect.either(assignedSampleIds(shards, 65535, 0, { ...sampling, samplesPerWindow: Math.min(sampling.samplesPerWindow, sampling.poolSize) }))
    if (ids._tag === "Left") return undefined
    const tokens = yield* Effect.mapError(shards.samples(ids.right.ids), inPhase("data"))
    const row = shards.seqLen + 1
    const b = spec.innerOptimizer.batchSize
    const batches: Int32Array[] = []
    for (let i = 0; (i + 1) * b <= ids.right.ids.length; i++) batches.push(Int32Array.from(tokens.subarray(i * b * row, (i + 1) * b * row)))
    return batches.length === 0 ? undefined : { batches, shape: [b, row] as const }
  })
