/**
 * The peer (miner): follows the chain's windows; for each, trains H inner steps on its own
 * (uid, window) data, publishes its compressed pseudo-gradient in the upload interval, gathers the
 * peer list's updates and takes the same outer step as everyone else. A peer that starts late or
 * was down first replays the windows it missed, then checks itself against the leader's debug
 * values, and only then trains the live window (it never ends one window behind).
 */
import { Clock, Duration, Effect, Either } from "effect"
import { Chain } from "@covenant/chain"
import { innerLrAt } from "@covenant/dsl"
import { Engine, Trainer } from "@covenant/gpu-webgpu"
import { prune, Transport, uploadInterval } from "@covenant/transport"
import { behaviourBatches, behaviourPayload } from "../adversary/apply.ts"
import { type RuntimeFailure, awaitEngine, inPhase, tryEngine } from "../errors.ts"
import { encodeUpdate } from "../round/codec.ts"
import { outerRound } from "../round/outer-round.ts"
import type { RoundState } from "../round/outer-round.ts"
import { paramSlice, paramsDigest, sliceDistance } from "../round/params.ts"
import { currentWindow, waitForWindow } from "./clock.ts"
import { recordRound } from "./metrics.ts"
import type { NodeConfig, NodeEvent } from "./node.ts"
import { admitGathered, sampleRule } from "./admission.ts"
import { guardDivergence } from "./divergence.ts"
import type { Rejected } from "./admission.ts"
import { awaitStart, initialModel, modelManifest, outerLrFor, pollMs, prefetchBatches, replayWindows, trainingBatches } from "./node.ts"
import { fetchLeaderSlice, gatherWindow, joinNetwork, peerListAt, publishParamSlice, publishGradient, readDirectory, readDirectoryAt } from "./network.ts"
import { leadershipNotice } from "./leader.ts"
import { aggregatedPeers, gatheredUids } from "../scoring/peer-list.ts"
import { loadNodeState, saveNodeState } from "./state.ts"
import { keepUpStart, observeLanding, windowMsOf } from "./keep-up.ts"
import { missingPeers } from "./rejections.ts"
import type { Rejections } from "./rejections.ts"
import { describeRejection } from "./admission.ts"
import { lastWindow, nothingToTrain } from "./stop.ts"
import { checkPace } from "./warm-up.ts"

export const runPeer = (cfg: NodeConfig): Effect.Effect<void, RuntimeFailure, Chain | Transport | Engine> =>
  Effect.gen(function* () {
    const { spec, address } = cfg
    const engine = yield* Engine
    // Refuse a run this machine cannot keep up with before joining it (NodeConfig.warmUp).
    yield* checkPace(cfg)
    const uid = yield* joinNetwork(cfg.own, cfg.commitment, "peer")
    const me = { identity: cfg.identity, uid, own: cfg.own }
    const start = yield* awaitStart(address, spec)
    const saved = cfg.stateless === true ? undefined : yield* loadNodeState(cfg.stateDir, spec.model)
    const initial = yield* initialModel(spec, address, saved, start)
    cfg.events({ _tag: "Joined", name: cfg.name, role: "peer", uid, resumedAt: saved?.window ?? null })
    const state: RoundState = { params: initial.params, ef: saved?.ef ?? null, momentum: initial.momentum }
    const inner = spec.innerOptimizer
    // The inner schedule runs on the run's global inner step, the same for every peer.
    let globalInnerStep = 0
    const trainer = yield* Effect.acquireRelease(
      tryEngine("trainer", () =>
        Trainer.create(engine, spec.model, state.params, {
          microBatch: inner.microBatchSize,
          lr: () => innerLrAt(inner, globalInnerStep),
          beta1: inner.betas[0],
          beta2: inner.betas[1],
          eps: inner.eps,
          weightDecay: inner.weightDecay,
          maxGradNorm: inner.gradClip,
        })),
      (t) => Effect.sync(() => t.dispose()),
    )
    if (saved?.optimizer != null) {
      const opt = saved.optimizer
      yield* tryEngine("state", () => trainer.importOptimizerState(opt))
    }
    const save = (window: number) =>
      cfg.stateless === true
        ? Effect.void
        : Effect.flatMap(exportOptimizer(trainer), (optimizer) => saveNodeState(cfg.stateDir, spec.model, { window, params: state.params, ef: state.ef, momentum: state.momentum, optimizer }))
    const manifest = modelManifest(spec.model)
    const emit = (e: Extract<NodeEvent, { _tag: "Round" }>) => Effect.zipRight(Effect.sync(() => cfg.events(e)), recordRound(e))
    let done = initial.window
    const poll = pollMs(spec)
    const digests = new Map<number, string>()
    const guard = { cfg, uid, state, start, digests, onResync: () => tryEngine("resync", () => trainer.writeParameters(state.params)) }
    const live0 = yield* currentWindow
    const last = cfg.stop === undefined ? undefined : lastWindow(cfg.stop, start, live0)
    if (cfg.stop !== undefined && last !== undefined) {
      const idle = nothingToTrain(cfg.stop, last, Math.max(live0, done + 1, start))
      if (idle !== undefined) cfg.events({ _tag: "Notice", name: cfg.name, kind: "nothing-to-train", window: live0, message: idle })
    }
    // Where each window's update landed against its upload interval (keep-up.ts).
    let keepUp = keepUpStart
    // The leader followed last window (leader.ts leadershipNotice): a change of leader is said once, a wait every window.
    let followed: number | undefined = -1

    for (;;) {
      if (last !== undefined && done >= last) return
      // Compare the last windows' models with the leader's; re-sync on a mismatch.
      done = yield* guardDivergence(guard, done)
      // Catch up to the window before the live one; re-check the clock after replaying.
      const caughtFrom = done
      let replayedBytes = 0
      for (;;) {
        const live = Math.max(yield* currentWindow, start)
        const target = last === undefined ? live - 1 : Math.min(live - 1, last)
        if (done >= target) break
        cfg.events({ _tag: "Phase", name: cfg.name, window: live, phase: "catch-up" })
        replayedBytes += (yield* replayWindows(state, spec, address, start, done + 1, target, cfg.shards)).bytesDown
        done = target
      }
      if (done > caughtFrom) {
        yield* tryEngine("catch-up", () => trainer.writeParameters(state.params))
        const dist = yield* checkAgainstLeader(cfg, done, state)
        cfg.events({ _tag: "CaughtUp", name: cfg.name, uid, from: caughtFrom + 1, to: done, replayed: done - caughtFrom, debugDistance: dist })
        yield* save(done)
      }
      const window = done + 1
      if (last !== undefined && window > last) return
      yield* waitForWindow(window, poll)

      const roundStart = performance.now()
      cfg.events({ _tag: "Phase", name: cfg.name, window, phase: "train" })
      const data = yield* trainingBatches(cfg.shards, spec, uid, window, start)
      const dataMs = performance.now() - roundStart
      yield* prefetchBatches(cfg.shards, spec, uid, window + 1, start)
      const dir = yield* readDirectoryAt(window)
      // Never silent about the lead: who went stale, since when, and whom this peer follows or waits for.
      const leadership = leadershipNotice(dir, window, followed)
      followed = dir.leader?.uid
      if (leadership !== undefined) yield* Effect.logWarning(`${cfg.name}: ${leadership}`)
      const list = yield* peerListAt(dir, address, window)
      const expected = [...list.peers].sort((a, b) => a - b)
      // The slice of the model this round starts from, published with the update for the validators' sync check.
      const startSlice = { window, digest: paramsDigest(state.params), values: paramSlice(state.params) }
      const batches = cfg.behaviour === undefined ? data.batches : yield* behaviourBatches(cfg.behaviour, cfg, { uid, window, start, peers: expected }, data.batches)
      const prepareMs = performance.now() - roundStart
      let bytesDown = replayedBytes
      let waitMs = 0
      let rejected: ReadonlyArray<Rejected> = []
      let refused: Rejections | undefined
      let landed: { at: number; intervalEnd: number; uploadMs: number } | undefined
      const result = yield* outerRound(
        state,
        {
          trainer,
          batches,
          batchShape: data.shape,
          manifest,
          compression: spec.compression,
          outer: spec.outerOptimizer,
          outerLr: outerLrFor(spec, start, window),
          beforeStep: (h) => {
            globalInnerStep = (window - start) * inner.innerSteps + h
          },
        },
        {
          encode: (tensors) =>
            encodeUpdate({ runId: address.runId, window, uid, hotkey: cfg.identity.hotkey.address, sampleDigest: data.digest, sampleCount: data.count }, tensors),
          publish: (payload) =>
            Effect.gen(function* () {
              const t = performance.now()
              cfg.events({ _tag: "Phase", name: cfg.name, window, phase: "wait" })
              yield* waitForWindow(window + 1, poll)
              waitMs = performance.now() - t
              cfg.events({ _tag: "Phase", name: cfg.name, window, phase: "publish" })
              const upload = cfg.behaviour === undefined ? payload : yield* behaviourPayload(cfg.behaviour, cfg, { uid, window, start, peers: expected }, payload)
              if (upload !== undefined) {
                // The update first: it is the one with a deadline.
                const up = performance.now()
                yield* publishGradient(me, address, window, upload)
                const at = yield* Clock.currentTimeMillis
                const uploadMs = performance.now() - up
                yield* publishParamSlice(me, address, startSlice)
                const opens = yield* Effect.mapError(Effect.flatMap(Chain, (c) => c.windowStartTime(window + 1)), inPhase("publish"))
                landed = { at, intervalEnd: uploadInterval(opens, spec.participation.uploadWindowMs).end, uploadMs }
              }
            }),
          gather: Effect.gen(function* () {
            cfg.events({ _tag: "Phase", name: cfg.name, window, phase: "gather" })
            const got = yield* gatherWindow(dir, address, spec, window, gatheredUids(list))
            refused = got.refused
            const admitted = yield* admitGathered(got, { spec, manifest, address, window, dir, samples: sampleRule(cfg.shards, spec, start) })
            rejected = admitted.rejected
            bytesDown += admitted.delivered.reduce((n, d) => n + d.payload.length, 0)
            // The listed peers that delivered an admissible update, reserves filling the empty slots.
            const chosen = new Set(aggregatedPeers(list, admitted.accepted.map((d) => d.uid)))
            return admitted.accepted.filter((d) => chosen.has(d.uid))
          }),
        },
      )
      done = window
      const saveStart = performance.now()
      yield* save(window)
      // Our own updates older than the retention horizon are no longer needed by anyone.
      yield* Effect.ignore(prune({ at: cfg.own, uid, currentWindow: window, keepWindows: spec.participation.retentionWindows }))
      const saveMs = performance.now() - saveStart
      const { publish, ...rest } = result.phaseMs
      const digest = paramsDigest(state.params)
      digests.set(window, digest)
      if (landed !== undefined) {
        const judged = observeLanding(keepUp, { window, windowMs: windowMsOf(spec.participation), computeMs: result.phaseMs.compute, codecMs: result.phaseMs.codec, uploadMs: landed.uploadMs, landedAt: landed.at, intervalEnd: landed.intervalEnd })
        keepUp = judged.state
        if (judged.notice !== undefined) cfg.events({ _tag: "Notice", name: cfg.name, kind: noticeKind[judged.notice._tag], window, message: judged.notice.message })
      }
      yield* emit({
        _tag: "Round",
        name: cfg.name,
        role: "peer",
        uid,
        window,
        loss: result.losses.reduce((a, b) => a + b, 0) / Math.max(1, result.losses.length),
        bytesUp: result.bytesUp,
        bytesDown,
        expected,
        gathered: result.gathered,
        stepped: result.stepped,
        rejected,
        missing: missingPeers(expected, result.gathered, refused, rejected.map((r) => ({ uid: r.uid, reason: describeRejection(r.reason) }))),
        digest,
        roundMs: performance.now() - roundStart,
        phaseMs: { ...rest, wait: waitMs, publish: Math.max(0, publish - waitMs), prepare: prepareMs - dataMs, data: dataMs, save: saveMs },
      })
    }
  }).pipe(Effect.scoped)

const noticeKind = { Late: "late", LateSummary: "late-summary", OnTimeAgain: "on-time-again" } as const

const exportOptimizer = (trainer: Trainer) =>
  awaitEngine("state", () => trainer.exportOptimizerState())

/** Compares this node's model with the leader's parameter slice of `window` (waits up to one window for it). */
const checkAgainstLeader = (cfg: NodeConfig, window: number, state: RoundState): Effect.Effect<number | null, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + cfg.spec.participation.blocksPerWindow * cfg.spec.participation.blockTimeMs
    while ((yield* Clock.currentTimeMillis) < deadline) {
      const dir = yield* readDirectory
      const slice = yield* Effect.either(fetchLeaderSlice(dir, cfg.address, window))
      if (Either.isRight(slice) && slice.right !== undefined) {
        const dist = sliceDistance(paramSlice(state.params), slice.right.values)
        if (dist > 0) yield* Effect.logWarning(`${cfg.name}: after catch-up to window ${window} the model differs from the leader's by up to ${dist}`)
        return dist
      }
      yield* Effect.sleep(Duration.millis(pollMs(cfg.spec)))
    }
    return null
  })
