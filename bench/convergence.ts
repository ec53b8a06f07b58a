/**
 * Convergence at the same token budget (not a test; prints numbers):
 *   - SparseLoCo: N peers, H inner AdamW steps, top-k 64 of each 64x64 chunk, 2-bit values, EF 0.95, outer SGD lr 1
 *   - DiLoCo: the same peers and inner steps, full-precision pseudo-gradients, outer Nesterov (lr 0.7, momentum 0.9)
 *   - AdamW: one peer taking every step on the global batch (N x B sequences)
 * on a small LLaMA over the shipped corpus (byte tokens). Every method sees the same sequences per
 * round; the loss is measured on held-out samples. The outer rounds run the runtime's own code
 * (compressDelta -> wire encode/decode -> aggregateUpdates -> applyOuterStep) without a network.
 *
 *   bun bench/convergence.ts [--peers 4] [--batch 4] [--inner 8] [--rounds 12] [--dim 64] [--layers 2] [--backend cpu|webgpu]
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug, innerLrAt } from "@covenant/dsl"
import type { CompressionSpec, OuterOptimizerSpec, RunSpec } from "@covenant/dsl"
import { CpuBackend, EngineWebGpu, Engine, initLlamaParameters, makeEngine, Trainer } from "@covenant/gpu-webgpu"
import {
  aggregateUpdates, applyOuterStep, assignedSampleIds, cloneParams, compressDelta, decodeUpdate, encodeUpdate, evalLoss, modelManifest,
  openShardSet, prepareRunData, pseudoGradient,
} from "@covenant/runtime"
import type { RoundState, ShardSet } from "@covenant/runtime"
import { intArg } from "./support.ts"

const peers = intArg("peers", 4)
const batch = intArg("batch", 4)
const inner = intArg("inner", 8)
const rounds = intArg("rounds", 12)
const dim = intArg("dim", 64)
const layers = intArg("layers", 2)
const useWebGpu = process.argv.includes("webgpu")

const base = debug()
const spec: RunSpec = {
  ...base,
  model: { ...base.model, dim, nLayers: layers, nHeads: Math.max(2, dim / 16), nKvHeads: Math.max(1, dim / 32), ffnDim: 2 * dim },
  innerOptimizer: {
    ...base.innerOptimizer,
    lr: 2e-3,
    schedule: { kind: "warmupCosine", warmupSteps: Math.max(1, Math.round(rounds * inner * 0.1)), totalSteps: rounds * inner, minLrFraction: 0.1 },
    batchSize: batch,
    innerSteps: inner,
  },
}
const sparse: CompressionSpec = { kind: "sparseloco", chunk: 64, topk: 64, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding: "packed12" }
const sgd: OuterOptimizerSpec = { kind: "sgd", lr: { kind: "constant", value: 1 }, momentum: 0, nesterov: false }
const nesterov: OuterOptimizerSpec = { kind: "sgd", lr: { kind: "constant", value: 0.7 }, momentum: 0.9, nesterov: true }
const manifest = modelManifest(spec.model)
const T = spec.model.seqLen + 1
const hotkey = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"

const program = (engine: Engine) => Effect.gen(function* () {
  const dataDir = yield* prepareRunData(spec, join(mkdtempSync(join(tmpdir(), "covenant-convergence-")), "data"))
  const shards: ShardSet = yield* openShardSet(dataDir)
  const pool = Math.min(shards.totalSamples, 1024)
  /** The sequences peer p uses at inner step h of round r: the same for every method. */
  const seqs = (uid: number, window: number, count: number) =>
    Effect.flatMap(assignedSampleIds(shards, uid, window, { poolSize: pool, samplesPerWindow: count }), ({ ids }) => shards.samples(ids))
  const heldOut = yield* seqs(65535, 0, 4 * batch)
  const evalBatches = [0, 1, 2, 3].map((i) => Int32Array.from(heldOut.subarray(i * batch * T, (i + 1) * batch * T)))
  const evalNow = (params: ReadonlyMap<string, Float32Array>) => evalLoss(engine, spec.model, params, evalBatches, [batch, T])
  const init = initLlamaParameters(spec.model, 11)
  const options = (lrStep: () => number) => ({ microBatch: batch, lr: () => innerLrAt(spec.innerOptimizer, lrStep()), weightDecay: 0.1, maxGradNorm: 1 })

  const outer = (compression: CompressionSpec, outerOpt: OuterOptimizerSpec) =>
    Effect.gen(function* () {
      const state: RoundState = { params: cloneParams(init), ef: null, momentum: null }
      let step = 0
      const trainers = Array.from({ length: peers }, () => Trainer.create(engine, spec.model, init, options(() => step)))
      const efs: Array<RoundState["ef"]> = trainers.map(() => null)
      let bytes = 0
      const curve: number[] = []
      for (let r = 0; r < rounds; r++) {
        const gathered = []
        for (let p = 0; p < peers; p++) {
          const trainer = trainers[p]!
          trainer.writeParameters(state.params)
          const tokens = yield* seqs(p, r, batch * inner)
          for (let h = 0; h < inner; h++) {
            step = r * inner + h
            yield* Effect.promise(() => trainer.step(Int32Array.from(tokens.subarray(h * batch * T, (h + 1) * batch * T)), [batch, T]))
          }
          const delta = pseudoGradient(state.params, yield* Effect.promise(() => trainer.readParameters()))
          const peerState: RoundState = { params: state.params, ef: efs[p]!, momentum: null }
          const wire = yield* compressDelta(peerState, delta, manifest, compression)
          efs[p] = peerState.ef
          const payload = yield* encodeUpdate({ runId: "bench", window: r, uid: p, hotkey, sampleDigest: "", sampleCount: 0 }, wire)
          bytes += payload.length
          gathered.push({ uid: p, message: yield* decodeUpdate(payload, manifest) })
        }
        applyOuterStep(state, aggregateUpdates(gathered, manifest, compression), outerOpt, outerOpt.lr.kind === "constant" ? outerOpt.lr.value : 1)
        curve.push(yield* evalNow(state.params))
      }
      trainers.forEach((t) => t.dispose())
      return { loss: curve[curve.length - 1]!, curve, bytes }
    })

  const adamw = Effect.gen(function* () {
    let step = 0
    const trainer = Trainer.create(engine, spec.model, init, { ...options(() => step), microBatch: batch })
    const curve: number[] = []
    for (let r = 0; r < rounds; r++) {
      const perPeer = []
      for (let p = 0; p < peers; p++) perPeer.push(yield* seqs(p, r, batch * inner))
      for (let h = 0; h < inner; h++) {
        step = r * inner + h
        // The global batch of inner step h: every peer's h-th batch.
        const global = new Int32Array(peers * batch * T)
        perPeer.forEach((tokens, p) => global.set(tokens.subarray(h * batch * T, (h + 1) * batch * T), p * batch * T))
        yield* Effect.promise(() => trainer.step(global, [peers * batch, T]))
      }
      curve.push(yield* evalNow(yield* Effect.promise(() => trainer.readParameters())))
    }
    trainer.dispose()
    return { loss: curve[curve.length - 1]!, curve, bytes: 0 }
  })

  const initial = yield* evalNow(init)
  const tokens = rounds * inner * peers * batch * spec.model.seqLen
  console.log(`model dim ${dim}, ${layers} layers; ${peers} peers x batch ${batch} x H ${inner} x ${rounds} rounds = ${tokens.toLocaleString("en-US")} tokens; held-out loss at init ${initial.toFixed(4)}`)
  const results: Array<[string, { loss: number; curve: number[]; bytes: number }, number]> = []
  for (const [name, run] of [
    ["SparseLoCo (top-64/4096, 2-bit, EF 0.95, outer SGD 1.0)", outer(sparse, sgd)],
    ["DiLoCo (fp32 deltas, outer Nesterov 0.7/0.9)", outer({ kind: "none" }, nesterov)],
    [`AdamW, 1 peer, global batch ${peers * batch}`, adamw],
  ] as const) {
    const t = performance.now()
    const r = yield* run
    results.push([name, r, (performance.now() - t) / 1000])
  }
  for (const [name, r, s] of results) {
    console.log(`${name.padEnd(58)} final held-out loss ${r.loss.toFixed(4)}  sent ${(r.bytes / 1024).toFixed(1)} KiB  (${s.toFixed(1)} s)`)
    console.log(`${"".padEnd(58)} per round: ${r.curve.map((x) => x.toFixed(3)).join(" ")}`)
  }
})

const runnable = useWebGpu ? Effect.provide(Effect.flatMap(Engine, program), EngineWebGpu) : program(makeEngine(new CpuBackend()))
await Effect.runPromise(Effect.scoped(runnable).pipe(Effect.catchAll((e) => Effect.sync(() => {
  console.error(e)
  process.exitCode = 1
}))))
