/**
 * The Gauntlet's measurements of one window, effectful: the data check (a peer's reported sample
 * digest against its assignment), loss evaluations of chosen peers' updates on the validator's
 * model, and the sync score from each peer's published parameter slice. The model is never
 * modified: an evaluation builds the stepped parameters as a new map, so the validator's model
 * stays bit for bit what it was.
 */
import { Effect, Either } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { LlamaModel } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import { clipFactors, decompress } from "@covenant/sparseloco"
import type { UpdateMessage } from "@covenant/sparseloco"
import { assignedSampleIds } from "../data/window-data.ts"
import { sampleRule } from "../node/admission.ts"
import type { ShardSet } from "../data/shards.ts"
import { RuntimeError, type RuntimeFailure, awaitEngine, inPhase } from "../errors.ts"
import type { Params } from "../round/params.ts"
import type { Evaluation } from "./gauntlet.ts"
import { tensorNorm } from "./norm.ts"
import { stepsBehind, syncScore } from "./sync.ts"

/** The uid whose (uid, window) draw is a window's random evaluation data (no peer has it). */
export const RANDOM_DATA_UID = 65534

const dataError = inPhase("data")

const rowsOf = (shards: ShardSet, ids: Uint32Array) =>
  Effect.map(Effect.mapError(shards.samples(ids), dataError), (tokens) => ({ ids: Int32Array.from(tokens), rows: ids.length }))

/** Mean loss on each batch, one model upload for all of them. */
export const lossesOn = (
  engine: Engine,
  spec: RunSpec,
  params: ReadonlyMap<string, Float32Array>,
  batches: ReadonlyArray<{ readonly ids: Int32Array; readonly rows: number }>,
  seqLen: number,
): Effect.Effect<number[], RuntimeFailure> =>
  awaitEngine("evaluate", async () => {
    const model = LlamaModel.create(engine, spec.model, params)
    try {
      const out: number[] = []
      for (const b of batches) {
        const loss = engine.noGrad(() => engine.tidy(() => model.loss(b.ids, b.rows, seqLen + 1)))
        out.push((await engine.read(loss))[0]!)
        loss.dispose()
      }
      return out
    } finally {
      model.dispose()
    }
  })

/** One tensor of an admitted update as its name and dense values (an undecodable one as empty: admission refused those). */
export const denseTensor = (t: UpdateMessage["tensors"][number]): { readonly name: string; readonly values: Float32Array } =>
  t.coding === "f32"
    ? { name: t.dense.name, values: t.dense.values }
    : { name: t.update.name, values: Either.getOrElse(decompress(t.update), () => new Float32Array(0)) }

/** Each peer's update as dense tensors, clipped per tensor to the median norm of the window's uploads. */
export const clippedUpdates = (uploads: ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>, uids: ReadonlyArray<number>): Map<number, Params> => {
  const out = new Map<number, Params>(uids.map((u) => [u, new Map()]))
  const index = new Map(uploads.map((u, i) => [u.uid, i]))
  const tensors = uploads[0]?.message.tensors.length ?? 0
  for (let t = 0; t < tensors; t++) {
    const norms = uploads.map(({ message }) => tensorNorm(message.tensors[t]!))
    const factors = clipFactors(norms)
    for (const uid of uids) {
      const i = index.get(uid)!
      const { name, values } = denseTensor(uploads[i]!.message.tensors[t]!)
      const dense = values.slice()
      const f = factors[i]!
      if (f !== 1) for (let j = 0; j < dense.length; j++) dense[j] = dense[j]! * f
      out.get(uid)!.set(name, dense)
    }
  }
  return out
}

export interface EvaluateInput {
  readonly engine: Engine
  readonly spec: RunSpec
  readonly shards: ShardSet
  readonly window: number
  /** The run's start window (the shard schedule counts outer steps from it). */
  readonly start: number
  /** The model the window's updates were computed from (before the window's outer step). */
  readonly params: ReadonlyMap<string, Float32Array>
  readonly outerLr: number
  /** Every valid upload of the window (for the median norm). */
  readonly uploads: ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>
  readonly evaluate: ReadonlyArray<number>
  /** The model after the window's outer step: the reference an update's improvement is compared with. */
  readonly stepped: ReadonlyMap<string, Float32Array>
}

export interface WindowEvaluations {
  readonly evaluations: ReadonlyArray<Evaluation>
  /** The gradient score of the window's own outer step taken at the evaluation's scale (null: nothing evaluated). */
  readonly reference: number | null
}

/**
 * Loss on `evalSequences` of the peer's assigned samples and of the window's random samples,
 * before and after `params - outerLr x evalLrFactor x clipped update`; and, as the reference, the
 * same losses after `evalLrFactor` of the window's actual outer step.
 */
export const evaluateUpdates = (input: EvaluateInput): Effect.Effect<WindowEvaluations, RuntimeFailure> =>
  Effect.gen(function* () {
    const { spec, shards, window } = input
    if (input.evaluate.length === 0) return { evaluations: [], reference: null }
    const n = Math.min(spec.participation.scoring.evalSequences, shards.totalSamples)
    const randomIds = yield* Effect.mapError(assignedSampleIds(shards, RANDOM_DATA_UID, window, { poolSize: n, samplesPerWindow: n }), dataError)
    const random = yield* rowsOf(shards, randomIds.ids)
    // The peer's own samples, drawn as it trained on them (the seed rule under the shard schedule).
    const assigned = sampleRule(shards, spec, input.start)
    const own = new Map<number, { ids: Int32Array; rows: number }>()
    for (const uid of input.evaluate) {
      const a = yield* Effect.mapError(assigned(uid, window), (e) => new RuntimeError({ phase: "data", reason: String(e) }))
      own.set(uid, yield* rowsOf(shards, a.ids.slice(0, Math.max(1, Math.min(n, a.ids.length)))))
    }
    const seqLen = shards.seqLen
    const before = yield* lossesOn(input.engine, spec, input.params, [random, ...input.evaluate.map((u) => own.get(u)!)], seqLen)
    const beforeRandom = before[0]!
    const lr = input.outerLr * spec.participation.scoring.evalLrFactor
    const rel = (b: number, a: number) => (b > 0 && Number.isFinite(a) ? (b - a) / b : Number.NEGATIVE_INFINITY)
    const factor = spec.participation.scoring.evalLrFactor
    const partStep = new Map<string, Float32Array>()
    for (const [name, p] of input.params) {
      const q = input.stepped.get(name)
      partStep.set(name, q === undefined || q.length !== p.length ? p : p.map((x, j) => x + factor * (q[j]! - x)))
    }
    const [afterStep, ...afterStepOwn] = yield* lossesOn(input.engine, spec, partStep, [random, ...input.evaluate.map((u) => own.get(u)!)], seqLen)
    const updates = clippedUpdates(input.uploads, input.evaluate)
    const out: Evaluation[] = []
    for (let k = 0; k < input.evaluate.length; k++) {
      const uid = input.evaluate[k]!
      const g = updates.get(uid)!
      const stepped = new Map<string, Float32Array>()
      for (const [name, p] of input.params) {
        const d = g.get(name)
        if (d === undefined || d.length !== p.length) {
          stepped.set(name, p)
          continue
        }
        const q = new Float32Array(p.length)
        for (let j = 0; j < q.length; j++) q[j] = p[j]! - lr * d[j]!
        stepped.set(name, q)
      }
      const [afterRandom, afterOwn] = yield* lossesOn(input.engine, spec, stepped, [random, own.get(uid)!], seqLen)
      const beforeOwn = before[k + 1]!
      const ownReference = rel(beforeOwn, afterStepOwn[k]!)
      out.push({
        uid,
        gradientScore: rel(beforeRandom, afterRandom!),
        ownImprovement: rel(beforeOwn, afterOwn!),
        randomImprovement: rel(beforeRandom, afterRandom!),
        ownReference: Number.isFinite(ownReference) ? ownReference : null,
      })
    }
    const reference = rel(beforeRandom, afterStep!)
    return { evaluations: out, reference: Number.isFinite(reference) ? reference : null }
  })

/** Sync of a peer's slice against the validator's (same point), in units of this window's change of the validator's slice. */
export const syncOf = (
  peerSlice: Readonly<Record<string, ReadonlyArray<number>>> | undefined,
  validatorBefore: Readonly<Record<string, ReadonlyArray<number>>>,
  typicalChange: number,
  spec: RunSpec,
): number => {
  const s = spec.participation.scoring
  return peerSlice === undefined ? 0 : syncScore(stepsBehind(peerSlice, validatorBefore, typicalChange), s.syncMaxStepsBehind, s.syncExponent)
}
