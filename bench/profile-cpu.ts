/**
 * Where a training step's time goes on the CPU backends: wall time per kernel name over the
 * timed steps, largest first. Prints numbers; asserts nothing.
 *   bun bench/profile-cpu.ts [--backend cpu|cpu-fast] [--models debug,25m] [--steps 1] [--layers N]
 */
import { CpuBackend, makeCpuBackend, makeEngine, initLlamaParameters, Trainer, type Backend, type Dispatch } from "@covenant/gpu-webgpu"
import { stringArg } from "./support.ts"
import { benchModels } from "./models.ts"

const backendName = stringArg("backend", "cpu")
const steps = Number(stringArg("steps", "1"))
const layers = stringArg("layers", "")

const timeKernels = (b: Backend): Map<string, { calls: number; ms: number }> => {
  const table = new Map<string, { calls: number; ms: number }>()
  const run = b.run.bind(b)
  b.run = (d: Dispatch) => {
    const t0 = performance.now()
    run(d)
    const e = table.get(d.kernel.name) ?? { calls: 0, ms: 0 }
    e.calls++
    e.ms += performance.now() - t0
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
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) await trainer.step(ids, [m.batch, spec.seqLen])
  const total = (performance.now() - t0) / steps
  const inKernels = [...table.values()].reduce((s, e) => s + e.ms, 0) / steps
  console.log(`${name} (${spec.nLayers} layers) on ${backend.name}: ${total.toFixed(0)} ms/step, ${inKernels.toFixed(0)} ms in kernels`)
  for (const [k, e] of [...table].sort((x, y) => y[1].ms - x[1].ms).slice(0, 14)) {
    console.log(`  ${k.padEnd(24)} ${(e.ms / steps).toFixed(1).padStart(9)} ms  ${(100 * e.ms / steps / total).toFixed(1).padStart(5)} %  ${e.calls / steps} calls`)
  }
  trainer.dispose()
}
