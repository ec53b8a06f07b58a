/**
 * SparseLoCo encode on the device (compressGpu) against the CPU path (compress) on the tensors
 * of the 134M-parameter LLaMA of bench/codec.ts (dim 768, 12 layers, ffn 2048, vocab 32000,
 * untied). Prints numbers with the adapter name; asserts nothing beyond the two paths agreeing.
 *
 *   bun bench/codec-gpu.ts [--layers 12] [--no-embed] [--repeat 2]
 *
 * On a CPU emulation (lavapipe) use a subset, e.g. `--layers 1 --no-embed` (the 2 x 24.6M
 * embedding/lm_head tensors dominate the model). The GPU time is the wall time of the whole
 * step, per tensor (compressGpu) and for the whole subset in one batch (compressGpuMany):
 * kernels, the download of the selected entries, the CPU statistics and the upload of the codes,
 * ending when the EF subtraction has finished on the device. Tensors are uploaded before
 * timing: a peer training on the GPU already has them there.
 */
import { Context, Effect, Either, Layer, Scope } from "effect"
import { Engine, EngineWebGpu } from "@covenant/gpu-webgpu"
import type { Tensor } from "@covenant/gpu-webgpu"
import { compress, compressGpu, compressGpuMany, defaultParams } from "@covenant/sparseloco"
import type { TensorUpdate } from "@covenant/sparseloco"
import { fillRandom, stringArg } from "./support.ts"

const layers = Number(stringArg("layers", "12"))
const withEmbed = !process.argv.includes("--no-embed")
const repeat = Number(stringArg("repeat", "2"))

const dim = 768
const ffn = 2048
const vocab = 32000
const embed = withEmbed ? [{ name: "embed_tokens", shape: [vocab, dim] }] : []
const tensors = [
  ...embed,
  ...Array.from({ length: layers }, (_, i) => [
    { name: `${i}.q_proj`, shape: [dim, dim] },
    { name: `${i}.k_proj`, shape: [dim, dim] },
    { name: `${i}.v_proj`, shape: [dim, dim] },
    { name: `${i}.o_proj`, shape: [dim, dim] },
    { name: `${i}.gate_proj`, shape: [ffn, dim] },
    { name: `${i}.up_proj`, shape: [ffn, dim] },
    { name: `${i}.down_proj`, shape: [dim, ffn] },
    { name: `${i}.input_layernorm`, shape: [dim] },
    { name: `${i}.post_attention_layernorm`, shape: [dim] },
  ]).flat(),
  { name: "norm", shape: [dim] },
  ...(withEmbed ? [{ name: "lm_head", shape: [vocab, dim] }] : []),
]
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1)
const total = tensors.reduce((a, t) => a + numelOf(t.shape), 0)


const engine = await Effect.runPromise(
  Effect.flatMap(Scope.make(), (scope) => Layer.buildWithScope(EngineWebGpu, scope)).pipe(Effect.map((ctx) => Context.get(ctx, Engine))),
)
const fmt = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(1)} M`)
console.log(`adapter: ${engine.backend.name}`)
console.log(
  `model subset: ${tensors.length} tensors, ${(total / 1e6).toFixed(1)} M parameters (${layers} layers${withEmbed ? ", embedding + lm_head" : ""}); k = 64 per 64x64 chunk; best of ${repeat}`,
)

const efs = tensors.map((t, i) => fillRandom(new Float32Array(numelOf(t.shape)), 9000 + i, 2e-3))
const deltas = tensors.map((t, i) => fillRandom(new Float32Array(numelOf(t.shape)), 1000 + i, 1e-3))
const efT: Tensor[] = efs.map((e) => engine.fromArray(e.slice(), [e.length]))
const deltaT: Tensor[] = deltas.map((d) => engine.fromArray(d, [d.length]))
await engine.sync()

let cpuMs = Infinity
let perTensorMs = Infinity
let batchMs = Infinity
let mismatches = 0
const steps = tensors.map((t, i) => ({ ef: efT[i]!, delta: deltaT[i]!, shape: t.shape, name: t.name }))
const same = (g: readonly TensorUpdate[], c: readonly TensorUpdate[]) =>
  g.forEach((u, i) => {
    const v = c[i]!
    if (u.shift !== v.shift || u.indices.some((j, e) => j !== v.indices[e]) || u.codes.some((q, e) => q !== v.codes[e])) mismatches++
  })
const cpuRound = () => {
  const t0 = performance.now()
  const out = tensors.map((t, i) => Either.getOrThrow(compress(efs[i]!, deltas[i]!, t.shape, defaultParams, t.name)).update)
  cpuMs = Math.min(cpuMs, performance.now() - t0)
  return out
}
// both paths run on the same EF history, so every round must agree
for (let r = 0; r < repeat; r++) {
  const cpu = cpuRound()
  const t0 = performance.now()
  const gpu: TensorUpdate[] = []
  for (const s of steps) gpu.push(await Effect.runPromise(compressGpu(engine, s.ef, s.delta, s.shape, defaultParams, s.name)))
  await engine.sync()
  perTensorMs = Math.min(perTensorMs, performance.now() - t0)
  same(gpu, cpu)
}
for (let r = 0; r < repeat; r++) {
  const cpu = cpuRound()
  const t0 = performance.now()
  const gpu = await Effect.runPromise(compressGpuMany(engine, steps, defaultParams))
  await engine.sync()
  batchMs = Math.min(batchMs, performance.now() - t0)
  same(gpu, cpu)
}
const line = (label: string, ms: number) => console.log(`${label.padEnd(36)} ${(ms / 1e3).toFixed(2)} s = ${fmt((total / ms) * 1e3)} params/s`)
line("CPU compress (one thread)", cpuMs)
line("compressGpu, one call per tensor", perTensorMs)
line("compressGpuMany, whole subset", batchMs)
console.log(`GPU and CPU updates ${mismatches === 0 ? "identical" : `DIFFER in ${mismatches} tensor-rounds`}`)
engine.backend.destroy()
