/**
 * SparseLoCo encode on the device (compressGpu) against the CPU path (compress) on the tensors
 * of the 134M-parameter LLaMA of bench/codec.ts (dim 768, 12 layers, ffn 2048, vocab 32000,
 * untied). Prints numbers with the adapter name; asserts nothing beyond the two paths agreeing.
 *
 *   bun bench/codec-gpu.ts [--layers 12] [--no-embed] [--repeat 2]
 *
 * On a CPU emulation (lavapipe) use a subset, e.g. `--layers 1 --no-embed` (the 2 x 24.6M
 * embedding/lm_head tensors dominate the model). The GPU time is the wall time of the whole
 * step per tensor: kernels, the download of the selected entries, the CPU statistics and the
 * upload of the codes, ending when the EF subtraction has finished on the device. Tensors are
 * uploaded before timing: a peer training on the GPU already has them there.
 */
import { Context, Effect, Either, Layer, Scope } from "effect"
import { Engine, EngineWebGpu } from "@covenant/gpu-webgpu"
import type { Tensor } from "@covenant/gpu-webgpu"
import { compress, compressGpu, defaultParams } from "@covenant/sparseloco"

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const layers = Number(arg("layers", "12"))
const withEmbed = !process.argv.includes("--no-embed")
const repeat = Number(arg("repeat", "2"))

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

/** Gaussian-ish floats (sum of two uniforms from xorshift32), as bench/codec.ts. */
const fillRandom = (out: Float32Array, seed: number, scale: number): Float32Array => {
  let s = seed >>> 0 || 1
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    const a = (s >>> 0) / 4294967296
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    out[i] = (a + (s >>> 0) / 4294967296 - 1) * scale
  }
  return out
}

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
let gpuMs = Infinity
let mismatches = 0
for (let r = 0; r < repeat; r++) {
  const t0 = performance.now()
  const cpu = tensors.map((t, i) => Either.getOrThrow(compress(efs[i]!, deltas[i]!, t.shape, defaultParams, t.name)).update)
  cpuMs = Math.min(cpuMs, performance.now() - t0)
  const t1 = performance.now()
  const gpu = []
  for (let i = 0; i < tensors.length; i++) {
    gpu.push(await Effect.runPromise(compressGpu(engine, efT[i]!, deltaT[i]!, tensors[i]!.shape, defaultParams, tensors[i]!.name)))
  }
  await engine.sync()
  gpuMs = Math.min(gpuMs, performance.now() - t1)
  // both paths ran on the same EF history, so every round must agree
  gpu.forEach((g, i) => {
    const c = cpu[i]!
    if (g.shift !== c.shift || g.indices.some((j, e) => j !== c.indices[e]) || g.codes.some((q, e) => q !== c.codes[e])) mismatches++
  })
}
console.log(`CPU compress:        ${(cpuMs / 1e3).toFixed(2)} s = ${fmt((total / cpuMs) * 1e3)} params/s (one thread)`)
console.log(`compressGpu (device): ${(gpuMs / 1e3).toFixed(2)} s = ${fmt((total / gpuMs) * 1e3)} params/s`)
console.log(`GPU and CPU updates ${mismatches === 0 ? "identical" : `DIFFER in ${mismatches} tensor-rounds`}`)
engine.backend.destroy()
