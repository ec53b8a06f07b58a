/**
 * Divergence is detected: a node that aggregated a different set of updates than the leader sees
 * its digest differ from the leader's debug slice, says so (Diverged), and re-syncs through
 * catch-up (the leader's records) to the leader's model bit for bit. Real local chain (served on
 * loopback, one client per identity), real filesystem store, real codec.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer } from "effect"
import { Chain, identityFromSecret, layerLocal, layerLocalClient, readOwnerUrl } from "@covenant/chain"
import { debug } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { decode } from "@covenant/sparseloco"
import { layerFileSystem } from "@covenant/transport"
import {
  aggregateUpdates, applyOuterStep, cloneParams, compressDelta, paramSlice, encodeRecord, encodeUpdate, ensureValidatorPermit, guardDivergence, modelManifest,
  outerLrFor, paramsDigest, publishParamSlice, publishRecord, publishStartWindow, runAddress,
} from "../src/index.ts"
import type { NodeEvent, RoundState } from "../src/index.ts"
import { openShardSet } from "../src/data/shards.ts"
import { prepareRunData } from "../src/swarm/data.ts"

const spec = debug()
const manifest = modelManifest(spec.model)
const address = runAddress(spec)
const S = 7

test("a node fed a different gather set detects it against the leader's digest and re-syncs to the leader's model", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-diverge-"))
  try {
    const leader = await Effect.runPromise(identityFromSecret("//diverge-leader"))
    const peers = await Effect.runPromise(Effect.forEach([0, 1, 2], (i) => Effect.orDie(identityFromSecret(`//diverge-peer-${i}`))))
    const chainDir = join(dir, "chain")
    const store = layerFileSystem(join(dir, "store"))
    const owner = Layer.mergeAll(layerLocal({ dir: chainDir, identity: leader, params: { blockIntervalMs: 50, blocksPerWindow: 5, weightsRateLimit: 0, permitStake: 10 } }), store)
    const program = Effect.gen(function* () {
      const url = yield* readOwnerUrl(chainDir)
      const uids = yield* Effect.forEach(peers, (p) => Effect.provide(Effect.flatMap(Chain, (c) => c.register), layerLocalClient(url, p)))
      const own = { bucket: "covenant-leader" }
      yield* ensureValidatorPermit({ own, commitment: { _tag: "Filesystem", dir: own.bucket }, identity: leader })
      const leaderUid = (yield* Effect.flatMap(Chain, (c) => c.uid))!
      const me = { identity: leader, uid: leaderUid, own }
      yield* publishStartWindow(me, address, S)

      // Window S: three peers' real updates.
      const base = initLlamaParameters(spec.model, spec.seed)
      const delivered = uids.map((uid, i) => {
        const delta = new Map([...base].map(([n, v]) => [n, v.map((_, j) => Math.fround(Math.sin((i + 1) * 7919 + j) * 1e-3))]))
        const wire = Effect.runSync(compressDelta({ params: cloneParams(base), ef: null, momentum: null }, delta, manifest, spec.compression))
        const meta = { runId: address.runId, window: S, uid, hotkey: peers[i]!.hotkey.address, sampleDigest: "", sampleCount: 0 }
        return { uid, payload: Either.getOrThrow(encodeUpdate(meta, wire)) }
      }).sort((a, b) => a.uid - b.uid)
      const decoded = delivered.map((d) => ({ uid: d.uid, message: Either.getOrThrow(decode(d.payload, manifest)) }))
      const stepWith = (set: typeof decoded): RoundState => {
        const s: RoundState = { params: cloneParams(base), ef: null, momentum: null }
        applyOuterStep(s, aggregateUpdates(set, manifest, spec.compression), spec.outerOptimizer, outerLrFor(spec, S, S))
        return s
      }
      // The leader aggregated all three and published its record and debug slice.
      const leaderState = stepWith(decoded)
      const leaderDigest = paramsDigest(leaderState.params)
      yield* publishRecord(me, address, S, encodeRecord({ window: S, updates: delivered }))
      yield* publishParamSlice(me, address, { window: S, digest: leaderDigest, values: paramSlice(leaderState.params) })

      const events: NodeEvent[] = []
      const shards = yield* Effect.orDie(openShardSet(yield* Effect.orDie(prepareRunData(spec, join(dir, "data")))))
      const cfg = { name: "peer-x", spec, address, shards, events: (e: NodeEvent) => events.push(e) }
      // An honest node with the same set: nothing to say, nothing changes.
      const same = stepWith(decoded)
      const sameDigests = new Map([[S, paramsDigest(same.params)]])
      expect(yield* guardDivergence({ cfg, uid: uids[0]!, state: same, start: S, digests: sameDigests }, S)).toBe(S)
      expect(events).toEqual([])
      expect(sameDigests.size).toBe(0)

      // A node that gathered only two of the three: a different model.
      const drifted = stepWith(decoded.slice(0, 2))
      const driftedDigest = paramsDigest(drifted.params)
      expect(driftedDigest).not.toBe(leaderDigest)
      let resynced = 0
      // Window S + 1 has no leader slice yet: it does not hold up the check of S.
      const digests = new Map([[S, driftedDigest], [S + 1, "not-yet-published"]])
      const done = yield* guardDivergence({ cfg, uid: uids[1]!, state: drifted, start: S, digests, onResync: () => Effect.sync(() => { resynced++ }) }, S + 1)
      expect(done).toBe(S)
      expect(resynced).toBe(1)
      expect(events).toEqual([{ _tag: "Diverged", name: "peer-x", uid: uids[1]!, window: S, digest: driftedDigest, leaderDigest, resyncedTo: S, matches: true }])
      expect(paramsDigest(drifted.params)).toBe(leaderDigest)
    })
    await Effect.runPromise(Effect.scoped(Effect.provide(program, owner)))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
