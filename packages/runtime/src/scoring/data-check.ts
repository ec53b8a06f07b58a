/**
 * The data check: does a peer's update carry the fingerprint of the samples it was assigned?
 *
 * An honest peer's update is built from its own samples: this window's, and through error
 * feedback those of its earlier windows. So the signs of its update agree with the gradient of
 * the loss on those samples (at the model the update was computed from) more often than with
 * the gradient on samples nobody was assigned. A peer that trained on other data agrees with its
 * own samples no more than with random ones: under that null its own batch and the random batches
 * are exchangeable, so the spread of the random batches calibrates the test, whatever the model:
 *
 *   agree(g) = share of the update's nonzero coordinates whose sign is g's, minus 1/2
 *   z        = (agree(own) - mean_i agree(random_i)) / (sd_i agree(random_i) x sqrt(1 + 1/R))
 *
 * Measured (debug swarm of 10, simulated clock, own samples of the last 4 windows, 16 random
 * batches): the loss-based indicator sees only a tenth of an update's improvement as specific to
 * its own samples; this test's z had a median of 2.0 for honest peers (5th percentile 0.4) and of
 * -0.8 for one that trained on another assignment (never above 0.1). Its power
 * falls as a peer's window grows past `evalSequences` samples (only those are checked), so the
 * Gauntlet applies its gate only while the checked peers' median shows the signal (gauntlet.ts).
 *
 * Cost per window: (R + checked peers) forward + backward passes over `windows` x
 * min(evalSequences, samplesPerWindow) sequences; one gradient is held at a time.
 */
import { Effect } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { LlamaModel } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import type { UpdateMessage } from "@covenant/sparseloco"
import { sampleRule } from "../node/admission.ts"
import { RuntimeError, type RuntimeFailure, awaitEngine } from "../errors.ts"
import { denseTensor, RANDOM_DATA_UID } from "./evaluate.ts"
import type { EvaluateInput } from "./evaluate.ts"

export interface DataCheckInput extends Pick<EvaluateInput, "engine" | "spec" | "shards" | "window" | "start" | "params" | "uploads"> {
  /** The uids to check (those without an upload are skipped). */
  readonly check: ReadonlyArray<number>
}

/** The signs of an update's nonzero coordinates, by tensor name: their indices and signs. */
interface UpdateSigns {
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly index: Int32Array; readonly positive: Uint8Array }>
  readonly count: number
}

const signsOf = (message: UpdateMessage): UpdateSigns => {
  const tensors: Array<UpdateSigns["tensors"][number]> = []
  let count = 0
  for (const t of message.tensors) {
    const { name, values: dense } = denseTensor(t)
    const index: number[] = []
    const positive: number[] = []
    for (let j = 0; j < dense.length; j++) {
      const v = dense[j]!
      if (v !== 0 && Number.isFinite(v)) {
        index.push(j)
        positive.push(v > 0 ? 1 : 0)
      }
    }
    tensors.push({ name, index: Int32Array.from(index), positive: Uint8Array.from(positive) })
    count += index.length
  }
  return { tensors, count }
}

/** Share of the update's nonzero coordinates where the gradient has the same sign, minus 1/2 (0 when either is empty). */
export const signAgreement = (u: UpdateSigns, gradient: ReadonlyMap<string, Float32Array>): number => {
  if (u.count === 0) return 0
  let agree = 0
  for (const t of u.tensors) {
    const g = gradient.get(t.name)
    if (g === undefined) continue
    for (let k = 0; k < t.index.length; k++) {
      const gv = g[t.index[k]!]!
      if ((t.positive[k] === 1 && gv > 0) || (t.positive[k] === 0 && gv < 0)) agree++
    }
  }
  return agree / u.count - 0.5
}

/** z of the own batch's agreement against the random batches' (null: the random batches do not vary). */
export const dataZ = (own: number, random: ReadonlyArray<number>): number | null => {
  const r = random.length
  if (r < 2) return null
  const mean = random.reduce((a, b) => a + b, 0) / r
  const sd = Math.sqrt(random.reduce((a, b) => a + (b - mean) ** 2, 0) / (r - 1))
  return sd > 0 ? (own - mean) / (sd * Math.sqrt(1 + 1 / r)) : null
}

const gradientOn = (engine: Engine, spec: RunSpec, params: ReadonlyMap<string, Float32Array>, batch: { readonly ids: Int32Array; readonly rows: number }, seqLen: number) =>
  awaitEngine("evaluate", async () => {
    const model = LlamaModel.create(engine, spec.model, params)
    const tensors = model.parameterTensors
    try {
      const loss = engine.tidy(() => model.loss(batch.ids, batch.rows, seqLen + 1))
      engine.backward(loss)
      loss.dispose()
      const out = new Map<string, Float32Array>()
      for (let i = 0; i < tensors.length; i++) {
        const g = tensors[i]!.grad
        if (g !== null) out.set(model.infos[i]!.name, await engine.read(g))
      }
      return out
    } finally {
      engine.zeroGrad(tensors)
      model.dispose()
    }
  })

/** Each checked peer's z (peers whose z cannot be computed are left out). */
export const checkData = (input: DataCheckInput): Effect.Effect<ReadonlyArray<{ readonly uid: number; readonly z: number }>, RuntimeFailure> =>
  Effect.gen(function* () {
    const { spec, shards, window } = input
    const dc = spec.participation.scoring.dataCheck
    const messages = new Map(input.uploads.map((u) => [u.uid, u.message]))
    const checked = input.check.filter((uid) => messages.has(uid))
    if (dc.randomBatches < 2 || checked.length === 0) return []
    const assigned = sampleRule(shards, spec, input.start)
    const perWindow = Math.min(spec.participation.scoring.evalSequences, spec.data.sampling.samplesPerWindow)
    // The first samples of each of the last `windows` assignments: what the peer trained on first.
    const batchOf = (uid: number) =>
      Effect.gen(function* () {
        const ids: number[] = []
        for (let w = window; w > window - dc.windows && w >= input.start; w--) {
          const a = yield* Effect.mapError(assigned(uid, w), (e) => new RuntimeError({ phase: "data", reason: String(e) }))
          ids.push(...a.ids.slice(0, perWindow))
        }
        const tokens = yield* Effect.mapError(shards.samples(Uint32Array.from(ids)), (e) => new RuntimeError({ phase: "data", reason: String(e) }))
        return { ids: Int32Array.from(tokens), rows: ids.length }
      })
    const gradientOf = (uid: number) => Effect.flatMap(batchOf(uid), (b) => gradientOn(input.engine, spec, input.params, b, shards.seqLen))
    const signs = new Map(checked.map((uid) => [uid, signsOf(messages.get(uid)!)]))
    const random = new Map<number, number[]>(checked.map((uid) => [uid, []]))
    // Random draws no peer is assigned (below the loss evaluation's RANDOM_DATA_UID).
    for (let i = 0; i < dc.randomBatches; i++) {
      const g = yield* gradientOf(RANDOM_DATA_UID - 1 - i)
      for (const uid of checked) random.get(uid)!.push(signAgreement(signs.get(uid)!, g))
    }
    const out: Array<{ uid: number; z: number }> = []
    for (const uid of checked) {
      const z = dataZ(signAgreement(signs.get(uid)!, yield* gradientOf(uid)), random.get(uid)!)
      if (z !== null && Number.isFinite(z)) out.push({ uid, z })
    }
    return out
  })
