import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { debug } from "@covenant/dsl"
import { initLlamaParameters, makeEngine, CpuBackend, Trainer } from "@covenant/gpu-webgpu"
import { compress, outerStep } from "@covenant/sparseloco"
import type { UpdateMessage, WireTensor } from "@covenant/sparseloco"
import { admitUpdates, aggregateUpdates, applyOuterStep, cloneParams, compressDelta, decodeUpdate, encodeUpdate, modelManifest, outerRound, paramsDigest, pseudoGradient, zerosLike } from "../src/index.ts"
import type { Directory, RoundState } from "../src/index.ts"

const spec = debug()
const manifest = modelManifest(spec.model)
const base = initLlamaParameters(spec.model, 7)
const meta = (uid: number) => ({ runId: "t", window: 1, uid, hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", sampleDigest: "", sampleCount: 0 })

/** A peer's decoded update: a random delta through a fresh EF buffer, over the real wire format. */
const peerUpdate = (uid: number): { uid: number; message: UpdateMessage } => {
  const delta = new Map([...base].map(([n, v]) => [n, v.map((_, i) => Math.fround(Math.sin(uid * 7919 + i) * 1e-3))]))
  const state: RoundState = { params: cloneParams(base), ef: null, momentum: null }
  const wire = Effect.runSync(compressDelta(state, delta, manifest, spec.compression))
  const bytes = Either.getOrThrow(encodeUpdate(meta(uid), wire))
  return { uid, message: Either.getOrThrow(decodeUpdate(bytes, manifest)) }
}

describe("the outer round", () => {
  const gathered = [1, 2, 3, 4].map(peerUpdate)

  test("nodes that receive the same updates in any order end bitwise identical", () => {
    const a: RoundState = { params: cloneParams(base), ef: null, momentum: null }
    const b: RoundState = { params: cloneParams(base), ef: null, momentum: null }
    applyOuterStep(a, aggregateUpdates(gathered, manifest, spec.compression), spec.outerOptimizer, 1)
    applyOuterStep(b, aggregateUpdates([...gathered].reverse(), manifest, spec.compression), spec.outerOptimizer, 1)
    expect(paramsDigest(a.params)).toBe(paramsDigest(b.params))
    expect(paramsDigest(a.params)).not.toBe(paramsDigest(base))
  })

  test("a different set of updates gives a different model", () => {
    const a: RoundState = { params: cloneParams(base), ef: null, momentum: null }
    const b: RoundState = { params: cloneParams(base), ef: null, momentum: null }
    applyOuterStep(a, aggregateUpdates(gathered, manifest, spec.compression), spec.outerOptimizer, 1)
    applyOuterStep(b, aggregateUpdates(gathered.slice(1), manifest, spec.compression), spec.outerOptimizer, 1)
    expect(paramsDigest(a.params)).not.toBe(paramsDigest(b.params))
  })

  test("no peers: no outer step and the error feedback is zeroed", () => {
    const ef = zerosLike(base)
    for (const v of ef.values()) v.fill(0.5)
    const s: RoundState = { params: cloneParams(base), ef, momentum: null }
    expect(aggregateUpdates([], manifest, spec.compression)).toBeNull()
    applyOuterStep(s, null, spec.outerOptimizer, 1)
    expect(paramsDigest(s.params)).toBe(paramsDigest(base))
    for (const v of s.ef!.values()) expect(v.every((x) => x === 0)).toBe(true)
  })

  test("one peer alone: params = theta0 - lr * its dequantized, compressed delta; trainer restarts from the new params", async () => {
    const engine = makeEngine(new CpuBackend())
    const trainer = Trainer.create(engine, spec.model, base, { microBatch: 2, lr: 1e-3 })
    const state: RoundState = { params: cloneParams(base), ef: null, momentum: null }
    const T = spec.model.seqLen + 1
    const batches = [0, 1].map((h) => Int32Array.from({ length: 2 * T }, (_, i) => (i * 13 + h) % 256))
    let sent: Uint8Array | undefined
    const result = await Effect.runPromise(outerRound(state, {
      trainer, batches, batchShape: [2, T], manifest, compression: spec.compression, outer: spec.outerOptimizer, outerLr: 0.5,
    }, {
      encode: (tensors: readonly WireTensor[]) => encodeUpdate(meta(1), tensors),
      publish: (payload) => Effect.sync(() => { sent = payload }),
      gather: Effect.suspend(() => Effect.succeed([{ uid: 1, message: Either.getOrThrow(decodeUpdate(sent!, manifest)) }])),
    }))
    expect(result.stepped).toBe(true)
    expect(result.losses).toHaveLength(2)
    // Independently: replay the two inner steps from theta0 with a fresh trainer, compress, step.
    const check = Trainer.create(makeEngine(new CpuBackend()), spec.model, base, { microBatch: 2, lr: 1e-3 })
    for (const ids of batches) await check.step(ids, [2, T])
    const delta = pseudoGradient(base, await check.readParameters())
    const sparse = spec.compression
    if (sparse.kind !== "sparseloco") throw new Error("the debug preset uses SparseLoCo")
    const expected = cloneParams(base)
    for (const { name, shape } of manifest.tensors) {
      const c = Either.getOrThrow(compress(new Float32Array(delta.get(name)!.length), delta.get(name)!, shape, sparse, name))
      const single = aggregateUpdates([{ uid: 1, message: { meta: meta(1), tensors: [{ coding: "packed12", update: c.update }] } }], { tensors: [{ name, shape }] }, spec.compression)!
      outerStep(expected.get(name)!, single.get(name)!, 0.5)
    }
    expect(paramsDigest(state.params)).toBe(paramsDigest(expected))
    expect(paramsDigest(await trainer.readParameters())).toBe(paramsDigest(state.params))
  })
})

describe("received updates", () => {
  test("garbage, another window's or another uid's update is dropped, the rest kept in uid order", () => {
    const good = (uid: number, window = 1) => {
      const delta = new Map([...base].map(([n, v]) => [n, v.map((_, i) => Math.fround(Math.cos(uid + i) * 1e-3))]))
      const wire = Effect.runSync(compressDelta({ params: cloneParams(base), ef: null, momentum: null }, delta, manifest, spec.compression))
      return Either.getOrThrow(encodeUpdate({ ...meta(uid), window }, wire))
    }
    const dir: Directory = { participants: new Map(), leader: undefined }
    const admitted = Effect.runSync(admitUpdates([
      { uid: 4, payload: good(4) },
      { uid: 2, payload: good(2) },
      { uid: 3, payload: good(3, 2) },
      { uid: 5, payload: good(6) },
      { uid: 6, payload: new Uint8Array([1, 2, 3]) },
    ], { spec, manifest, address: { runId: "t", version: "1" }, window: 1, dir, checkHotkey: false }))
    expect(admitted.accepted.map((k) => k.uid)).toEqual([2, 4])
    expect(admitted.rejected.map((r) => [r.uid, r.reason._tag])).toEqual([[3, "WrongWindow"], [5, "WrongUid"], [6, "Undecodable"]])
  })
})
