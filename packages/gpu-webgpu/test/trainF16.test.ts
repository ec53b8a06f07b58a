/**
 * Training with precision "f16" (the linear layers' matmuls on f16 operands, f32 accumulation;
 * master weights, gradients and AdamW moments f32) against precision "f32", on the debug-sized
 * model, 8 AdamW steps (lr 1e-3) on one fixed batch.
 *
 * Tolerance: each step's loss within 2e-4 relative of the f32 run's. Rounding the operands to
 * halves (relative error <= 2^-11 each) moved the first loss by ~2e-6 relative here, and the later
 * ones by <= 1.4e-5 (AdamW's normalised steps amplify the gradients' rounding on near-zero
 * components; at lr 1e-2 it reached 1.3e-3 in 10 steps, so the rate matters): 2e-4 leaves ~15x
 * margin, while a wrong f16 kernel or cast (garbage, a dropped operand, a wrong scale) moves the
 * loss by far more. The runs must also differ (the f16 path ran), learn (the loss falls), and keep
 * f32 master weights (most linear weights are not halves after training).
 */
import { describe, expect, test } from "bun:test"
import { CpuBackend, f16round, initLlamaParameters, makeEngine, Trainer, type Engine } from "../src/index.ts"
import { webgpuFeatureTest } from "../src/testing.ts"
import { cpuEngine, debugSpec, randomIds, thrown, webgpuEngine } from "./model-engines.ts"

const gpu = await webgpuEngine()
const gpuTest = webgpuFeatureTest(gpu, "shaderF16")

const STEPS = 8
const ids = randomIds(2 * 32, debugSpec.vocabSize, 31)

const train = async (e: Engine, precision: "f32" | "f16") => {
  const t = Trainer.create(e, debugSpec, initLlamaParameters(debugSpec, 30), { microBatch: 2, lr: 1e-3, precision })
  try {
    const losses: number[] = []
    for (let i = 0; i < STEPS; i++) losses.push(await t.step(ids, [2, 32]))
    return { losses, params: await t.readParameters() }
  } finally {
    t.dispose()
  }
}

const TOLERANCE = 2e-4

const expectClose = (got: readonly number[], want: readonly number[]) =>
  got.forEach((l, i) => {
    const rel = Math.abs(l - want[i]!) / want[i]!
    if (!(rel <= TOLERANCE)) throw new Error(`step ${i}: loss ${l} vs ${want[i]} (relative ${rel})`)
  })

const expectTracks = (half: readonly number[], full: readonly number[]) => {
  expectClose(half, full)
  expect(half).not.toEqual(full)
  expect(half[STEPS - 1]!).toBeLessThan(half[0]! - 0.05)
}

/** How many weights of the linear layers are not halves: f32 master weights keep bits a half would drop. */
const notHalves = (params: ReadonlyMap<string, Float32Array>): number => {
  let n = 0
  for (const [name, w] of params) if (name.endsWith("proj.weight")) for (const x of w) if (f16round(x) !== x) n++
  return n
}

describe("precision f16 tracks f32", () => {
  test("CPU reference", async () => {
    const full = await train(cpuEngine(), "f32")
    const half = await train(cpuEngine(), "f16")
    expectTracks(half.losses, full.losses)
    expect(notHalves(half.params)).toBeGreaterThan(0.9 * notHalves(full.params))
  }, 120_000)

  gpuTest("WebGPU, and close to the CPU reference's f16 run", async (g) => {
    const full = await train(g, "f32")
    const half = await train(g, "f16")
    expectTracks(half.losses, full.losses)
    expect(notHalves(half.params)).toBeGreaterThan(0.9 * notHalves(full.params))
    const reference = await train(cpuEngine(), "f16")
    // the first loss comes from equal weights: f32 summation order only (as the f32 debug-model test);
    // later ones also carry weights that moved apart where that order flipped a half's rounding
    expect(Math.abs(half.losses[0]! - reference.losses[0]!) / reference.losses[0]!).toBeLessThan(1e-5)
    expectClose(half.losses, reference.losses)
  }, 120_000)
})

test("precision f16 on a backend without shaderF16 is refused when the trainer is made", () => {
  class NoHalf extends CpuBackend {
    override readonly features = { shaderF16: false, subgroups: false }
  }
  const e = makeEngine(new NoHalf())
  const error = thrown(() => Trainer.create(e, debugSpec, initLlamaParameters(debugSpec, 1), { microBatch: 1, lr: 1e-3, precision: "f16" }))
  expect(error.tag).toBe("TrainerInputError")
  expect(error.reason).toContain("shaderF16")
})
