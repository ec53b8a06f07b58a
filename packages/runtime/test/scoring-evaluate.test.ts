/**
 * The Gauntlet's measurements on a real model (debug preset, CPU engine, the shipped corpus):
 * a peer's honest update improves the loss on random data and its sign-flipped copy worsens it,
 * and the validator's model is bit for bit unchanged by evaluating; the data check tells updates
 * trained on the peer's own samples from updates trained on another assignment. (Which updates
 * are valid at all is the trust boundary's call: node-admission.test.ts.)
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug, derive, innerLrAt } from "@covenant/dsl"
import { Engine, EngineCpu, Trainer, initLlamaParameters } from "@covenant/gpu-webgpu"
import type { UpdateMessage } from "@covenant/sparseloco"
import type { RunSpec } from "@covenant/dsl"
import type { Engine as EngineService } from "@covenant/gpu-webgpu"
import type { ShardSet } from "../src/data/shards.ts"
import { openShardSet } from "../src/data/shards.ts"
import { signFlipped } from "../src/adversary/transforms.ts"
import { modelManifest, trainingBatches } from "../src/node/node.ts"
import { compressDelta, pseudoGradient } from "../src/round/outer-round.ts"
import { paramsDigest } from "../src/round/params.ts"
import { checkData, dataZ } from "../src/scoring/data-check.ts"
import { evaluateUpdates } from "../src/scoring/evaluate.ts"
import { prepareRunData } from "../src/swarm/data.ts"

const window = 7
const start = 3

/** A peer's update of `window` from `params`, trained on `trainUid`'s assignment and claimed by `uid`. */
const updateOf = (engine: EngineService, shards: ShardSet, spec: RunSpec, params: Map<string, Float32Array>, uid: number, trainUid = uid) =>
  Effect.gen(function* () {
    const inner = spec.innerOptimizer
    const data = yield* trainingBatches(shards, spec, trainUid, window, start)
    const trainer = Trainer.create(engine, spec.model, params, {
      microBatch: inner.microBatchSize, lr: () => innerLrAt(inner, inner.innerSteps), beta1: inner.betas[0], beta2: inner.betas[1], eps: inner.eps, weightDecay: inner.weightDecay, maxGradNorm: inner.gradClip,
    })
    for (const b of data.batches) yield* Effect.promise(() => trainer.step(b, data.shape))
    const after = yield* Effect.promise(() => trainer.readParameters())
    trainer.dispose()
    const wire = yield* compressDelta({ params, ef: null, momentum: null }, pseudoGradient(params, after), modelManifest(spec.model), spec.compression)
    const message: UpdateMessage = { meta: { runId: spec.name, window, uid, hotkey: `hk${uid}`, sampleDigest: data.digest, sampleCount: data.count }, tensors: wire }
    return { message, after }
  })

const withRunData = <A, E>(spec: RunSpec, body: (engine: EngineService, shards: ShardSet) => Effect.Effect<A, E, never>) => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-eval-"))
  return Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const engine = yield* Engine
    const shards = yield* openShardSet(yield* prepareRunData(spec, join(dir, "data")))
    return yield* body(engine, shards)
  }).pipe(Effect.provide(EngineCpu)))).finally(() => rmSync(dir, { recursive: true, force: true }))
}

test("evaluation: honest update improves, its sign flip worsens, the model is untouched", async () => {
  const spec = await Effect.runPromise(derive(debug(), { participation: { scoring: { evalLrFactor: 1 } } }))
  await withRunData(spec, (engine, shards) => Effect.gen(function* () {
    const params = initLlamaParameters(spec.model, spec.seed)
    const digest = paramsDigest(params)
    const { message: honest, after: trained } = yield* updateOf(engine, shards, spec, params, 1)
    const { message: other } = yield* updateOf(engine, shards, spec, params, 2)
    const flipped: UpdateMessage = { ...signFlipped(other), meta: other.meta }
    // The reference: a model one honest peer's whole local training away (as if its update were the window's step).
    const { evaluations, reference } = yield* evaluateUpdates({ engine, spec, shards, window, start, params, stepped: trained, outerLr: 1, uploads: [{ uid: 1, message: honest }, { uid: 2, message: flipped }], evaluate: [1, 2] })
    expect(reference).toBeGreaterThan(0)
    const byUid = new Map(evaluations.map((e) => [e.uid, e]))
    expect(byUid.get(1)!.gradientScore).toBeGreaterThan(0)
    expect(byUid.get(2)!.gradientScore).toBeLessThan(0)
    expect(byUid.get(1)!.ownImprovement).toBeGreaterThan(byUid.get(1)!.randomImprovement)
    expect(byUid.get(1)!.ownReference).toBeGreaterThan(0)
    expect(paramsDigest(params)).toBe(digest)
  }))
}, 120_000)

test("data check: updates trained on the peer's own samples score a high z, updates trained on another assignment do not; a joiner's earlier windows are not read", async () => {
  // Every peer trained this window only (no error feedback yet), as a peer that joined now.
  const spec = await Effect.runPromise(derive(debug(), { participation: { scoring: { dataCheck: { randomBatches: 16, windows: 4 } } } }))
  const oneWindow = await Effect.runPromise(derive(spec, { participation: { scoring: { dataCheck: { windows: 1 } } } }))
  await withRunData(spec, (engine, shards) => Effect.gen(function* () {
    const params = initLlamaParameters(spec.model, spec.seed)
    const digest = paramsDigest(params)
    const honest = [1, 2, 3]
    const otherData = [4, 5, 6]
    const uploads = []
    for (const uid of honest) uploads.push({ uid, message: (yield* updateOf(engine, shards, spec, params, uid)).message })
    for (const uid of otherData) uploads.push({ uid, message: (yield* updateOf(engine, shards, spec, params, uid, uid + 1000)).message })
    const all = [...honest, ...otherData]
    // Delivered first this window: only this window's samples are read, as if the spec said 1 window.
    const joined = yield* checkData({ engine, spec, shards, window, start, params, uploads, check: all.map((uid) => ({ uid, since: window })) })
    const checks = yield* checkData({ engine, spec: oneWindow, shards, window, start, params, uploads, check: all.map((uid) => ({ uid, since: start })) })
    expect(joined).toEqual(checks)
    const z = new Map(checks.map((c) => [c.uid, c.z]))
    console.log(`data check z: ${checks.map((c) => `uid ${c.uid} ${c.z.toFixed(2)}`).join(", ")}`)
    const threshold = spec.participation.scoring.dataCheck.threshold
    // One z of an update independent of its samples is a draw near N(0, 1); the gate reads a mean of several.
    for (const uid of honest) expect(z.get(uid)!).toBeGreaterThan(Math.max(2 * threshold, ...otherData.map((u) => z.get(u)!)))
    expect(otherData.reduce((a, u) => a + z.get(u)!, 0) / otherData.length).toBeLessThan(threshold)
    // Read over 4 windows, 3 of which it never trained on, the honest signal is diluted (why `since` exists).
    const diluted = yield* checkData({ engine, spec, shards, window, start, params, uploads, check: honest.map((uid) => ({ uid, since: start })) })
    console.log(`diluted: ${diluted.map((c) => `uid ${c.uid} ${c.z.toFixed(2)}`).join(", ")}`)
    for (const { uid, z: weaker } of diluted) expect(weaker).toBeLessThan(z.get(uid)!)
    expect(paramsDigest(params)).toBe(digest)
  }))
}, 180_000)

test("dataZ: the own agreement against the random ones' spread, none without spread", () => {
  expect(dataZ(0.1, [0, 0.02, -0.02])).toBeCloseTo(0.1 / (0.02 * Math.sqrt(1 + 1 / 3)), 12)
  expect(dataZ(0.1, [0.05, 0.05])).toBeNull()
  expect(dataZ(0.1, [0.05])).toBeNull()
})
