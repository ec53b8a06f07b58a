import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { encodeSafetensors } from "../src/io/index.ts"
import type { Engine } from "../src/engine.ts"
import { initLlamaParameters, LlamaModel } from "../src/model/index.ts"
import type { LlamaSpec } from "../src/model/index.ts"
import { decodeOptimizerState, encodeOptimizerState, Trainer, warmupCosine } from "../src/train/index.ts"
import { cpuEngine, debugSpec, randomIds, thrown, tinySpec, webgpuEngine, webgpuTest } from "./model-engines.ts"

describe("learning-rate schedule", () => {
  test("linear warmup, cosine to the floor, then flat", () => {
    const lr = warmupCosine({ peak: 1e-3, warmupSteps: 10, totalSteps: 110, floor: 1e-4 })
    expect(lr(0)).toBeCloseTo(1e-4, 12)
    expect(lr(4)).toBeCloseTo(5e-4, 12)
    expect(lr(9)).toBeCloseTo(1e-3, 12)
    expect(lr(10)).toBeCloseTo(1e-3, 12)
    expect(lr(60)).toBeCloseTo(5.5e-4, 12) // halfway through the cosine: (peak + floor) / 2
    expect(lr(110)).toBeCloseTo(1e-4, 12)
    expect(lr(500)).toBeCloseTo(1e-4, 12)
  })
})

describe("Trainer (CPU engine)", () => {
  test("gradient accumulation over uneven micro-batches equals one full batch", async () => {
    const ids = randomIds(5 * 12, tinySpec.vocabSize, 3)
    const run = async (microBatch: number) => {
      const t = Trainer.create(cpuEngine(), tinySpec, initLlamaParameters(tinySpec, 4), { microBatch, lr: 1e-3 })
      const losses = [await t.step(ids, [5, 12]), await t.step(ids, [5, 12])]
      return { losses, gradNorm: t.lastStep!.gradNorm }
    }
    const full = await run(5)
    const micro = await run(2) // micro-batches of 2, 2 and 1 sequences
    expect(micro.losses[0]!).toBeCloseTo(full.losses[0]!, 5)
    expect(micro.losses[1]!).toBeCloseTo(full.losses[1]!, 5)
    expect(micro.gradNorm).toBeCloseTo(full.gradNorm, 5)
    expect(full.losses[1]!).toBeLessThan(full.losses[0]!)
  })

  test("exported parameters and AdamW moments resume training exactly", async () => {
    const ids = randomIds(2 * 16, tinySpec.vocabSize, 5)
    const options = { microBatch: 2, lr: warmupCosine({ peak: 3e-3, warmupSteps: 2, totalSteps: 10 }) }
    const a = Trainer.create(cpuEngine(), tinySpec, initLlamaParameters(tinySpec, 6), options)
    for (let i = 0; i < 3; i++) await a.step(ids, [2, 16])
    const params = await a.readParameters()
    const state = await a.exportOptimizerState()
    expect(state.step).toBe(3)
    expect(state.moments.size).toBe(a.parameters().length)

    const b = Trainer.create(cpuEngine(), tinySpec, params, options)
    // through the checkpoint encoding, as the runtime stores it
    b.importOptimizerState(Either.getOrThrow(decodeOptimizerState(Either.getOrThrow(encodeOptimizerState(state)))))
    const fresh = Trainer.create(cpuEngine(), tinySpec, params, options)
    const la = await a.step(ids, [2, 16])
    expect(await b.step(ids, [2, 16])).toBe(la)
    await fresh.step(ids, [2, 16])
    const pa = await a.readParameters()
    const pb = await b.readParameters()
    const pf = await fresh.readParameters()
    for (const [name, data] of pa) expect(pb.get(name)).toEqual(data)
    // without the moments (and step count) the same step lands elsewhere
    expect(pf.get("model.layers.0.mlp.up_proj.weight")).not.toEqual(pa.get("model.layers.0.mlp.up_proj.weight")!)
  })

  test("optimizer state decoding rejects files that are not AdamW state", () => {
    const tag = (bytes: Uint8Array) => {
      const r = decodeOptimizerState(bytes)
      return Either.isLeft(r) ? r.left._tag : "decoded"
    }
    const moments = { m: new Float32Array(2), v: new Float32Array(2) }
    expect(tag(Either.getOrThrow(encodeOptimizerState({ step: 1, moments: new Map([["w", moments]]) })))).toBe("decoded")
    // a model checkpoint: no step metadata
    expect(tag(Either.getOrThrow(encodeSafetensors([["w", { shape: [2], data: new Float32Array(2) }]])))).toBe("OptimizerStateError")
    // a first moment without its second
    const lonely = encodeSafetensors([["w.exp_avg", { shape: [2], data: new Float32Array(2) }]], { "covenant.adamw.step": "3" })
    expect(tag(Either.getOrThrow(lonely))).toBe("OptimizerStateError")
    expect(tag(new Uint8Array(16))).toBe("SafetensorsDecodeError")
  })

  test("writeParameters replaces what the next step starts from", async () => {
    const ids = randomIds(16, tinySpec.vocabSize, 8)
    const a = Trainer.create(cpuEngine(), tinySpec, initLlamaParameters(tinySpec, 1), { microBatch: 1, lr: 0 })
    const other = initLlamaParameters(tinySpec, 2)
    const b = Trainer.create(cpuEngine(), tinySpec, other, { microBatch: 1, lr: 0 })
    a.writeParameters(other)
    expect(await a.step(ids, [1, 16])).toBe(await b.step(ids, [1, 16]))
    expect(await a.readParameters()).toEqual(other) // lr 0: the step leaves them as written
  })

  test("bad shapes are typed errors", async () => {
    const t = Trainer.create(cpuEngine(), tinySpec, initLlamaParameters(tinySpec, 1), { microBatch: 1, lr: 1e-3 })
    const rejected = await t.step(new Int32Array(10), [2, 4]).then(() => null, (e: unknown) => e)
    expect(rejected).toMatchObject({ _tag: "TrainerInputError" })
    expect(thrown(() => Trainer.create(cpuEngine(), tinySpec, initLlamaParameters(tinySpec, 1), { microBatch: 0, lr: 1 })).tag)
      .toBe("TrainerInputError")
  })

  test("debug-sized model: buffers do not grow over many steps (leak)", async () => {
    const e = cpuEngine()
    const t = Trainer.create(e, debugSpec, initLlamaParameters(debugSpec, 1), { microBatch: 1, lr: 1e-3 })
    const ids = randomIds(2 * 32, debugSpec.vocabSize, 2)
    await t.step(ids, [2, 32])
    const live = e.backend.liveBuffers()
    for (let i = 0; i < 8; i++) await t.step(ids, [2, 32])
    expect(e.backend.liveBuffers()).toBe(live)
    t.dispose()
    // disposing frees each parameter and its two moments; the engine keeps only its cached rope table
    expect(e.backend.liveBuffers()).toBe(live - 3 * t.parameters().length)
  }, 60_000)
})

const gpu = await webgpuEngine()
const gpuTest = webgpuTest(gpu)

/** Loss and the gradient of every parameter for one batch, read back to the host. */
const lossAndGrads = async (e: Engine, spec: LlamaSpec, params: ReadonlyMap<string, Float32Array>, ids: Int32Array, batch: number, seqLen: number) => {
  const model = LlamaModel.create(e, spec, params)
  try {
    const loss = e.tidy(() => {
      const l = model.loss(ids, batch, seqLen)
      e.backward(l)
      return l
    })
    const grads = new Map<string, Float32Array>()
    for (const p of model.infos) grads.set(p.name, await e.read(model.parameter(p.name).grad!))
    const value = (await e.read(loss))[0]!
    loss.dispose()
    return { loss: value, grads }
  } finally {
    model.dispose()
  }
}

/** Trains on one fixed batch until the loss drops below a tenth of ln(vocab); returns the losses. */
const overfit = async (e: Engine) => {
  const t = Trainer.create(e, tinySpec, initLlamaParameters(tinySpec, 11), { microBatch: 4, lr: 1e-2, weightDecay: 0 })
  const ids = randomIds(4 * tinySpec.seqLen, tinySpec.vocabSize, 12)
  const losses: number[] = []
  try {
    for (let i = 0; i < 80; i++) {
      losses.push(await t.step(ids, [4, tinySpec.seqLen]))
      if (losses[losses.length - 1]! < 0.1 * Math.log(tinySpec.vocabSize)) break
    }
    return losses
  } finally {
    t.dispose()
  }
}

describe("overfitting one batch", () => {
  test("CPU engine: loss from ~ln(vocab) to below a tenth of it", async () => {
    const losses = await overfit(cpuEngine())
    expect(Math.abs(losses[0]! - Math.log(tinySpec.vocabSize))).toBeLessThan(0.3)
    expect(losses[losses.length - 1]!).toBeLessThan(0.1 * Math.log(tinySpec.vocabSize))
  }, 60_000)

  gpuTest("WebGPU engine: loss from ~ln(vocab) to below a tenth of it", async (g) => {
    const losses = await overfit(g)
    expect(Math.abs(losses[0]! - Math.log(tinySpec.vocabSize))).toBeLessThan(0.3)
    expect(losses[losses.length - 1]!).toBeLessThan(0.1 * Math.log(tinySpec.vocabSize))
  }, 120_000)
})

describe("WebGPU engine against the CPU reference", () => {
  gpuTest("debug-sized model: the loss and every parameter gradient agree", async (g) => {
    const params = initLlamaParameters(debugSpec, 21)
    const ids = randomIds(2 * 32, debugSpec.vocabSize, 22)
    const cpu = await lossAndGrads(cpuEngine(), debugSpec, params, ids, 2, 32)
    const gpuResult = await lossAndGrads(g, debugSpec, params, ids, 2, 32)
    expect(Math.abs(gpuResult.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-5)
    for (const [name, want] of cpu.grads) {
      const got = gpuResult.grads.get(name)!
      const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
      let maxDiff = 0
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!))
      if (maxDiff > 1e-5 * scale + 1e-9) throw new Error(`gradient of ${name}: max diff ${maxDiff} vs max |g| ${scale}`)
      expect(scale).toBeGreaterThan(0)
    }
  }, 120_000)

  gpuTest("debug-sized model: buffers do not grow over many steps (leak)", async (g) => {
    const t = Trainer.create(g, debugSpec, initLlamaParameters(debugSpec, 1), { microBatch: 1, lr: 1e-3 })
    const ids = randomIds(2 * 32, debugSpec.vocabSize, 2)
    await t.step(ids, [2, 32])
    const live = g.backend.liveBuffers()
    for (let i = 0; i < 8; i++) await t.step(ids, [2, 32])
    expect(g.backend.liveBuffers()).toBe(live)
    t.dispose()
    expect(g.backend.liveBuffers()).toBe(live - 3 * t.parameters().length)
  }, 120_000)
})
