/**
 * What peers and validators share: their configuration, the events they report, their data, how
 * they find the run's start and initial model, and how a node that fell behind replays windows.
 */
import { Duration, Effect, Either } from "effect"
import type { Chain, Commitment, Identity } from "@covenant/chain"
import type { RunSpec } from "@covenant/dsl"
import { outerLrAt } from "@covenant/dsl"
import { initLlamaParameters, llamaParameters } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import type { Manifest, UpdateMessage } from "@covenant/sparseloco"
import type { BucketLocation, Transport } from "@covenant/transport"
import type { ShardSet } from "../data/shards.ts"
import { windowBatch } from "../data/window-data.ts"
import { RuntimeError } from "../errors.ts"
import { decodeRecord, decodeUpdate } from "../round/codec.ts"
import { aggregateUpdates, applyOuterStep } from "../round/outer-round.ts"
import type { RoundState } from "../round/outer-round.ts"
import type { Params } from "../round/params.ts"
import { loadLatestCheckpoint } from "./checkpoint.ts"
import type { PeerBehaviour } from "../adversary/behaviour.ts"
import type { RunAddress } from "./network.ts"
import { fetchRecord, fetchStartWindow, gatherWindow, peerListAt, readDirectory } from "./network.ts"
import { aggregatedPeers, gatheredUids } from "../scoring/peer-list.ts"

export interface NodeConfig {
  /** A display name (peer-0, validator-0, ...). */
  readonly name: string
  readonly spec: RunSpec
  readonly address: RunAddress
  readonly identity: Identity
  /** This node's bucket (write access) and the commitment other nodes read it through. */
  readonly own: BucketLocation
  readonly commitment: Commitment
  /** Local state folder (params, EF, AdamW), saved after every outer step. */
  readonly stateDir: string
  readonly shards: ShardSet
  readonly events: (event: NodeEvent) => void
  /** Stop after this many windows from the run's start window (default: run until interrupted). */
  readonly rounds?: number
  /** Peers only: a plug-in that alters training and/or the upload (adversary/behaviour.ts); none = honest. */
  readonly behaviour?: PeerBehaviour
}

export type Role = "peer" | "validator"

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
      readonly stepped: boolean
      readonly digest: string
      readonly roundMs: number
      readonly phaseMs: Readonly<Record<string, number>> & { readonly compute: number }
    }
  | { readonly _tag: "CaughtUp"; readonly name: string; readonly uid: number; readonly from: number; readonly to: number; readonly replayed: number; readonly debugDistance: number | null }
  | {
      /** A validator's judgement of a window: every known peer's score after it, and what it found. */
      readonly _tag: "Judged"
      readonly name: string
      readonly window: number
      readonly scores: ReadonlyArray<{ readonly uid: number; readonly score: number }>
      readonly evaluated: ReadonlyArray<number>
      readonly gradientScores: ReadonlyArray<{ readonly uid: number; readonly score: number }>
      readonly copies: ReadonlyArray<number>
      readonly invalid: ReadonlyArray<number>
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

export const modelManifest = (model: LlamaSpec): Manifest => ({ tensors: llamaParameters(model).map(({ name, shape }) => ({ name, shape })) })

export const pollMs = (spec: RunSpec): number => Math.max(10, Math.floor(spec.participation.blockTimeMs / 4))

/** Waits until the chain names a leader with a bucket and that leader has published the start window. */
export const awaitStart = (address: RunAddress, spec: RunSpec): Effect.Effect<number, RuntimeError, Chain | Transport> =>
  Effect.gen(function* () {
    for (;;) {
      const dir = yield* readDirectory
      if (dir.leader?.location !== undefined) {
        const start = yield* fetchStartWindow(dir, address)
        if (start !== undefined) return start
      }
      yield* Effect.sleep(Duration.millis(pollMs(spec)))
    }
  })

/** This node's starting model: its own saved state, else the leader's latest checkpoint, else the seeded init. */
export const initialModel = (
  spec: RunSpec,
  address: RunAddress,
  saved: { readonly window: number; readonly params: Params } | undefined,
  start: number,
): Effect.Effect<{ window: number; params: Params; from: "state" | "checkpoint" | "init" }, RuntimeError, Chain | Transport> =>
  Effect.gen(function* () {
    if (saved !== undefined) return { window: saved.window, params: saved.params, from: "state" as const }
    const dir = yield* readDirectory
    const leader = dir.leader?.location
    const ckpt = leader === undefined ? undefined : yield* loadLatestCheckpoint(leader, address, spec.model)
    if (ckpt !== undefined) return { ...ckpt, from: "checkpoint" as const }
    return { window: start - 1, params: initLlamaParameters(spec.model, spec.seed), from: "init" as const }
  })

/** The H batches of [batch, seqLen + 1] ids a uid trains on in a window, and their digest. */
export const trainingBatches = (shards: ShardSet, spec: RunSpec, uid: number, window: number) =>
  Effect.gen(function* () {
    const { batchSize, innerSteps } = spec.innerOptimizer
    const sampling = { poolSize: Math.min(spec.data.sampling.poolSize, shards.totalSamples), samplesPerWindow: spec.data.sampling.samplesPerWindow }
    const batch = yield* Effect.mapError(windowBatch(shards, uid, window, sampling), (e) => new RuntimeError({ phase: "data", reason: `${e._tag}: ${"reason" in e ? String(e.reason) : ""}` }))
    const row = shards.seqLen + 1
    const batches: Int32Array[] = []
    for (let h = 0; h < innerSteps; h++) batches.push(Int32Array.from(batch.tokens.subarray(h * batchSize * row, (h + 1) * batchSize * row)))
    return { batches, shape: [batchSize, row] as const, digest: batch.digest, count: batch.ids.length }
  })

/** Decodes delivered payloads; an update that does not decode, or names another window or uid, is dropped. */
export const decodeDelivered = (
  delivered: ReadonlyArray<{ readonly uid: number; readonly payload: Uint8Array }>,
  manifest: Manifest,
  window: number,
): Array<{ uid: number; message: UpdateMessage }> =>
  delivered.flatMap(({ uid, payload }) => {
    const m = decodeUpdate(payload, manifest)
    return Either.isRight(m) && m.right.meta.window === window && m.right.meta.uid === uid ? [{ uid, message: m.right }] : []
  }).sort((a, b) => a.uid - b.uid)

/** Outer step index of a window: windows since the run's start (the same on every node). */
export const outerLrFor = (spec: RunSpec, start: number, window: number): number => outerLrAt(spec.outerOptimizer.lr, Math.max(0, window - start))

/**
 * Brings `state` from window `from` to `to` (inclusive) without training: each window's updates
 * come from the leader's aggregation record, or straight from the peers' buckets when there is
 * none (the same set: store times are fixed once written). Returns how many were replayed.
 */
export const replayWindows = (
  state: RoundState,
  spec: RunSpec,
  address: RunAddress,
  start: number,
  from: number,
  to: number,
): Effect.Effect<{ bytesDown: number }, RuntimeError, Chain | Transport> =>
  Effect.gen(function* () {
    const manifest = modelManifest(spec.model)
    let bytesDown = 0
    for (let w = from; w <= to; w++) {
      const dir = yield* readDirectory
      const recordBytes = yield* fetchRecord(dir, address, w)
      let delivered: Array<{ uid: number; payload: Uint8Array }>
      if (recordBytes !== undefined) {
        const record = yield* decodeRecord(recordBytes)
        delivered = [...record.updates]
        bytesDown += recordBytes.length
      } else {
        const list = yield* peerListAt(dir, address, w)
        const got = yield* gatherWindow(dir, address, spec, w, gatheredUids(list))
        const all = [...got.delivered].map(([uid, d]) => ({ uid, payload: d.bytes }))
        bytesDown += all.reduce((n, d) => n + d.payload.length, 0)
        const chosen = new Set(aggregatedPeers(list, decodeDelivered(all, manifest, w).map((d) => d.uid)))
        delivered = all.filter((d) => chosen.has(d.uid))
      }
      const G = aggregateUpdates(decodeDelivered(delivered, manifest, w), manifest, spec.compression)
      applyOuterStep(state, G, spec.outerOptimizer, outerLrFor(spec, start, w))
    }
    return { bytesDown }
  })

