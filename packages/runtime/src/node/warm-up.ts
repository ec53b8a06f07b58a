/**
 * A peer's pace check at start: one inner step on a throwaway trainer (the faster of two, after
 * one untimed step, so compilation and allocation do not count), judged against the window (keep-up.ts). A run
 * that cannot fit is refused with the reason, unless the operator accepted it (--accept-slow).
 */
import { Effect, Either } from "effect"
import { initLlamaParameters, Engine, Trainer } from "@covenant/gpu-webgpu"
import { Transport } from "@covenant/transport"
import { RuntimeError, type RuntimeFailure, awaitEngine, tryEngine } from "../errors.ts"
import { stepFits } from "./keep-up.ts"
import type { NodeConfig } from "./node.ts"
import { trainingBatches } from "./node.ts"

/** Milliseconds one inner step of the run's model and batch takes on this engine. */
export const measureStep = (cfg: Pick<NodeConfig, "spec" | "shards">): Effect.Effect<number, RuntimeFailure, Engine> =>
  Effect.gen(function* () {
    const { spec } = cfg
    const engine = yield* Engine
    const data = yield* trainingBatches(cfg.shards, spec, 0, 0, 0)
    const inner = spec.innerOptimizer
    const trainer = yield* Effect.acquireRelease(
      tryEngine("warm-up", () =>
        Trainer.create(engine, spec.model, initLlamaParameters(spec.model, spec.seed), {
          microBatch: inner.microBatchSize, lr: () => inner.lr, beta1: inner.betas[0], beta2: inner.betas[1], eps: inner.eps,
          weightDecay: inner.weightDecay, maxGradNorm: inner.gradClip,
        })),
      (t) => Effect.sync(() => t.dispose()),
    )
    const step = (i: number) => awaitEngine("warm-up", () => trainer.step(data.batches[i % data.batches.length]!, data.shape))
    // The first step compiles and allocates; the faster of the next two is the step's cost.
    yield* step(0)
    let best = Number.POSITIVE_INFINITY
    for (const i of [1, 2]) {
      const t = performance.now()
      yield* step(i)
      best = Math.min(best, performance.now() - t)
    }
    return best
  }).pipe(Effect.scoped)

/**
 * Refuses (`warmUp: "refuse"`) a run whose inner steps cannot fit its window on this machine, or
 * reports it (`"warn"`) as a Notice; says nothing when they fit or no check was asked for.
 */
export const checkPace = (cfg: NodeConfig): Effect.Effect<void, RuntimeFailure, Engine | Transport> =>
  Effect.gen(function* () {
    if (cfg.warmUp === undefined) return
    const transport = yield* Transport
    const stepMs = yield* measureStep(cfg)
    const fit = stepFits(cfg.spec.participation, cfg.spec.innerOptimizer.innerSteps, stepMs, transport.timeResolutionMs)
    if (Either.isRight(fit)) return
    if (cfg.warmUp === "refuse") return yield* new RuntimeError({ phase: "timing", reason: `run ${cfg.spec.name} cannot keep up on this machine: ${fit.left}` })
    cfg.events({ _tag: "Notice", name: cfg.name, kind: "slow-accepted", window: 0, message: `runs anyway (--accept-slow), though ${fit.left.replace(/, or pass --accept-slow to run anyway$/, "")}` })
  })
