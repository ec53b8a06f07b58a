/**
 * Where a training step's time goes on the CPU backends: wall time per kernel name over the
 * timed steps, largest first, and the least each kernel took in any one step (on a shared machine
 * the mean carries the other jobs' load). Prints numbers; asserts nothing.
 *   bun bench/profile-cpu.ts [--backend cpu|cpu-fast] [--models debug,25m] [--steps 1] [--layers N]
 */
import { CpuBackend, makeCpuBackend, makeEngine, initLlamaParameters, Trainer, type Backend, type Dispatch } from "@covenant/gpu-webgpu"
import { stringArg } from "./support.ts"
import { benchModels } from "./models.ts"

const backendName = stringArg("backend", "cpu")
const steps = Number(stringArg("steps", "1"))
const layers = stringArg("layers", "")

/** Per kernel name: calls and ms over all timed steps, and `step`, the ms of the step under way. */
const timeKernels = (b: Backend): Map<string, { calls: number; ms: number; step: number }> => {
  const table = new Map<string, { calls: number; ms: number; step: number }>()
  const run = b.run.bind(b)
  b.run = (d: Dispatch) => {
    const t0 = performance.now()
    run(d)
    const dt = performance.now() - t0
    const e = table.get(d.kernel.name) ?? { calls: 0, ms: 0, step: 0 }
    e.calls++
    e.ms += dt
    e.step += dt
    table.set(d.kernel.name, e)
  }
  return table
}

for (const name of stringArg("models", "debug").split(",")) {
  const m = benchModels[name]!
  const spec = layers === "" ? m.spec : { ...m.spec, nLayers: Number(layers) }
  const backend: Backend = backendName === "cpu" ? new CpuBackend() : makeCpuBackend()
  const engine = makeEngine(backend)
  const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 1), { microBatch: m.microBatch, lr: 1e-4 })
  const ids = new Int32Array(m.batch * spec.seqLen).map((_, i) => (i * 7919) % spec.vocabSize)
  await trainer.step(ids, [m.batch, spec.seqLen])
  const table = timeKernels(backend)
  // the least each kernel (and the whole step) took in any one step: what the code costs when the
  // machine's other jobs leave it alone
  const least = new Map<string, number>()
  let leastStep = Infinity
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) {
    const s0 = performance.now()
    await trainer.step(ids, [m.batch, spec.seqLen])
    leastStep = Math.min(leastStep, performance.now() - s0)
    for (const [k, e] of table) {
      least.set(k, Math.min(least.get(k) ?? Infinity, e.step))
      e.step = 0
    }
  }
  const total = (performance.now() - t0) / steps
  const inKernels = [...table.values()].reduce((s, e) => s + e.ms, 0) / steps
  const leastKernels = [...least.values()].reduce((s, x) => s + x, 0)
  console.log(
    `${name} (${spec.nLayers} layers) on ${backend.name}: ${total.toFixed(1)} ms/step, ${inKernels.toFixed(1)} ms in kernels; ` +
      `least step ${leastStep.toFixed(1)} ms, sum of each kernel's least ${leastKernels.toFixed(1)} ms`
  )
  console.log(`  ${"kernel".padEnd(24)} ${"ms/step".padStart(9)}  ${"share".padStart(7)}  ${"least".padStart(6)}  calls/step`)
  for (const [k, e] of [...table].sort((x, y) => y[1].ms - x[1].ms).slice(0, 16)) {
    console.log(
      `  ${k.padEnd(24)} ${(e.ms / steps).toFixed(2).padStart(9)}  ${(100 * e.ms / steps / total).toFixed(1).padStart(5)} %  ` +
        `${least.get(k)!.toFixed(2).padStart(6)}  ${e.calls / steps}`
    )
  }
  trainer.dispose()
}
