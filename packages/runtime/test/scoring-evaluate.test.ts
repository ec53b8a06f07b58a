/**
 * The Gauntlet's measurements on a real model (debug preset, CPU engine, the shipped corpus):
 * a peer's honest update improves the loss on random data and its sign-flipped copy worsens it,
 * and the validator's model is bit for bit unchanged by evaluating. (Which updates are valid at
 * all is the trust boundary's call: node-admission.test.ts.)
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug, derive, innerLrAt } from "@covenant/dsl"
import { Engine, EngineCpu, Trainer, initLlamaParameters } from "@covenant/gpu-webgpu"
import type { UpdateMessage } from "@covenant/sparseloco"
import { openShardSet } from "../src/data/shards.ts"
import { signFlipped } from "../src/adversary/transforms.ts"
import { modelManifest, trainingBatches } from "../src/node/node.ts"
import { compressDelta, pseudoGradient } from "../src/round/outer-round.ts"
import { paramsDigest } from "../src/round/params.ts"
import { evaluateUpdates } from "../src/scoring/evaluate.ts"
import { prepareRunData } from "../src/swarm/data.ts"

test("evaluation: honest update improves, its sign flip worsens, the model is untouched", async () => {
  const spec = await Effect.runPromise(derive(debug(), { participation: { scoring: { evalLrFactor: 1 } } }))
  const dir = mkdtempSync(join(tmpdir(), "covenant-eval-"))
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const engine = yield* Engine
      const shards = yield* openShardSet(yield* prepareRunData(spec, join(dir, "data")))
      const params = initLlamaParameters(spec.model, spec.seed)
      const digest = paramsDigest(params)
      const window = 7
      const start = 3
      const inner = spec.innerOptimizer
      const make = (uid: number) =>
        Effect.gen(function* () {
          const data = yield* trainingBatches(shards, spec, uid, window, start)
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
      const { message: honest, after: trained } = yield* make(1)
      const { message: other } = yield* make(2)
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
    }).pipe(Effect.provide(EngineCpu))))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)
