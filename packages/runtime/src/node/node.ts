/**
 * What peers and validators share: their configuration, the events they report, their data, how
 * they find the run's start and initial model, and how a node that fell behind replays windows.
 */
import { Clock, Duration, Effect, Either } from "effect"
import type { Chain, CommitmentLocation, Identity, Role } from "@covenant/chain"
import type { RunSpec } from "@covenant/dsl"
import { outerLrAt } from "@covenant/dsl"
import { initLlamaParameters, llamaParameters } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import type { Manifest, UpdateMessage } from "@covenant/sparseloco"
import type { BucketLocation, Transport } from "@covenant/transport"
import type { ShardSet } from "../data/shards.ts"
import { scheduledSampleIds, scheduledWindowBatch } from "../data/window-data.ts"
import { RuntimeError, type RuntimeFailure, inPhase } from "../errors.ts"
import { decodeRecord } from "../round/codec.ts"
import { aggregateUpdates, applyOuterStep } from "../round/outer-round.ts"
import type { RoundState } from "../round/outer-round.ts"
import type { Params } from "../round/params.ts"
import { loadLatestCheckpoint } from "./checkpoint.ts"
import type { PeerBehaviour } from "../adversary/behaviour.ts"
import type { RunAddress } from "./network.ts"
import { describeStartWait, readSources, waitReportMs } from "./leader.ts"
import { fetchRecord, fetchStartWindow, gatherWindow, peerListAt, readDirectory } from "./network.ts"
import { admitUpdates, sampleRule } from "./admission.ts"
import type { Rejected } from "./admission.ts"
import type { Missing } from "./rejections.ts"
import type { StopRule } from "./stop.ts"
import { aggregatedPeers, gatheredUids } from "../scoring/peer-list.ts"

export interface NodeConfig {
  /** A display name (peer-0, validator-0, ...). */
  readonly name: string
  readonly spec: RunSpec
  readonly address: RunAddress
  readonly identity: Identity
  /**
   * This node's bucket (write access) and the location other nodes read it through: it commits
   * that with the role it runs (peer or validator: joinNetwork).
   */
  readonly own: BucketLocation
  readonly commitment: CommitmentLocation
  /** Local state folder (params, EF, AdamW), saved after every outer step. */
  readonly stateDir: string
  /**
   * Peers only: keep no state on disk (a browser tab): start from the leader's checkpoint and
   * replay, like a fresh node, every time; `stateDir` is then unused.
   */
  readonly stateless?: boolean
  readonly shards: ShardSet
  readonly events: (event: NodeEvent) => void
  /** When to stop (stop.ts; default: run until interrupted). */
  readonly stop?: StopRule
  /**
   * Peers only: time one warm-up inner step at start and refuse ("refuse") or only warn ("warn",
   * --accept-slow) when the run's inner steps cannot fit its window (keep-up.ts); none = no check.
   */
  readonly warmUp?: "refuse" | "warn"
  /** Peers only: a plug-in that alters training and/or the upload (adversary/behaviour.ts); none = honest. */
  readonly behaviour?: PeerBehaviour
}

export type { Role }

export type NoticeKind = "late" | "late-summary" | "on-time-again" | "slow-accepted" | "nothing-to-train" | "took-lead"

export type NodeEvent =
  | { readonly _tag: "Joined"; readonly name: string; readonly role: Role; readonly uid: number; readonly resumedAt: number | null }
  | { readonly _tag: "Phase"; readonly name: string; readonly window: number; readonly phase: string }
  | {
      readonly _tag: "Round"
      readonly name: string
      readonly role: Role
      readonly uid: number
      readonly window: number
      /** Mean inner loss (peers) or eval loss after the step (validators; null if not evaluated). */
      readonly loss: number | null
      readonly bytesUp: number
      readonly bytesDown: number
      readonly expected: ReadonlyArray<number>
      readonly gathered: ReadonlyArray<number>
      /** True only when the outer step covered every tensor. */
      readonly stepped: boolean
      /** Delivered updates refused at the boundary (admission.ts), with the typed reason. */
      readonly rejected: ReadonlyArray<Rejected>
      /** Expected peers not aggregated, and why (late, early, absent, invalid, unreadable). */
      readonly missing?: ReadonlyArray<Missing>
      readonly digest: string
      readonly roundMs: number
      readonly phaseMs: Readonly<Record<string, number>> & { readonly compute: number }
    }
  | { readonly _tag: "CaughtUp"; readonly name: string; readonly uid: number; readonly from: number; readonly to: number; readonly replayed: number; readonly debugDistance: number | null }
  /**
   * After `window` this node's parameters (`digest`) were not the leader's (`leaderDigest`): it
   * re-synced (divergence.ts) to `resyncedTo`; `matches` says whether it then held the leader's
   * model of `window` (null when it re-synced past it, to a newer checkpoint).
   */
  | {
      readonly _tag: "Diverged"
      readonly name: string
      readonly uid: number
      readonly window: number
      readonly digest: string
      readonly leaderDigest: string
      readonly resyncedTo: number
      readonly matches: boolean | null
    }
  /**
   * Something the operator must know about this node's pace: its update landed late (keep-up.ts;
   * per window, then once summarized), it is on time again, its run was accepted though too slow,
   * or it will stop before training anything (stop.ts); or (a validator) it took over the lead from a stale leader (leader.ts).
   */
  | { readonly _tag: "Notice"; readonly name: string; readonly kind: NoticeKind; readonly window: number; readonly message: string }
  | {
      /** A validator's judgement of a window: every known peer's score after it, and what it found. */
      readonly _tag: "Judged"
      readonly name: string
      readonly window: number
      readonly scores: ReadonlyArray<{ readonly uid: number; readonly score: number }>
      readonly evaluated: ReadonlyArray<number>
      readonly gradientScores: ReadonlyArray<{ readonly uid: number; readonly score: number }>
      readonly copies: ReadonlyArray<number>
      readonly outliers: ReadonlyArray<number>
      readonly invalid: ReadonlyArray<number>
      /** The window's data checks (scoring/data-check.ts): each checked peer's z. */
      readonly dataChecks: ReadonlyArray<{ readonly uid: number; readonly z: number }>
    }
  /**
   * A validator's weights from its Scoring service, as it sets them on chain after `window`, and
   * its row as the chain then stores it ((uid, u16) pairs; empty when nothing was set).
   */
  | {
      readonly _tag: "Weights"
      readonly name: string
      readonly uid: number
      readonly window: number
      readonly weights: ReadonlyArray<{ readonly uid: number; readonly weight: number }>
      readonly onChain?: ReadonlyArray<readonly [number, number]>
    }

export { modelManifest } from "./manifest.ts"
import { modelManifest } from "./manifest.ts"

export const pollMs = (spec: RunSpec): number => Math.max(10, Math.floor(spec.participation.blockTimeMs / 4))

/**
 * Waits until a leader (leader.ts) has published the start window; meanwhile says, at once and then
 * every window (at most every 15 s), whom it waits for and why.
 */
export const awaitStart = (address: RunAddress, spec: RunSpec): Effect.Effect<number, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const p = spec.participation
    let saidAt = Number.NEGATIVE_INFINITY
    for (;;) {
      const dir = yield* readDirectory
      // A stale leader's start window is the run's all the same (a takeover keeps its value).
      if (readSources(dir).some((p) => p.location !== undefined)) {
        const start = yield* fetchStartWindow(dir, address)
        if (start !== undefined) return start
      }
      const now = yield* Clock.currentTimeMillis
      if (now - saidAt >= waitReportMs(p.blocksPerWindow, p.blockTimeMs, pollMs(spec))) {
        saidAt = now
        yield* Effect.logInfo(describeStartWait(dir, address))
      }
      yield* Effect.sleep(Duration.millis(pollMs(spec)))
    }
  })

/**
 * This node's starting model and outer momentum: its own saved state, else the leader's latest
 * checkpoint (verified against the leader's hotkey on chain; an untrusted one stops the node),
 * else the seeded init.
 */
export const initialModel = (
  spec: RunSpec,
  address: RunAddress,
  saved: { readonly window: number; readonly params: Params; readonly momentum?: Params | null } | undefined,
  start: number,
): Effect.Effect<{ window: number; params: Params; momentum: Params | null; from: "state" | "checkpoint" | "init" }, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    if (saved !== undefined) return { window: saved.window, params: saved.params, momentum: saved.momentum ?? null, from: "state" as const }
    const dir = yield* readDirectory
    // The leader's latest checkpoint, else (a leader that took over recently has none yet) the one of the leader it replaced.
    for (const leader of readSources(dir)) {
      if (leader.location === undefined) continue
      const ckpt = yield* Effect.mapError(loadLatestCheckpoint({ location: leader.location, uid: leader.uid, hotkey: leader.hotkey }, address, spec.model), (e) =>
        e._tag === "UntrustedCheckpoint" ? new RuntimeError({ phase: "checkpoint", reason: `UntrustedCheckpoint: ${e.key}: ${e.reason}` }) : e)
      if (ckpt !== undefined) return { ...ckpt, from: "checkpoint" as const }
    }
    return { window: start - 1, params: initLlamaParameters(spec.model, spec.seed), momentum: null, from: "init" as const }
  })

const dataError = inPhase("data")

/**
 * The H batches of [batch, seqLen + 1] ids a uid trains on in a window, and their digest. The
 * samples come from the shards the spec's schedule has live at outer step `window - start`.
 */
export const trainingBatches = (shards: ShardSet, spec: RunSpec, uid: number, window: number, start: number) =>
  Effect.gen(function* () {
    const { batchSize, innerSteps } = spec.innerOptimizer
    const batch = yield* Effect.mapError(scheduledWindowBatch(shards, spec.data.schedule, Math.max(0, window - start), uid, window, spec.data.sampling), dataError)
    const row = shards.seqLen + 1
    const batches: Int32Array[] = []
    for (let h = 0; h < innerSteps; h++) batches.push(Int32Array.from(batch.tokens.subarray(h * batchSize * row, (h + 1) * batchSize * row)))
    return { batches, shape: [batchSize, row] as const, digest: batch.digest, count: batch.ids.length }
  })

/** Starts fetching the samples a uid will train on in `window` (the seed rule knows them ahead), in the background. */
export const prefetchBatches = (shards: ShardSet, spec: RunSpec, uid: number, window: number, start: number): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.either(scheduledSampleIds(shards, spec.data.schedule, Math.max(0, window - start), uid, window, spec.data.sampling)),
    (ids) => (ids._tag === "Right" ? shards.prefetch(ids.right.ids) : Effect.void),
  )

/** Outer step index of a window: windows since the run's start (the same on every node). */
export const outerLrFor = (spec: RunSpec, start: number, window: number): number => outerLrAt(spec.outerOptimizer.lr, Math.max(0, window - start))

/**
 * Brings `state` from window `from` to `to` (inclusive) without training: each window's updates
 * come from the aggregation record of the leader that published it (the current leader, else the
 * stale leaders it replaced: network.ts fetchRecord), or straight from the peers' buckets when
 * there is none (windows between a leader's death and its successor's takeover; the same set:
 * store times are fixed once written). Returns how many were replayed.
 */
export const replayWindows = (
  state: RoundState,
  spec: RunSpec,
  address: RunAddress,
  start: number,
  from: number,
  to: number,
  /** This node's data: a window without the leader's record is admitted as live nodes admit it, sample check included. */
  shards: ShardSet,
): Effect.Effect<{ bytesDown: number }, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const manifest = modelManifest(spec.model)
    let bytesDown = 0
    for (let w = from; w <= to; w++) {
      const dir = yield* readDirectory
      const recordBytes = yield* fetchRecord(dir, address, w)
      let accepted: ReadonlyArray<{ uid: number; message: UpdateMessage }>
      if (recordBytes !== undefined) {
        // The leader's signed record holds exactly what it aggregated; its hotkeys were checked then.
        const record = yield* decodeRecord(recordBytes)
        bytesDown += recordBytes.length
        accepted = (yield* admitUpdates(record.updates, { spec, manifest, address, window: w, dir, checkHotkey: false })).accepted
      } else {
        // As a live node: admit what the list (and its reserves) delivered, then aggregate the listed peers that delivered, reserves filling in.
        const list = yield* peerListAt(dir, address, w)
        const got = yield* gatherWindow(dir, address, spec, w, gatheredUids(list))
        const all = [...got.delivered].map(([uid, d]) => ({ uid, payload: d.bytes }))
        bytesDown += all.reduce((n, d) => n + d.payload.length, 0)
        const admitted = (yield* admitUpdates(all, { spec, manifest, address, window: w, dir, samples: sampleRule(shards, spec, start) })).accepted
        const chosen = new Set(aggregatedPeers(list, admitted.map((d) => d.uid)))
        accepted = admitted.filter((d) => chosen.has(d.uid))
      }
      const G = aggregateUpdates(accepted, manifest, spec.compression)
      applyOuterStep(state, G, spec.outerOptimizer, outerLrFor(spec, start, w))
    }
    return { bytesDown }
  })

