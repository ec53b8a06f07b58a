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
 * min(evalSequences, samplesPerWindow) sequences (R more for each shorter span: peers that joined
 * within the last `windows`); one gradient is held at a time.
 */
import { Effect } from "effect"
import type { DataCheckSpec, RunSpec } from "@covenant/dsl"
import { LlamaModel } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import type { UpdateMessage } from "@covenant/sparseloco"
import { sampleRule } from "../node/admission.ts"
import { RuntimeError, type RuntimeFailure, awaitEngine } from "../errors.ts"
import { denseTensor, RANDOM_DATA_UID } from "./evaluate.ts"
import type { EvaluateInput } from "./evaluate.ts"

/** The check runs only with a null to compare against: two random batches at least (0 turns it off). */
export const dataCheckOn = (dc: DataCheckSpec): boolean => dc.randomBatches >= 2

/** A peer to check, and the first window it delivered in (no earlier samples are read for it). */
export interface DataCheckTarget {
  readonly uid: number
  readonly since: number
}

export interface DataCheckInput extends Pick<EvaluateInput, "engine" | "spec" | "shards" | "window" | "start" | "params" | "uploads"> {
  /** The peers to check (those without an upload are skipped). */
  readonly check: ReadonlyArray<DataCheckTarget>
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
    const checked = input.check.filter((t) => messages.has(t.uid))
    if (!dataCheckOn(dc) || checked.length === 0) return []
    const assigned = sampleRule(shards, spec, input.start)
    const perWindow = Math.min(spec.participation.scoring.evalSequences, spec.data.sampling.samplesPerWindow)
    // The first samples of each of a peer's last windows (at most `windows`, none before it delivered
    // or before the run): what it trained on first, and what its error feedback still carries.
    const spanOf = (t: DataCheckTarget) => Math.max(1, Math.min(dc.windows, window - Math.max(input.start, t.since) + 1))
    const batchOf = (uid: number, span: number) =>
      Effect.gen(function* () {
        const ids: number[] = []
        for (let w = window; w > window - span; w--) {
          const a = yield* Effect.mapError(assigned(uid, w), (e) => new RuntimeError({ phase: "data", reason: String(e) }))
          ids.push(...a.ids.slice(0, perWindow))
        }
        const tokens = yield* Effect.mapError(shards.samples(Uint32Array.from(ids)), (e) => new RuntimeError({ phase: "data", reason: String(e) }))
        return { ids: Int32Array.from(tokens), rows: ids.length }
      })
    const gradientOf = (uid: number, span: number) => Effect.flatMap(batchOf(uid, span), (b) => gradientOn(input.engine, spec, input.params, b, shards.seqLen))
    const signs = new Map(checked.map((t) => [t.uid, signsOf(messages.get(t.uid)!)]))
    const random = new Map<number, number[]>(checked.map((t) => [t.uid, []]))
    // The null of each span in use (random draws over the same windows), from uids no peer is
    // assigned (below the loss evaluation's RANDOM_DATA_UID); usually every peer shares one span.
    const spans = [...new Set(checked.map(spanOf))]
    for (const span of spans) {
      const same = checked.filter((t) => spanOf(t) === span)
      for (let i = 0; i < dc.randomBatches; i++) {
        const g = yield* gradientOf(RANDOM_DATA_UID - 1 - i, span)
        for (const t of same) random.get(t.uid)!.push(signAgreement(signs.get(t.uid)!, g))
      }
    }
    const out: Array<{ uid: number; z: number }> = []
    for (const t of checked) {
      const z = dataZ(signAgreement(signs.get(t.uid)!, yield* gradientOf(t.uid, spanOf(t))), random.get(t.uid)!)
      if (z !== null && Number.isFinite(z)) out.push({ uid: t.uid, z })
    }
    return out
  })
