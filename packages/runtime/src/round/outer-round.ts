/**
 * One SparseLoCo outer round as the paper's algorithm box, top to bottom (sparseloco.md):
 *
 *   theta0  <- current shared parameters
 *   theta_H <- H inner AdamW steps on this peer's data, from theta0
 *   delta   <- theta0 - theta_H ; params <- theta0
 *   ef      <- beta * ef + delta ; top-k per chunk ; 2-bit quantize ; ef -= what was sent
 *   publish ; gather the selected peers' updates (sorted by uid)
 *   G       <- aggregate (median-norm clipping, mean over selecting peers)
 *   params  <- params - outer_lr * G        (no peers: no step, EF zeroed)
 *
 * Publishing and gathering are injected (`RoundIo`) so the same box runs over any transport.
 * Every node aggregates the same updates in the same order with the same float32 CPU code, so
 * all nodes hold bitwise-identical parameters after the step.
 */
import { Effect, Either } from "effect"
import type { Trainer } from "@covenant/gpu-webgpu"
import { aggregate, compress, meanDense, nesterovStep, outerStep } from "@covenant/sparseloco"
import type { Manifest, TensorUpdate, UpdateMessage, WireTensor } from "@covenant/sparseloco"
import type { CompressionSpec, OuterOptimizerSpec } from "@covenant/dsl"
import { CodecFailure, type RuntimeFailure, awaitEngine, tryEngine } from "../errors.ts"
import type { Params } from "./params.ts"
import { zerosLike } from "./params.ts"

/** What a node carries from round to round besides the trainer: the shared model and its buffers. */
export interface RoundState {
  /** The shared parameters (canonical host copy). */
  params: Params
  /** SparseLoCo error feedback (peers only; null for `compression: none` and validators). */
  ef: Params | null
  /** Outer Nesterov momentum (DiLoCo baseline only). */
  momentum: Params | null
}

export interface RoundIo<R> {
  readonly publish: (payload: Uint8Array) => Effect.Effect<void, RuntimeFailure, R>
  /** The selected peers' decoded updates of this window. */
  readonly gather: Effect.Effect<ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>, RuntimeFailure, R>
  readonly encode: (tensors: readonly WireTensor[]) => Either.Either<Uint8Array, RuntimeFailure>
}

export interface RoundInput {
  readonly trainer: Trainer
  /** H batches of [batch, seqLen + 1] token ids. */
  readonly batches: ReadonlyArray<Int32Array>
  readonly batchShape: readonly [number, number]
  readonly manifest: Manifest
  readonly compression: CompressionSpec
  readonly outer: OuterOptimizerSpec
  readonly outerLr: number
  /** Called before inner step h (sets the inner learning rate's global step). */
  readonly beforeStep?: (h: number) => void
}

export interface RoundResult {
  readonly losses: ReadonlyArray<number>
  readonly bytesUp: number
  readonly gathered: ReadonlyArray<number>
  readonly stepped: boolean
  readonly phaseMs: { compute: number; codec: number; publish: number; gather: number; outerStep: number }
}

const now = () => performance.now()

export const outerRound = <R>(state: RoundState, input: RoundInput, io: RoundIo<R>): Effect.Effect<RoundResult, RuntimeFailure, R> =>
  Effect.gen(function* () {
    const { trainer } = input
    let t = now()
    // theta0 <- current shared parameters; theta_H <- H inner AdamW steps from theta0
    const theta0 = state.params
    const losses: number[] = []
    for (let h = 0; h < input.batches.length; h++) {
      input.beforeStep?.(h)
      const ids = input.batches[h]!
      losses.push(yield* awaitEngine("inner", () => trainer.step(ids, input.batchShape)))
    }
    const thetaH = yield* awaitEngine("inner", () => trainer.readParameters())
    const compute = now() - t
    t = now()
    // delta <- theta0 - theta_H ; params <- theta0
    const delta = pseudoGradient(theta0, thetaH)
    yield* tryEngine("inner", () => trainer.writeParameters(theta0))
    // ef <- beta ef + delta ; top-k ; quantize ; ef -= sent   (or the dense delta for DiLoCo)
    const wire = yield* compressDelta(state, delta, input.manifest, input.compression)
    const payload = yield* io.encode(wire)
    const codec = now() - t
    t = now()
    // publish ; gather the peers' updates
    yield* io.publish(payload)
    const publish = now() - t
    t = now()
    const gathered = yield* io.gather
    const gather = now() - t
    t = now()
    // G <- aggregate ; params <- params - outer_lr G
    const G = aggregateUpdates(gathered, input.manifest, input.compression)
    yield* warnDropped(G, input.manifest)
    applyOuterStep(state, G, input.outer, input.outerLr)
    yield* tryEngine("outer", () => trainer.writeParameters(state.params))
    const outerMs = now() - t
    return {
      losses,
      bytesUp: payload.length,
      gathered: gathered.map((g) => g.uid),
      stepped: steppedAll(G, input.manifest),
      phaseMs: { compute, codec, publish, gather, outerStep: outerMs },
    }
  })

/** delta = theta0 - theta_H in float32. */
export const pseudoGradient = (theta0: ReadonlyMap<string, Float32Array>, thetaH: ReadonlyMap<string, Float32Array>): Params => {
  const delta: Params = new Map()
  for (const [name, before] of theta0) {
    const after = thetaH.get(name)!
    const d = new Float32Array(before.length)
    for (let i = 0; i < d.length; i++) d[i] = before[i]! - after[i]!
    delta.set(name, d)
  }
  return delta
}

/** Compresses every tensor's delta through the error-feedback buffer (SparseLoCo) or sends it dense (DiLoCo). */
export const compressDelta = (
  state: RoundState,
  delta: ReadonlyMap<string, Float32Array>,
  manifest: Manifest,
  compression: CompressionSpec,
): Effect.Effect<WireTensor[], RuntimeFailure> =>
  Effect.gen(function* () {
    const out: WireTensor[] = []
    for (const { name, shape } of manifest.tensors) {
      const d = delta.get(name)!
      if (compression.kind === "none") {
        out.push({ coding: "f32", dense: { name, shape, values: d } })
        continue
      }
      if (state.ef === null) state.ef = zerosLike(delta)
      const c = compress(state.ef.get(name)!, d, shape, compression, name)
      if (Either.isLeft(c)) return yield* new CodecFailure({ phase: "compress", reason: `${c.left.reason}: ${c.left.message}` })
      out.push({ coding: compression.indexCoding, update: c.right.update })
    }
    return out
  })

/**
 * The aggregate pseudo-gradient of the gathered updates, sorted by uid, or null when nobody
 * delivered. A tensor whose aggregate is not finite is left out (the round is rejected for it).
 */
export const aggregateUpdates = (
  gathered: ReadonlyArray<{ readonly uid: number; readonly message: UpdateMessage }>,
  manifest: Manifest,
  compression: CompressionSpec,
): Params | null => {
  if (gathered.length === 0) return null
  const ordered = [...gathered].sort((a, b) => a.uid - b.uid)
  const G: Params = new Map()
  manifest.tensors.forEach(({ name, shape }, i) => {
    const size = shape.reduce((a, b) => a * b, 1)
    if (compression.kind === "none") {
      const dense = ordered.flatMap(({ message }) => {
        const t = message.tensors[i]
        return t !== undefined && t.coding === "f32" ? [t.dense.values] : []
      })
      const out = new Float32Array(size)
      meanDense(dense, out)
      if (out.every(Number.isFinite)) G.set(name, out)
      return
    }
    const updates: TensorUpdate[] = ordered.flatMap(({ message }) => {
      const t = message.tensors[i]
      return t !== undefined && t.coding !== "f32" ? [t.update] : []
    })
    const agg = aggregate(updates)
    if (Either.isRight(agg)) G.set(name, agg.right.dense)
  })
  return G
}

/**
 * Whether the outer step covered every tensor. aggregateUpdates leaves out a tensor whose
 * aggregate failed (non-finite): the round then did not step as a whole and must say so.
 */
export const steppedAll = (G: Params | null, manifest: Manifest): boolean =>
  G !== null && manifest.tensors.every(({ name }) => G.has(name))

/** Tensors the outer step left out (empty when it stepped them all, or when nobody delivered). */
export const droppedTensors = (G: Params | null, manifest: Manifest): string[] =>
  G === null ? [] : manifest.tensors.flatMap(({ name }) => (G.has(name) ? [] : [name]))

/** Says which tensors an outer step left out (their aggregate was not finite), if any. */
export const warnDropped = (G: Params | null, manifest: Manifest): Effect.Effect<void> => {
  const dropped = droppedTensors(G, manifest)
  return dropped.length === 0 ? Effect.void : Effect.logWarning(`outer step left out ${dropped.length} tensor(s) (non-finite aggregate): ${dropped.join(", ")}`)
}

/** params <- params - lr G (SGD) or the Nesterov step of the DiLoCo baseline; no G: no step and EF zeroed. */
export const applyOuterStep = (state: RoundState, G: Params | null, outer: OuterOptimizerSpec, lr: number): void => {
  if (G === null) {
    if (state.ef !== null) for (const e of state.ef.values()) e.fill(0)
    return
  }
  const nesterov = outer.nesterov && outer.momentum > 0
  if (nesterov && state.momentum === null) state.momentum = zerosLike(state.params)
  for (const [name, g] of G) {
    const p = state.params.get(name)!
    if (nesterov) nesterovStep(p, g, state.momentum!.get(name)!, lr, outer.momentum)
    else outerStep(p, g, lr)
  }
}
